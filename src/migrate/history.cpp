#include "migrate/history.hpp"

#include <cctype>
#include <set>

#include "migrate/reader_common.hpp"
#include "util/strings.hpp"

namespace previewdb::migrate {

namespace {

// Timestamps leave the server as ISO-8601 UTC text.
std::string iso(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

const char* k_tx_duration_ms = "(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint";

std::string duration_sql(const RecordInfo& info) {
  return info.duration_ms ? std::to_string(*info.duration_ms) : k_tx_duration_ms;
}

std::string started_sql(db::Connection& conn, const RecordInfo& info) {
  return info.started_at.empty() ? "now()" : conn.quote_literal(info.started_at) + "::timestamptz";
}

std::string applied_by_sql(db::Connection& conn, const RecordInfo& info) {
  return info.applied_by.empty() ? "current_user" : conn.quote_literal(info.applied_by);
}

// A Flyway version in canonical form: "1.01.0" -> "1.1" (Flyway compares numerically and
// treats trailing zero parts as equal).
std::string canonical_version(const std::string& v) {
  std::vector<std::string> parts;
  for (auto p : util::split(v, '.')) {
    size_t i = 0;
    while (i + 1 < p.size() && p[i] == '0') ++i;
    parts.push_back(p.substr(i));
  }
  while (parts.size() > 1 && parts.back() == "0") parts.pop_back();
  return util::join(parts, ".");
}

class PrismaHistory : public ToolHistory {
 public:
  explicit PrismaHistory(std::string schema) : m_schema(std::move(schema)) {}
  std::string table() const override { return m_schema + "._prisma_migrations"; }

  void load(db::Connection& conn, const MigrationSet& set, AppliedSet& applied) override {
    if (!table_exists(conn, table())) return;
    applied.tool_table = true;
    std::set<std::string> ids;
    for (const auto& m : set.migrations) ids.insert(m.id);
    auto r = conn.exec("SELECT migration_name, checksum, finished_at IS NOT NULL, " +
                       iso("started_at") + ", " + iso("finished_at") +
                       ", coalesce(logs, ''), "
                       "(extract(epoch FROM finished_at - started_at) * 1000)::bigint FROM " +
                       qualified(conn) + " WHERE rolled_back_at IS NULL ORDER BY started_at");
    std::map<std::string, Applied> rows;
    for (int i = 0; i < r.rows(); ++i) {
      Applied a;
      a.name = r.get(i, 0);
      a.checksum = r.get(i, 1);
      a.failed = !r.get_bool(i, 2);
      a.started_at = r.get(i, 3);
      a.finished_at = r.get(i, 4);
      a.error = r.get(i, 5);
      if (!r.is_null(i, 6)) a.duration_ms = r.get_int(i, 6);
      a.source = table();
      auto it = rows.find(a.name);
      // A finished row wins over an earlier failed attempt.
      if (it == rows.end() || it->second.failed) rows[a.name] = a;
    }
    for (auto& [name, a] : rows) {
      if (applied.by_id.count(name)) continue;
      if (ids.count(name))
        applied.by_id[name] = a;
      else
        applied.missing.emplace_back(name, a);
    }
  }

  void create(db::Connection& conn) override {
    conn.exec("CREATE TABLE IF NOT EXISTS " + qualified(conn) +
              " (\n"
              "    \"id\"                    VARCHAR(36) PRIMARY KEY NOT NULL,\n"
              "    \"checksum\"              VARCHAR(64) NOT NULL,\n"
              "    \"finished_at\"           TIMESTAMPTZ,\n"
              "    \"migration_name\"        VARCHAR(255) NOT NULL,\n"
              "    \"logs\"                  TEXT,\n"
              "    \"rolled_back_at\"        TIMESTAMPTZ,\n"
              "    \"started_at\"            TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
              "    \"applied_steps_count\"   INTEGER NOT NULL DEFAULT 0\n"
              ")");
  }

  std::vector<std::string> record(db::Connection& conn, const Migration& m,
                                  const RecordInfo& info) override {
    std::string uuid = conn.server_version() >= 130000
                           ? "gen_random_uuid()::text"
                           : "md5(random()::text || clock_timestamp()::text)::uuid::text";
    std::string name = conn.quote_literal(m.id);
    std::vector<std::string> sql;
    if (info.success) {
      // An earlier failed attempt is marked rolled back, as 'prisma migrate resolve
      // --rolled-back' would, so that 'prisma migrate deploy' does not stop at it.
      sql.push_back("UPDATE " + qualified(conn) + " SET rolled_back_at = now() WHERE " +
                    "migration_name = " + name +
                    " AND finished_at IS NULL AND rolled_back_at IS NULL");
    }
    sql.push_back("INSERT INTO " + qualified(conn) +
                  " (id, checksum, finished_at, migration_name, logs, rolled_back_at, "
                  "started_at, applied_steps_count) VALUES (" +
                  uuid + ", " + conn.quote_literal(m.checksum) + ", " +
                  (info.success ? "clock_timestamp()" : "NULL") + ", " + name + ", " +
                  (info.success ? "NULL" : conn.quote_literal(info.error)) + ", NULL, " +
                  started_sql(conn, info) + ", " + (info.success ? "1" : "0") + ")");
    return sql;
  }

 private:
  std::string qualified(db::Connection& conn) const {
    return conn.quote_ident(m_schema) + "." + conn.quote_ident("_prisma_migrations");
  }
  std::string m_schema;
};

class DrizzleHistory : public ToolHistory {
 public:
  std::string table() const override { return "drizzle.__drizzle_migrations"; }

  void load(db::Connection& conn, const MigrationSet& set, AppliedSet& applied) override {
    if (!table_exists(conn, table())) return;
    applied.tool_table = true;
    auto r = conn.exec("SELECT hash, created_at FROM drizzle.__drizzle_migrations ORDER BY id");
    std::map<std::string, bool> hashes;
    std::map<long long, std::string> by_millis;
    long long newest = -1;
    for (int i = 0; i < r.rows(); ++i) {
      hashes[r.get(i, 0)] = true;
      if (!r.is_null(i, 1)) {
        long long millis = std::stoll(r.get(i, 1));
        by_millis[millis] = r.get(i, 0);
        newest = std::max(newest, millis);
      }
    }
    // Drizzle's own rule: everything up to the newest created_at is applied.
    for (const auto& m : set.migrations) {
      if (applied.by_id.count(m.id)) continue;
      bool by_hash = hashes.count(m.checksum) > 0;
      if (!by_hash && m.created_millis > newest) continue;
      // Where previewdb has been applying, a migration older than the newest row but with no row
      // of its own was never applied (a branch behind its base): pending, applied out of order.
      if (!by_hash && applied.own_table && !by_millis.count(m.created_millis)) continue;
      Applied a;
      a.name = m.id;
      auto it = by_millis.find(m.created_millis);
      a.checksum = by_hash ? m.checksum : it != by_millis.end() ? it->second : "";
      a.source = table();
      applied.by_id[m.id] = a;
    }
  }

  void create(db::Connection& conn) override {
    conn.exec("CREATE SCHEMA IF NOT EXISTS \"drizzle\"");
    conn.exec(
        "CREATE TABLE IF NOT EXISTS \"drizzle\".\"__drizzle_migrations\" (\n"
        "    id SERIAL PRIMARY KEY,\n"
        "    hash text NOT NULL,\n"
        "    created_at bigint\n"
        ")");
  }

  std::vector<std::string> record(db::Connection& conn, const Migration& m,
                                  const RecordInfo& info) override {
    if (!info.success) return {};
    return {"INSERT INTO \"drizzle\".\"__drizzle_migrations\" (\"hash\", \"created_at\") VALUES (" +
            conn.quote_literal(m.checksum) + ", " + std::to_string(m.created_millis) + ")"};
  }
};

// golang-migrate keeps one row: the newest version applied, and whether it is dirty.
class GolangMigrateHistory : public ToolHistory {
 public:
  explicit GolangMigrateHistory(std::string schema) : m_schema(std::move(schema)) {}
  std::string table() const override { return m_schema + ".schema_migrations"; }

  void load(db::Connection& conn, const MigrationSet& set, AppliedSet& applied) override {
    if (!table_exists(conn, table())) return;
    auto r = conn.try_exec(
        "SELECT version::text, dirty FROM " + qualified(conn) + " ORDER BY version DESC LIMIT 1",
        {}, "42703");
    if (!r) {
      m_enabled = false;
      applied.warnings.push_back(table() +
                                 " exists but is not golang-migrate's (no \"dirty\" "
                                 "column): previewdb leaves it alone");
      return;
    }
    applied.tool_table = true;
    if (r->rows() == 0) return;
    m_current = r->get(0, 0);
    bool dirty = r->get_bool(0, 1);
    // The single row implies every lower version. Between the first and the last version
    // previewdb's own table records, that table knows better: a gap there is a migration applied
    // out of order later (a branch behind the base), not one golang-migrate already ran.
    std::string own_min, own_max;
    auto note_own = [&](const std::string& version) {
      if (version.empty()) return;
      if (own_min.empty() || detail::compare_numeric(version, own_min) < 0) own_min = version;
      if (own_max.empty() || detail::compare_numeric(version, own_max) > 0) own_max = version;
    };
    for (const auto& m : set.migrations) {
      if (auto it = applied.by_id.find(m.id);
          it != applied.by_id.end() && it->second.source == k_own_table) {
        note_own(m.version);
      }
    }
    for (const auto& [id, a] : applied.missing) {
      if (a.source == k_own_table) note_own(id.substr(0, id.find_first_not_of("0123456789")));
    }
    for (const auto& m : set.migrations) {
      if (applied.by_id.count(m.id)) continue;
      int c = detail::compare_numeric(m.version, m_current);
      if (c > 0) continue;
      if (!own_min.empty() && detail::compare_numeric(m.version, own_min) > 0 &&
          detail::compare_numeric(m.version, own_max) < 0) {
        continue;
      }
      Applied a;
      a.name = m.id;
      a.source = table();
      if (c == 0 && dirty) {
        a.failed = true;
        a.error = "golang-migrate marked version " + m_current + " dirty";
      }
      applied.by_id[m.id] = a;
    }
  }

  void create(db::Connection& conn) override {
    conn.exec("CREATE TABLE IF NOT EXISTS " + qualified(conn) +
              " (version bigint not null primary key, dirty boolean not null)");
  }

  std::vector<std::string> record(db::Connection& conn, const Migration& m,
                                  const RecordInfo& info) override {
    return set_version(conn, m, !info.success);
  }

  std::vector<std::string> before_autocommit(db::Connection& conn, const Migration& m) override {
    return set_version(conn, m, true);
  }

 private:
  std::vector<std::string> set_version(db::Connection& conn, const Migration& m, bool dirty) {
    // Only the newest version is kept; an older migration applied late changes nothing.
    if (!m_enabled || (!m_current.empty() && detail::compare_numeric(m.version, m_current) < 0)) {
      return {};
    }
    m_current = m.version;
    return {"DELETE FROM " + qualified(conn), "INSERT INTO " + qualified(conn) +
                                                  " (version, dirty) VALUES (" + m.version + ", " +
                                                  (dirty ? "true" : "false") + ")"};
  }
  std::string qualified(db::Connection& conn) const {
    return conn.quote_ident(m_schema) + "." + conn.quote_ident("schema_migrations");
  }
  std::string m_schema;
  std::string m_current;
  bool m_enabled = true;
};

class DbmateHistory : public ToolHistory {
 public:
  explicit DbmateHistory(std::string schema) : m_schema(std::move(schema)) {}
  std::string table() const override { return m_schema + ".schema_migrations"; }

  void load(db::Connection& conn, const MigrationSet& set, AppliedSet& applied) override {
    if (!table_exists(conn, table())) return;
    auto dirty = conn.exec(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND "
        "table_name = 'schema_migrations' AND column_name = 'dirty'",
        {m_schema});
    if (dirty.rows() > 0) {
      m_enabled = false;
      applied.warnings.push_back(table() +
                                 " is golang-migrate's (it has a \"dirty\" column), not "
                                 "dbmate's: previewdb leaves it alone");
      return;
    }
    applied.tool_table = true;
    auto r = conn.exec("SELECT version::text FROM " + qualified(conn));
    std::map<std::string, const Migration*> by_version;
    for (const auto& m : set.migrations) by_version[m.version] = &m;
    for (int i = 0; i < r.rows(); ++i) {
      std::string v = r.get(i, 0);
      Applied a;
      a.name = v;
      a.source = table();
      auto it = by_version.find(v);
      if (it == by_version.end()) {
        applied.missing.emplace_back(v, a);
      } else if (!applied.by_id.count(it->second->id)) {
        applied.by_id[it->second->id] = a;
      }
    }
  }

  void create(db::Connection& conn) override {
    conn.exec("CREATE TABLE IF NOT EXISTS " + qualified(conn) +
              " (version varchar(128) primary key)");
  }

  std::vector<std::string> record(db::Connection& conn, const Migration& m,
                                  const RecordInfo& info) override {
    if (!info.success || !m_enabled) return {};
    return {"INSERT INTO " + qualified(conn) + " (version) VALUES (" +
            conn.quote_literal(m.version) + ") ON CONFLICT DO NOTHING"};
  }

 private:
  std::string qualified(db::Connection& conn) const {
    return conn.quote_ident(m_schema) + "." + conn.quote_ident("schema_migrations");
  }
  std::string m_schema;
  bool m_enabled = true;
};

class FlywayHistory : public ToolHistory {
 public:
  explicit FlywayHistory(std::string schema) : m_schema(std::move(schema)) {}
  std::string table() const override { return m_schema + ".flyway_schema_history"; }

  void load(db::Connection& conn, const MigrationSet& set, AppliedSet& applied) override {
    if (!table_exists(conn, table())) return;
    applied.tool_table = true;
    auto r = conn.exec("SELECT version, description, script, checksum, success, type, " +
                       iso("installed_on") + ", execution_time, installed_by FROM " +
                       qualified(conn) + " ORDER BY installed_rank");
    std::map<std::string, const Migration*> by_version, by_script;
    for (const auto& m : set.migrations) {
      if (m.repeatable)
        by_script[m.script] = &m;
      else
        by_version[canonical_version(m.version)] = &m;
    }
    std::map<std::string, Applied> found;  // id -> latest row
    std::string baseline;
    for (int i = 0; i < r.rows(); ++i) {
      std::string type = r.get(i, 5);
      if (type == "SCHEMA") continue;
      if (type == "BASELINE") {
        baseline = canonical_version(r.get(i, 0));
        continue;
      }
      Applied a;
      a.name = r.get(i, 1);
      if (!r.is_null(i, 3)) a.flyway_checksum = static_cast<std::int32_t>(r.get_int(i, 3));
      a.failed = !r.get_bool(i, 4);
      a.finished_at = r.get(i, 6);
      a.duration_ms = r.get_int(i, 7);
      a.applied_by = r.get(i, 8);
      a.source = table();
      const Migration* m = nullptr;
      std::string key;
      if (r.is_null(i, 0)) {
        auto it = by_script.find(r.get(i, 2));
        key = r.get(i, 2);
        if (it != by_script.end()) m = it->second;
      } else {
        key = "V" + r.get(i, 0);
        auto it = by_version.find(canonical_version(r.get(i, 0)));
        if (it != by_version.end()) m = it->second;
      }
      // Flyway Teams' undo (type UNDO_SQL): the version is pending again; a failed undo leaves
      // it failed.
      bool undo = type.rfind("UNDO", 0) == 0;
      if (undo && !a.failed) {
        if (m) found.erase(m->id);
        std::erase_if(applied.missing, [&](const auto& e) { return e.first == key; });
        continue;
      }
      if (undo) a.error = "its undo failed (" + r.get(i, 2) + ")";
      if (!m) {
        applied.missing.emplace_back(key, a);
        continue;
      }
      found[m->id] = a;
    }
    if (!baseline.empty()) {
      for (const auto& m : set.migrations) {
        if (m.repeatable || found.count(m.id)) continue;
        auto pm = util::split(canonical_version(m.version), '.');
        auto pb = util::split(baseline, '.');
        int c = 0;
        for (size_t i = 0; i < std::max(pm.size(), pb.size()) && c == 0; ++i) {
          c = detail::compare_numeric(i < pm.size() ? pm[i] : "0", i < pb.size() ? pb[i] : "0");
        }
        if (c <= 0) found[m.id] = Applied{.name = m.name, .source = table() + " (baseline)"};
      }
    }
    for (auto& [id, a] : found) {
      if (!applied.by_id.count(id)) applied.by_id[id] = a;
    }
  }

  void create(db::Connection& conn) override {
    std::string t = qualified(conn);
    conn.exec("CREATE TABLE IF NOT EXISTS " + t +
              " (\n"
              "    \"installed_rank\" INT NOT NULL,\n"
              "    \"version\" VARCHAR(50),\n"
              "    \"description\" VARCHAR(200) NOT NULL,\n"
              "    \"type\" VARCHAR(20) NOT NULL,\n"
              "    \"script\" VARCHAR(1000) NOT NULL,\n"
              "    \"checksum\" INTEGER,\n"
              "    \"installed_by\" VARCHAR(100) NOT NULL,\n"
              "    \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),\n"
              "    \"execution_time\" INTEGER NOT NULL,\n"
              "    \"success\" BOOLEAN NOT NULL,\n"
              "    CONSTRAINT \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\")\n"
              ")");
    conn.exec("CREATE INDEX IF NOT EXISTS \"flyway_schema_history_s_idx\" ON " + t +
              " (\"success\")");
  }

  std::vector<std::string> record(db::Connection& conn, const Migration& m,
                                  const RecordInfo& info) override {
    std::string t = qualified(conn);
    return {"INSERT INTO " + t +
            " (installed_rank, version, description, type, script, checksum, installed_by, "
            "installed_on, execution_time, success) VALUES ((SELECT coalesce(max(installed_rank), "
            "0) + 1 FROM " +
            t + "), " + (m.repeatable ? "NULL" : conn.quote_literal(m.version)) + ", " +
            conn.quote_literal(m.name) + ", 'SQL', " + conn.quote_literal(m.script) + ", " +
            std::to_string(m.flyway_checksum) + ", " + applied_by_sql(conn, info) + ", now(), " +
            duration_sql(info) + ", " + (info.success ? "true" : "false") + ")"};
  }

 private:
  std::string qualified(db::Connection& conn) const {
    return conn.quote_ident(m_schema) + "." + conn.quote_ident("flyway_schema_history");
  }
  std::string m_schema;
};

}  // namespace

std::unique_ptr<ToolHistory> make_tool_history(Format format, const std::string& schema) {
  switch (format) {
    case Format::prisma:
      return std::make_unique<PrismaHistory>(schema);
    case Format::drizzle:
    case Format::drizzle1:
      return std::make_unique<DrizzleHistory>();
    case Format::golang_migrate:
      return std::make_unique<GolangMigrateHistory>(schema);
    case Format::dbmate:
      return std::make_unique<DbmateHistory>(schema);
    case Format::flyway:
      return std::make_unique<FlywayHistory>(schema);
    case Format::plain:
      break;
  }
  return nullptr;
}

bool table_exists(db::Connection& conn, const std::string& qualified) {
  auto dot = qualified.find('.');
  auto r = conn.exec(
      "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
      "c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
      {qualified.substr(0, dot), qualified.substr(dot + 1)});
  return r.rows() > 0;
}

void create_own_table(db::Connection& conn) {
  conn.exec("CREATE SCHEMA IF NOT EXISTS _previewdb");
  conn.exec(
      "CREATE TABLE IF NOT EXISTS _previewdb.schema_migrations (\n"
      "    id text PRIMARY KEY,\n"
      "    name text NOT NULL,\n"
      "    format text NOT NULL,\n"
      "    checksum text NOT NULL,\n"
      "    status text NOT NULL CHECK (status IN ('applied', 'failed')),\n"
      "    statements integer NOT NULL,\n"
      "    started_at timestamptz NOT NULL,\n"
      "    finished_at timestamptz,\n"
      "    duration_ms bigint,\n"
      "    applied_by text NOT NULL,\n"
      "    error text\n"
      ")");
}

AppliedSet load_applied(db::Connection& conn, const MigrationSet& set, ToolHistory* tool) {
  AppliedSet applied;
  if (table_exists(conn, k_own_table)) {
    applied.own_table = true;
    std::set<std::string> ids;
    for (const auto& m : set.migrations) ids.insert(m.id);
    auto r = conn.exec("SELECT id, name, checksum, status, " + iso("started_at") + ", " +
                       iso("finished_at") +
                       ", duration_ms, statements, applied_by, coalesce(error, '') FROM "
                       "_previewdb.schema_migrations");
    for (int i = 0; i < r.rows(); ++i) {
      Applied a;
      std::string id = r.get(i, 0);
      a.name = r.get(i, 1);
      a.checksum = r.get(i, 2);
      a.failed = r.get(i, 3) != "applied";
      a.started_at = r.get(i, 4);
      a.finished_at = r.get(i, 5);
      if (!r.is_null(i, 6)) a.duration_ms = r.get_int(i, 6);
      a.statements = static_cast<int>(r.get_int(i, 7));
      a.applied_by = r.get(i, 8);
      a.error = r.get(i, 9);
      a.source = k_own_table;
      if (ids.count(id))
        applied.by_id[id] = a;
      else
        applied.missing.emplace_back(id, a);
    }
  }
  if (tool) {
    // A migration previewdb's table calls missing may still be the tool's: keep only one entry.
    size_t own_missing = applied.missing.size();
    tool->load(conn, set, applied);
    dedupe_missing(applied, own_missing);
  }
  return applied;
}

namespace {

// The version a history key starts with ("V0003__x" and "3" both give "3"); "" when none.
std::string leading_version(std::string_view key) {
  if (!key.empty() && (key[0] == 'V' || key[0] == 'v')) key.remove_prefix(1);
  size_t n = 0;
  while (n < key.size() && std::isdigit(static_cast<unsigned char>(key[n]))) ++n;
  std::string_view digits = key.substr(0, n);
  while (digits.size() > 1 && digits[0] == '0') digits.remove_prefix(1);
  return std::string(digits);
}

}  // namespace

void dedupe_missing(AppliedSet& applied, size_t own_count) {
  // The tool's table names a migration by its version ("3"), previewdb's by its id
  // ("0003_add_orders"): one removed file is one missing migration, not two.
  std::vector<bool> taken(own_count, false);
  std::vector<std::pair<std::string, Applied>> out(applied.missing.begin(),
                                                   applied.missing.begin() + own_count);
  for (size_t i = own_count; i < applied.missing.size(); ++i) {
    const auto& key = applied.missing[i].first;
    bool same = false;
    for (size_t j = 0; j < own_count && !same; ++j) {
      if (taken[j]) continue;
      const auto& own = applied.missing[j].first;
      std::string v = leading_version(key);
      if (own == key || (!v.empty() && v == leading_version(own))) same = taken[j] = true;
    }
    if (!same) out.push_back(applied.missing[i]);
  }
  applied.missing = std::move(out);
}

std::string record_own(db::Connection& conn, const Migration& m, Format format,
                       const RecordInfo& info) {
  std::string finished = info.success ? "clock_timestamp()" : "NULL";
  return "INSERT INTO _previewdb.schema_migrations (id, name, format, checksum, status, "
         "statements, started_at, finished_at, duration_ms, applied_by, error) VALUES (" +
         conn.quote_literal(m.id) + ", " + conn.quote_literal(m.name) + ", " +
         conn.quote_literal(format_name(format)) + ", " + conn.quote_literal(m.checksum) + ", " +
         (info.success ? "'applied'" : "'failed'") + ", " + std::to_string(m.statements.size()) +
         ", " + started_sql(conn, info) + ", " + finished + ", " + duration_sql(info) + ", " +
         applied_by_sql(conn, info) + ", " +
         (info.error.empty() ? "NULL" : conn.quote_literal(info.error)) +
         ") ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, format = EXCLUDED.format, "
         "checksum = EXCLUDED.checksum, status = EXCLUDED.status, statements = "
         "EXCLUDED.statements, started_at = EXCLUDED.started_at, finished_at = "
         "EXCLUDED.finished_at, duration_ms = EXCLUDED.duration_ms, applied_by = "
         "EXCLUDED.applied_by, error = EXCLUDED.error";
}

std::vector<HistoryEntry> read_own_history(db::Connection& conn, int limit) {
  std::vector<HistoryEntry> out;
  if (!table_exists(conn, k_own_table)) return out;
  auto r = conn.exec("SELECT id, name, format, checksum, status, " + iso("started_at") + ", " +
                         iso("finished_at") +
                         ", applied_by, coalesce(error, ''), coalesce(duration_ms, 0), "
                         "statements FROM _previewdb.schema_migrations "
                         "ORDER BY started_at DESC, id DESC LIMIT $1",
                     {std::to_string(limit)});
  for (int i = 0; i < r.rows(); ++i) {
    HistoryEntry e;
    e.id = r.get(i, 0);
    e.name = r.get(i, 1);
    e.format = r.get(i, 2);
    e.checksum = r.get(i, 3);
    e.status = r.get(i, 4);
    e.started_at = r.get(i, 5);
    e.finished_at = r.get(i, 6);
    e.applied_by = r.get(i, 7);
    e.error = r.get(i, 8);
    e.duration_ms = r.get_int(i, 9);
    e.statements = static_cast<int>(r.get_int(i, 10));
    out.push_back(e);
  }
  return out;
}

}  // namespace previewdb::migrate
