#include "core/registry.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include "core/lifecycle.hpp"

#include "core/naming.hpp"
#include "db/advisory_lock.hpp"
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
  kind text NOT NULL CONSTRAINT databases_kind_check
    CHECK (kind IN ('pr', 'personal', 'snapshot', 'pool')),
  source text,
  repository text,
  pr_number bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL DEFAULT '',
  branch text,
  snapshot text,
  mask_rules_sha256 text
))SQL";

// Added after the first release: created (IF NOT EXISTS) in registries made by earlier versions
// too. Clones' durations choose the next clone's strategy (core/clone_policy); sizes spare `list`
// a walk of every database's directory.
const char* k_evidence_sql = R"SQL(
CREATE TABLE IF NOT EXISTS registry.clone_samples (
  id bigserial PRIMARY KEY,
  strategy text NOT NULL CHECK (strategy IN ('WAL_LOG', 'FILE_COPY')),
  size_bytes bigint NOT NULL CHECK (size_bytes > 0),
  seconds double precision NOT NULL CHECK (seconds >= 0),
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS registry.database_sizes (
  oid oid PRIMARY KEY,
  size_bytes bigint NOT NULL,
  measured_at timestamptz NOT NULL DEFAULT now()
))SQL";

// The newest clones the registry keeps (older ones are deleted as new ones come).
const int k_kept_clone_samples = 1000;

// Registries made before the warm pool allow only pr, personal and snapshot (the constraint
// PostgreSQL named databases_kind_check): widened once, under the schema lock.
const char* k_kind_check_sql = R"SQL(
ALTER TABLE registry.databases DROP CONSTRAINT IF EXISTS databases_kind_check;
ALTER TABLE registry.databases ADD CONSTRAINT databases_kind_check
  CHECK (kind IN ('pr', 'personal', 'snapshot', 'pool')))SQL";
// Registries made before masking existed get the column (once, under the schema lock).
const char* k_mask_column_sql =
    "ALTER TABLE registry.databases ADD COLUMN IF NOT EXISTS mask_rules_sha256 text";

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

namespace {

// Sessions whose registry passed verified() (and whether refresh_once ran on them), by connection
// and backend: a new or re-opened session is checked again.
struct VerifiedSession {
  long long role_oid = 0;
  std::string role_name;
  bool may_create = false;
  bool refreshed = false;
};
std::mutex g_sessions_mutex;
std::map<db::Connection::SessionKey, VerifiedSession>& verified_sessions() {
  static std::map<db::Connection::SessionKey, VerifiedSession> m;
  return m;
}

// Appended to a write's RETURNING list: that transaction commits without waiting for its WAL to
// reach the disk (PostgreSQL's synchronous_commit, for this transaction only). Only for rows whose
// loss in a server crash is harmless: a build's row is written before its CREATE DATABASE, whose
// own commit flushes the WAL up to and past it (WAL is written in order), so the row is durable
// whenever the database is; clone samples and cached sizes are evidence and estimates. Saves a WAL
// flush (an fsync: milliseconds) per write. CockroachDB: not used.
std::string async_commit(db::Connection& conn) {
  if (db::dialect_of(conn).kind != db::ServerKind::postgres) return "";
  return ", set_config('synchronous_commit', 'off', true)";
}

}  // namespace

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
  {
    std::lock_guard lock(g_sessions_mutex);
    if (auto it = verified_sessions().find(reg.m_conn->session_key());
        it != verified_sessions().end()) {
      reg.m_role_oid = it->second.role_oid;
      reg.m_role_name = it->second.role_name;
      reg.m_may_create = it->second.may_create;
      return std::move(reg);
    }
  }
  auto r = reg.m_conn->exec(R"SQL(
SELECT me.oid, me.rolname, d.datdba, coalesce(o.rolname, d.datdba::text),
       d.datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a
                                   WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'),
       to_regclass('registry.databases') IS NOT NULL,
       to_regclass('registry.clone_samples') IS NOT NULL
         AND to_regclass('registry.database_sizes') IS NOT NULL
         AND coalesce((SELECT pg_get_constraintdef(c.oid) LIKE '%''pool''%' FROM pg_constraint c
                       WHERE c.conrelid = to_regclass('registry.databases')
                         AND c.conname = 'databases_kind_check'), false)
         AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('registry.databases')
                       AND attname = 'mask_rules_sha256' AND NOT attisdropped),
       me.rolcreatedb OR me.rolsuper
FROM pg_database d
JOIN pg_roles me ON me.rolname = current_user
LEFT JOIN pg_roles o ON o.oid = d.datdba
WHERE d.datname = current_database())SQL");
  reg.m_role_oid = r.get_int(0, 0);
  reg.m_role_name = r.get(0, 1);
  reg.m_may_create = r.get_bool(0, 7);
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
  if (!r.get_bool(0, 5) || !r.get_bool(0, 6)) {
    // Two first runs must not both create the schema: a transaction advisory lock, or on a server
    // without advisory locks (CockroachDB) the lease-row name lock, held around the transaction.
    std::optional<db::AdvisoryLock> schema_lease;
    bool leases = db::AdvisoryLock::uses_leases(*reg.m_conn);
    if (leases) {
      auto wait = reg.m_conn->limits() ? reg.m_conn->limits()->lock_timeout
                                       : std::chrono::milliseconds(std::chrono::minutes(10));
      schema_lease.emplace(
          *reg.m_conn, "previewdb:registry-schema",
          std::max(std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(wait)),
          std::string("the schema of ") + k_registry_database);
    }
    reg.m_conn->exec("BEGIN");
    try {
      if (!leases) {
        reg.m_conn->exec("SELECT pg_advisory_xact_lock(hashtext('previewdb:registry-schema'))");
      }
      bool made =
          reg.m_conn->exec("SELECT to_regclass('registry.databases') IS NOT NULL").get_bool(0, 0);
      if (!made) {
        reg.m_conn->exec(k_schema_sql);
        reg.adopt_legacy();
      } else if (!reg.m_conn
                      ->exec("SELECT coalesce((SELECT pg_get_constraintdef(oid) LIKE '%''pool''%' "
                             "FROM pg_constraint WHERE conrelid = 'registry.databases'::regclass "
                             "AND conname = 'databases_kind_check'), false)")
                      .get_bool(0, 0)) {
        // Not widened by another run while this one waited for the lock.
        reg.m_conn->exec(k_kind_check_sql);
      }
      reg.m_conn->exec(k_evidence_sql);
      reg.m_conn->exec(k_mask_column_sql);
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
  {
    std::lock_guard lock(g_sessions_mutex);
    verified_sessions()[reg.m_conn->session_key()] = {
        .role_oid = reg.m_role_oid, .role_name = reg.m_role_name, .may_create = reg.m_may_create};
  }
  return std::move(reg);
}

void Registry::refresh_once() {
  {
    std::lock_guard lock(g_sessions_mutex);
    auto it = verified_sessions().find(m_conn->session_key());
    if (it != verified_sessions().end() && it->second.refreshed) return;
  }
  refresh();
  std::lock_guard lock(g_sessions_mutex);
  if (auto it = verified_sessions().find(m_conn->session_key()); it != verified_sessions().end()) {
    it->second.refreshed = true;
  }
}

void Registry::refresh() {
  // One round trip (`list` runs this every time).
  m_conn->exec(
      "DELETE FROM registry.databases r WHERE r.oid IS NOT NULL "
      "AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.oid = r.oid); "
      // A build registered but never created (killed before CREATE DATABASE finished).
      "DELETE FROM registry.databases r WHERE r.oid IS NULL AND r.state = 'building' "
      "AND r.created_at < now() - interval '1 day' "
      "AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = r.name); "
      "DELETE FROM registry.database_sizes s "
      "WHERE NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.oid = s.oid)");
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
      "pr_number, created_at, created_by, branch, snapshot, mask_rules_sha256) "
      "VALUES ($1, $2, $3, 'building', $4, $5, $6, $7, coalesce($8::timestamptz, now()), $9, $10, "
      "$11, $12) RETURNING id" +
          async_commit(*m_conn),
      {temp, target, std::to_string(m_role_oid), to_string(meta.kind), meta.source, meta.repository,
       meta.pr_number ? std::optional(std::to_string(*meta.pr_number)) : std::nullopt, created_at,
       meta.created_by, meta.branch, meta.snapshot, meta.mask_rules_sha256});
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

bool Registry::hand_out(long long oid, const std::string& name, const Metadata& meta) {
  std::optional<std::string> created_at;
  if (util::parse_iso8601(meta.created_at)) created_at = meta.created_at;
  auto r = m_conn->exec(
      "UPDATE registry.databases SET name = $2, target = $2, kind = $3, source = $4, "
      "repository = $5, pr_number = $6, created_at = coalesce($7::timestamptz, now()), "
      "created_by = $8, branch = $9, snapshot = $10 "
      "WHERE oid = $1 AND kind = 'pool' AND state = 'ready'",
      {std::to_string(oid), name, to_string(meta.kind), meta.source, meta.repository,
       meta.pr_number ? std::optional(std::to_string(*meta.pr_number)) : std::nullopt, created_at,
       meta.created_by, meta.branch, meta.snapshot});
  return r.command_tuples() == "1";
}

void Registry::forget_oid(long long oid) {
  m_conn->exec("DELETE FROM registry.databases WHERE oid = $1", {std::to_string(oid)});
  m_conn->exec("DELETE FROM registry.database_sizes WHERE oid = $1", {std::to_string(oid)});
}

void Registry::set_repository(long long oid, const std::string& repository) {
  m_conn->exec("UPDATE registry.databases SET repository = $2 WHERE oid = $1",
               {std::to_string(oid), repository});
}

std::vector<CloneSample> Registry::clone_samples_near(long long size_bytes,
                                                      long long* next_number) {
  auto r = m_conn->exec(
      "SELECT n.next, s.strategy, s.size_bytes, s.seconds "
      "FROM (SELECT coalesce(max(id), 0) + 1 AS next FROM registry.clone_samples) n "
      "LEFT JOIN LATERAL (SELECT * FROM registry.clone_samples "
      "                   WHERE size_bytes BETWEEN $1::bigint / 2 AND $1::bigint * 2 "
      "                   ORDER BY id DESC LIMIT 50) s ON true",
      {std::to_string(size_bytes)});
  std::vector<CloneSample> out;
  for (int i = 0; i < r.rows(); ++i) {
    *next_number = r.get_int(i, 0);
    if (r.is_null(i, 1)) continue;
    auto strategy = strategy_from_keyword(r.get(i, 1));
    if (!strategy) continue;
    out.push_back(
        {.strategy = *strategy, .size_bytes = r.get_int(i, 2), .seconds = std::stod(r.get(i, 3))});
  }
  return out;
}

void Registry::record_clone_sample(const CloneSample& sample) {
  m_conn->exec(
      "WITH ins AS (INSERT INTO registry.clone_samples (strategy, size_bytes, seconds) "
      "             VALUES ($1, $2, $3) RETURNING id" +
          async_commit(*m_conn) +
          ") "
          "DELETE FROM registry.clone_samples WHERE id <= (SELECT id FROM ins) - $4::bigint",
      {strategy_keyword(sample.strategy), std::to_string(sample.size_bytes),
       std::to_string(sample.seconds), std::to_string(k_kept_clone_samples)});
}

namespace {

const char* k_upsert_sizes = R"SQL(
INSERT INTO registry.database_sizes (oid, size_bytes, measured_at)
SELECT d.oid, pg_database_size(d.oid), now() FROM pg_database d
WHERE %s
  AND (has_database_privilege(d.oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'MEMBER'))
ON CONFLICT (oid) DO UPDATE SET size_bytes = excluded.size_bytes,
                                measured_at = excluded.measured_at
RETURNING oid, size_bytes)SQL";

std::string upsert_sizes(const std::string& where) {
  std::string sql = k_upsert_sizes;
  return sql.replace(sql.find("%s"), 2, where);
}

}  // namespace

void Registry::record_size(const std::string& name) {
  m_conn->exec(upsert_sizes("d.datname = $1") + async_commit(*m_conn), {name});
}

std::vector<std::pair<long long, long long>> Registry::measure_sizes(
    const std::vector<long long>& oids) {
  std::vector<std::pair<long long, long long>> out;
  if (oids.empty()) return out;
  std::string array = "{";
  for (size_t i = 0; i < oids.size(); ++i) array += (i ? "," : "") + std::to_string(oids[i]);
  array += "}";
  auto r = m_conn->exec(upsert_sizes("d.oid = ANY($1::oid[])"), {array});
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.get_int(i, 0), r.get_int(i, 1));
  return out;
}

}  // namespace previewdb::core
