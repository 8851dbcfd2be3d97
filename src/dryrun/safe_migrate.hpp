// previewdb safe-migrate: backup (a template snapshot of the target on its own server) -> dry run
// on a clone of that snapshot -> apply under the migration lock -> on failure, restore the
// snapshot by rename unless someone else wrote to the database since the backup.
//
// A small state record per database lives in the registry (previewdb_registry.safe_migrate_state),
// not in the target: it must survive the restore (which swaps the target for the backup's copy),
// must not count as a write to the target, and is readable by the next run before it touches the
// target. A run holds previewdb:safe-migrate:<db> (session advisory lock on the maintenance
// connection); the next run that gets that lock and finds a record not "done" knows the previous
// run died at that step, reports it, and finishes or restores.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "db/connection.hpp"
#include "dryrun/dryrun.hpp"

namespace previewdb::dryrun {

struct SafeMigrateOptions {
  DryRunOptions dry;  // the folder, the rules, the target database (dry.database)
  std::string created_by;
  bool allow_data_loss = false;
  bool no_restore = false;
  // A restore renames the database, which needs it idle: end other sessions first.
  bool terminate_sessions = false;
  // Called as each step starts: "backup", "dry-run", "apply", "restore", "swap" (the restored
  // copy is built, core::swap_database comes next). The command prints progress; tests pause here
  // to kill the run.
  std::function<void(const std::string& step)> on_step;
};

struct Step {
  std::string name;
  long long ms = 0;
  std::string result;
};

struct SafeMigrateReport {
  std::string database;
  std::vector<Step> steps;
  std::string backup;                   // the snapshot taken in step one
  std::optional<std::string> previous;  // what the state record said about an interrupted run
  std::optional<DryRunReport> dry_run;
  std::vector<std::string> applied;
  bool failed = false;
  std::string error;
  bool restored = false;
  std::string kept_as;  // the failed database, renamed, after a restore
  std::string not_restored_reason;
  std::string restore_command;
  int exit_code = 0;
};

SafeMigrateReport safe_migrate(db::Connection& maintenance, const SafeMigrateOptions& options);

// The restore on its own (`safe-migrate DB --restore SNAPSHOT`): swap the snapshot's copy in.
SafeMigrateReport restore_snapshot(db::Connection& maintenance, const std::string& database,
                                   const std::string& snapshot, bool terminate_sessions,
                                   const std::function<void(const std::string&)>& on_step = {});

// ---- pieces with no server, for unit tests ----------------------------------------------------

// Tables whose write counters (inserts + updates + deletes, pg_stat_user_tables) grew by more than
// this run's own migrations account for (`expected`, from the dry run): someone else wrote there
// after the backup. Tables missing from `before` are new (made by the migrations): not counted.
std::vector<std::string> foreign_writes(const std::map<std::string, long long>& before,
                                        const std::map<std::string, long long>& after,
                                        const std::map<std::string, long long>& expected);

// "<db>_before_restore_<YYYYMMDD_HHMMSS>" (core::before_restore_name: at most 63 bytes).
std::string kept_name(const std::string& database, const std::string& timestamp);

nlohmann::json to_json(const SafeMigrateReport& report);
std::string format_report(const SafeMigrateReport& report);

}  // namespace previewdb::dryrun
