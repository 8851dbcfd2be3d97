#include "core/migration_role.hpp"

#include "core/registry.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace previewdb::core {

namespace {

// Run by previewdb's role inside the preview, with search_path pg_catalog: it reads only the
// catalogs and changes owners (which fires no user code). Extension members and system schemas
// stay as they are; sequences owned by a column follow their table.
const char* k_give_objects_sql = R"SQL(
DO $give$
DECLARE
  m oid := %s;
  mname text := %s;
  r record;
BEGIN
  FOR r IN SELECT n.oid, n.nspname FROM pg_namespace n
           WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
             AND n.nspowner <> m
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                             AND d.objid = n.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, mname);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relowner <> m
             AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                  WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE'
                                  ELSE 'TABLE' END, r.name, mname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name, p.prokind FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE p.proowner <> m AND n.nspname NOT LIKE 'pg\_%'
             AND n.nspname <> 'information_schema'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                             AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE r.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                                  ELSE 'FUNCTION' END, r.name, mname);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS name, t.typtype FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace
           LEFT JOIN pg_class c ON c.oid = t.typrelid
           WHERE t.typowner <> m AND n.nspname NOT LIKE 'pg\_%'
             AND n.nspname <> 'information_schema'
             AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                             AND d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.name, mname);
  END LOOP;
END
$give$)SQL";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

}  // namespace

MigrationRole check_migration_role(db::Connection& conn, const std::string& name,
                                   const std::string& setting) {
  auto r = conn.exec(
      "SELECT r.oid, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolname = current_user, "
      "pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = current_user), 'MEMBER'), "
      "pg_has_role(current_user, r.oid, 'MEMBER'), current_user "
      "FROM pg_roles r WHERE r.rolname = $1",
      {name});
  const std::string role = "the migration role " + util::quoted(name) + " (" + setting + ")";
  if (r.rows() == 0) {
    throw usage_error(role + " does not exist", "create it: CREATE ROLE " + name +
                                                    " LOGIN PASSWORD '...'; then GRANT " + name +
                                                    " TO <previewdb's role>");
  }
  std::string me = r.get(0, 7);
  if (r.get_bool(0, 4)) {
    throw usage_error(role + " is the role previewdb connects as",
                      "use a separate login that owns nothing, e.g. CREATE ROLE pr_migrator LOGIN");
  }
  if (r.get_bool(0, 1) || r.get_bool(0, 2)) {
    throw usage_error(role + (r.get_bool(0, 1) ? " is a superuser" : " has CREATEROLE") +
                          ": a pull request's SQL running as it could change any role",
                      "ALTER ROLE " + name + " NOSUPERUSER NOCREATEROLE");
  }
  if (r.get_bool(0, 5)) {
    throw usage_error(role + " is a member of " + util::quoted(me) +
                          ", so it has the rights previewdb's role has",
                      "REVOKE " + me + " FROM " + name);
  }
  if (!r.get_bool(0, 6)) {
    throw usage_error(util::quoted(me) + " cannot give objects to " + role,
                      "GRANT " + name + " TO " + me + " (the other way round is never needed)");
  }
  if (r.get_bool(0, 3)) {
    util::log::warn(role +
                    " has CREATEDB; it needs no more than what previewdb lends it "
                    "(ALTER ROLE " +
                    name + " NOCREATEDB)");
  }
  return {name, r.get_int(0, 0)};
}

PreviewLoan::PreviewLoan(db::Connection& conn, const std::string& database,
                         const MigrationRole& role, std::chrono::seconds timeout)
    : m_conn(conn), m_database(database), m_role(role) {
  m_lock = std::make_unique<db::AdvisoryLock>(
      conn, "previewdb:migration-role:" + role.name, timeout,
      "the migration role " + util::quoted(role.name) + " (it migrates one preview at a time)");
  // Whatever a killed run left: the role holds rights on no other database.
  auto held = conn.exec(
      "SELECT d.datname FROM pg_database d, aclexplode(d.datacl) a "
      "WHERE a.grantee = $1::oid AND d.datname <> $2 GROUP BY d.datname",
      {std::to_string(role.oid), database});
  for (int i = 0; i < held.rows(); ++i) {
    util::log::info("taking back what " + role.name + " was lent on " + held.get(i, 0));
    conn.exec("REVOKE ALL ON DATABASE " + conn.quote_ident(held.get(i, 0)) + " FROM " +
              conn.quote_ident(role.name));
  }
  util::log::info("lending " + database + " to the migration role " + role.name);
  // Through PUBLIC (the default) the role could connect again after the loan, to the objects it
  // owns in there: a lent preview is reachable only by its owner and whoever it grants.
  conn.exec("REVOKE CONNECT, TEMPORARY ON DATABASE " + conn.quote_ident(database) + " FROM PUBLIC");
  conn.exec("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE " + conn.quote_ident(database) + " TO " +
            conn.quote_ident(role.name));
  try {
    auto inside = connect_like(conn, database);
    inside.exec("SET search_path = pg_catalog");
    std::string sql =
        replace_all(k_give_objects_sql, "m oid := %s", "m oid := " + std::to_string(role.oid));
    sql = replace_all(sql, "mname text := %s", "mname text := " + inside.quote_literal(role.name));
    inside.exec(sql);
  } catch (const db::QueryError& e) {
    conn.exec("REVOKE ALL ON DATABASE " + conn.quote_ident(database) + " FROM " +
              conn.quote_ident(role.name));
    throw Error(ExitCode::failure,
                "cannot give the objects in " + database + " to the migration role " + role.name +
                    ": " + e.primary(),
                {"previewdb's role must own the objects of the snapshot's source (or be a member "
                 "of their owner) and be a member of " +
                 role.name});
  }
}

PreviewLoan::~PreviewLoan() {
  try {
    m_conn.exec("REVOKE ALL ON DATABASE " + m_conn.quote_ident(m_database) + " FROM " +
                m_conn.quote_ident(m_role.name));
  } catch (const std::exception& e) {
    util::log::warn("could not take back " + m_database + " from " + m_role.name + ": " + e.what() +
                    " (the next run does)");
  }
}

std::optional<std::string> superuser_warning(db::Connection& conn) {
  auto r = conn.exec("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
  if (r.rows() == 0 || !r.get_bool(0, 0)) return std::nullopt;
  return "previewdb connects as the superuser " +
         util::quoted(conn.exec("SELECT current_user").get(0, 0)) +
         ": a pull request's SQL can do anything on this server; use a role with only CREATEDB, "
         "and --migrate-url (PREVIEWDB_MIGRATE_URL) for the migrations of untrusted pull requests";
}

}  // namespace previewdb::core
