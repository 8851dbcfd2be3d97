// What a dry run saw, as plain values, and the findings decided from it. The observations come
// from the clone's catalog and row counts before and after each migration (dryrun.cpp); the
// classification here never reads SQL text and needs no server, so unit tests drive it directly.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace previewdb::dryrun {

// A table that existed before the run (objects the run itself creates are never findings).
struct TableState {
  long long oid = 0;
  std::string name;  // schema-qualified for people: "public.users"
  long long relfilenode = 0;
  long long rows = 0;                // exact count(*)
  std::vector<std::string> columns;  // names of live columns that existed before the run
};

// A column whose type a statement changed, with the rows whose value did not survive the cast.
struct TypeChange {
  std::string table, column, from, to;
  long long changed_rows = 0;
  long long rows = 0;  // rows in the table
};

// A relation lock the migration's transaction took on a table that existed before the run.
struct LockTaken {
  std::string table;
  std::string mode;  // pg_locks.mode: "AccessExclusiveLock", ...
  long long held_ms = 0;
  int statement_line = 0;  // where it was first taken
  // Seen by sampling pg_locks from a second session while a statement that cannot run in a
  // transaction ran (held: first sample to last, plus one interval); very short locks may be
  // missed.
  bool sampled = false;
};

// A statement that failed on the clone.
struct Failure {
  int line = 0;  // in the migration's file
  std::string sqlstate, message;
  std::string table, constraint, column;  // from the error's fields, when the server gave them
  std::optional<long long> failing_rows;  // existing rows that violate the constraint
  std::string constraint_definition;      // "CHECK ((price > (0)::numeric))"
};

// One migration, as the clone saw it.
struct MigrationObservation {
  std::string id, file;
  std::string mode;  // "transaction", "own transaction", "no transaction"
  size_t statements = 0;
  long long duration_ms = 0;
  long long rows_affected = 0;  // sum of the statements' command tags (INSERT/UPDATE/DELETE...)
  // Tables that existed before the run, as they were when this migration started, and as they
  // are after it (a table missing from `after` was dropped by it).
  std::vector<TableState> before, after;
  std::map<long long, long long> deleted;  // table oid -> rows deleted (n_tup_del, count delta)
  // Table name -> rows inserted, updated or deleted by this migration (pg_stat_xact_user_tables):
  // what safe-migrate expects its own run to add to the target's statistics.
  std::map<std::string, long long> writes;
  std::vector<TypeChange> type_changes;
  std::vector<LockTaken> locks;  // strongest mode per table
  bool locks_measured = true;    // false outside a transaction (see docs/SAFETY.md)
  bool locks_sampled = false;    // outside a transaction: sampled from a second session
  std::optional<Failure> failure;
};

enum class Severity { info, warning, data_loss, failure };
std::string_view severity_name(Severity s);  // "info", "warning", "data-loss", "failure"

struct Finding {
  std::string kind;  // table-dropped, column-dropped, rows-deleted, table-truncated,
                     // lossy-type-change, constraint-fails, migration-failed, table-rewritten, lock
  Severity severity = Severity::info;
  std::string migration;
  std::string table, column;
  std::optional<long long> rows;
  std::string message;  // one line for people
};

// The findings of one migration, in a stable order (data loss first).
std::vector<Finding> classify(const MigrationObservation& observation);

enum class FailOn { data_loss, warning, never };
// "data-loss", "warning", "never"; Error(usage) otherwise.
FailOn parse_fail_on(const std::string& text);
// Whether these findings make the run "something to review" (exit 9): data loss and failing
// migrations by default; with warning also warnings; never: nothing.
bool needs_review(const std::vector<Finding>& findings, FailOn fail_on);
bool has_data_loss(const std::vector<Finding>& findings);

struct DryRunReport {
  std::string database;      // the target, without secrets
  std::string clone_method;  // "template (WAL_LOG)", "pg_dump | pg_restore (target busy)"
  long long clone_ms = 0;
  std::string space_check;  // how free space was measured, and the numbers
  std::vector<MigrationObservation> migrations;
  std::vector<Finding> findings;
  size_t skipped = 0;  // already applied
  std::vector<std::string> warnings;
};

nlohmann::json to_json(const DryRunReport& report);
std::string format_report(const DryRunReport& report);  // a text report for people

}  // namespace previewdb::dryrun
