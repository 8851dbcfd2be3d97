// Creating and dropping preview databases: fail-closed (built under a temporary name, renamed
// when complete), serialised per name, never touching protected or unmanaged databases.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/catalog.hpp"
#include "core/clone_policy.hpp"
#include "core/metadata.hpp"
#include "core/protection.hpp"
#include "db/connection.hpp"
#include "storage/store.hpp"

namespace previewdb::core {

CloneStrategy parse_clone_strategy(const std::string& s);  // auto|wal_log|file_copy; throws usage

enum class IfExists { fail, reuse, replace };

struct SpawnRequest {
  std::string name;  // validated
  Metadata
      meta;  // kind, created_by, pr_number, branch, repository (created_at, snapshot filled in)
  std::string source = "dev";           // latest snapshot of this database...
  std::optional<std::string> snapshot;  // ...unless a snapshot id is given
  std::string conninfo;                 // server (for pg_restore when restoring a file:// archive)
  storage::StoreOptions store_options;  // settings of an s3:// snapshot store
  IfExists if_exists = IfExists::fail;
  CloneStrategy strategy = CloneStrategy::automatic;
  // Build an empty database (from template0) instead of cloning a snapshot (`reset` without one).
  bool empty = false;
  // Run on the finished temporary database before it takes the name (`reset` migrates it): a
  // failure there leaves the existing database as it was and nothing half-made.
  std::function<void(const std::string& temp)> prepare;
  // Take a member of the warm pool (core/pool.hpp) when creating from the latest snapshot of
  // `source` (no snapshot id, no `prepare`, nothing to replace); a clone when none can be taken.
  bool use_pool = false;
  // Leave the clone's bookkeeping (its duration in registry.clone_samples, the new database's
  // cached size) to the caller, who calls record_spawn_evidence after writing its outputs (spawn
  // does). Off: spawn records them itself before it returns.
  bool defer_evidence = false;
};

struct SpawnResult {
  std::string name;
  bool created = false;  // false: an existing database was reused
  bool replaced = false;
  std::string snapshot;  // the snapshot it was cloned from
  std::string strategy;  // "WAL_LOG", "FILE_COPY", "pg_restore", "pool"
  // Why that strategy (a template clone): "--strategy", the default, or the recorded evidence.
  std::string strategy_reason;
  bool pooled = false;  // taken from the warm pool by rename
  // What record_spawn_evidence records (set only with request.defer_evidence and a new database).
  struct Evidence {
    std::string name;              // the new database (its size is cached)
    std::string plan_keyword;      // the template clone's strategy ("": not a template clone)
    bool plan_has_clause = false;  // the clone named its strategy (PostgreSQL 15+)
    long long size_bytes = -1;     // the template's size
    double seconds = 0;            // how long CREATE DATABASE took
  };
  std::optional<Evidence> evidence;
};

// Records what spawn left for later (SpawnResult::evidence): best-effort, never throws (a
// failure is a warning; the database stands).
void record_spawn_evidence(db::Connection& maintenance, const SpawnResult& result);

// Creates request.name from the snapshot. Concurrent calls for one name are serialised by an
// advisory lock: exactly one creates; with reuse the others return it, otherwise they fail with
// Error(already_exists). Throws Error(not_found) with a hint when there is no snapshot.
SpawnResult spawn(db::Connection& maintenance, const SpawnRequest& request,
                  const Protection& protection);

// The embedded local server's own database (`reset` of dev): a new empty database is built under
// a temporary name (registered as a build, dropped on failure), `prepare` runs on it (the
// migrations), and only then does it replace `name`, under the name lock and refused while a
// build holds it. Protection is the caller's business (it asks for confirmation); the result is
// unregistered, like the database `local start` made.
void rebuild_local_database(db::Connection& maintenance, const std::string& name,
                            const std::function<void(const std::string& temp)>& prepare);

enum class DropOutcome {
  dropped,
  absent,
  refused_protected,
  refused_unmanaged,
  refused_other_repository,
  refused_in_use,  // held by a running build (hold_database)
  kept,            // still_wanted said no: it changed since the caller chose it
};
struct DropResult {
  DropOutcome outcome;
  std::string reason;
};
// Decides again under the name lock: nullopt to go on dropping `current` (the database as it is
// now), else the reason to keep it. Callers re-check what they selected it by (age, pull request,
// creation time) because a concurrent `ci` may have re-created it since.
using DropCheck = std::function<std::optional<std::string>(const DatabaseInfo& current)>;
// Drops a database with WITH (FORCE) if it is managed (or include_unmanaged), not protected and
// not held by a running build; with a repository, a preview recorded for another repository is
// refused. Every check is made under the name lock, just before the DROP.
DropResult drop_database(db::Connection& maintenance, const std::string& name,
                         const Protection& protection, bool include_unmanaged,
                         const std::optional<std::string>& repository = std::nullopt,
                         const DropCheck& still_wanted = {});

// A database in use by a running build (`ci -- CMD`): a shared advisory lock on its "use" key,
// held on its own maintenance connection for the object's lifetime. drop_database (and so
// cleanup) skips a held database and names the holder.
class DatabaseHold {
 public:
  DatabaseHold(db::Connection conn, std::string name);
  ~DatabaseHold();
  DatabaseHold(DatabaseHold&&) = default;
  const std::string& name() const { return m_name; }

 private:
  std::unique_ptr<db::Connection> m_conn;
  std::string m_name;
};
// Takes the hold on `maintenance` (a connection of its own, to the same maintenance database as
// drop_database uses); `holder` is shown to whoever is refused ("previewdb ci -- npm test, pid
// 4242"). Call it while still holding the name lock, so no drop slips in between. Waits at most
// `timeout` for a drop that is under way; Error(lock_timeout) after it.
DatabaseHold hold_database(db::Connection maintenance, const std::string& name,
                           const std::string& holder, std::chrono::seconds timeout);
std::string use_lock_key(const std::string& name);

// Temporary databases: everything is built under previewdb_tmp_<random> while holding the
// build lock (key from build_lock_key), and renamed only when complete.
std::string temp_database_name();
bool is_temp_database_name(const std::string& name);
std::string build_lock_key(const std::string& temp);
// The advisory lock (on the maintenance database) that serialises spawn, drop and a CI run's
// check-reset-migrate of one name. Session locks nest, so a holder may call spawn/drop itself.
std::string spawn_lock_key(const std::string& name);
// Drops a temporary database (even if already marked as a template); logs instead of throwing.
void drop_temporary(db::Connection& maintenance, const std::string& name);
class Registry;
// A build that failed: its temporary database dropped and its registry row (reg.begin_build's)
// removed. Never throws: the build's own error is the one to report.
void abandon_build(db::Connection& maintenance, Registry& reg, const std::string& temp,
                   long long row);
// How to clone the template `from`: the strategy asked for, or (automatic) the one this server's
// recorded clones say is faster at the template's size (core/clone_policy).
struct ClonePlan {
  std::string keyword;         // "WAL_LOG" / "FILE_COPY" ("FILE_COPY" before PostgreSQL 15)
  std::string clause;          // " STRATEGY <keyword>" (empty before PostgreSQL 15)
  std::string reason;          // why, for people
  long long size_bytes = -1;   // the template's size (-1: unknown)
  long long template_oid = 0;  // the template's oid as the plan read it (0: it does not exist)
};
// Reading the evidence is best-effort: without the registry's samples the default applies.
ClonePlan plan_clone(db::Connection& maintenance, CloneStrategy strategy, const std::string& from);
// Records how long the clone of plan took (registry.clone_samples), for later choices. Never
// throws: a failure to record is logged and the clone stands.
void record_clone(db::Connection& maintenance, const ClonePlan& plan, double seconds);
// plan_clone's clause; chosen receives the strategy's name.
std::string strategy_clause(db::Connection& conn, CloneStrategy strategy, const std::string& from,
                            std::string* chosen);

// Throws Error(refused) naming the role and the grant when the session's role may not create
// databases (neither CREATEDB nor superuser): one clear error before any work.
void require_createdb(db::Connection& maintenance);

// Drops leftovers of spawns that died: registered temporary builds whose builder is gone. A
// previewdb_tmp_* that previewdb did not register is never touched.
void remove_stale_temporaries(db::Connection& maintenance);
// The same from a list the caller has just read (list_databases): no catalog read of its own.
void remove_stale_temporaries(db::Connection& maintenance, const std::vector<DatabaseInfo>& all);

}  // namespace previewdb::core
