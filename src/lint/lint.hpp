// Lint rules for migrations: each statement's parse tree (libpg_query) is checked for changes
// that lock or rewrite a table, break running code or lose data. Plain values in, findings out:
// no files, flags or connections here (the command reads them; sizes come from table_sizes).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "migrate/migration.hpp"

namespace previewdb::lint {

enum class Severity { info, warning, error };
std::string_view severity_name(Severity severity);  // "info", "warning", "error"
// "error", "warning" (and "info"); nullopt for anything else.
std::optional<Severity> parse_severity(std::string_view name);

// What a rule is about: graded by the table's size (with a database) or not.
enum class Kind {
  lock,      // holds a lock that blocks reads or writes while it works (size matters)
  breaking,  // breaks code that still runs against the old schema (renames, drops)
  data,      // deletes or overwrites rows
  fails,     // the statement fails as written
  style,     // a type or key choice that is costly to change later
};

struct Rule {
  std::string_view id;  // "index-not-concurrent"
  Severity severity;    // before grading
  Kind kind;
  std::string_view what;  // one line: what the rule finds
  std::string_view fix;   // one line: the safe alternative
};
// Every rule, in the README's order.
const std::vector<Rule>& rules();
const Rule* find_rule(std::string_view id);

struct TableSize {
  long long bytes = 0;  // pg_total_relation_size
  double rows = 0;      // pg_class.reltuples (an estimate; -1 when never analysed)
};

struct Finding {
  std::string rule;
  Severity severity = Severity::warning;
  std::string file;  // display path
  int line = 0;      // of the statement's first token in that file
  std::string message;
  std::string hint;
  std::string table;                 // "schema.table" the statement changes, when there is one
  std::optional<TableSize> size;     // set by grade() when the database knows the table
  std::optional<Severity> ungraded;  // the rule's own severity when grade() changed it
};

// What earlier statements of the same run established: objects created (no lock or rewrite
// warning applies to them) and validated NOT NULL checks. One Context spans every file linted in
// one run, in order. (lock_timeout is tracked per file: a tool may run each in a new session.)
struct Context {
  std::set<std::string> created_tables;   // "schema.table"
  std::set<std::string> created_indexes;  // "schema.index"
  // CHECK (col IS NOT NULL) constraints: NOT VALID ones by "schema.table.constraint" -> the
  // column "schema.table.col"; validated columns (SET NOT NULL then skips its scan).
  std::map<std::string, std::string> pending_not_null;
  std::set<std::string> validated_not_null;
  // The runner sets lock_timeout for every migration (previewdb migrate --lock-wait-timeout):
  // missing-lock-timeout does not apply.
  bool runner_sets_lock_timeout = false;
};

// One migration file as read by migrate's readers.
struct Source {
  std::string file;                            // display path, for findings
  std::string text;                            // the whole file (ignore comments are read from it)
  std::vector<migrate::Statement> statements;  // as split, lines in the file
  // The tool runs the whole file in one transaction (its own BEGIN, or a wrapping runner).
  bool runs_in_transaction = false;
  std::optional<migrate::SyntaxError> syntax_error;  // the parser rejected the file
};

// Lints one file's statements against the context (updated as statements create objects).
// A file the parser rejects yields a syntax-error finding; statements that do not parse are
// skipped.
std::vector<Finding> lint(const Source& source, Context& context);

// The rule ids named by "-- previewdb:ignore id[, id...]" comments in text ("all" ignores every
// rule).
std::set<std::string> ignored_rules(std::string_view text);

// A file the branch changes (git's name-status: 'A', 'M', 'D', 'R', 'T'), relative to the
// repository root.
struct ChangedPath {
  std::string path;
  char status = 'M';
};
// The schema-change-without-migration finding when schema_source (a file or folder, relative to
// the repository root) changed and nothing was added under migrations_dir; nullopt otherwise.
std::optional<Finding> missing_migration(const std::vector<ChangedPath>& changes,
                                         const std::string& schema_source,
                                         const std::string& migrations_dir);

// The tables whose size would grade a finding (lock findings on named tables).
std::set<std::string> tables_to_measure(const std::vector<Finding>& findings);

// Grading by real size (thresholds in README.md, "previewdb lint"): a lock finding on a table
// under k_small_rows rows and k_small_bytes becomes info; one over k_large_rows rows or
// k_large_bytes becomes error. Findings carry the size either way.
inline constexpr double k_small_rows = 10'000;
inline constexpr long long k_small_bytes = 10LL * 1024 * 1024;
inline constexpr double k_large_rows = 1'000'000;
inline constexpr long long k_large_bytes = 1024LL * 1024 * 1024;
void grade(std::vector<Finding>& findings, const std::map<std::string, TableSize>& sizes);

struct Summary {
  size_t errors = 0, warnings = 0, infos = 0;
};
Summary summarize(const std::vector<Finding>& findings);
// True when a finding is at least `level` (--fail-on); nullopt level means never.
bool fails(const std::vector<Finding>& findings, std::optional<Severity> level);

// Output shapes. Text: "file:line: severity [rule] message" + "  hint: ..." per finding, then a
// summary line. JSON: {"files": N, "findings": [...], "summary": {...}} with stable keys.
std::string format_text(const std::vector<Finding>& findings, size_t files);
nlohmann::json to_json(const std::vector<Finding>& findings, size_t files);
// GitHub annotations, one "::error|::warning|::notice file=...,line=...,title=...::..." per
// finding, escaped by util::workflow.
std::vector<std::string> annotations(const std::vector<Finding>& findings);

}  // namespace previewdb::lint

namespace previewdb::db {
class Connection;
}

namespace previewdb::lint {

// Size and row estimate of each "schema.table" that exists in the connected database
// (pg_class.reltuples, pg_total_relation_size); missing tables are left out.
std::map<std::string, TableSize> table_sizes(db::Connection& connection,
                                             const std::set<std::string>& tables);

}  // namespace previewdb::lint
