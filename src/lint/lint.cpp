#include "lint/lint.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "migrate/parse.hpp"
#include "util/strings.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::lint {

using nlohmann::json;

namespace {

const std::vector<Rule> k_rules = {
    {"alter-column-type", Severity::error, Kind::lock,
     "ALTER COLUMN ... TYPE rewrites the table and its indexes under an ACCESS EXCLUSIVE lock",
     "add a new column, backfill it in batches, switch the code over, then drop the old column"},
    {"add-column-volatile-default", Severity::error, Kind::lock,
     "ADD COLUMN with a volatile default (gen_random_uuid(), random(), clock_timestamp(), "
     "serial, identity, stored generated) rewrites the table under an ACCESS EXCLUSIVE lock",
     "add the column without a default, SET DEFAULT afterwards, backfill existing rows in batches"},
    {"set-not-null", Severity::warning, Kind::lock,
     "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
     "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT "
     "NULL (PostgreSQL 12+ skips the scan)"},
    {"index-not-concurrent", Severity::warning, Kind::lock,
     "CREATE INDEX without CONCURRENTLY blocks writes to the table while the index builds",
     "CREATE INDEX CONCURRENTLY, in a migration that runs outside a transaction"},
    {"drop-index-not-concurrent", Severity::warning, Kind::lock,
     "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's table",
     "DROP INDEX CONCURRENTLY, in a migration that runs outside a transaction"},
    {"constraint-not-valid", Severity::warning, Kind::lock,
     "ADD CONSTRAINT (FOREIGN KEY or CHECK) without NOT VALID checks every row while blocking "
     "writes",
     "ADD CONSTRAINT ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later statement"},
    {"constraint-builds-index", Severity::warning, Kind::lock,
     "ADD PRIMARY KEY / UNIQUE builds its index under an ACCESS EXCLUSIVE lock",
     "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX"},
    {"rename-table", Severity::warning, Kind::breaking,
     "renaming a table breaks code that still uses the old name",
     "create the new table or a view with the old name; rename after every client moved"},
    {"rename-column", Severity::warning, Kind::breaking,
     "renaming a column breaks code that still uses the old name",
     "add the new column, write both, backfill, move readers, then drop the old one"},
    {"drop-table", Severity::warning, Kind::breaking,
     "dropping a table breaks code that still reads it and loses its data",
     "stop using the table in a deploy first; drop it in a later migration"},
    {"drop-column", Severity::warning, Kind::breaking,
     "dropping a column breaks code that still reads it and loses its data",
     "stop using the column in a deploy first (Prisma: @ignore); drop it in a later migration"},
    {"drop-cascade", Severity::warning, Kind::breaking,
     "DROP ... CASCADE silently drops every dependent object (views, foreign keys, defaults)",
     "drop the dependent objects by name, then drop without CASCADE"},
    {"truncate", Severity::error, Kind::data, "TRUNCATE deletes every row of an existing table",
     "delete what must go with a WHERE clause, or move the data away first"},
    {"delete-without-where", Severity::error, Kind::data,
     "DELETE without WHERE deletes every row of an existing table",
     "add a WHERE clause (and batch large deletes)"},
    {"update-without-where", Severity::error, Kind::data,
     "UPDATE without WHERE rewrites every row of an existing table",
     "add a WHERE clause and update in batches"},
    {"missing-lock-timeout", Severity::warning, Kind::lock,
     "a statement takes an ACCESS EXCLUSIVE lock with no lock_timeout set before it: waiting "
     "behind a long query, it blocks every query queued after it",
     "SET lock_timeout = '5s'; before it (and retry the migration on timeout)"},
    {"concurrently-in-transaction", Severity::error, Kind::fails,
     "CONCURRENTLY (and VACUUM, ALTER SYSTEM...) cannot run inside a transaction block: the "
     "statement fails",
     "put it in a migration of its own that runs outside a transaction (dbmate: "
     "transaction:false; previewdb: -- previewdb:no-transaction)"},
    {"schema-change-without-migration", Severity::error, Kind::fails,
     "the schema source changed in this branch but no migration was added: the database will not "
     "get the change",
     "generate the migration (prisma migrate dev, drizzle-kit generate) and commit it"},
    {"syntax-error", Severity::error, Kind::fails,
     "PostgreSQL's parser rejects the file: it will fail, and the rest of it was not linted",
     "fix the statement at that line (run it in psql to see the server's message)"},
    {"int-primary-key", Severity::warning, Kind::style,
     "an integer (int4/serial) primary key runs out at 2,147,483,647 rows",
     "use bigint (bigserial or bigint GENERATED ALWAYS AS IDENTITY)"},
    {"timestamp-without-time-zone", Severity::warning, Kind::style,
     "timestamp without time zone stores local times that shift with the session's TimeZone",
     "use timestamptz (timestamp with time zone)"},
    {"varchar-length", Severity::info, Kind::style,
     "varchar(n) adds a limit that takes a table rewrite or a migration to raise",
     "use text (with a CHECK on length() when a limit is a real rule)"},
};

const Rule& rule(std::string_view id) {
  const Rule* r = find_rule(id);
  if (!r) throw std::logic_error("unknown lint rule " + std::string(id));
  return *r;
}

// The member key of j, or null (never a copy, never an assertion on a missing key).
const json& at(const json& j, const char* key) {
  static const json null;
  if (!j.is_object()) return null;
  auto it = j.find(key);
  return it == j.end() ? null : *it;
}

// "schema.name" of a RangeVar; unqualified names are taken to be in public.
std::string range_name(const json& rv) {
  if (!rv.is_object()) return {};
  std::string schema = rv.value("schemaname", "public");
  return schema + "." + rv.value("relname", "");
}

// The String values of a names list ([{"String":{"sval":"x"}}, ...]).
std::vector<std::string> names(const json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const auto& n : list) {
    if (n.contains("String")) out.push_back(n["String"].value("sval", ""));
  }
  return out;
}

std::string qualified(const std::vector<std::string>& parts) {
  if (parts.empty()) return {};
  if (parts.size() == 1) return "public." + parts[0];
  return parts[parts.size() - 2] + "." + parts.back();
}

std::string type_of(const json& column_def) {
  auto n =
      names(column_def.contains("typeName") ? at(at(column_def, "typeName"), "names") : json());
  return n.empty() ? std::string() : n.back();
}

bool has_typmods(const json& column_def) {
  return column_def.contains("typeName") && column_def["typeName"].contains("typmods") &&
         !column_def["typeName"]["typmods"].empty();
}

const json& constraints_of(const json& column_def) {
  static const json empty = json::array();
  auto it = column_def.find("constraints");
  return it == column_def.end() ? empty : *it;
}

bool has_constraint(const json& column_def, std::string_view contype) {
  for (const auto& c : constraints_of(column_def)) {
    if (c.contains("Constraint") && c["Constraint"].value("contype", "") == contype) return true;
  }
  return false;
}

// Functions whose value differs per row: a default calling one makes ADD COLUMN rewrite the
// table (PostgreSQL 11+ stores a non-volatile default in the catalog instead).
bool calls_volatile(const json& node) {
  static const std::set<std::string> k_volatile = {"random",           "gen_random_uuid",
                                                   "uuid_generate_v1", "uuid_generate_v1mc",
                                                   "uuid_generate_v4", "clock_timestamp",
                                                   "timeofday",        "nextval",
                                                   "txid_current",     "uuidv7",
                                                   "uuidv4",           "gen_random_bytes",
                                                   "setseed",          "pg_current_xact_id"};
  if (node.is_object()) {
    auto fc = node.find("FuncCall");
    if (fc != node.end()) {
      auto n = names(at(*fc, "funcname"));
      if (!n.empty() && k_volatile.count(util::to_lower(n.back()))) return true;
    }
    for (const auto& [k, v] : node.items()) {
      if (calls_volatile(v)) return true;
    }
  } else if (node.is_array()) {
    for (const auto& v : node) {
      if (calls_volatile(v)) return true;
    }
  }
  return false;
}

// Why adding this column rewrites the table; empty when it does not.
std::string rewrite_reason(const json& column_def) {
  std::string type = type_of(column_def);
  if (type == "serial" || type == "bigserial" || type == "smallserial" || type == "serial4" ||
      type == "serial8" || type == "serial2") {
    return "a " + type + " column fills every row from a sequence";
  }
  for (const auto& c : constraints_of(column_def)) {
    if (!c.contains("Constraint")) continue;
    const auto& con = c["Constraint"];
    std::string contype = con.value("contype", "");
    if (contype == "CONSTR_IDENTITY") return "an identity column fills every row";
    if (contype == "CONSTR_GENERATED") return "a stored generated column is computed for every row";
    if (contype == "CONSTR_DEFAULT" && con.contains("raw_expr") && calls_volatile(con["raw_expr"]))
      return "its default is volatile";
  }
  return {};
}

bool is_int_type(const std::string& type) {
  return type == "int4" || type == "int2" || type == "serial" || type == "serial4" ||
         type == "smallserial" || type == "serial2" || type == "integer" || type == "int";
}

// Statements taking ACCESS EXCLUSIVE on an existing table (for missing-lock-timeout): most ALTER
// TABLE forms; these take weaker locks.
bool alter_cmd_is_access_exclusive(const std::string& subtype, const json& cmd) {
  static const std::set<std::string> k_weaker = {
      "AT_ValidateConstraint", "AT_SetStatistics",   "AT_ClusterOn",      "AT_DropCluster",
      "AT_SetRelOptions",      "AT_ResetRelOptions", "AT_EnableTrig",     "AT_DisableTrig",
      "AT_EnableTrigAll",      "AT_DisableTrigAll",  "AT_EnableTrigUser", "AT_DisableTrigUser",
      "AT_AttachPartition"};
  if (k_weaker.count(subtype)) return false;
  if (subtype == "AT_AddConstraint" && cmd.contains("def") && cmd["def"].contains("Constraint")) {
    std::string contype = cmd["def"]["Constraint"].value("contype", "");
    if (contype == "CONSTR_FOREIGN") return false;  // SHARE ROW EXCLUSIVE
  }
  return true;
}

std::string lower_word(std::string_view s, size_t& pos) {
  while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
  size_t start = pos;
  while (pos < s.size() && (std::isalpha(static_cast<unsigned char>(s[pos])) || s[pos] == '_')) {
    ++pos;
  }
  return util::to_lower(s.substr(start, pos - start));
}

// Only statements some rule reads are parsed to JSON (the costly part): INSERTs, functions,
// views, grants and comments, most of a real history, are skipped by their first words.
bool worth_parsing(std::string_view sql) {
  static const std::set<std::string> k_first = {"create", "alter",  "drop",  "truncate",
                                                "delete", "update", "set",   "reset",
                                                "with",   "begin",  "commit"};
  static const std::set<std::string> k_not_created = {
      "function",    "procedure", "or",     "trigger",  "view",   "policy",
      "extension",   "type",      "schema", "role",     "domain", "aggregate",
      "publication", "sequence",  "rule",   "operator", "cast",   "collation"};
  size_t pos = 0;
  std::string first = lower_word(sql, pos);
  if (!k_first.count(first)) return false;
  if (first != "create") return true;
  return !k_not_created.count(lower_word(sql, pos));
}

std::string quote(const std::string& name) {
  return util::quoted(name);
}

class Linter {
 public:
  Linter(const Source& source, Context& context)
      : m_source(source),
        m_context(context),
        m_lines(util::split(source.text, '\n')),
        m_lock_timeout_set(context.runner_sets_lock_timeout) {}

  std::vector<Finding> run() {
    bool in_tx = m_source.runs_in_transaction;
    if (m_source.syntax_error) {
      Finding f;
      f.rule = "syntax-error";
      f.severity = Severity::error;
      f.file = m_source.file;
      f.line = m_source.syntax_error->line;
      f.message = m_source.syntax_error->message;
      f.hint = std::string(rule("syntax-error").fix);
      m_findings.push_back(std::move(f));
    }
    for (const auto& st : m_source.statements) {
      using Control = migrate::Statement::Control;
      m_statement = &st;
      m_ignored = ignored_rules(comment_text(st));
      if (st.control == Control::begin) {
        in_tx = true;
        continue;
      }
      if (st.control == Control::commit || st.control == Control::rollback) {
        in_tx = m_source.runs_in_transaction;
        continue;
      }
      if (st.no_transaction && in_tx) {
        add("concurrently-in-transaction", "",
            "this statement cannot run inside a transaction block and will fail");
      }
      if (!worth_parsing(st.sql)) continue;
      auto tree = migrate::parse_statement(st.sql);
      if (!tree) continue;
      const std::string type = tree->begin().key();
      const json& node = tree->begin().value();
      try {
        visit(type, node);
      } catch (const json::exception&) {
        // A parse tree shaped unlike the ones the rules know (a newer libpg_query): no finding
        // rather than a crash.
      }
    }
    return std::move(m_findings);
  }

 private:
  // The statement's own lines and the comment lines right above it.
  std::string comment_text(const migrate::Statement& st) const {
    int first = st.line;
    int last = st.line + static_cast<int>(std::count(st.sql.begin(), st.sql.end(), '\n'));
    while (first - 1 >= 1 && first - 1 <= static_cast<int>(m_lines.size())) {
      std::string above = util::trim(m_lines[static_cast<size_t>(first - 2)]);
      if (above.rfind("--", 0) != 0) break;
      --first;
    }
    std::string out;
    for (int l = first; l <= last && l <= static_cast<int>(m_lines.size()); ++l) {
      out += m_lines[static_cast<size_t>(l - 1)];
      out += '\n';
    }
    return out;
  }

  bool created(const std::string& table) const { return m_context.created_tables.count(table); }

  void add(std::string_view id, const std::string& table, const std::string& message) {
    if (m_ignored.count(std::string(id)) || m_ignored.count("all")) return;
    const Rule& r = rule(id);
    Finding f;
    f.rule = std::string(id);
    f.severity = r.severity;
    f.file = m_source.file;
    f.line = m_statement->line;
    f.message = message;
    f.hint = std::string(r.fix);
    f.table = table;
    m_findings.push_back(std::move(f));
  }

  void needs_lock_timeout(const std::string& table, const std::string& what) {
    if (m_lock_timeout_set || m_lock_timeout_reported || created(table)) return;
    m_lock_timeout_reported = true;  // once per file: the fix is one SET at the top
    add("missing-lock-timeout", table,
        what + " takes an ACCESS EXCLUSIVE lock on " + table + " without a lock_timeout");
  }

  void check_column_types(const json& column_def, const std::string& table, bool primary) {
    std::string col = column_def.value("colname", "");
    std::string type = type_of(column_def);
    std::string where = col.empty() ? table : table + "." + col;
    if (type == "timestamp") {
      add("timestamp-without-time-zone", "", "column " + where + " is timestamp without time zone");
    }
    if (type == "varchar" && has_typmods(column_def)) {
      add("varchar-length", "", "column " + where + " is varchar(n)");
    }
    if ((primary || has_constraint(column_def, "CONSTR_PRIMARY")) && is_int_type(type)) {
      add("int-primary-key", "", "primary key " + where + " is " + type);
    }
  }

  void visit(const std::string& type, const json& node) {
    if (type == "VariableSetStmt") {
      if (node.value("name", "") == "lock_timeout") {
        // SET lock_timeout = 0 (or DEFAULT, RESET) means no timeout.
        std::string args = node.contains("args") ? node["args"].dump() : "";
        bool zero = !node.contains("args") || args.find("\"ival\":{}") != std::string::npos ||
                    args.find("\"sval\":\"0\"") != std::string::npos;
        m_lock_timeout_set = node.value("kind", "") == "VAR_SET_VALUE" && !zero;
      }
    } else if (type == "CreateStmt") {
      create_table(node);
    } else if (type == "CreateTableAsStmt") {
      if (node.contains("into"))
        m_context.created_tables.insert(range_name(at(at(node, "into"), "rel")));
    } else if (type == "AlterTableStmt") {
      alter_table(node);
    } else if (type == "IndexStmt") {
      create_index(node);
    } else if (type == "DropStmt") {
      drop(node);
    } else if (type == "RenameStmt") {
      rename(node);
    } else if (type == "TruncateStmt") {
      for (const auto& rv : at(node, "relations")) {
        std::string table = range_name(at(rv, "RangeVar"));
        if (created(table)) continue;
        add("truncate", table, "TRUNCATE " + table + " deletes every row");
        needs_lock_timeout(table, "TRUNCATE");
      }
      if (node.value("behavior", "") == "DROP_CASCADE") {
        add("drop-cascade", "", "TRUNCATE ... CASCADE also empties every table referencing it");
      }
    } else if (type == "DeleteStmt" || type == "UpdateStmt") {
      std::string table = range_name(at(node, "relation"));
      if (!node.contains("whereClause") && !created(table)) {
        bool del = type == "DeleteStmt";
        add(del ? "delete-without-where" : "update-without-where", table,
            std::string(del ? "DELETE FROM " : "UPDATE ") + table + " without WHERE " +
                (del ? "deletes" : "rewrites") + " every row");
      }
    }
  }

  void create_table(const json& node) {
    std::string table = range_name(at(node, "relation"));
    m_context.created_tables.insert(table);
    std::set<std::string> pk_columns;
    for (const auto& el : at(node, "tableElts")) {
      if (el.contains("Constraint") && el["Constraint"].value("contype", "") == "CONSTR_PRIMARY") {
        for (const auto& k : names(at(el["Constraint"], "keys"))) pk_columns.insert(k);
      }
    }
    for (const auto& el : at(node, "tableElts")) {
      if (!el.contains("ColumnDef")) continue;
      const auto& cd = el["ColumnDef"];
      // A one-column primary key only: (tenant_id int, id bigint) keys are not int keys.
      bool pk = pk_columns.size() == 1 && pk_columns.count(cd.value("colname", ""));
      check_column_types(cd, table, pk);
    }
  }

  void alter_table(const json& node) {
    if (node.value("objtype", "") != "OBJECT_TABLE") return;
    std::string table = range_name(at(node, "relation"));
    bool fresh = created(table);
    for (const auto& c : at(node, "cmds")) {
      if (!c.contains("AlterTableCmd")) continue;
      const auto& cmd = c["AlterTableCmd"];
      std::string subtype = cmd.value("subtype", "");
      std::string col = cmd.value("name", "");
      if (subtype == "AT_AddColumn" && cmd.contains("def") && cmd["def"].contains("ColumnDef")) {
        const auto& cd = cmd["def"]["ColumnDef"];
        check_column_types(cd, table, false);
        std::string why = rewrite_reason(cd);
        if (!fresh && !why.empty()) {
          add("add-column-volatile-default", table,
              "ADD COLUMN " + quote(cd.value("colname", "")) + " rewrites " + table + ": " + why);
        }
      } else if (subtype == "AT_AlterColumnType") {
        const auto& cd = at(at(cmd, "def"), "ColumnDef");
        check_column_types(json{{"colname", col}, {"typeName", at(cd, "typeName")}}, table, false);
        if (!fresh) {
          std::string to = type_of(cd);
          add("alter-column-type", table,
              "ALTER COLUMN " + quote(col) + " TYPE " + to + " rewrites " + table +
                  " and its indexes");
          // varchar(n) -> text or a longer varchar is binary-coercible: no rewrite, a lock only.
          if (to == "text" || to == "varchar") {
            m_findings.back().severity = Severity::warning;
            m_findings.back().message += " (unless the change is binary-coercible, e.g. to text)";
          }
        }
      } else if (subtype == "AT_SetNotNull") {
        if (!fresh && !m_context.validated_not_null.count(table + "." + col)) {
          add("set-not-null", table,
              "SET NOT NULL on " + table + "." + col +
                  " scans the table without a validated CHECK");
        }
      } else if (subtype == "AT_AddConstraint" && cmd.contains("def") &&
                 cmd["def"].contains("Constraint")) {
        add_constraint(table, fresh, cmd["def"]["Constraint"]);
      } else if (subtype == "AT_ValidateConstraint") {
        auto it = m_context.pending_not_null.find(table + "." + col);
        if (it != m_context.pending_not_null.end()) {
          m_context.validated_not_null.insert(it->second);
        }
      } else if (subtype == "AT_DropColumn") {
        if (!fresh) add("drop-column", table, "DROP COLUMN " + quote(col) + " from " + table);
      }
      if (cmd.value("behavior", "") == "DROP_CASCADE") {
        add("drop-cascade", table, "ALTER TABLE " + table + " ... CASCADE");
      }
      if (!fresh && alter_cmd_is_access_exclusive(subtype, cmd)) {
        needs_lock_timeout(table, "ALTER TABLE");
      }
    }
  }

  void add_constraint(const std::string& table, bool fresh, const json& con) {
    std::string contype = con.value("contype", "");
    std::string name = con.value("conname", "");
    bool not_valid = con.value("skip_validation", false);
    if (contype == "CONSTR_CHECK" && con.contains("raw_expr")) {
      const auto& e = con["raw_expr"];
      if (e.contains("NullTest") && e["NullTest"].value("nulltesttype", "") == "IS_NOT_NULL") {
        auto cols = names(at(at(at(at(e, "NullTest"), "arg"), "ColumnRef"), "fields"));
        if (cols.size() == 1) {
          std::string key = table + "." + cols[0];
          if (not_valid)
            m_context.pending_not_null[table + "." + name] = key;
          else
            m_context.validated_not_null.insert(key);
        }
      }
    }
    if (fresh) return;
    std::string label = name.empty() ? std::string("a constraint") : quote(name);
    if ((contype == "CONSTR_FOREIGN" || contype == "CONSTR_CHECK") && !not_valid) {
      add("constraint-not-valid", table,
          "ADD CONSTRAINT " + label + " on " + table +
              " validates every row while blocking writes");
    }
    if ((contype == "CONSTR_PRIMARY" || contype == "CONSTR_UNIQUE") && !con.contains("indexname")) {
      add("constraint-builds-index", table,
          "ADD CONSTRAINT " + label + " on " + table +
              " builds its index under an ACCESS "
              "EXCLUSIVE lock");
    }
  }

  void create_index(const json& node) {
    std::string table = range_name(at(node, "relation"));
    std::string schema = at(node, "relation").value("schemaname", "public");
    if (node.contains("idxname"))
      m_context.created_indexes.insert(schema + "." + node.value("idxname", ""));
    if (node.value("concurrent", false) || created(table)) return;
    std::string name = node.value("idxname", "");
    add("index-not-concurrent", table,
        "CREATE INDEX " + (name.empty() ? std::string() : quote(name) + " ") + "on " + table +
            " without CONCURRENTLY blocks writes while it builds");
  }

  void drop(const json& node) {
    std::string kind = node.value("removeType", "");
    bool cascade = node.value("behavior", "") == "DROP_CASCADE";
    for (const auto& obj : at(node, "objects")) {
      if (!obj.contains("List")) continue;
      std::string name = qualified(names(at(at(obj, "List"), "items")));
      if (kind == "OBJECT_TABLE") {
        bool fresh = m_context.created_tables.erase(name) > 0;
        if (!fresh) {
          add("drop-table", name, "DROP TABLE " + name);
          needs_lock_timeout(name, "DROP TABLE");
        }
      } else if (kind == "OBJECT_INDEX") {
        bool fresh = m_context.created_indexes.erase(name) > 0;
        if (!fresh && !node.value("concurrent", false)) {
          add("drop-index-not-concurrent", "",
              "DROP INDEX " + name + " without CONCURRENTLY locks its table");
        }
      }
    }
    if (cascade) {
      std::string what = kind.rfind("OBJECT_", 0) == 0 ? util::to_lower(kind.substr(7)) : kind;
      add("drop-cascade", "", "DROP " + what + " ... CASCADE");
    }
  }

  void rename(const json& node) {
    std::string kind = node.value("renameType", "");
    if (!node.contains("relation")) return;
    std::string table = range_name(at(node, "relation"));
    std::string new_name = node.value("newname", "");
    bool fresh = created(table);
    if (kind == "OBJECT_TABLE") {
      if (fresh) {
        m_context.created_tables.erase(table);
        m_context.created_tables.insert(at(node, "relation").value("schemaname", "public") + "." +
                                        new_name);
        return;
      }
      add("rename-table", table, "RENAME " + table + " TO " + quote(new_name));
      needs_lock_timeout(table, "ALTER TABLE ... RENAME");
    } else if (kind == "OBJECT_COLUMN" && !fresh) {
      add("rename-column", table,
          "RENAME COLUMN " + table + "." + node.value("subname", "") + " TO " + quote(new_name));
      needs_lock_timeout(table, "ALTER TABLE ... RENAME COLUMN");
    }
  }

  const Source& m_source;
  Context& m_context;
  std::vector<std::string> m_lines;
  const migrate::Statement* m_statement = nullptr;
  std::set<std::string> m_ignored;
  std::vector<Finding> m_findings;
  bool m_lock_timeout_set = false;
  bool m_lock_timeout_reported = false;
};

}  // namespace

std::string_view severity_name(Severity severity) {
  switch (severity) {
    case Severity::info:
      return "info";
    case Severity::warning:
      return "warning";
    case Severity::error:
      return "error";
  }
  return "error";
}

std::optional<Severity> parse_severity(std::string_view name) {
  if (name == "error") return Severity::error;
  if (name == "warning") return Severity::warning;
  if (name == "info") return Severity::info;
  return std::nullopt;
}

const std::vector<Rule>& rules() {
  return k_rules;
}

const Rule* find_rule(std::string_view id) {
  for (const auto& r : k_rules) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

std::vector<Finding> lint(const Source& source, Context& context) {
  return Linter(source, context).run();
}

std::set<std::string> ignored_rules(std::string_view text) {
  static constexpr std::string_view k_marker = "previewdb:ignore";
  std::set<std::string> out;
  size_t pos = 0;
  while ((pos = text.find(k_marker, pos)) != std::string_view::npos) {
    // Only in a "--" comment: the marker inside a string literal is data ('' pairs toggle twice).
    size_t line_start = text.rfind('\n', pos);
    line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
    bool in_comment = false, in_string = false;
    for (size_t i = line_start; i + 1 < pos; ++i) {
      if (text[i] == '\'') in_string = !in_string;
      if (!in_string && text[i] == '-' && text[i + 1] == '-') {
        in_comment = true;
        break;
      }
    }
    pos += k_marker.size();
    size_t end = text.find('\n', pos);
    std::string rest(
        text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (!in_comment) continue;
    std::string word;
    for (char c : rest + " ") {
      if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
        if (!word.empty()) out.insert(util::to_lower(word));
        word.clear();
      } else {
        word += c;
      }
    }
  }
  return out;
}

std::optional<Finding> missing_migration(const std::vector<ChangedPath>& changes,
                                         const std::string& schema_source,
                                         const std::string& migrations_dir) {
  auto under = [](const std::string& path, const std::string& dir) {
    std::string d = dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    return path == d || path.rfind(d + "/", 0) == 0;
  };
  bool schema_changed = false, migration_added = false;
  for (const auto& c : changes) {
    if (under(c.path, schema_source) && c.status != 'D') schema_changed = true;
    if (under(c.path, migrations_dir) && (c.status == 'A' || c.status == 'R')) {
      migration_added = true;
    }
  }
  if (!schema_changed || migration_added) return std::nullopt;
  const Rule& r = rule("schema-change-without-migration");
  Finding f;
  f.rule = std::string(r.id);
  f.severity = r.severity;
  f.file = schema_source;
  f.message = schema_source + " changed but no migration was added under " + migrations_dir;
  f.hint = std::string(r.fix);
  return f;
}

std::set<std::string> tables_to_measure(const std::vector<Finding>& findings) {
  std::set<std::string> out;
  for (const auto& f : findings) {
    const Rule* r = find_rule(f.rule);
    if (r && r->kind == Kind::lock && !f.table.empty()) out.insert(f.table);
  }
  return out;
}

void grade(std::vector<Finding>& findings, const std::map<std::string, TableSize>& sizes) {
  for (auto& f : findings) {
    const Rule* r = find_rule(f.rule);
    if (!r || r->kind != Kind::lock || f.table.empty()) continue;
    auto it = sizes.find(f.table);
    if (it == sizes.end()) continue;
    f.size = it->second;
    const auto& s = it->second;
    bool rows_known = s.rows >= 0;
    Severity graded = f.severity;
    if ((rows_known ? s.rows < k_small_rows : true) && s.bytes < k_small_bytes) {
      graded = Severity::info;
    } else if ((rows_known && s.rows >= k_large_rows) || s.bytes >= k_large_bytes) {
      graded = Severity::error;
    }
    if (graded != f.severity) {
      f.ungraded = f.severity;
      f.severity = graded;
    }
  }
}

Summary summarize(const std::vector<Finding>& findings) {
  Summary s;
  for (const auto& f : findings) {
    if (f.severity == Severity::error)
      ++s.errors;
    else if (f.severity == Severity::warning)
      ++s.warnings;
    else
      ++s.infos;
  }
  return s;
}

bool fails(const std::vector<Finding>& findings, std::optional<Severity> level) {
  if (!level) return false;
  return std::any_of(findings.begin(), findings.end(),
                     [&](const Finding& f) { return f.severity >= *level; });
}

namespace {

std::string size_note(const Finding& f) {
  if (!f.size) return {};
  std::string rows = f.size->rows < 0 ? std::string("rows unknown (never analysed)")
                                      : "~" + std::to_string(std::llround(f.size->rows)) + " rows";
  std::string out =
      " [" + f.table + ": " + rows + ", " + util::human_bytes(static_cast<double>(f.size->bytes));
  if (f.ungraded) {
    out += std::string(", ") + std::string(severity_name(*f.ungraded)) + " graded " +
           std::string(severity_name(f.severity));
  }
  return out + "]";
}

}  // namespace

std::string format_text(const std::vector<Finding>& findings, size_t files) {
  std::string out;
  for (const auto& f : findings) {
    out += util::printable(f.file) + ":" + std::to_string(f.line) + ": " +
           std::string(severity_name(f.severity)) + " [" + f.rule + "] " +
           util::printable(f.message) + util::printable(size_note(f)) + "\n";
    out += "  hint: " + f.hint + "\n";
  }
  auto s = summarize(findings);
  std::string in = std::to_string(files) + (files == 1 ? " file" : " files");
  if (findings.empty()) return out + "no findings in " + in + "\n";
  out += std::to_string(findings.size()) + (findings.size() == 1 ? " finding" : " findings") +
         " in " + in + ": " + std::to_string(s.errors) + " error(s), " +
         std::to_string(s.warnings) + " warning(s), " + std::to_string(s.infos) + " info\n";
  return out;
}

json to_json(const std::vector<Finding>& findings, size_t files) {
  json list = json::array();
  for (const auto& f : findings) {
    json j = {
        {"rule", f.rule},
        {"severity", severity_name(f.severity)},
        {"file", f.file},
        {"line", f.line},
        {"message", f.message},
        {"hint", f.hint},
        {"table", f.table.empty() ? json() : json(f.table)},
        {"rows", f.size && f.size->rows >= 0 ? json(std::llround(f.size->rows)) : json()},
        {"bytes", f.size ? json(f.size->bytes) : json()},
        {"rule_severity", f.ungraded ? severity_name(*f.ungraded) : severity_name(f.severity)}};
    list.push_back(std::move(j));
  }
  auto s = summarize(findings);
  return {{"files", files},
          {"findings", std::move(list)},
          {"summary", {{"errors", s.errors}, {"warnings", s.warnings}, {"info", s.infos}}}};
}

std::vector<std::string> annotations(const std::vector<Finding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) {
    std::string_view kind = f.severity == Severity::error     ? "error"
                            : f.severity == Severity::warning ? "warning"
                                                              : "notice";
    out.push_back(
        util::workflow::annotation_command(kind, f.file, f.line, "previewdb lint: " + f.rule,
                                           f.message + size_note(f) + " (hint: " + f.hint + ")"));
  }
  return out;
}

}  // namespace previewdb::lint
