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
#include "storage/store.hpp"

namespace previewdb::dryrun {

// Step one's backup: a template snapshot on the target's own server (fast, needs CREATEDB there and
// an idle target), or a verified archive (pg_dump into a backup store, file:// or s3://).
enum class BackupKind { automatic, template_copy, archive };
// "auto", "template", "archive"; anything else is a usage error naming the setting.
BackupKind parse_backup_kind(const std::string& text, const std::string& origin);
std::string to_string(BackupKind kind);  // "auto", "template", "archive"

// What the choice depends on, gathered by safe_migrate (or a test).
struct BackupFacts {
  BackupKind wanted = BackupKind::automatic;
  std::string wanted_origin;  // "--backup", "PREVIEWDB_SAFE_MIGRATE_BACKUP", ...
  bool store_given = false;   // --backup-store: the user asked for an archive there
  bool same_server = true;    // previewdb's clones live on the target's server (no --scratch-url)
  bool can_create = true;     // the target's role may create databases (CREATEDB or superuser)
  std::string role;           // that role, for the reason
  std::vector<std::string> sessions;  // other client sessions on the target (pids)
};
struct BackupChoice {
  BackupKind kind = BackupKind::template_copy;  // never automatic
  std::string reason;
};
// template when nothing stands in its way; archive when forced, when --backup-store is given, when
// the clones live on another server, when the role may not create databases, or when the target
// is busy (a template copy needs it idle). Throws Error(refused) when template is forced but
// impossible (another server, no CREATEDB).
BackupChoice choose_backup(const BackupFacts& facts);

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

  // The backup: which kind (automatic: choose_backup decides), the archive store's URL (no
  // secrets: credentials come from the environment) and how to open a store from such a URL.
  BackupKind backup = BackupKind::automatic;
  std::string backup_origin;
  bool backup_store_given = false;
  std::string store_url;
  std::function<std::unique_ptr<storage::SnapshotStore>(const std::string& url)> open_store;
  int backup_level = 3;
  // The maintenance connection's server and login (libpq conninfo): where clones, the registry
  // and the state record live. Empty: the target's (dry.migrate.target.conninfo).
  std::string maintenance_conninfo;
};

struct Step {
  std::string name;
  long long ms = 0;
  std::string result;
};

struct SafeMigrateReport {
  std::string database;
  std::vector<Step> steps;
  std::string backup;                   // the snapshot taken in step one, or the archive's name
  std::string backup_kind;              // "template" or "archive"
  std::string backup_url;               // the archive's place (store URL/name), no secrets
  std::string backup_reason;            // why that kind
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
