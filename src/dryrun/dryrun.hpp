// previewdb dry-run: the pending migrations applied to a throwaway clone of the target, watched
// from the clone's catalog (tables, columns, relfilenodes, pg_locks, pg_stat_xact_user_tables)
// and exact row counts, never from the SQL text. The target is never changed; the clone is a
// registered temporary build (previewdb_tmp_*) that is always dropped, and that a janitor drops
// if this process dies.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/lifecycle.hpp"
#include "db/connection.hpp"
#include "dryrun/findings.hpp"
#include "migrate/migrate.hpp"

namespace previewdb::dryrun {

struct DryRunOptions {
  // The folder, the target database and the rules (changed files, order, statement_timeout,
  // lock_timeout) exactly as for `migrate`; dry_run and command are ignored.
  migrate::MigrateOptions migrate;
  std::string database;  // the target database's name on the maintenance connection's server
  core::CloneStrategy strategy = core::CloneStrategy::automatic;
  // Clone this database instead of the target (safe-migrate: its step-one snapshot, a template
  // copy of the target taken moments before).
  std::optional<std::string> clone_from;
  // Called with each connection that runs long statements (so an interrupt can cancel it), and
  // with nullptr when it is gone.
  std::function<void(db::Connection*)> watch;
  // Checked between statements: true once the user interrupted (SIGINT/SIGTERM).
  std::function<bool()> interrupted;
};

// Clones, applies, observes, classifies, drops the clone (also when anything throws). Throws
// Error(refused) when the server has no room for the clone, and migrate's own errors for what
// migrate would refuse (changed files, syntax errors, COPY FROM STDIN).
DryRunReport dry_run(db::Connection& maintenance, const DryRunOptions& options);

// ---- lock sampling (statements that cannot run in a transaction) --------------------------------

// One look at pg_locks, from a second session, at a relation lock the dry run's session held
// `at_ms` after the statement started.
struct LockSample {
  long long at_ms = 0;
  std::string table;
  std::string mode;
};
// How often the second session looks while such a statement runs.
inline constexpr long long k_lock_sample_interval_ms = 5;
// The strongest mode seen per table (tables in first-seen order), held from its first sample to
// its last plus one interval, marked sampled, from `line`.
std::vector<LockTaken> aggregate_lock_samples(const std::vector<LockSample>& samples,
                                              long long interval_ms, int line);
// pg_locks' table lock modes, weakest (AccessShareLock, 0) to strongest (AccessExclusiveLock, 7);
// -1 for anything else.
int lock_rank(const std::string& mode);

// The free space check before a template copy: room when free >= size * 1.1 + 64 MiB. With
// free unknown (the server is not on this machine) the check is skipped and says so.
struct SpaceCheck {
  bool room = true;
  std::string description;  // "database 12 MB, 40 GB free in /var/lib/postgresql/15/main"
};
SpaceCheck check_space(long long database_bytes, std::optional<long long> free_bytes,
                       const std::string& where);

// Where the database's files live and how much room is left there: the tablespace's location
// (pg_tablespace_location, or data_directory for the default ones, which needs superuser or
// pg_read_all_settings) measured with statvfs, only when the server runs on this machine (a Unix
// socket or a loopback host) and the folder is visible; else nullopt with why in *why.
std::optional<long long> free_space(db::Connection& maintenance, const std::string& database,
                                    const std::string& conninfo, std::string* where,
                                    std::string* why);

}  // namespace previewdb::dryrun
