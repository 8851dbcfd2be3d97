// previewdb's name locks: a session-level advisory lock keyed by text (hashtextextended), polled
// with backoff. The server releases it when the session ends, so a killed process never leaves it
// held. On a server whose dialect has no working advisory locks (CockroachDB) the same calls take
// a lease row instead (db/lease_lock.hpp): a killed holder's lease runs out within
// lease::k_name_lease.
#pragma once

#include <chrono>
#include <string>

#include "db/connection.hpp"

namespace previewdb::db {

class AdvisoryLock {
 public:
  // Waits up to timeout; throws Error(lock_timeout) naming `what` when it expires. While it
  // waits it says every 10 s on whom. With free_slot_while_waiting, a session that holds no
  // other advisory lock is closed between attempts (and reopened), so a crowd of waiting runs
  // does not take every connection slot of a small server.
  AdvisoryLock(Connection& conn, std::string key, std::chrono::seconds timeout,
               const std::string& what, bool free_slot_while_waiting = false);
  ~AdvisoryLock();
  AdvisoryLock(const AdvisoryLock&) = delete;
  AdvisoryLock& operator=(const AdvisoryLock&) = delete;

  static bool try_lock(Connection& conn, const std::string& key);
  static void unlock(Connection& conn, const std::string& key);
  // Shared: any number of shared holders, no exclusive one (pg_try_advisory_lock_shared).
  static bool try_lock_shared(Connection& conn, const std::string& key);
  static void unlock_shared(Connection& conn, const std::string& key);
  // Whether conn's name locks are lease rows (the dialect has no advisory locks).
  static bool uses_leases(Connection& conn);
  // "server pid 123 (application "previewdb", user app, client 10.0.0.5)" for whoever holds key
  // on this database; empty when no one does.
  static std::string describe_holder(Connection& conn, const std::string& key);

 private:
  Connection& m_conn;
  std::string m_key;
};

}  // namespace previewdb::db
