// A database's schema read from its catalogs (pg_catalog, names only, never oids), compared with
// another's, and the result rendered for people (text, Markdown), programs (JSON) and as a
// best-effort DDL patch. Plain structs throughout: the comparison and the renderers run without
// a server (unit-tested), read_catalog needs one connection and a handful of queries.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "db/connection.hpp"

namespace previewdb::schema {

// One compared object. `kind` is one of: schema, extension, table, view, materialized view,
// sequence, column, constraint, index, trigger, policy, function, procedure, enum, domain,
// composite type. `name` is its identity, quoted as SQL would need it: "public.users",
// "public.users.email" (a column), "public.users.users_pkey" (a constraint, trigger or policy,
// named within its table), "public.lower_email(text)" (a function's argument types).
struct Object {
  std::string kind;
  std::string name;
  // The table (or view) a column, constraint, index, trigger or policy belongs to (its name; a
  // serial's sequence: its table's), and that object's kind; empty for objects that stand alone.
  std::string parent, parent_kind;
  // What is compared: stable keys (type, default, not_null, definition, grants, comment, ...).
  std::map<std::string, std::string> attributes;
  // The statement that creates it (for the --sql patch only; never compared).
  std::string create_sql;
  // A column's position in its table (attnum), for the patch's CREATE TABLE; never compared.
  int position = 0;
};

// An object of a kind previewdb does not model, found in the catalog (extended statistics,
// publications, rules, casts, operators, foreign tables, ...): reported, never silently equal.
struct Unmodelled {
  std::string kind;  // pg_identify_object's type: "statistics object", "rule", ...
  std::string name;  // its identity
  bool operator<(const Unmodelled& o) const {
    return std::tie(kind, name) < std::tie(o.kind, o.name);
  }
  bool operator==(const Unmodelled& o) const = default;
};

struct Catalog {
  std::string source;  // what was read, for people ("database \"dev\"", "folder \"migrations\"")
  std::vector<Object> objects;
  std::vector<Unmodelled> unmodelled;
};

struct ReadOptions {
  // Leave out previewdb's schema (_previewdb) and the migration tools' history tables
  // (_prisma_migrations, drizzle.__drizzle_migrations, schema_migrations,
  // flyway_schema_history) with everything that belongs to them.
  bool ignore_tool_tables = true;
};

// The schemas previewdb's own tables live in (left out unless ignore_tool_tables is false).
inline constexpr const char* k_previewdb_schema = "_previewdb";

// Reads the catalog of the database `conn` is connected to: one query per kind of object.
Catalog read_catalog(db::Connection& conn, const ReadOptions& options = {});

// Whether an object is one of the tools' history tables (or belongs to one), or previewdb's.
bool is_tool_object(const Object& object);

enum class Change { added, removed, changed };  // added: only in TO; removed: only in FROM
std::string_view change_name(Change change);    // "added", "removed", "changed"

struct AttributeChange {
  std::string key;
  std::string from, to;  // "" when the attribute is absent on that side
};

struct Difference {
  std::string kind, name, parent, parent_kind;
  Change change = Change::changed;
  std::vector<AttributeChange> attributes;  // changed: each attribute that differs
  // The whole object on each side (added: `to` only; removed: `from` only).
  std::map<std::string, std::string> from_attributes, to_attributes;
  std::string from_sql, to_sql;  // create statements, for the patch
  int position = 0;              // Object::position on the TO side (else FROM's)
};

struct UnmodelledEntry {
  std::string kind, name;
  bool in_from = false, in_to = false;
};

struct Diff {
  std::string from, to;  // Catalog::source of each side
  std::vector<Difference> differences;
  std::vector<UnmodelledEntry> not_compared;
  // No difference and nothing left uncompared: only then are the schemas known to be equal.
  bool equal() const { return differences.empty() && not_compared.empty(); }
  size_t count(Change change) const;
};

// Compares two catalogs by kind and name. Differences come out in a stable order: by the
// top-level object they concern (its kind's order, then its name), the object itself first.
Diff compare(const Catalog& from, const Catalog& to);

// Reads both catalogs (at once, one on each connection) and compares them: the one call
// `ci --report diff` needs.
Diff compare_databases(db::Connection& from, db::Connection& to, const ReadOptions& options = {});

// Renderers. Text: grouped by object, "+" only in TO, "-" only in FROM, "~" changed.
std::string render_text(const Diff& diff);
// JSON with stable keys: from, to, equal, summary{added,removed,changed,not_compared},
// differences[{kind,name,parent,change,attributes[{name,from,to}],from,to}],
// not_compared[{kind,name,in_from,in_to}].
nlohmann::json to_json(const Diff& diff);
// A best-effort DDL patch from FROM to TO, marked as such at the top; what it cannot express is
// a "-- review:" comment.
std::string render_sql(const Diff& diff);
// Markdown for a CI step summary or a pull request comment (GitHub-flavoured).
std::string render_markdown(const Diff& diff);

}  // namespace previewdb::schema
