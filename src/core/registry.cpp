#include "core/registry.hpp"

#include "core/lifecycle.hpp"

#include "core/naming.hpp"
#include "db/dialect.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace previewdb::core {

namespace {

std::string conninfo_value(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

void create_registry_database(db::Connection& maintenance) {
  const std::string name = maintenance.quote_ident(k_registry_database);
  // One clear error (the role and the grant) rather than "permission denied".
  require_createdb(maintenance);
  try {
    maintenance.exec(db::dialect_of(maintenance).create_empty_database(k_registry_database));
  } catch (const db::QueryError& e) {
    // Another run made it meanwhile (42P04; 23505 when both inserted into pg_database at once).
    if (e.sqlstate() == "42P04" || e.sqlstate() == "23505") return;
    throw Error(ExitCode::failure,
                std::string("cannot create the registry database ") + k_registry_database + ": " +
                    e.primary(),
                {"previewdb's role needs CREATEDB (ALTER ROLE ... CREATEDB)"});
  }
  maintenance.exec("REVOKE ALL ON DATABASE " + name + " FROM PUBLIC");
  maintenance.exec("COMMENT ON DATABASE " + name +
                   " IS 'previewdb: what previewdb created on this server; do not edit'");
  util::log::info(std::string("created ") + k_registry_database +
                  " (the record of the databases previewdb creates on this server)");
}

const char* k_schema_sql = R"SQL(
CREATE SCHEMA IF NOT EXISTS registry;
REVOKE ALL ON SCHEMA registry FROM PUBLIC;
CREATE TABLE IF NOT EXISTS registry.databases (
  id bigserial PRIMARY KEY,
  oid oid UNIQUE,
  name text NOT NULL,
  target text NOT NULL,
  owner oid NOT NULL,
  state text NOT NULL CHECK (state IN ('building', 'ready')),
  kind text NOT NULL CHECK (kind IN ('pr', 'personal', 'snapshot')),
  source text,
  repository text,
  pr_number bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL DEFAULT '',
  branch text,
  snapshot text
))SQL";

}  // namespace

db::Connection connect_like(db::Connection& conn, const std::string& dbname) {
  std::string conninfo;
  PQconninfoOption* opts = PQconninfo(conn.raw());
  for (auto* o = opts; o && o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string key = o->keyword;
    if (key == "dbname" || key == "application_name" || key == "fallback_application_name") {
      continue;
    }
    // Whatever the first connection carried (even from .pgpass) stays out of every message.
    if (key == "password" || key == "sslpassword") util::register_secret(o->val);
    conninfo += key + "=" + conninfo_value(o->val) + " ";
  }
  if (opts) PQconninfoFree(opts);
  // "too many clients" is waited out within the run's lock timeout (the maintenance session's).
  return db::Connection::open({.conninfo = conninfo,
                               .dbname = dbname,
                               .busy_retry = conn.limits() ? conn.limits()->lock_timeout
                                                           : db::ConnectOptions{}.busy_retry});
}

bool on_registry_database(db::Connection& conn) {
  const char* db = PQdb(conn.raw());
  return db && std::string_view(db) == k_registry_database;
}

Registry Registry::open(db::Connection& maintenance) {
  if (on_registry_database(maintenance)) return Registry(&maintenance).verified();
  std::optional<db::Connection> conn;
  try {
    conn.emplace(connect_like(maintenance, k_registry_database));
  } catch (const Error& e) {
    if (e.code() != ExitCode::not_found) throw;
    create_registry_database(maintenance);
    conn.emplace(connect_like(maintenance, k_registry_database));
  }
  return Registry(std::move(*conn)).verified();
}

Registry Registry::verified() && {
  Registry& reg = *this;
  auto r = reg.m_conn->exec(R"SQL(
SELECT me.oid, me.rolname, d.datdba, coalesce(o.rolname, d.datdba::text),
       d.datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a
                                   WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'),
       to_regclass('registry.databases') IS NOT NULL
FROM pg_database d
JOIN pg_roles me ON me.rolname = current_user
LEFT JOIN pg_roles o ON o.oid = d.datdba
WHERE d.datname = current_database())SQL");
  reg.m_role_oid = r.get_int(0, 0);
  reg.m_role_name = r.get(0, 1);
  if (r.get_int(0, 2) != reg.m_role_oid) {
    // Whoever owns it could have written any row: nothing in it can be trusted.
    throw Error(ExitCode::refused,
                std::string("refusing to use ") + k_registry_database + ": it is owned by role " +
                    util::quoted(r.get(0, 3)) + ", not by " + util::quoted(reg.m_role_name) +
                    " (the role previewdb connects as)",
                {std::string("if that role is not yours, drop ") + k_registry_database +
                     " (previewdb re-creates it); otherwise connect as its owner",
                 "previewdb only manages databases recorded there by its own role"});
  }
  if (r.get_bool(0, 4)) {
    reg.m_conn->exec(std::string("REVOKE ALL ON DATABASE ") +
                     reg.m_conn->quote_ident(k_registry_database) + " FROM PUBLIC");
  }
  if (!r.get_bool(0, 5)) {
    reg.m_conn->exec("BEGIN");
    try {
      reg.m_conn->exec("SELECT pg_advisory_xact_lock(hashtext('previewdb:registry-schema'))");
      bool made =
          reg.m_conn->exec("SELECT to_regclass('registry.databases') IS NOT NULL").get_bool(0, 0);
      if (!made) {
        reg.m_conn->exec(k_schema_sql);
        reg.adopt_legacy();
      }
      reg.m_conn->exec("COMMIT");
    } catch (...) {
      try {
        reg.m_conn->exec("ROLLBACK");
      } catch (const std::exception&) {
        // The session is gone (the server rolls back on its own): the first error is the one.
      }
      throw;
    }
  }
  return std::move(reg);
}

void Registry::refresh() {
  m_conn->exec(
      "DELETE FROM registry.databases r WHERE r.oid IS NOT NULL "
      "AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.oid = r.oid)");
  // A build registered but never created (killed before CREATE DATABASE finished).
  m_conn->exec(
      "DELETE FROM registry.databases r WHERE r.oid IS NULL AND r.state = 'building' "
      "AND r.created_at < now() - interval '1 day' "
      "AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = r.name)");
}

void Registry::adopt_legacy() {
  // Previews from before the registry. Only previewdb's role could have written the comment on a
  // database it owns, so owner + well-formed comment is what earlier versions trusted; this runs
  // once, when the registry is made, and never again (a database re-created later under a
  // preview's name, comment copied, is not adopted).
  auto c = m_conn->exec(
      "SELECT d.oid, d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d "
      "WHERE d.datdba = $1 AND d.datname <> current_database() "
      "AND d.datname NOT IN ('template0', 'template1') "
      "AND shobj_description(d.oid, 'pg_database') IS NOT NULL "
      "AND NOT EXISTS (SELECT 1 FROM registry.databases r WHERE r.oid = d.oid "
      "                OR (r.oid IS NULL AND r.name = d.datname))",
      {std::to_string(m_role_oid)});
  for (int i = 0; i < c.rows(); ++i) {
    std::string name = c.get(i, 1);
    auto meta = parse_comment(c.get(i, 2));
    if (!meta || name.rfind("previewdb_tmp_", 0) == 0) continue;
    std::optional<std::string> created_at;
    if (util::parse_iso8601(meta->created_at)) created_at = meta->created_at;
    auto ins = m_conn->exec(
        "INSERT INTO registry.databases (oid, name, target, owner, state, kind, source, "
        "pr_number, created_at, created_by, branch, snapshot) "
        "VALUES ($1, $2, $2, $3, 'ready', $4, $5, $6, coalesce($7::timestamptz, now()), $8, $9, "
        "$10) ON CONFLICT (oid) DO NOTHING RETURNING id",
        {c.get(i, 0), name, std::to_string(m_role_oid), to_string(meta->kind), meta->source,
         meta->pr_number ? std::optional(std::to_string(*meta->pr_number)) : std::nullopt,
         created_at, meta->created_by, meta->branch, meta->snapshot});
    if (ins.rows() > 0) {
      util::log::info("adopted " + name + " (" + to_string(meta->kind) +
                      ", made by previewdb before its registry existed; owned by " + m_role_name +
                      ")");
    }
  }
}

long long Registry::begin_build(const std::string& temp, const std::string& target,
                                const Metadata& meta) {
  std::optional<std::string> created_at;
  if (util::parse_iso8601(meta.created_at)) created_at = meta.created_at;
  auto r = m_conn->exec(
      "INSERT INTO registry.databases (name, target, owner, state, kind, source, repository, "
      "pr_number, created_at, created_by, branch, snapshot) "
      "VALUES ($1, $2, $3, 'building', $4, $5, $6, $7, coalesce($8::timestamptz, now()), $9, $10, "
      "$11) RETURNING id",
      {temp, target, std::to_string(m_role_oid), to_string(meta.kind), meta.source, meta.repository,
       meta.pr_number ? std::optional(std::to_string(*meta.pr_number)) : std::nullopt, created_at,
       meta.created_by, meta.branch, meta.snapshot});
  return r.get_int(0, 0);
}

void Registry::built(long long id, const std::string& temp) {
  auto r = m_conn->exec(
      "UPDATE registry.databases r SET oid = d.oid FROM pg_database d "
      "WHERE r.id = $1 AND d.datname = $2 AND d.datdba = r.owner",
      {std::to_string(id), temp});
  if (r.command_tuples() != "1") {
    throw Error(ExitCode::failure, "cannot record " + temp + " in " + k_registry_database +
                                       ": it is not owned by " + m_role_name);
  }
}

void Registry::retarget(long long id, const std::string& target) {
  m_conn->exec("UPDATE registry.databases SET target = $2 WHERE id = $1",
               {std::to_string(id), target});
}

void Registry::finished(long long id, const std::string& name) {
  m_conn->exec(
      "UPDATE registry.databases SET name = $2, target = $2, state = 'ready' WHERE id = $1",
      {std::to_string(id), name});
}

void Registry::remove_row(long long id) {
  m_conn->exec("DELETE FROM registry.databases WHERE id = $1", {std::to_string(id)});
}

bool Registry::record(const std::string& name, const Metadata& meta) {
  std::optional<std::string> created_at;
  if (util::parse_iso8601(meta.created_at)) created_at = meta.created_at;
  auto r = m_conn->exec(
      "INSERT INTO registry.databases (oid, name, target, owner, state, kind, source, repository, "
      "pr_number, created_at, created_by, branch, snapshot) "
      "SELECT d.oid, d.datname, d.datname, d.datdba, 'ready', $3, $4, $5, $6, "
      "coalesce($7::timestamptz, now()), $8, $9, $10 FROM pg_database d "
      "WHERE d.datname = $1 AND d.datdba = $2 ON CONFLICT (oid) DO NOTHING RETURNING id",
      {name, std::to_string(m_role_oid), to_string(meta.kind), meta.source, meta.repository,
       meta.pr_number ? std::optional(std::to_string(*meta.pr_number)) : std::nullopt, created_at,
       meta.created_by, meta.branch, meta.snapshot});
  return r.rows() > 0;
}

void Registry::forget_oid(long long oid) {
  m_conn->exec("DELETE FROM registry.databases WHERE oid = $1", {std::to_string(oid)});
}

void Registry::set_repository(long long oid, const std::string& repository) {
  m_conn->exec("UPDATE registry.databases SET repository = $2 WHERE oid = $1",
               {std::to_string(oid), repository});
}

}  // namespace previewdb::core
