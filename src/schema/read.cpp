// Reading a schema from pg_catalog: one query per kind of object (never one per object), names
// only (quote_ident'ed as SQL needs them), so that two databases compare by name whatever their
// oids. Privileges are normalised (aclexplode; the owner is "(owner)", NULL is the default ACL).
#include <chrono>
#include <string>
#include <vector>

#include "schema/schema.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace previewdb::schema {

namespace {

// The user's schemas: not the system's, not temporary ones, not an extension's, not the ignored
// ones ($1, a text[]).
const char* k_user_namespaces = R"(ns AS (
  SELECT n.oid, n.nspname, n.nspowner, n.nspacl FROM pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
    AND n.nspname <> ALL($1::text[])
    AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_namespace'::regclass
                    AND e.objid = n.oid AND e.deptype = 'e')))";

// Not a member of an extension (its objects are the extension's, compared by its version).
std::string not_extension_member(const std::string& catalog, const std::string& oid) {
  return "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '" + catalog +
         "'::regclass AND e.objid = " + oid + " AND e.deptype = 'e')";
}

// Privileges as "grantee: PRIV PRIV*; grantee2: PRIV" (sorted; * = WITH GRANT OPTION), the
// owner shown as "(owner)" so that two databases owned by different roles compare equal.
// `kind` is acldefault's object type (a SQL expression); empty means "no default" (columns).
std::string acl(const std::string& acl_column, const std::string& owner_column,
                const std::string& kind) {
  std::string source =
      kind.empty() ? acl_column
                   : "coalesce(" + acl_column + ", acldefault(" + kind + ", " + owner_column + "))";
  // aclexplode refuses an empty (zero-dimensional) array: everything revoked.
  return "CASE WHEN coalesce(cardinality(" + source +
         "), 0) = 0 THEN '' ELSE "
         "(SELECT coalesce(string_agg(g || ': ' || p, '; ' ORDER BY g), '') FROM ("
         "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' WHEN a.grantee = " +
         owner_column +
         " THEN '(owner)' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS g,"
         " string_agg(a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END, ' '"
         " ORDER BY a.privilege_type) AS p FROM aclexplode(" +
         source + ") a GROUP BY 1) x) END";
}

std::string qualified(const std::string& ns, const std::string& name) {
  return "quote_ident(" + ns + ") || '.' || quote_ident(" + name + ")";
}

std::string str(const db::Result& r, int row, int col) {
  return r.is_null(row, col) ? "" : r.get(row, col);
}

std::string yes_no(const db::Result& r, int row, int col) {
  return r.get_bool(row, col) ? "yes" : "no";
}

// A SQL string literal (standard_conforming_strings: only quotes are doubled).
std::string literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::string comment_sql(const std::string& what, const std::string& comment) {
  if (comment.empty()) return "";
  return "\nCOMMENT ON " + what + " IS " + literal(comment) + ";";
}

const char* fk_action(const std::string& code) {
  if (code == "c") return "CASCADE";
  if (code == "n") return "SET NULL";
  if (code == "d") return "SET DEFAULT";
  if (code == "r") return "RESTRICT";
  return "NO ACTION";
}

void read_schemas(db::Connection& conn, const db::Params& p, Catalog& out) {
  auto r = conn.exec(std::string("WITH ") + k_user_namespaces + " SELECT quote_ident(n.nspname), " +
                         acl("n.nspacl", "n.nspowner", "'n'") +
                         ", coalesce((SELECT description FROM pg_description WHERE objoid = n.oid "
                         "AND classoid = 'pg_namespace'::regclass AND objsubid = 0), '') FROM ns n",
                     p);
  for (int i = 0; i < r.rows(); ++i) {
    Object o{.kind = "schema", .name = r.get(i, 0)};
    o.attributes = {{"grants", str(r, i, 1)}, {"comment", str(r, i, 2)}};
    o.create_sql = "CREATE SCHEMA " + o.name + ";" + comment_sql("SCHEMA " + o.name, str(r, i, 2));
    out.objects.push_back(std::move(o));
  }
}

void read_extensions(db::Connection& conn, Catalog& out) {
  auto r = conn.exec(
      "SELECT quote_ident(e.extname), e.extversion, quote_ident(n.nspname) FROM pg_extension e "
      "JOIN pg_namespace n ON n.oid = e.extnamespace");
  for (int i = 0; i < r.rows(); ++i) {
    Object o{.kind = "extension", .name = r.get(i, 0)};
    o.attributes = {{"version", r.get(i, 1)}, {"schema", r.get(i, 2)}};
    o.create_sql = "CREATE EXTENSION IF NOT EXISTS " + o.name + " WITH SCHEMA " + r.get(i, 2) +
                   " VERSION " + literal(r.get(i, 1)) + ";";
    out.objects.push_back(std::move(o));
  }
}

// Tables, views, materialized views and sequences (composite types are read as types; foreign
// tables are not modelled). An identity column's sequence is part of its column.
void read_relations(db::Connection& conn, const db::Params& p, Catalog& out) {
  std::string sql =
      std::string("WITH ") + k_user_namespaces + R"(
SELECT c.relkind, )" +
      qualified("ns.nspname", "c.relname") +
      R"(, c.relpersistence,
  CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
  CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
  CASE WHEN c.relispartition THEN (SELECT )" +
      qualified("pn.nspname", "pc.relname") +
      R"( || ' ' || pg_get_expr(c.relpartbound, c.oid)
    FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
    JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) END,
  CASE WHEN NOT c.relispartition THEN (SELECT string_agg()" +
      qualified("pn.nspname", "pc.relname") + R"(, ', ' ORDER BY i.inhseqno)
    FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
    JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) END,
  c.relrowsecurity, c.relforcerowsecurity, array_to_string(c.reloptions, ', '),
  )" +
      acl("c.relacl", "c.relowner", "(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\"") +
      R"(,
  coalesce((SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_class'::regclass AND objsubid = 0), ''),
  format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
  s.seqcycle, owner.tbl, owner.col, owner.deptype
FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
LEFT JOIN pg_sequence s ON s.seqrelid = c.oid
LEFT JOIN LATERAL (SELECT )" +
      qualified("tn.nspname", "t.relname") + R"( AS tbl, quote_ident(a.attname) AS col,
    d.deptype FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
    JOIN pg_namespace tn ON tn.oid = t.relnamespace
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
    WHERE c.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
    LIMIT 1) owner ON true
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND )" +
      not_extension_member("pg_class", "c.oid");
  auto r = conn.exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) {
    std::string relkind = r.get(i, 0);
    if (relkind == "S" && str(r, i, 21) == "i") continue;  // an identity column's
    Object o;
    o.name = r.get(i, 1);
    std::string comment = str(r, i, 11);
    std::string persistence = r.get(i, 2) == "u" ? "unlogged" : "permanent";
    if (relkind == "r" || relkind == "p") {
      o.kind = "table";
      o.attributes = {{"persistence", persistence},
                      {"row_security", yes_no(r, i, 7)},
                      {"force_row_security", yes_no(r, i, 8)},
                      {"options", str(r, i, 9)},
                      {"grants", str(r, i, 10)},
                      {"comment", comment}};
      if (relkind == "p") o.attributes["partitioned_by"] = str(r, i, 4);
      if (!r.is_null(i, 5)) o.attributes["partition_of"] = str(r, i, 5);
      if (!r.is_null(i, 6)) o.attributes["inherits"] = str(r, i, 6);
      std::string tail;
      if (o.attributes["row_security"] == "yes")
        tail += "\nALTER TABLE " + o.name + " ENABLE ROW LEVEL SECURITY;";
      if (o.attributes["force_row_security"] == "yes")
        tail += "\nALTER TABLE " + o.name + " FORCE ROW LEVEL SECURITY;";
      // The columns are added by the patch itself (render_sql): here only what follows them.
      o.create_sql = tail + comment_sql("TABLE " + o.name, comment);
    } else if (relkind == "v" || relkind == "m") {
      o.kind = relkind == "v" ? "view" : "materialized view";
      std::string def = util::trim(str(r, i, 3));
      if (!def.empty() && def.back() == ';') def.pop_back();
      o.attributes = {{"definition", def},
                      {"options", str(r, i, 9)},
                      {"grants", str(r, i, 10)},
                      {"comment", comment}};
      std::string what = relkind == "v" ? "VIEW " : "MATERIALIZED VIEW ";
      o.create_sql =
          "CREATE " + what + o.name + " AS\n" + def + ";" + comment_sql(what + o.name, comment);
    } else {
      o.kind = "sequence";
      o.attributes = {
          {"type", str(r, i, 12)},     {"start", str(r, i, 13)},  {"increment", str(r, i, 14)},
          {"min", str(r, i, 15)},      {"max", str(r, i, 16)},    {"cache", str(r, i, 17)},
          {"cycle", yes_no(r, i, 18)}, {"grants", str(r, i, 10)}, {"comment", comment}};
      if (!r.is_null(i, 19)) {
        o.parent = str(r, i, 19);
        o.parent_kind = "table";
        o.attributes["owned_by"] = o.parent + "." + str(r, i, 20);
      }
      o.create_sql = "CREATE SEQUENCE " + o.name + " AS " + o.attributes["type"] +
                     " INCREMENT BY " + o.attributes["increment"] + " MINVALUE " +
                     o.attributes["min"] + " MAXVALUE " + o.attributes["max"] + " START WITH " +
                     o.attributes["start"] + " CACHE " + o.attributes["cache"] +
                     (o.attributes["cycle"] == "yes" ? " CYCLE" : " NO CYCLE") + ";";
      if (!o.parent.empty())
        o.create_sql +=
            "\nALTER SEQUENCE " + o.name + " OWNED BY " + o.attributes["owned_by"] + ";";
      o.create_sql += comment_sql("SEQUENCE " + o.name, comment);
    }
    out.objects.push_back(std::move(o));
  }
}

void read_columns(db::Connection& conn, const db::Params& p, Catalog& out) {
  std::string sql =
      std::string("WITH ") + k_user_namespaces + "\nSELECT " +
      qualified("ns.nspname", "c.relname") + R"(, quote_ident(a.attname),
  format_type(a.atttypid, a.atttypmod), a.attnotnull,
  CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
  a.attidentity, CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
  CASE WHEN a.attcollation <> t.typcollation THEN (SELECT CASE WHEN cn.nspname = 'pg_catalog'
    THEN '' ELSE quote_ident(cn.nspname) || '.' END || quote_ident(co.collname)
    FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
    WHERE co.oid = a.attcollation) END,
  )" + acl("a.attacl", "c.relowner", "") +
      R"(, coalesce((SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_class'::regclass AND objsubid = a.attnum), ''), a.attnum
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND )" +
      not_extension_member("pg_class", "c.oid") + " ORDER BY c.oid, a.attnum";
  auto r = conn.exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) {
    Object o{.kind = "column", .parent = r.get(i, 0), .parent_kind = "table"};
    std::string column = r.get(i, 1);
    o.name = o.parent + "." + column;
    std::string identity = str(r, i, 5);
    identity = identity == "a" ? "always" : identity == "d" ? "by default" : "";
    o.attributes = {{"type", r.get(i, 2)},       {"not_null", yes_no(r, i, 3)},
                    {"default", str(r, i, 4)},   {"identity", identity},
                    {"generated", str(r, i, 6)}, {"collation", str(r, i, 7)},
                    {"grants", str(r, i, 8)},    {"comment", str(r, i, 9)}};
    // The column's definition inside CREATE TABLE / ADD COLUMN (render_sql adds the rest).
    std::string def = column + " " + o.attributes["type"];
    if (!o.attributes["collation"].empty()) def += " COLLATE " + o.attributes["collation"];
    if (!o.attributes["generated"].empty())
      def += " GENERATED ALWAYS AS (" + o.attributes["generated"] + ") STORED";
    if (!identity.empty())
      def += std::string(" GENERATED ") + (identity == "always" ? "ALWAYS" : "BY DEFAULT") +
             " AS IDENTITY";
    if (!o.attributes["default"].empty()) def += " DEFAULT " + o.attributes["default"];
    if (o.attributes["not_null"] == "yes") def += " NOT NULL";
    o.create_sql = def;
    o.position = static_cast<int>(r.get_int(i, 10));
    out.objects.push_back(std::move(o));
  }
}

void read_constraints(db::Connection& conn, const db::Params& p, Catalog& out) {
  std::string sql = std::string("WITH ") + k_user_namespaces + "\nSELECT " +
                    qualified("ns.nspname", "c.relname") + R"(, quote_ident(co.conname),
  co.contype, pg_get_constraintdef(co.oid), co.confupdtype, co.confdeltype, co.condeferrable,
  co.condeferred, co.convalidated, coalesce((SELECT description FROM pg_description WHERE objoid = co.oid AND classoid = 'pg_constraint'::regclass AND objsubid = 0), '')
FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN ns ON ns.oid = c.relnamespace
WHERE co.contype IN ('p', 'u', 'c', 'x', 'f') AND c.relkind IN ('r', 'p') AND )" +
                    not_extension_member("pg_class", "c.oid");
  auto r = conn.exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) {
    Object o{.kind = "constraint", .parent = r.get(i, 0), .parent_kind = "table"};
    std::string local = r.get(i, 1);
    o.name = o.parent + "." + local;
    std::string type = r.get(i, 2);
    type = type == "p"   ? "primary key"
           : type == "u" ? "unique"
           : type == "c" ? "check"
           : type == "x" ? "exclusion"
                         : "foreign key";
    o.attributes = {{"type", type},
                    {"definition", r.get(i, 3)},
                    {"deferrable", !r.get_bool(i, 6)  ? "no"
                                   : r.get_bool(i, 7) ? "initially deferred"
                                                      : "initially immediate"},
                    {"validated", yes_no(r, i, 8)},
                    {"comment", str(r, i, 9)}};
    if (type == "foreign key") {
      o.attributes["on_update"] = fk_action(r.get(i, 4));
      o.attributes["on_delete"] = fk_action(r.get(i, 5));
    }
    o.create_sql = "ALTER TABLE " + o.parent + " ADD CONSTRAINT " + local + " " + r.get(i, 3) +
                   ";" + comment_sql("CONSTRAINT " + local + " ON " + o.parent, str(r, i, 9));
    out.objects.push_back(std::move(o));
  }
}

// Indexes that are not a constraint's own (those are compared as the constraint).
void read_indexes(db::Connection& conn, const db::Params& p, Catalog& out) {
  std::string sql = std::string("WITH ") + k_user_namespaces + "\nSELECT " +
                    qualified("ns.nspname", "ic.relname") + ", " +
                    qualified("tn.nspname", "tc.relname") + R"(, tc.relkind, am.amname,
  i.indisunique, pg_get_indexdef(i.indexrelid), pg_get_expr(i.indpred, i.indrelid), i.indisvalid,
  coalesce((SELECT description FROM pg_description WHERE objoid = ic.oid AND classoid = 'pg_class'::regclass AND objsubid = 0), '')
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN ns ON ns.oid = ic.relnamespace
JOIN pg_class tc ON tc.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
JOIN pg_am am ON am.oid = ic.relam
WHERE tc.relkind IN ('r', 'p', 'm') AND NOT EXISTS (SELECT 1 FROM pg_constraint co
  WHERE co.conindid = i.indexrelid AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x'))
  AND )" + not_extension_member("pg_class", "tc.oid");
  auto r = conn.exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) {
    Object o{.kind = "index", .name = r.get(i, 0), .parent = r.get(i, 1)};
    o.parent_kind = r.get(i, 2) == "m" ? "materialized view" : "table";
    std::string def = r.get(i, 5), method = r.get(i, 3), predicate = str(r, i, 6);
    // The key columns/expressions (and INCLUDE, NULLS NOT DISTINCT): what follows USING method.
    std::string keys = def;
    if (auto at = def.find(" USING " + method + " "); at != std::string::npos)
      keys = def.substr(at + 8 + method.size());
    if (!predicate.empty()) {
      if (auto at = keys.rfind(" WHERE "); at != std::string::npos) keys = keys.substr(0, at);
    }
    o.attributes = {{"method", method},         {"unique", yes_no(r, i, 4)},
                    {"columns", keys},          {"predicate", predicate},
                    {"valid", yes_no(r, i, 7)}, {"comment", str(r, i, 8)}};
    o.create_sql = def + ";" + comment_sql("INDEX " + o.name, str(r, i, 8));
    out.objects.push_back(std::move(o));
  }
}

void read_triggers(db::Connection& conn, const db::Params& p, Catalog& out) {
  std::string sql = std::string("WITH ") + k_user_namespaces + "\nSELECT " +
                    qualified("ns.nspname", "c.relname") + R"(, c.relkind, quote_ident(t.tgname),
  pg_get_triggerdef(t.oid), t.tgenabled, coalesce((SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_trigger'::regclass AND objsubid = 0), '')
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON ns.oid = c.relnamespace
WHERE NOT t.tgisinternal AND )" +
                    not_extension_member("pg_class", "c.oid");
  auto r = conn.exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) {
    std::string relkind = r.get(i, 1);
    Object o{.kind = "trigger", .parent = r.get(i, 0)};
    o.parent_kind = relkind == "v" ? "view" : relkind == "m" ? "materialized view" : "table";
    std::string local = r.get(i, 2), enabled = r.get(i, 4);
    o.name = o.parent + "." + local;
    enabled = enabled == "O"   ? "yes"
              : enabled == "D" ? "no"
              : enabled == "R" ? "replica"
                               : "always";
    o.attributes = {{"definition", r.get(i, 3)}, {"enabled", enabled}, {"comment", str(r, i, 5)}};
    o.create_sql =
        r.get(i, 3) + ";" + comment_sql("TRIGGER " + local + " ON " + o.parent, str(r, i, 5));
    out.objects.push_back(std::move(o));
  }
}

void read_policies(db::Connection& conn, const db::Params& p, Catalog& out) {
  std::string sql = std::string("WITH ") + k_user_namespaces + "\nSELECT " +
                    qualified("ns.nspname", "c.relname") + R"(, quote_ident(po.polname),
  po.polcmd, po.polpermissive,
  (SELECT string_agg(g, ', ' ORDER BY g) FROM (SELECT CASE WHEN r = 0 THEN 'PUBLIC'
     ELSE quote_ident(pg_get_userbyid(r)) END AS g FROM unnest(po.polroles) r) x),
  pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid),
  coalesce((SELECT description FROM pg_description WHERE objoid = po.oid AND classoid = 'pg_policy'::regclass AND objsubid = 0), '')
FROM pg_policy po JOIN pg_class c ON c.oid = po.polrelid JOIN ns ON ns.oid = c.relnamespace
WHERE )" + not_extension_member("pg_class", "c.oid");
  auto r = conn.exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) {
    Object o{.kind = "policy", .parent = r.get(i, 0), .parent_kind = "table"};
    std::string local = r.get(i, 1), cmd = r.get(i, 2);
    o.name = o.parent + "." + local;
    cmd = cmd == "r"   ? "SELECT"
          : cmd == "a" ? "INSERT"
          : cmd == "w" ? "UPDATE"
          : cmd == "d" ? "DELETE"
                       : "ALL";
    o.attributes = {
        {"command", cmd},        {"permissive", yes_no(r, i, 3)}, {"roles", str(r, i, 4)},
        {"using", str(r, i, 5)}, {"with_check", str(r, i, 6)},    {"comment", str(r, i, 7)}};
    o.create_sql = "CREATE POLICY " + local + " ON " + o.parent + " AS " +
                   (r.get_bool(i, 3) ? "PERMISSIVE" : "RESTRICTIVE") + " FOR " + cmd + " TO " +
                   (o.attributes["roles"].empty() ? "PUBLIC" : o.attributes["roles"]);
    if (!o.attributes["using"].empty()) o.create_sql += " USING (" + o.attributes["using"] + ")";
    if (!o.attributes["with_check"].empty())
      o.create_sql += " WITH CHECK (" + o.attributes["with_check"] + ")";
    o.create_sql += ";" + comment_sql("POLICY " + local + " ON " + o.parent, str(r, i, 7));
    out.objects.push_back(std::move(o));
  }
}

// Functions and procedures (aggregates and window functions are not modelled), named by their
// argument types; an argument's name or default is an attribute.
void read_functions(db::Connection& conn, const db::Params& p, Catalog& out) {
  // PostgreSQL 14+ keeps a SQL-standard body (BEGIN ATOMIC / RETURN) apart from prosrc.
  std::string body = conn.server_version() >= 140000
                         ? "CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) "
                           "ELSE p.prosrc END"
                         : "p.prosrc";
  std::string sql = std::string("WITH ") + k_user_namespaces + "\nSELECT " +
                    qualified("ns.nspname", "p.proname") + R"( || '(' || coalesce((SELECT
    string_agg(format_type(t, NULL), ', ' ORDER BY n) FROM unnest(p.proargtypes::oid[])
    WITH ORDINALITY AS a(t, n)), '') || ')', p.prokind, pg_get_function_arguments(p.oid),
  pg_get_function_result(p.oid), l.lanname, p.provolatile, p.proisstrict, p.prosecdef,
  p.proleakproof, p.proparallel, array_to_string(p.proconfig, ', '), )" +
                    body + ", " + acl("p.proacl", "p.proowner", "'f'") + R"(,
  coalesce((SELECT description FROM pg_description WHERE objoid = p.oid AND classoid = 'pg_proc'::regclass AND objsubid = 0), ''), pg_get_functiondef(p.oid)
FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE p.prokind IN ('f', 'p') AND NOT EXISTS (SELECT 1 FROM pg_depend e
  WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype IN ('e', 'i')))";
  auto r = conn.exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) {
    std::string kind = r.get(i, 1) == "p" ? "procedure" : "function";
    Object o{.kind = kind, .name = r.get(i, 0)};
    std::string vol = r.get(i, 5), par = r.get(i, 9);
    o.attributes = {{"arguments", str(r, i, 2)},
                    {"returns", str(r, i, 3)},
                    {"language", r.get(i, 4)},
                    {"volatility", vol == "i"   ? "immutable"
                                   : vol == "s" ? "stable"
                                                : "volatile"},
                    {"strict", yes_no(r, i, 6)},
                    {"security_definer", yes_no(r, i, 7)},
                    {"leakproof", yes_no(r, i, 8)},
                    {"parallel", par == "s"   ? "safe"
                                 : par == "r" ? "restricted"
                                              : "unsafe"},
                    {"config", str(r, i, 10)},
                    {"body", str(r, i, 11)},
                    {"grants", str(r, i, 12)},
                    {"comment", str(r, i, 13)}};
    std::string what = (kind == "procedure" ? "PROCEDURE " : "FUNCTION ") + o.name;
    o.create_sql = util::trim(str(r, i, 14)) + ";" + comment_sql(what, str(r, i, 13));
    out.objects.push_back(std::move(o));
  }
}

// Enums (values in order), domains (base type, default, NOT NULL, constraints) and composite
// types (fields in order).
void read_types(db::Connection& conn, const db::Params& p, Catalog& out) {
  std::string sql =
      std::string("WITH ") + k_user_namespaces + "\nSELECT t.typtype, " +
      qualified("ns.nspname", "t.typname") + R"(,
  (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
     FROM pg_enum e WHERE e.enumtypid = t.oid),
  CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END, t.typnotnull,
  t.typdefault,
  (SELECT string_agg('CONSTRAINT ' || quote_ident(co.conname) || ' ' ||
     pg_get_constraintdef(co.oid), ' ' ORDER BY co.conname)
     FROM pg_constraint co WHERE co.contypid = t.oid),
  CASE WHEN t.typtype = 'd' AND t.typcollation <> (SELECT b.typcollation FROM pg_type b
    WHERE b.oid = t.typbasetype) THEN (SELECT CASE WHEN cn.nspname = 'pg_catalog' THEN ''
    ELSE quote_ident(cn.nspname) || '.' END || quote_ident(co.collname) FROM pg_collation co
    JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END,
  (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
     ', ' ORDER BY a.attnum) FROM pg_attribute a
     WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
  )" + acl("t.typacl", "t.typowner", "'T'") +
      R"(, coalesce((SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_type'::regclass AND objsubid = 0), '')
FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND
  (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')) AND )" +
      not_extension_member("pg_type", "t.oid");
  auto r = conn.exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) {
    std::string typtype = r.get(i, 0);
    Object o{.name = r.get(i, 1)};
    std::string comment = str(r, i, 10);
    if (typtype == "e") {
      o.kind = "enum";
      o.attributes = {{"values", str(r, i, 2)}};
      o.create_sql = "CREATE TYPE " + o.name + " AS ENUM (" + str(r, i, 2) + ");";
    } else if (typtype == "d") {
      o.kind = "domain";
      o.attributes = {{"type", str(r, i, 3)},
                      {"not_null", yes_no(r, i, 4)},
                      {"default", str(r, i, 5)},
                      {"constraints", str(r, i, 6)},
                      {"collation", str(r, i, 7)}};
      o.create_sql = "CREATE DOMAIN " + o.name + " AS " + str(r, i, 3);
      if (!str(r, i, 7).empty()) o.create_sql += " COLLATE " + str(r, i, 7);
      if (!str(r, i, 5).empty()) o.create_sql += " DEFAULT " + str(r, i, 5);
      if (r.get_bool(i, 4)) o.create_sql += " NOT NULL";
      if (!str(r, i, 6).empty()) o.create_sql += " " + str(r, i, 6);
      o.create_sql += ";";
    } else {
      o.kind = "composite type";
      o.attributes = {{"fields", str(r, i, 8)}};
      o.create_sql = "CREATE TYPE " + o.name + " AS (" + str(r, i, 8) + ");";
    }
    o.attributes["grants"] = str(r, i, 9);
    o.attributes["comment"] = comment;
    o.create_sql += comment_sql((typtype == "d" ? "DOMAIN " : "TYPE ") + o.name, comment);
    out.objects.push_back(std::move(o));
  }
}

// Everything else that depends on a user schema (or on a table, type or function in one), as
// pg_depend records it, and the per-database objects that depend on no schema (publications,
// subscriptions, event triggers, foreign-data wrappers and servers): named by pg_identify_object.
void read_unmodelled(db::Connection& conn, const db::Params& p, Catalog& out) {
  std::string sql = std::string("WITH ") + k_user_namespaces + R"(,
refs AS (
  SELECT DISTINCT d.classid, d.objid FROM pg_depend d
  WHERE d.deptype IN ('n', 'a') AND (
    (d.refclassid = 'pg_namespace'::regclass AND d.refobjid IN (SELECT oid FROM ns))
    OR (d.refclassid = 'pg_class'::regclass AND d.refobjid IN
        (SELECT c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)))
    OR (d.refclassid = 'pg_type'::regclass AND d.refobjid IN
        (SELECT t.oid FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM ns)))
    OR (d.refclassid = 'pg_proc'::regclass AND d.refobjid IN
        (SELECT f.oid FROM pg_proc f WHERE f.pronamespace IN (SELECT oid FROM ns))))
  UNION SELECT 'pg_publication'::regclass, oid FROM pg_publication
  UNION SELECT 'pg_event_trigger'::regclass, oid FROM pg_event_trigger
  UNION SELECT 'pg_foreign_data_wrapper'::regclass, oid FROM pg_foreign_data_wrapper
  UNION SELECT 'pg_foreign_server'::regclass, oid FROM pg_foreign_server
  UNION SELECT 'pg_subscription'::regclass, oid FROM pg_subscription
    WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))
SELECT o.type, o.identity FROM refs r CROSS JOIN LATERAL pg_identify_object(r.classid, r.objid, 0) o
WHERE NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = r.classid AND e.objid = r.objid
                  AND e.deptype IN ('e', 'i'))
  AND NOT (
    r.classid IN ('pg_constraint'::regclass, 'pg_trigger'::regclass, 'pg_policy'::regclass,
                  'pg_attrdef'::regclass, 'pg_extension'::regclass, 'pg_amop'::regclass,
                  'pg_amproc'::regclass, 'pg_namespace'::regclass)
    OR (r.classid = 'pg_class'::regclass AND (SELECT relkind FROM pg_class WHERE oid = r.objid)
        IN ('r', 'p', 'v', 'm', 'S', 'i', 'I', 'c'))
    OR (r.classid = 'pg_type'::regclass AND (SELECT typtype FROM pg_type WHERE oid = r.objid)
        IN ('e', 'd', 'c'))
    OR (r.classid = 'pg_proc'::regclass AND (SELECT prokind FROM pg_proc WHERE oid = r.objid)
        IN ('f', 'p'))
    OR (r.classid = 'pg_rewrite'::regclass AND (SELECT rulename FROM pg_rewrite
        WHERE oid = r.objid) = '_RETURN'))
ORDER BY 1, 2)";
  auto r = conn.exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) out.unmodelled.push_back({r.get(i, 0), str(r, i, 1)});
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The tools' history tables, by their unqualified names (any schema: the tools follow
// search_path), and drizzle's schema.
bool is_tool_table(const std::string& name) {
  for (const char* t : {"._prisma_migrations", ".__drizzle_migrations", ".schema_migrations",
                        ".flyway_schema_history"}) {
    if (ends_with(name, t)) return true;
  }
  return false;
}

}  // namespace

bool is_tool_object(const Object& o) {
  if (o.kind == "schema") return o.name == k_previewdb_schema || o.name == "drizzle";
  if (o.name.rfind(std::string(k_previewdb_schema) + ".", 0) == 0) return true;
  if (o.kind == "table") return is_tool_table(o.name);
  if (o.parent_kind == "table" && is_tool_table(o.parent)) return true;
  // A history table's own sequence (drizzle's serial id) when it is not recorded as owned.
  return o.kind == "sequence" && o.name.rfind("drizzle.__drizzle_migrations", 0) == 0;
}

Catalog read_catalog(db::Connection& conn, const ReadOptions& options) {
  Catalog out;
  out.source = "database " + util::quoted(conn.database());
  db::Params p = {options.ignore_tool_tables ? "{" + std::string(k_previewdb_schema) + "}" : "{}"};
  // One snapshot for all the queries: a concurrent migration shows up whole or not at all.
  conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    auto timed = [&](const char* what, auto&& read) {
      auto started = std::chrono::steady_clock::now();
      read();
      util::log::debug(std::string("read ") + what + " in " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - started)
                                          .count()) +
                       " ms");
    };
    timed("schemas", [&] { read_schemas(conn, p, out); });
    timed("extensions", [&] { read_extensions(conn, out); });
    timed("relations", [&] { read_relations(conn, p, out); });
    timed("columns", [&] { read_columns(conn, p, out); });
    timed("constraints", [&] { read_constraints(conn, p, out); });
    timed("indexes", [&] { read_indexes(conn, p, out); });
    timed("triggers", [&] { read_triggers(conn, p, out); });
    timed("policies", [&] { read_policies(conn, p, out); });
    timed("functions", [&] { read_functions(conn, p, out); });
    timed("types", [&] { read_types(conn, p, out); });
    timed("other objects", [&] { read_unmodelled(conn, p, out); });
    conn.exec("COMMIT");
  } catch (...) {
    try {
      conn.exec("ROLLBACK");
    } catch (...) {
      // The connection is gone; the original error says why.
    }
    throw;
  }
  if (options.ignore_tool_tables) {
    std::erase_if(out.objects, [](const Object& o) { return is_tool_object(o); });
  }
  return out;
}

}  // namespace previewdb::schema
