// SIGINT/SIGTERM while a command must clean up after itself (a dry run's clone): the signal is
// remembered and the watched connection's running query is cancelled (PQcancel is safe in a
// signal handler), so the command unwinds normally and its destructors drop what it made.
#pragma once

#include "db/connection.hpp"

namespace previewdb::db {

class InterruptScope {
 public:
  // Installs the handlers for SIGINT and SIGTERM; the previous ones come back on destruction.
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  // The connection whose query a signal cancels (nullptr: none). Not thread-safe with itself.
  void watch(Connection* conn);
  // The signal received (0: none yet).
  static int received();
};

}  // namespace previewdb::db
