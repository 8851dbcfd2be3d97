// The migration engine's public API: apply a folder's pending migrations under a lock, report
// their status, list previewdb's history. Plain option structs in, result structs out; failures
// throw previewdb::Error with a stable ExitCode (migration_failed, lock_timeout, refused, usage,
// connection).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "migrate/history.hpp"
#include "migrate/lock.hpp"
#include "migrate/migration.hpp"

namespace previewdb::migrate {

// Where the migrations are and which database they go to.
struct Target {
  std::string conninfo;  // URL or key=value (empty: libpq's PG* environment)
  std::string dbname;    // overrides the database in conninfo when set
  // How long "too many clients" is retried when connecting: the run's lock timeout.
  std::chrono::milliseconds busy_retry = db::ConnectOptions{}.busy_retry;
};

struct MigrateOptions {
  Target target;
  std::filesystem::path dir = "migrations/schema";
  std::string format = "auto";
  std::map<std::string, std::string> placeholders;  // Flyway ${name}
  LockMode lock_mode = LockMode::automatic;
  std::chrono::milliseconds lock_timeout{std::chrono::minutes(10)};
  std::optional<std::chrono::milliseconds> statement_timeout;  // PostgreSQL statement_timeout
  std::optional<std::chrono::milliseconds> lock_wait_timeout;  // PostgreSQL lock_timeout
  std::optional<std::chrono::milliseconds> timeout;            // the whole run
  bool dry_run = false;
  bool allow_changed = false;  // apply even when applied files changed
  bool strict_order = false;   // refuse pending migrations older than the newest applied
  // Run this shell command under the lock instead of applying the folder (DATABASE_URL,
  // DIRECT_URL and PG* point at the target; its output goes to stderr).
  std::string command;
  bool github_annotations = false;  // ::group:: and ::error file=..,line=..:: on stderr
  std::string applied_by;           // recorded in the history (empty: the database user)
  // Apply only these migrations (ids); the folder's others stay pending (drift rebuilds what a
  // database has applied). Unset: every pending migration.
  std::optional<std::set<std::string>> only;
  // Every migration a statement at a time, outside any explicit transaction, its history rows
  // written only after its last statement returned (so after its schema changes are visible).
  // Chosen by the dialect on CockroachDB (schema changes in explicit transactions are limited
  // there); this forces it elsewhere (tests on PostgreSQL).
  bool statement_at_a_time = false;
};

// One migration in a dry-run plan or a run's result.
struct MigrationRun {
  std::string id;
  std::string file;  // display path
  size_t statements = 0;
  std::string mode;  // "transaction", "own transaction", "no transaction"
  std::string mode_reason;
  long long duration_ms = 0;
};

struct MigrateReport {
  std::string database;              // the target, without secrets
  std::string format;                // format_name() of the folder ("" with --command)
  std::vector<std::string> applied;  // ids, in the order applied (dry run: would be applied)
  std::vector<MigrationRun> runs;    // details for `applied`
  size_t skipped = 0;                // already applied
  std::vector<std::string> warnings;
  bool dry_run = false;
  std::string lock_mode;                 // "advisory" or "table" ("" for a dry run)
  std::vector<std::string> tool_locks;   // the tool's own lock keys held too: "Prisma:72707369"
  std::optional<int> command_exit_code;  // --command: its exit status (128+signal if killed)
  // --command: `applied` is what the tool's history table gained while the command ran; false
  // when that is unknown (no readable folder, or a format without a history table previewdb
  // knows), and then `applied` is empty.
  bool applied_known = true;
  size_t applied_count() const { return applied.size(); }
};

// Applies the pending migrations of options.dir to the target, one transaction each, under the
// migration lock; or, with options.command, runs that command under the lock.
MigrateReport migrate(const MigrateOptions& options);

enum class State { applied, pending, changed, missing, failed };
std::string_view state_name(State state);  // "applied", "pending", ...

struct MigrationStatus {
  std::string id;
  std::string name;
  std::string file;  // empty for missing
  State state = State::pending;
  bool out_of_order = false;  // pending, but sorts before the newest applied migration
  bool repeatable = false;    // Flyway R__ (re-applied when it changes; never "changed")
  std::string applied_at;     // finished (or started) time, ISO-8601
  std::optional<long long> duration_ms;
  std::string recorded_in;                       // the history table the state came from
  std::string error;                             // failed: what went wrong
  std::string recorded_checksum, file_checksum;  // changed: both
  size_t statements = 0;
  std::string what_to_do;  // failed/changed/missing/out of order: advice for people
};

struct StatusReport {
  std::string database;
  std::string format;
  std::string dir;
  std::vector<MigrationStatus> migrations;  // the folder's order; missing ones at the end
  std::vector<std::string> warnings;
  size_t count(State state) const;
  bool has_out_of_order() const;
  // Something to do: pending, changed or failed (status --exit-code).
  bool needs_attention() const;
  // The database no longer matches the folder's history: an applied file changed, a migration
  // failed, or a pending migration sorts before the newest applied one (a rebase). CI re-creates
  // the preview database then.
  bool diverged() const;
};

struct StatusOptions {
  Target target;
  std::filesystem::path dir = "migrations/schema";
  std::string format = "auto";
  std::map<std::string, std::string> placeholders;
};

// Reads the folder and the history tables (read-only; no lock) and compares them.
StatusReport status(const StatusOptions& options);

// The comparison itself, without a server (unit-tested).
StatusReport compare(const MigrationSet& set, const AppliedSet& applied);

struct HistoryOptions {
  Target target;
  int limit = 10;
};
// previewdb's history table, newest first.
std::vector<HistoryEntry> history(const HistoryOptions& options);

// Output shapes shared by the commands and the CI command.
nlohmann::json to_json(const StatusReport& report);
nlohmann::json to_json(const MigrateReport& report);
nlohmann::json to_json(const std::vector<HistoryEntry>& entries);
std::string format_status(const StatusReport& report);  // a table for people
std::string format_history(const std::vector<HistoryEntry>& entries);
std::string format_plan(const MigrateReport& report);  // --dry-run

}  // namespace previewdb::migrate
