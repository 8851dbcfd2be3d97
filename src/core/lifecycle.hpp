// Creating and dropping preview databases: fail-closed (built under a temporary name, renamed
// when complete), serialised per name, never touching protected or unmanaged databases.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/metadata.hpp"
#include "core/protection.hpp"
#include "db/connection.hpp"

namespace previewdb::core {

enum class CloneStrategy { automatic, wal_log, file_copy };
CloneStrategy parse_clone_strategy(const std::string& s);  // auto|wal_log|file_copy; throws usage

enum class IfExists { fail, reuse, replace };

struct SpawnRequest {
  std::string name;  // validated
  Metadata
      meta;  // kind, created_by, pr_number, branch, repository (created_at, snapshot filled in)
  std::string source = "dev";           // latest snapshot of this database...
  std::optional<std::string> snapshot;  // ...unless a snapshot id is given
  std::string conninfo;                 // server (for pg_restore when restoring a file:// archive)
  IfExists if_exists = IfExists::fail;
  CloneStrategy strategy = CloneStrategy::automatic;
};

struct SpawnResult {
  std::string name;
  bool created = false;  // false: an existing database was reused
  bool replaced = false;
  std::string snapshot;  // the snapshot it was cloned from
  std::string strategy;  // "WAL_LOG", "FILE_COPY", "pg_restore"
};

// Creates request.name from the snapshot. Concurrent calls for one name are serialised by an
// advisory lock: exactly one creates; with reuse the others return it, otherwise they fail with
// Error(already_exists). Throws Error(not_found) with a hint when there is no snapshot.
SpawnResult spawn(db::Connection& maintenance, const SpawnRequest& request,
                  const Protection& protection);

enum class DropOutcome {
  dropped,
  absent,
  refused_protected,
  refused_unmanaged,
  refused_other_repository
};
struct DropResult {
  DropOutcome outcome;
  std::string reason;
};
// Drops a database with WITH (FORCE) if it is managed (or include_unmanaged) and not protected.
// With a repository, a preview recorded for another repository is refused.
DropResult drop_database(db::Connection& maintenance, const std::string& name,
                         const Protection& protection, bool include_unmanaged,
                         const std::optional<std::string>& repository = std::nullopt);

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
// " STRATEGY WAL_LOG" / " STRATEGY FILE_COPY" for CREATE DATABASE ... TEMPLATE from (empty before
// PostgreSQL 15); automatic picks by the template's size. chosen receives the strategy's name.
std::string strategy_clause(db::Connection& conn, CloneStrategy strategy, const std::string& from,
                            std::string* chosen);

// Drops leftovers of spawns that died: registered temporary builds whose builder is gone. A
// previewdb_tmp_* that previewdb did not register is never touched.
void remove_stale_temporaries(db::Connection& maintenance);

}  // namespace previewdb::core
