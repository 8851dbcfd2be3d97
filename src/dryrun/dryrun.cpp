#include "dryrun/dryrun.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "core/registry.hpp"
#include "db/advisory_lock.hpp"
#include "migrate/readers.hpp"
#include "storage/store.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace previewdb::dryrun {

namespace {

using Clock = std::chrono::steady_clock;
using migrate::Migration;

long long ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

std::string human(long long bytes) {
  return util::human_bytes(static_cast<double>(bytes));
}

// The clone: registered as a build before it exists (so a janitor drops it if this process
// dies: the build lock goes with the session), never renamed, always dropped.
class Clone {
 public:
  explicit Clone(db::Connection& conn) : m_conn(conn), m_reg(core::Registry::open(conn)) {
    m_name = core::temp_database_name();
    m_lock.emplace(conn, core::build_lock_key(m_name), std::chrono::seconds(5), m_name);
    core::Metadata meta;
    meta.kind = core::Kind::personal;  // stays "building" under its temporary name
    meta.created_at = util::to_iso8601(std::chrono::system_clock::now());
    meta.created_by = "previewdb dry-run";
    m_row = m_reg.begin_build(m_name, m_name, meta);
  }
  ~Clone() { drop(); }
  Clone(const Clone&) = delete;
  Clone& operator=(const Clone&) = delete;
  const std::string& name() const { return m_name; }
  void built() { m_reg.built(m_row, m_name); }
  void drop() {
    if (m_dropped) return;
    m_dropped = true;
    core::drop_temporary(m_conn, m_name);
    try {
      m_reg.remove_row(m_row);
    } catch (const std::exception& e) {
      util::log::warn(std::string("could not update the registry: ") + e.what());
    }
    util::log::debug("dropped the clone " + m_name);
  }

 private:
  db::Connection& m_conn;
  core::Registry m_reg;
  std::string m_name;
  std::optional<db::AdvisoryLock> m_lock;
  long long m_row = 0;
  bool m_dropped = false;
};

std::vector<std::string> sessions_on(db::Connection& conn, const std::string& db) {
  auto r = conn.exec(
      "SELECT pid::text FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
      "AND backend_type = 'client backend' ORDER BY pid",
      {db});
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.get(i, 0));
  return out;
}

// ---- observing the clone -----------------------------------------------------------------------

struct Baseline {
  std::vector<long long> oids;
  std::map<long long, TableState> tables;  // as at the run's start (columns: the run's start)
};

std::string oid_array(const std::vector<long long>& oids) {
  std::string s = "{";
  for (size_t i = 0; i < oids.size(); ++i) s += (i ? "," : "") + std::to_string(oids[i]);
  return s + "}";
}

// Ordinary tables (and partitions) outside the system schemas and previewdb's own.
Baseline read_baseline(db::Connection& c) {
  Baseline b;
  auto r = c.exec(
      "SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relfilenode "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', "
      "'_previewdb') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' "
      "ORDER BY 2");
  for (int i = 0; i < r.rows(); ++i) {
    TableState t;
    t.oid = r.get_int(i, 0);
    t.name = r.get(i, 1);
    t.relfilenode = r.get_int(i, 2);
    b.oids.push_back(t.oid);
    b.tables[t.oid] = t;
  }
  if (b.oids.empty()) return b;
  auto cols = c.exec(
      "SELECT attrelid, attname FROM pg_attribute WHERE attrelid = ANY($1::oid[]) AND attnum > 0 "
      "AND NOT attisdropped ORDER BY attrelid, attnum",
      {oid_array(b.oids)});
  for (int i = 0; i < cols.rows(); ++i) {
    b.tables[cols.get_int(i, 0)].columns.push_back(cols.get(i, 1));
  }
  return b;
}

// The pre-existing tables as they are now: still there, their relfilenode, and the run-start
// columns still alive. Rows come from `rows` (kept up to date by the caller).
std::vector<TableState> current_tables(db::Connection& c, const Baseline& b,
                                       const std::map<long long, long long>& rows) {
  std::vector<TableState> out;
  if (b.oids.empty()) return out;
  auto r = c.exec(
      "SELECT c.oid, c.relfilenode FROM pg_class c WHERE c.oid = ANY($1::oid[]) ORDER BY c.oid",
      {oid_array(b.oids)});
  auto cols = c.exec(
      "SELECT attrelid, attname FROM pg_attribute WHERE attrelid = ANY($1::oid[]) AND attnum > 0 "
      "AND NOT attisdropped",
      {oid_array(b.oids)});
  std::map<long long, std::set<std::string>> live;
  for (int i = 0; i < cols.rows(); ++i) live[cols.get_int(i, 0)].insert(cols.get(i, 1));
  for (int i = 0; i < r.rows(); ++i) {
    long long oid = r.get_int(i, 0);
    const TableState& base = b.tables.at(oid);
    TableState t;
    t.oid = oid;
    t.name = base.name;
    t.relfilenode = r.get_int(i, 1);
    auto it = rows.find(oid);
    t.rows = it == rows.end() ? 0 : it->second;
    for (const auto& col : base.columns) {
      if (live[oid].count(col)) t.columns.push_back(col);
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Exact row counts (outside any transaction of the migration: count(*) takes ACCESS SHARE, which
// must not show up as a lock the migration took).
void count_rows(db::Connection& c, const Baseline& b, const std::set<long long>& which,
                std::map<long long, long long>& rows) {
  if (which.empty()) return;
  auto alive = c.exec("SELECT oid FROM pg_class WHERE oid = ANY($1::oid[])",
                      {oid_array(std::vector<long long>(which.begin(), which.end()))});
  for (int i = 0; i < alive.rows(); ++i) {
    long long oid = alive.get_int(i, 0);
    rows[oid] = c.exec("SELECT count(*) FROM " + b.tables.at(oid).name).get_int(0, 0);
  }
}

std::map<std::pair<long long, std::string>, std::string> column_types(db::Connection& c,
                                                                      const Baseline& b) {
  std::map<std::pair<long long, std::string>, std::string> out;
  if (b.oids.empty()) return out;
  auto r = c.exec(
      "SELECT attrelid, attname, format_type(atttypid, atttypmod) FROM pg_attribute "
      "WHERE attrelid = ANY($1::oid[]) AND attnum > 0 AND NOT attisdropped",
      {oid_array(b.oids)});
  for (int i = 0; i < r.rows(); ++i) out[{r.get_int(i, 0), r.get(i, 1)}] = r.get(i, 2);
  return out;
}

// A statement's outcome, with the error fields the classification needs.
struct Outcome {
  bool ok = true;
  std::string tuples;
  std::string sqlstate, message, detail, schema, table, column, constraint;
};

Outcome run_sql(db::Connection& c, const std::string& sql) {
  Outcome o;
  PGconn* raw = c.raw();
  if (!PQsendQuery(raw, sql.c_str())) {
    o.ok = false;
    o.message = util::trim(PQerrorMessage(raw));
    return o;
  }
  while (PGresult* r = PQgetResult(raw)) {
    std::unique_ptr<PGresult, decltype(&PQclear)> guard(r, &PQclear);
    auto status = PQresultStatus(r);
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT) {
      db::end_copy(raw, status);
      continue;
    }
    if (status == PGRES_FATAL_ERROR) {
      if (!o.ok) continue;
      o.ok = false;
      auto field = [&](int code) {
        const char* v = PQresultErrorField(r, code);
        return std::string(v ? v : "");
      };
      o.sqlstate = field(PG_DIAG_SQLSTATE);
      o.message = field(PG_DIAG_MESSAGE_PRIMARY);
      o.detail = field(PG_DIAG_MESSAGE_DETAIL);
      o.schema = field(PG_DIAG_SCHEMA_NAME);
      o.table = field(PG_DIAG_TABLE_NAME);
      o.column = field(PG_DIAG_COLUMN_NAME);
      o.constraint = field(PG_DIAG_CONSTRAINT_NAME);
      if (o.message.empty()) o.message = util::trim(PQerrorMessage(raw));
    } else if (o.ok) {
      std::string t = PQcmdTuples(r);
      if (!t.empty()) o.tuples = t;
    }
  }
  if (o.ok && PQstatus(raw) != CONNECTION_OK) {
    o.ok = false;
    o.message = util::trim(PQerrorMessage(raw));
  }
  return o;
}

std::string qualified(db::Connection& c, const std::string& schema, const std::string& table) {
  return (schema.empty() ? "" : c.quote_ident(schema) + ".") + c.quote_ident(table);
}

// How many existing rows a failed constraint rejects. NOT NULL: the column's NULLs. CHECK,
// FOREIGN KEY, UNIQUE: the statement runs again on an emptied table (TRUNCATE ... CASCADE inside
// a savepoint, rolled back) so that the constraint exists in the catalog; from its definition
// there (pg_get_constraintdef, conkey/confkey, the index's columns) a count is built and run
// against the real rows.
void count_failing_rows(db::Connection& c, const migrate::Statement& st, const Outcome& err,
                        Failure& f) {
  if (err.table.empty()) return;
  std::string table = qualified(c, err.schema, err.table);
  f.table = err.schema.empty() ? err.table : err.schema + "." + err.table;
  f.constraint = err.constraint;
  f.column = err.column;
  try {
    if (err.sqlstate == "23502" && !err.column.empty()) {
      f.failing_rows = c.exec("SELECT count(*) FROM " + table + " WHERE " +
                              c.quote_ident(err.column) + " IS NULL")
                           .get_int(0, 0);
      return;
    }
    bool check = err.sqlstate == "23514", fk = err.sqlstate == "23503",
         unique = err.sqlstate == "23505";
    if (!(check || fk || unique) || err.constraint.empty()) return;
    std::string count_sql;
    c.exec("SAVEPOINT previewdb_probe");
    if (run_sql(c, "TRUNCATE " + table + " CASCADE").ok && run_sql(c, st.sql).ok) {
      auto con = c.exec(
          "SELECT con.oid, pg_get_constraintdef(con.oid), "
          "(SELECT string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY k.i) FROM "
          "unnest(con.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = "
          "con.conrelid AND a.attnum = k.n), "
          "(SELECT string_agg('r.' || quote_ident(a.attname), ', ' ORDER BY k.i) FROM "
          "unnest(con.confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = "
          "con.confrelid AND a.attnum = k.n), "
          "con.confrelid::regclass::text, con.conindid "
          "FROM pg_constraint con WHERE con.conrelid = $1::regclass AND con.conname = $2",
          {table, err.constraint});
      if (con.rows()) f.constraint_definition = con.get(0, 1);
      if (check && con.rows() && f.constraint_definition.rfind("CHECK ", 0) == 0) {
        std::string expr = f.constraint_definition.substr(6);
        const std::string nv = " NOT VALID";
        if (expr.size() > nv.size() && expr.compare(expr.size() - nv.size(), nv.size(), nv) == 0) {
          expr.resize(expr.size() - nv.size());
        }
        count_sql = "SELECT count(*) FROM " + table + " WHERE NOT " + expr;
      } else if (fk && con.rows() && !con.is_null(0, 2) && !con.is_null(0, 3)) {
        std::string mine = con.get(0, 2), theirs = con.get(0, 3);
        count_sql = "SELECT count(*) FROM " + table + " t WHERE ROW(" + mine +
                    ") IS NOT NULL AND NOT EXISTS (SELECT 1 FROM " + con.get(0, 4) +
                    " r WHERE ROW(" + theirs + ") = ROW(" + mine + "))";
      } else if (unique) {
        // A UNIQUE/PRIMARY KEY constraint's index, or a unique index of that name.
        auto idx = c.exec(
            "SELECT (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i) FROM "
            "unnest(x.indkey::int2[]) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON "
            "a.attrelid = x.indrelid AND a.attnum = k.n), 0 = ANY(x.indkey::int2[]) "
            "FROM pg_index x WHERE x.indexrelid = coalesce((SELECT conindid FROM pg_constraint "
            "WHERE conrelid = $1::regclass AND conname = $2), (SELECT i.oid FROM pg_class i "
            "WHERE i.relname = $2 AND i.relkind = 'i' AND i.relnamespace = (SELECT relnamespace "
            "FROM pg_class WHERE oid = $1::regclass)))",
            {table, err.constraint});
        if (idx.rows() && !idx.is_null(0, 0) && !idx.get_bool(0, 1)) {
          std::string cols = idx.get(0, 0);
          if (f.constraint_definition.empty()) f.constraint_definition = "UNIQUE (" + cols + ")";
          count_sql = "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM " + table +
                      " WHERE ROW(" + cols + ") IS NOT NULL GROUP BY " + cols +
                      " HAVING count(*) > 1) d";
        }
      }
    }
    c.exec("ROLLBACK TO SAVEPOINT previewdb_probe");
    if (count_sql.empty()) return;
    c.exec("SAVEPOINT previewdb_probe");
    try {
      f.failing_rows = c.exec(count_sql).get_int(0, 0);
      c.exec("RELEASE SAVEPOINT previewdb_probe");
    } catch (const db::QueryError& e) {
      c.exec("ROLLBACK TO SAVEPOINT previewdb_probe");
      util::log::debug("could not count the failing rows: " + e.primary());
    }
  } catch (const std::exception& e) {
    util::log::debug(std::string("could not count the failing rows: ") + e.what());
  }
}

// Looks at pg_locks from a second session every k_lock_sample_interval_ms while the dry run's
// session runs a statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY): the
// relation locks that session holds on the tables that existed before the run.
class LockSampler {
 public:
  LockSampler(db::Connection& watcher, int pid, const Baseline& base)
      : m_watcher(watcher), m_pid(std::to_string(pid)), m_base(base) {
    m_thread = std::thread([this] { loop(); });
  }
  ~LockSampler() { stop(); }
  LockSampler(const LockSampler&) = delete;
  LockSampler& operator=(const LockSampler&) = delete;
  // Stops looking; what was seen.
  std::vector<LockSample> stop() {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
    return m_samples;
  }

 private:
  void loop() {
    auto start = Clock::now();
    const std::string oids = oid_array(m_base.oids);
    while (!m_stop) {
      try {
        auto r = m_watcher.exec(
            "SELECT relation::bigint, mode FROM pg_locks WHERE pid = $1::int AND "
            "locktype = 'relation' AND granted AND relation = ANY($2::oid[])",
            {m_pid, oids});
        long long at = ms_between(start, Clock::now());
        for (int i = 0; i < r.rows(); ++i) {
          auto it = m_base.tables.find(r.get_int(i, 0));
          if (it != m_base.tables.end()) m_samples.push_back({at, it->second.name, r.get(i, 1)});
        }
      } catch (const std::exception& e) {
        util::log::debug(std::string("lock sampling stopped: ") + e.what());
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(k_lock_sample_interval_ms));
    }
  }

  db::Connection& m_watcher;
  std::string m_pid;
  const Baseline& m_base;
  std::atomic<bool> m_stop{false};
  std::vector<LockSample> m_samples;
  std::thread m_thread;
};

class Runner {
 public:
  Runner(db::Connection& c, const Baseline& b, const DryRunOptions& o)
      : m_c(c), m_base(b), m_options(o) {}

  // Runs `statements` of m as one transaction (BEGIN, a savepoint around each, COMMIT), watching
  // locks, type changes and deletes. Returns false when a statement failed (rolled back).
  bool run_block(const Migration& m, const std::vector<const migrate::Statement*>& statements,
                 MigrationObservation& obs, std::set<long long>& touched) {
    m_c.exec("BEGIN");
    // pg_stat_xact_user_tables holds what this backend has not yet reported (it reports when
    // idle, at most once a second, never inside a transaction): the difference between now and
    // the end of the transaction is this block's own.
    auto counters = [&] {
      std::map<long long, std::array<long long, 3>> out;
      if (m_base.oids.empty()) return out;
      auto r = m_c.exec(
          "SELECT relid, n_tup_ins, n_tup_del, n_tup_upd FROM pg_stat_xact_user_tables "
          "WHERE relid = ANY($1::oid[])",
          {oid_array(m_base.oids)});
      for (int i = 0; i < r.rows(); ++i) {
        out[r.get_int(i, 0)] = {r.get_int(i, 1), r.get_int(i, 2), r.get_int(i, 3)};
      }
      return out;
    };
    auto start_counters = counters();
    std::map<long long, std::pair<std::string, Clock::time_point>> strongest;
    std::map<long long, int> first_line;
    bool ok = true;
    for (const auto* st : statements) {
      check_interrupt();
      auto types_before = column_types(m_c, m_base);
      m_c.exec("SAVEPOINT previewdb_dry_run");
      auto t0 = Clock::now();
      Outcome out = run_sql(m_c, st->sql);
      obs.duration_ms += ms_between(t0, Clock::now());
      if (!out.ok) {
        check_interrupt();
        m_c.exec("ROLLBACK TO SAVEPOINT previewdb_dry_run");
        fail(m, *st, out, obs);
        ok = false;
        break;
      }
      if (!out.tuples.empty()) obs.rows_affected += std::atoll(out.tuples.c_str());
      auto types_after = column_types(m_c, m_base);
      std::vector<TypeChange> changes;
      for (const auto& [key, type] : types_before) {
        auto it = types_after.find(key);
        if (it == types_after.end() || it->second == type) continue;
        const TableState& t = m_base.tables.at(key.first);
        // Only columns that existed before the run.
        if (std::find(t.columns.begin(), t.columns.end(), key.second) == t.columns.end()) continue;
        changes.push_back({t.name, key.second, type, it->second, 0, 0});
      }
      if (!changes.empty()) {
        // Back to the values before the statement, count what the cast changes, run it again.
        m_c.exec("ROLLBACK TO SAVEPOINT previewdb_dry_run");
        std::vector<std::string> kept;
        for (size_t k = 0; k < changes.size(); ++k) kept.push_back(keep_old_values(changes[k], k));
        Outcome again = run_sql(m_c, st->sql);
        if (!again.ok) {
          m_c.exec("ROLLBACK TO SAVEPOINT previewdb_dry_run");
          fail(m, *st, again, obs);
          ok = false;
          break;
        }
        for (size_t k = 0; k < changes.size(); ++k) {
          if (!kept[k].empty()) compare_kept(changes[k], kept[k]);
          obs.type_changes.push_back(std::move(changes[k]));
        }
      }
      m_c.exec("RELEASE SAVEPOINT previewdb_dry_run");
      if (!m_base.oids.empty()) {
        auto locks = m_c.exec(
            "SELECT relation::bigint, mode FROM pg_locks WHERE pid = pg_backend_pid() AND "
            "locktype = 'relation' AND granted AND relation = ANY($1::oid[])",
            {oid_array(m_base.oids)});
        for (int i = 0; i < locks.rows(); ++i) {
          long long oid = locks.get_int(i, 0);
          std::string mode = locks.get(i, 1);
          auto it = strongest.find(oid);
          if (it == strongest.end()) {
            strongest[oid] = {mode, t0};
            first_line[oid] = st->line;
          } else if (lock_rank(mode) > lock_rank(it->second.first)) {
            it->second.first = mode;
          }
        }
      }
    }
    for (const auto& [oid, now] : counters()) {
      std::array<long long, 3> then{0, 0, 0};
      if (auto it = start_counters.find(oid); it != start_counters.end()) then = it->second;
      long long ins = now[0] - then[0], del = now[1] - then[1], upd = now[2] - then[2];
      if (ok && del > 0) obs.deleted[oid] += del;
      if (ins + del + upd > 0) obs.writes[m_base.tables.at(oid).name] += ins + del + upd;
      if (ins > 0 || del > 0) touched.insert(oid);
    }
    m_c.exec(ok ? "COMMIT" : "ROLLBACK");
    auto end = Clock::now();
    if (ok) {
      for (const auto& [oid, lock] : strongest) {
        merge_lock(obs, {m_base.tables.at(oid).name, lock.first, ms_between(lock.second, end),
                         first_line[oid]});
      }
    }
    return ok;
  }

  // A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM...).
  bool run_bare(const Migration& m, const migrate::Statement& st, MigrationObservation& obs) {
    check_interrupt();
    std::optional<LockSampler> sampler;
    if (!m_base.oids.empty()) sampler.emplace(watcher(), PQbackendPID(m_c.raw()), m_base);
    auto t0 = Clock::now();
    Outcome out = run_sql(m_c, st.sql);
    obs.duration_ms += ms_between(t0, Clock::now());
    std::vector<LockSample> samples;
    if (sampler) samples = sampler->stop();
    obs.locks_measured = false;
    obs.locks_sampled = true;
    if (!out.ok) {
      check_interrupt();
      fail(m, st, out, obs);
      return false;
    }
    for (auto& l : aggregate_lock_samples(samples, k_lock_sample_interval_ms, st.line)) {
      merge_lock(obs, std::move(l));
    }
    if (!out.tuples.empty()) obs.rows_affected += std::atoll(out.tuples.c_str());
    return true;
  }

  void check_interrupt() {
    if (m_options.interrupted && m_options.interrupted()) {
      throw Error(ExitCode::failure, "dry run interrupted; the clone is being dropped");
    }
  }

 private:
  // The second session that samples pg_locks (opened on first use, on the clone).
  db::Connection& watcher() {
    if (!m_watcher) m_watcher.emplace(core::connect_like(m_c, PQdb(m_c.raw())));
    return *m_watcher;
  }

  static void merge_lock(MigrationObservation& obs, LockTaken l) {
    for (auto& x : obs.locks) {
      if (x.table != l.table) continue;
      if (lock_rank(l.mode) > lock_rank(x.mode)) x.mode = l.mode;
      x.held_ms = std::max(x.held_ms, l.held_ms);
      x.sampled = x.sampled || l.sampled;
      return;
    }
    obs.locks.push_back(std::move(l));
  }

  // Before the statement runs again: the old values, by primary key, in a temporary table
  // (returns its name); the new values are compared with them afterwards (compare_kept), so a
  // USING expression counts too. Without a primary key (or when the key is the column itself),
  // the old values are cast there and back instead (count_lossy) and "" is returned.
  std::string keep_old_values(TypeChange& ch, size_t index) {
    auto pk = m_c.exec(
        "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i), bool_or(a.attname = $2) "
        "FROM pg_index x, unnest(x.indkey::int2[]) WITH ORDINALITY k(n, i) JOIN pg_attribute a "
        "ON a.attnum = k.n WHERE x.indrelid = $1::regclass AND a.attrelid = x.indrelid "
        "AND x.indisprimary",
        {ch.table, ch.column});
    if (!pk.rows() || pk.is_null(0, 0) || pk.get_bool(0, 1)) {
      count_lossy(ch);
      return "";
    }
    std::string name = "previewdb_old_" + std::to_string(++m_kept) + "_" + std::to_string(index);
    m_c.exec("SAVEPOINT previewdb_probe");
    try {
      m_c.exec("CREATE TEMP TABLE " + name + " ON COMMIT DROP AS SELECT " + pk.get(0, 0) + ", " +
               m_c.quote_ident(ch.column) + " AS previewdb_old FROM " + ch.table);
      m_c.exec("RELEASE SAVEPOINT previewdb_probe");
    } catch (const db::QueryError& e) {
      m_c.exec("ROLLBACK TO SAVEPOINT previewdb_probe");
      util::log::debug("cannot keep the old values of " + ch.table + ": " + e.primary());
      count_lossy(ch);
      return "";
    }
    m_pk[name] = pk.get(0, 0);
    return name;
  }

  // Rows whose new value, cast back to the old type, differs from the kept old value (else, when
  // there is no cast back, whose text differs).
  void compare_kept(TypeChange& ch, const std::string& kept) {
    std::string col = "n." + m_c.quote_ident(ch.column);
    std::string from = kept + " o JOIN " + ch.table + " n USING (" + m_pk[kept] + ")";
    for (const std::string& differs :
         {"(" + col + ")::" + ch.from + " IS DISTINCT FROM o.previewdb_old",
          "(" + col + ")::text IS DISTINCT FROM o.previewdb_old::text"}) {
      m_c.exec("SAVEPOINT previewdb_probe");
      try {
        auto r = m_c.exec("SELECT count(*) FILTER (WHERE " + differs + "), (SELECT count(*) FROM " +
                          kept + ") FROM " + from);
        ch.changed_rows = r.get_int(0, 0);
        ch.rows = r.get_int(0, 1);
        m_c.exec("RELEASE SAVEPOINT previewdb_probe");
        return;
      } catch (const db::QueryError& e) {
        m_c.exec("ROLLBACK TO SAVEPOINT previewdb_probe");
        util::log::debug("cannot compare " + ch.table + "." + ch.column + ": " + e.primary());
      }
    }
    ch.changed_rows = -1;
  }

  // Rows whose value does not survive old -> new -> old: the value the column will hold differs
  // from the one it held. In a savepoint: a cast that fails leaves the count unknown (-1).
  void count_lossy(TypeChange& ch) {
    std::string col = m_c.quote_ident(ch.column);
    m_c.exec("SAVEPOINT previewdb_probe");
    try {
      auto r = m_c.exec("SELECT count(*) FILTER (WHERE " + col + " IS NOT NULL AND ((" + col +
                        ")::" + ch.to + ")::" + ch.from + " IS DISTINCT FROM " + col +
                        "), count(*) FROM " + ch.table);
      ch.changed_rows = r.get_int(0, 0);
      ch.rows = r.get_int(0, 1);
      m_c.exec("RELEASE SAVEPOINT previewdb_probe");
    } catch (const db::QueryError& e) {
      m_c.exec("ROLLBACK TO SAVEPOINT previewdb_probe");
      util::log::debug("cannot compare " + ch.table + "." + ch.column + ": " + e.primary());
      ch.changed_rows = -1;
    }
  }

  void fail(const Migration&, const migrate::Statement& st, const Outcome& out,
            MigrationObservation& obs) {
    Failure f;
    f.line = st.line;
    f.sqlstate = out.sqlstate;
    f.message = out.message;
    if (PQtransactionStatus(m_c.raw()) == PQTRANS_INTRANS) count_failing_rows(m_c, st, out, f);
    obs.failure = std::move(f);
  }

  db::Connection& m_c;
  const Baseline& m_base;
  const DryRunOptions& m_options;
  std::map<std::string, std::string> m_pk;  // kept old values' table -> its key columns
  int m_kept = 0;
  std::optional<db::Connection> m_watcher;
};

MigrationObservation observe(db::Connection& c, const Baseline& base, const Migration& m,
                             const DryRunOptions& o, std::map<long long, long long>& rows) {
  MigrationObservation obs;
  obs.id = m.id;
  obs.file = m.display_path;
  obs.statements = m.statements.size();
  obs.mode = m.mode == migrate::Mode::autocommit        ? "no transaction"
             : m.mode == migrate::Mode::own_transaction ? "own transaction"
                                                        : "transaction";
  obs.before = current_tables(c, base, rows);
  std::set<long long> touched;
  Runner runner(c, base, o);
  if (m.mode == migrate::Mode::autocommit) {
    for (const auto& st : m.statements) {
      if (st.control != migrate::Statement::Control::none) continue;
      bool ok = st.no_transaction ? runner.run_bare(m, st, obs)
                                  : runner.run_block(m, {&st}, obs, touched);
      if (!ok) break;
    }
    // Outside one transaction the xact counters do not cover everything: count all again.
    touched.insert(base.oids.begin(), base.oids.end());
  } else {
    std::vector<const migrate::Statement*> statements;
    for (const auto& st : m.statements) {
      // The file's own BEGIN/COMMIT (own transaction): the dry run's transaction stands in.
      if (st.control == migrate::Statement::Control::begin ||
          st.control == migrate::Statement::Control::commit) {
        continue;
      }
      statements.push_back(&st);
    }
    runner.run_block(m, statements, obs, touched);
  }
  // Rewritten tables (TRUNCATE, VACUUM FULL, ALTER TYPE) get a new file: count those again too.
  auto now = current_tables(c, base, rows);
  std::map<long long, long long> file_before;
  for (const auto& t : obs.before) file_before[t.oid] = t.relfilenode;
  for (const auto& t : now) {
    if (file_before[t.oid] != t.relfilenode) touched.insert(t.oid);
  }
  count_rows(c, base, touched, rows);
  obs.after = current_tables(c, base, rows);
  if (m.mode == migrate::Mode::autocommit && !obs.failure) {
    // No transaction-wide counter: rows that went away are the count's difference.
    std::map<long long, long long> after_rows;
    for (const auto& t : obs.after) after_rows[t.oid] = t.rows;
    for (const auto& t : obs.before) {
      auto it = after_rows.find(t.oid);
      if (it == after_rows.end()) continue;
      long long gone = t.rows - it->second;
      if (gone > 0 && obs.deleted[t.oid] < gone) obs.deleted[t.oid] = gone;
    }
  }
  return obs;
}

// Which migrations `migrate` would apply to the clone, by its own rules (and refusals).
std::vector<const Migration*> pending_on(const DryRunOptions& o, const std::string& clone,
                                         const migrate::MigrationSet& set, DryRunReport& report) {
  migrate::MigrateOptions mo = o.migrate;
  mo.target.dbname = clone;
  mo.dry_run = true;
  mo.command.clear();
  mo.github_annotations = false;
  auto plan = migrate::migrate(mo);
  report.skipped = plan.skipped;
  for (const auto& w : plan.warnings) report.warnings.push_back(w);
  std::vector<const Migration*> out;
  for (const auto& id : plan.applied) {
    for (const auto& m : set.migrations) {
      if (m.id == id) {
        out.push_back(&m);
        break;
      }
    }
  }
  return out;
}

}  // namespace

int lock_rank(const std::string& mode) {
  static const char* order[] = {
      "AccessShareLock", "RowShareLock",          "RowExclusiveLock", "ShareUpdateExclusiveLock",
      "ShareLock",       "ShareRowExclusiveLock", "ExclusiveLock",    "AccessExclusiveLock"};
  for (int i = 0; i < 8; ++i) {
    if (mode == order[i]) return i;
  }
  return -1;
}

std::vector<LockTaken> aggregate_lock_samples(const std::vector<LockSample>& samples,
                                              long long interval_ms, int line) {
  std::vector<LockTaken> out;
  std::map<std::string, std::pair<long long, long long>> seen;  // table -> first, last
  for (const auto& s : samples) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const LockTaken& l) { return l.table == s.table; });
    if (it == out.end()) {
      out.push_back({s.table, s.mode, 0, line, true});
      seen[s.table] = {s.at_ms, s.at_ms};
      continue;
    }
    if (lock_rank(s.mode) > lock_rank(it->mode)) it->mode = s.mode;
    auto& [first, last] = seen[s.table];
    first = std::min(first, s.at_ms);
    last = std::max(last, s.at_ms);
  }
  for (auto& l : out) l.held_ms = seen[l.table].second - seen[l.table].first + interval_ms;
  return out;
}

SpaceCheck check_space(long long database_bytes, std::optional<long long> free_bytes,
                       const std::string& where) {
  SpaceCheck s;
  if (!free_bytes) {
    s.description =
        "database " + human(database_bytes) + "; free space not measured (" + where + ")";
    return s;
  }
  long long needed = database_bytes + database_bytes / 10 + 64LL * 1024 * 1024;
  s.room = *free_bytes >= needed;
  s.description = "database " + human(database_bytes) + ", " + human(*free_bytes) + " free in " +
                  where + " (needs " + human(needed) + ")";
  return s;
}

std::optional<long long> free_space(db::Connection& maintenance, const std::string& database,
                                    const std::string& conninfo, std::string* where,
                                    std::string* why) {
  std::string host;
  try {
    host = db::parse_conninfo(conninfo).get("host").value_or("");
  } catch (const Error&) {
  }
  bool local =
      host.empty() || host[0] == '/' || host == "localhost" || host == "127.0.0.1" || host == "::1";
  if (!local) {
    *why = "the server runs on " + host + ", not on this machine";
    return std::nullopt;
  }
  auto r = maintenance.exec(
      "SELECT CASE WHEN t.spcname IN ('pg_default', 'pg_global') "
      "THEN current_setting('data_directory', true) ELSE pg_tablespace_location(t.oid) END "
      "FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = $1",
      {database});
  if (!r.rows() || r.is_null(0, 0) || r.get(0, 0).empty()) {
    *why = "the server does not show its data directory to this role";
    return std::nullopt;
  }
  *where = r.get(0, 0);
  std::error_code ec;
  auto info = std::filesystem::space(*where, ec);
  if (ec) {
    *why = *where + " is not visible from here: " + ec.message();
    return std::nullopt;
  }
  return static_cast<long long>(info.available);
}

DryRunReport dry_run(db::Connection& maint, const DryRunOptions& o) {
  DryRunReport report;
  // The folder first: a bad folder is a usage error before any clone exists.
  auto set = migrate::read_migrations({o.migrate.dir, o.migrate.format, o.migrate.placeholders});
  const std::string source = o.clone_from.value_or(o.database);
  auto info =
      maint.exec("SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1", {source});
  if (!info.rows()) {
    throw Error(ExitCode::not_found, "database " + util::quoted(source) + " does not exist",
                {"name an existing database (previewdb list shows them)"});
  }
  long long size = info.get_int(0, 0);
  std::string where, why;
  auto free = free_space(maint, source, o.migrate.target.conninfo, &where, &why);
  auto space = check_space(size, free, free ? where : why);
  report.space_check = space.description;
  if (!space.room) {
    throw Error(ExitCode::refused,
                "no room for a clone of " + util::quoted(source) + ": " + space.description,
                {"free some space on the server, or run the dry run on a server with room "
                 "(restore a backup there)"});
  }
  util::log::info("clone of " + util::quoted(source) + ": " + space.description);
  core::require_createdb(maint);
  core::remove_stale_temporaries(maint);

  auto clone_start = Clock::now();
  Clone clone(maint);
  if (o.watch) o.watch(&maint);
  {
    std::string chosen;
    std::string clause = core::strategy_clause(maint, o.strategy, source, &chosen);
    bool copied = false;
    auto busy = sessions_on(maint, source);
    if (busy.empty()) {
      auto r = maint.try_exec("CREATE DATABASE " + maint.quote_ident(clone.name()) + " TEMPLATE " +
                                  maint.quote_ident(source) + clause,
                              {}, "55006");
      copied = r.has_value();
      if (copied) report.clone_method = "template (" + chosen + ")";
    }
    if (!copied) {
      // Busy (a template copy needs the source idle): a fresh dump restored into the clone.
      util::log::info(util::quoted(source) + " has client sessions (pids " +
                      util::join(sessions_on(maint, source), ", ") +
                      "); copying it with pg_dump | pg_restore instead of a template copy");
      maint.exec("CREATE DATABASE " + maint.quote_ident(clone.name()) + " TEMPLATE template0");
      clone.built();
      storage::copy_online(o.migrate.target.conninfo, source, clone.name());
      report.clone_method = "pg_dump | pg_restore (" + util::quoted(source) + " busy)";
    } else {
      clone.built();
    }
  }
  report.clone_ms = ms_between(clone_start, Clock::now());
  report.database = o.database;

  {
    auto pending = pending_on(o, clone.name(), set, report);
    auto c = db::Connection::open({.conninfo = o.migrate.target.conninfo,
                                   .dbname = clone.name(),
                                   .busy_retry = o.migrate.target.busy_retry});
    report.database = db::url_for_database(o.migrate.target.conninfo, o.database, false);
    if (o.watch) o.watch(&c);
    if (o.migrate.statement_timeout) {
      c.exec("SET statement_timeout = " +
             c.quote_literal(std::to_string(o.migrate.statement_timeout->count()) + "ms"));
    }
    if (o.migrate.lock_wait_timeout) {
      c.exec("SET lock_timeout = " +
             c.quote_literal(std::to_string(o.migrate.lock_wait_timeout->count()) + "ms"));
    }
    if (c.server_version() >= 140000) c.exec("SET client_connection_check_interval = '1s'");
    Baseline base = read_baseline(c);
    std::map<long long, long long> rows;
    count_rows(c, base, std::set<long long>(base.oids.begin(), base.oids.end()), rows);
    for (const Migration* m : pending) {
      util::log::info("dry run: " + m->id);
      auto obs = observe(c, base, *m, o, rows);
      for (auto& f : classify(obs)) report.findings.push_back(std::move(f));
      bool failed = obs.failure.has_value();
      report.migrations.push_back(std::move(obs));
      if (failed) break;  // migrate stops at the first failure too
    }
    if (o.watch) o.watch(&maint);
  }
  clone.drop();
  if (o.watch) o.watch(nullptr);
  return report;
}

}  // namespace previewdb::dryrun
