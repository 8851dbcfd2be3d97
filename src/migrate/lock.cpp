#include "migrate/lock.hpp"

#include <zlib.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

#include "crypto/random.hpp"
#include "db/dialect.hpp"
#include "db/lease_lock.hpp"
#include "util/duration.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/wait_report.hpp"

namespace previewdb::migrate {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string format_timeout(std::chrono::milliseconds t) {
  if (t < 1s) return std::to_string(t.count()) + "ms";
  return util::format_age(std::chrono::duration_cast<std::chrono::seconds>(t));
}

// Polls try_lock with backoff until it succeeds or the timeout passes; holder() describes who
// has it, for the waiting message and the error.
template <typename TryLock, typename Holder>
void wait_for(const LockOptions& options, TryLock try_lock, Holder holder,
              const std::string& what = "the migration lock",
              const std::string& hint =
                  "another 'previewdb migrate' is running on this database; wait for it to "
                  "finish or raise --lock-timeout") {
  auto deadline = Clock::now() + options.timeout;
  auto delay = 50ms;
  util::WaitReport report;
  while (!try_lock()) {
    std::string who = holder();
    if (Clock::now() >= deadline) {
      Error e(ExitCode::lock_timeout, "timed out after " + format_timeout(options.timeout) +
                                          " waiting for " + what + " on " + options.database_label +
                                          (who.empty() ? "" : ": held by " + who));
      e.with_hint(hint);
      throw e;
    }
    report.tick(what + " on " + options.database_label,
                [&] { return who.empty() ? who : "held by " + who; });
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    std::this_thread::sleep_for(std::max(1ms, std::min<std::chrono::milliseconds>(delay, left)));
    delay = std::min<std::chrono::milliseconds>(delay * 3 / 2, 2s);
  }
}

class AdvisoryLock : public MigrationLock {
 public:
  explicit AdvisoryLock(db::Connection& conn) : m_conn(conn) {}
  ~AdvisoryLock() override { release(); }
  LockMode mode() const override { return LockMode::advisory; }
  void release() noexcept override {
    if (!m_held) return;
    m_held = false;
    try {
      m_conn.exec("SELECT pg_advisory_unlock(" + std::to_string(k_advisory_key) + ")");
    } catch (...) {
      // The session ends soon; the server releases the lock then.
    }
  }
  void mark_held() { m_held = true; }

 private:
  db::Connection& m_conn;
  bool m_held = false;
};

std::string advisory_holder(db::Connection& conn, long long key = k_advisory_key) {
  auto r = conn.exec(
      "SELECT l.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), "
      "coalesce(host(a.client_addr), 'local socket'), "
      "coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') "
      "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
      "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
      "AND l.classid = $1::oid AND l.objid = $2::oid "
      "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
      {std::to_string(static_cast<unsigned long long>(key) >> 32),
       std::to_string(static_cast<unsigned long long>(key) & 0xffffffffULL)});
  if (r.rows() == 0) return "";
  std::string out = "pid " + r.get(0, 0) + " (application_name " + util::quoted(r.get(0, 1));
  if (!r.get(0, 2).empty()) out += ", user " + r.get(0, 2);
  out += ", from " + r.get(0, 3);
  if (!r.get(0, 4).empty()) out += ", connected since " + r.get(0, 4);
  return out + ")";
}

class TableLock : public MigrationLock {
 public:
  TableLock(db::Connection& conn, const LockOptions& options)
      : m_conn(conn), m_options(options), m_token(crypto::random_hex(16)) {}
  ~TableLock() override { release(); }
  LockMode mode() const override { return LockMode::table; }

  void acquire() {
    db::lease::ensure_table(m_conn, "_previewdb", "migration_lock");
    std::string me = db::lease::owner_id();
    wait_for(
        m_options,
        [&] {
          return db::lease::try_take(m_conn, k_table, "migrate", m_token, me, m_options.lease);
        },
        [&] { return db::lease::holder(m_conn, k_table, "migrate"); });
    m_held = true;
    m_heartbeat = std::jthread([this](std::stop_token stop) { heartbeat(stop); });
  }

  void release() noexcept override {
    if (!m_held) return;
    m_held = false;
    if (m_heartbeat.joinable()) {
      m_heartbeat.request_stop();
      m_wake.notify_all();
      m_heartbeat.join();
    }
    try {
      db::lease::give_back(m_conn, k_table, "migrate", m_token);
    } catch (...) {
      // The lease expires on its own.
    }
  }

 private:
  static constexpr const char* k_table = "_previewdb.migration_lock";

  // Extends the lease from its own connection: the main one may be busy with a long statement.
  void heartbeat(std::stop_token stop) {
    try {
      auto conn = db::Connection::open({.conninfo = m_options.conninfo,
                                        .dbname = m_options.dbname,
                                        .busy_retry = m_options.timeout});
      std::mutex mutex;
      while (!stop.stop_requested()) {
        {
          std::unique_lock lock(mutex);
          m_wake.wait_for(lock, stop, m_options.lease / 3, [] { return false; });
        }
        if (stop.stop_requested()) break;
        if (!db::lease::renew(conn, k_table, "migrate", m_token, m_options.lease)) {
          util::log::warn("lost the migration lock lease on " + m_options.database_label +
                          ": another run may start migrating");
          break;
        }
      }
    } catch (const std::exception& e) {
      util::log::warn(std::string("migration lock heartbeat stopped: ") + e.what());
    }
  }

  db::Connection& m_conn;
  LockOptions m_options;
  std::string m_token;
  bool m_held = false;
  std::condition_variable_any m_wake;
  std::jthread m_heartbeat;
};

// The tool's keys, held on the migration session; released in reverse order.
class ToolLocks : public MigrationLock {
 public:
  explicit ToolLocks(db::Connection& conn) : m_conn(conn) {}
  ~ToolLocks() override { release(); }
  LockMode mode() const override { return LockMode::advisory; }
  void release() noexcept override {
    while (!m_held.empty()) {
      long long key = m_held.back();
      m_held.pop_back();
      try {
        m_conn.exec("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(key)});
      } catch (...) {
        // The session ends soon; the server releases the lock then.
      }
    }
  }
  void add(long long key) { m_held.push_back(key); }

 private:
  db::Connection& m_conn;
  std::vector<long long> m_held;
};

}  // namespace

long long golang_migrate_lock_key(const std::string& database_name, const std::string& schema,
                                  const std::string& table) {
  std::string joined = schema + std::string(1, '\0') + table + std::string(1, '\0') + database_name;
  uLong crc = ::crc32(0L, Z_NULL, 0);
  crc =
      ::crc32(crc, reinterpret_cast<const Bytef*>(joined.data()), static_cast<uInt>(joined.size()));
  std::uint32_t sum = static_cast<std::uint32_t>(crc) * static_cast<std::uint32_t>(1486364155u);
  return static_cast<long long>(sum);
}

std::vector<ToolLockKey> tool_lock_keys(Format format, const std::string& dbname,
                                        const std::string& schema) {
  std::vector<ToolLockKey> keys;
  if (format == Format::prisma) {
    keys.push_back({"Prisma", k_prisma_lock_key, "Prisma Migrate's constant key"});
  } else if (format == Format::golang_migrate) {
    for (const std::string& name : {"/" + dbname, dbname}) {
      long long key = golang_migrate_lock_key(name, schema);
      if (!keys.empty() && keys.back().key == key) continue;
      keys.push_back({"golang-migrate", key,
                      "CRC-32 of " + util::quoted(schema) + ", \"schema_migrations\" and " +
                          util::quoted(name) + " times 1486364155"});
    }
  }
  return keys;
}

std::unique_ptr<MigrationLock> acquire_tool_locks(db::Connection& conn,
                                                  const std::vector<ToolLockKey>& keys,
                                                  const LockOptions& options) {
  auto locks = std::make_unique<ToolLocks>(conn);
  for (const auto& k : keys) {
    std::string key = std::to_string(k.key);
    wait_for(
        options,
        [&] { return conn.exec("SELECT pg_try_advisory_lock($1::bigint)", {key}).get_bool(0, 0); },
        [&] { return advisory_holder(conn, k.key); },
        k.tool + "'s migration lock (pg_advisory_lock(" + key + "), " + k.why + ")",
        k.tool +
            "'s own migrator is migrating this database (previewdb holds that tool's lock "
            "too, so both never run at once); wait for it to finish or raise "
            "--lock-timeout");
    locks->add(k.key);
  }
  return locks;
}

HeldLocks acquire_migration_locks(db::Connection& conn, const LockOptions& options, Format format,
                                  const std::string& schema,
                                  std::optional<std::chrono::milliseconds> tool_timeout) {
  HeldLocks held;
  held.lock = acquire_lock(conn, options);
  if (held.lock->mode() != LockMode::advisory) return held;
  auto keys = tool_lock_keys(format, conn.database(), schema);
  if (keys.empty()) return held;
  LockOptions lo = options;
  if (tool_timeout) lo.timeout = *tool_timeout;
  held.tool = acquire_tool_locks(conn, keys, lo);
  for (const auto& k : keys) held.tool_keys.push_back(k.tool + ":" + std::to_string(k.key));
  return held;
}

LockMode parse_lock_mode(const std::string& text) {
  std::string t = util::to_lower(text);
  if (t.empty() || t == "auto") return LockMode::automatic;
  if (t == "advisory") return LockMode::advisory;
  if (t == "table") return LockMode::table;
  throw usage_error("unknown lock mode " + util::quoted(text),
                    "--lock-mode accepts advisory, table or auto");
}

bool looks_like_pooler(const std::string& conninfo) {
  std::string c = util::to_lower(conninfo);
  if (c.find("pgbouncer=true") != std::string::npos) return true;  // Prisma's URL flag
  try {
    auto info = db::parse_conninfo(conninfo);
    std::string host = util::to_lower(info.get("host").value_or(""));
    return info.get("port").value_or("") == "6432" || host.find("pooler") != std::string::npos;
  } catch (const Error&) {
    return false;  // the connection attempt reports a conninfo that does not parse
  }
}

std::unique_ptr<MigrationLock> acquire_lock(db::Connection& conn, const LockOptions& options) {
  bool advisory = options.mode != LockMode::table;
  if (advisory && !db::dialect_of(conn).advisory_locks) {
    // CockroachDB accepts pg_advisory_lock but it locks nothing: the lease row instead.
    util::log::info(std::string(db::dialect_of(conn).name) +
                    " has no working session advisory locks: using a lock row with a lease");
    advisory = false;
  }
  if (advisory) {
    auto lock = std::make_unique<AdvisoryLock>(conn);
    std::string sql = "SELECT pg_try_advisory_lock(" + std::to_string(k_advisory_key) + ")";
    bool supported = true;
    try {
      wait_for(
          options, [&] { return conn.exec(sql).get_bool(0, 0); },
          [&] { return advisory_holder(conn); });
    } catch (const db::QueryError& e) {
      if (e.sqlstate() != "42883" && e.sqlstate() != "0A000") throw;
      supported = false;
      util::log::warn("the server has no advisory locks (" + e.primary() +
                      "): using a lock row with a lease instead");
    }
    if (supported) {
      lock->mark_held();
      return lock;
    }
  }
  auto lock = std::make_unique<TableLock>(conn, options);
  lock->acquire();
  return lock;
}

}  // namespace previewdb::migrate
