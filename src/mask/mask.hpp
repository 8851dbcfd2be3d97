// PII masking of a snapshot copy (docs/MASKING.md): rules read from a JSON file, one per column,
// applied as SQL that previewdb builds (no server extension), checked before any change so that
// unique and foreign-key constraints stay satisfiable, then the masked tables rewritten so that no
// original value survives in the copy's files or statistics.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/connection.hpp"

namespace previewdb::mask {

// keep: reviewed, not personal (satisfies --require-rules, changes nothing).
enum class Function {
  fixed,
  null,
  fake_email,
  fake_name,
  fake_phone,
  partial,
  hash,
  shuffle,
  keep
};

std::string to_string(Function f);
// The same input masks to the same output on every run (given the salt): joins still match.
bool deterministic(Function f);
// Distinct inputs stay distinct (up to SHA-256 collisions): allowed on UNIQUE columns.
bool keeps_unique(Function f);
// Needs PREVIEWDB_MASK_SALT.
bool needs_salt(Function f);

struct Rule {
  size_t index = 0;                     // position in the file (0-based), for messages
  std::optional<std::string> database;  // nullopt: any database
  std::string schema = "public";
  std::string table;
  std::string column;
  Function function = Function::keep;
  std::optional<std::string> value;  // fixed (null: JSON null)
  long long prefix = 0;              // partial: characters kept at the start
  long long suffix = 0;              // partial: characters kept at the end
  std::string padding = "*";         // partial: the mask character(s)

  // schema.table.column
  std::string label() const;
  // The same function with the same parameters (what both ends of a foreign key need).
  bool same_masking(const Rule& other) const;
};

struct TableRef {
  std::string schema = "public";
  std::string table;
  std::string label() const { return schema + "." + table; }
};

// What to do to a snapshot copy. Built by the command layer; the salt never reaches a log.
struct Spec {
  std::string origin;  // the rules file's name (messages), "" without one
  std::vector<Rule> rules;
  std::vector<TableRef> exclude_data;
  bool require_rules = false;
  std::string salt;
  // sha256 of the canonical rules and exclusions (recorded in the snapshot's metadata).
  std::string rules_sha256;
};

// Parses a rules file: a JSON array of rules, or {"rules": [...]}. Errors (usage) name `origin`,
// the entry's index and the field.
std::vector<Rule> parse_rules(std::string_view text, const std::string& origin);
// "schema.table" or "table" (public); usage error naming `origin` otherwise.
TableRef parse_table(std::string_view text, const std::string& origin);
// Canonical JSON of the rules and exclusions, hashed (SHA-256, hex).
std::string spec_hash(const std::vector<Rule>& rules, const std::vector<TableRef>& exclude);
// Throws usage_error when a rule needs the salt and it is empty (naming the first such rule).
void check_salt(const Spec& spec);

// Whether a column's name looks like personal data (email, phone, name, address, ip, ...).
bool looks_personal(std::string_view column);

// A column as the catalog describes it.
struct ColumnInfo {
  std::string type;           // format_type(): for messages
  char category = 'X';        // pg_type.typcategory: 'S' string, 'U' user (uuid), ...
  std::string type_name;      // pg_type.typname of the base type: text, varchar, uuid, ...
  long long max_length = -1;  // varchar(n)/char(n): n
  bool not_null = false;
  bool generated = false;
  bool unique = false;  // part of a unique index (or the primary key)
};

struct Statement {
  std::string sql;
  db::Params params;
};

// "ident" with embedded quotes doubled (the output of quote_ident for any name).
std::string quote_ident(std::string_view ident);
// HMAC-SHA-256's inner and outer keys (key XOR ipad, key XOR opad; RFC 2104), hex: the SQL
// computes sha256(okey || sha256(ikey || value)) with core functions only.
std::pair<std::string, std::string> hmac_pads(std::string_view salt);
// Refuses (usage error naming the rule) a function the column's type or constraints cannot take.
void check_rule(const Rule& rule, const ColumnInfo& column, const std::string& origin);
// The UPDATE of one rule (nullopt for keep); values and keys as parameters, identifiers quoted.
std::optional<Statement> build_update(const Rule& rule, const ColumnInfo& column,
                                      const std::string& salt);

struct RuleOutcome {
  Rule rule;
  long long rows = 0;
};
struct ExcludeOutcome {
  TableRef table;
  long long rows = 0;
};
struct Report {
  std::vector<RuleOutcome> rules;
  std::vector<ExcludeOutcome> excluded;
};

// Masks the database `copy` is connected to (a snapshot copy named `database`'s rules apply to):
// checks every rule against the catalog first (Error(usage) for an unknown table or column,
// Error(refused) for a rule that would break a constraint and for --require-rules), then in one
// transaction with session_replication_role = replica empties the excluded tables, runs the
// UPDATEs and checks every affected foreign key, commits, and rewrites and analyzes the touched
// tables (VACUUM FULL, ANALYZE) and pg_statistic.
Report apply(db::Connection& copy, const Spec& spec, const std::string& database);

}  // namespace previewdb::mask
