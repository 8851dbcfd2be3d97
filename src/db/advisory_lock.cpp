#include "db/advisory_lock.hpp"

#include <algorithm>
#include <thread>

#include "util/log.hpp"

namespace previewdb::db {

AdvisoryLock::AdvisoryLock(Connection& conn, std::string key, std::chrono::seconds timeout,
                           const std::string& what)
    : m_conn(conn), m_key(std::move(key)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(20);
  bool announced = false;
  while (!try_lock(m_conn, m_key)) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error(ExitCode::lock_timeout,
                  "timed out after " + std::to_string(timeout.count()) + "s waiting for " + what,
                  {"another previewdb is working on it; try again when it has finished"});
    }
    if (!announced) {
      util::log::info("waiting for another previewdb working on " + what);
      announced = true;
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(500));
  }
}

AdvisoryLock::~AdvisoryLock() {
  try {
    unlock(m_conn, m_key);
  } catch (...) {
    // The server releases it when the session ends.
  }
}

bool AdvisoryLock::try_lock(Connection& conn, const std::string& key) {
  return conn.exec("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", {key}).get_bool(0, 0);
}

void AdvisoryLock::unlock(Connection& conn, const std::string& key) {
  conn.exec("SELECT pg_advisory_unlock(hashtextextended($1, 0))", {key});
}

}  // namespace previewdb::db
