// A session-level advisory lock keyed by text (hashtextextended), polled with backoff.
// The server releases it when the session ends, so a killed process never leaves it held.
#pragma once

#include <chrono>
#include <string>

#include "db/connection.hpp"

namespace previewdb::db {

class AdvisoryLock {
 public:
  // Waits up to timeout; throws Error(lock_timeout) naming `what` when it expires.
  AdvisoryLock(Connection& conn, std::string key, std::chrono::seconds timeout,
               const std::string& what);
  ~AdvisoryLock();
  AdvisoryLock(const AdvisoryLock&) = delete;
  AdvisoryLock& operator=(const AdvisoryLock&) = delete;

  static bool try_lock(Connection& conn, const std::string& key);
  static void unlock(Connection& conn, const std::string& key);

 private:
  Connection& m_conn;
  std::string m_key;
};

}  // namespace previewdb::db
