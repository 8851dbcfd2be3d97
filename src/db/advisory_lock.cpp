#include "db/advisory_lock.hpp"

#include <algorithm>
#include <optional>
#include <thread>

#include "db/dialect.hpp"
#include "db/lease_lock.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/wait_report.hpp"

namespace previewdb::db {

AdvisoryLock::AdvisoryLock(Connection& conn, std::string key, std::chrono::seconds timeout,
                           const std::string& what, bool free_slot_while_waiting)
    : m_conn(conn), m_key(std::move(key)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(20);
  util::WaitReport report;
  // Closing our session between attempts is only safe when it holds nothing else: asked once,
  // when a wait first gets that long (an uncontended lock costs one statement).
  std::optional<bool> may_close;
  if (!free_slot_while_waiting) may_close = false;
  auto holds_nothing_else = [&] {
    if (uses_leases(m_conn)) return !lease::holds_any_name(m_conn);
    return m_conn
               .exec(
                   "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = "
                   "pg_backend_pid()")
               .get_int(0, 0) == 0;
  };
  while (!try_lock(m_conn, m_key)) {
    auto now = std::chrono::steady_clock::now();
    if (now > deadline) {
      std::string holder = describe_holder(m_conn, m_key);
      throw Error(ExitCode::lock_timeout,
                  "timed out after " + std::to_string(timeout.count()) + "s waiting for " + what +
                      (holder.empty() ? "" : ", held by " + holder),
                  {"another previewdb is working on it; try again when it has finished"});
    }
    report.tick("another previewdb working on " + what,
                [&] { return describe_holder(m_conn, m_key); });
    if (delay >= std::chrono::milliseconds(160) && !may_close) {
      may_close = holds_nothing_else();
    }
    if (*may_close && delay >= std::chrono::milliseconds(160)) {
      m_conn.close_while_waiting();
      std::this_thread::sleep_for(delay);
      m_conn.reopen();
    } else {
      std::this_thread::sleep_for(delay);
    }
    delay = std::min(delay * 2, std::chrono::milliseconds(500));
  }
}

bool AdvisoryLock::uses_leases(Connection& conn) {
  return !dialect_of(conn).advisory_locks;
}

std::string AdvisoryLock::describe_holder(Connection& conn, const std::string& key) {
  if (uses_leases(conn)) return lease::describe_name_holder(conn, key);
  auto r = conn.exec(
      "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), "
      "coalesce(host(a.client_addr), 'local') "
      "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
      "WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted "
      "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
      "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0) "
      "ORDER BY a.backend_start LIMIT 1",
      {key});
  if (!r.rows()) return "";
  return "server pid " + r.get(0, 0) + " (application " + util::quoted(r.get(0, 1)) + ", user " +
         r.get(0, 2) + ", client " + r.get(0, 3) + ")";
}

AdvisoryLock::~AdvisoryLock() {
  try {
    unlock(m_conn, m_key);
  } catch (...) {
    // The server releases it when the session ends.
  }
}

bool AdvisoryLock::try_lock(Connection& conn, const std::string& key) {
  if (uses_leases(conn)) return lease::try_lock_name(conn, key);
  return conn.exec("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", {key}).get_bool(0, 0);
}

void AdvisoryLock::unlock(Connection& conn, const std::string& key) {
  if (uses_leases(conn)) return lease::unlock_name(conn, key);
  conn.exec("SELECT pg_advisory_unlock(hashtextextended($1, 0))", {key});
}

bool AdvisoryLock::try_lock_shared(Connection& conn, const std::string& key) {
  if (uses_leases(conn)) return lease::try_lock_name(conn, key, /*shared=*/true);
  return conn.exec("SELECT pg_try_advisory_lock_shared(hashtextextended($1, 0))", {key})
      .get_bool(0, 0);
}

void AdvisoryLock::unlock_shared(Connection& conn, const std::string& key) {
  if (uses_leases(conn)) return lease::unlock_name(conn, key, /*shared=*/true);
  conn.exec("SELECT pg_advisory_unlock_shared(hashtextextended($1, 0))", {key});
}

}  // namespace previewdb::db
