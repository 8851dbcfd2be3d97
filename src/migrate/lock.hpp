// One migration run per database at a time. Advisory mode polls pg_try_advisory_lock with
// backoff (a blocked pg_advisory_lock waiter can deadlock with CREATE INDEX CONCURRENTLY) and
// names the holder while it waits; the server releases a session lock when its holder dies.
// Table mode, for transaction poolers where session state does not survive, is a lock row with a
// lease that a heartbeat extends.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "db/connection.hpp"

namespace previewdb::migrate {

enum class LockMode { automatic, advisory, table };

// "auto", "advisory", "table"; throws Error(usage) for anything else.
LockMode parse_lock_mode(const std::string& text);

// The advisory lock key (pg_locks shows it as classid 1886545270, objid 1835624306).
inline constexpr long long k_advisory_key = 0x707265766d696772LL;  // "prevmigr"

// True when the conninfo points at a transaction pooler (PgBouncer port 6432, pgbouncer=true,
// a "pooler" host name), where advisory session locks are not reliable.
bool looks_like_pooler(const std::string& conninfo);

struct LockOptions {
  LockMode mode = LockMode::advisory;
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  std::chrono::seconds lease{60};  // table mode: how long a silent holder keeps the row
  // For the table mode heartbeat's own connection.
  std::string conninfo;
  std::string dbname;
  std::string database_label;  // for messages: "database \"pr_12\""
};

class MigrationLock {
 public:
  virtual ~MigrationLock() = default;
  virtual LockMode mode() const = 0;
  // Releases now (the destructor does it too); never throws.
  virtual void release() noexcept = 0;
};

// Waits for the lock on conn's database; throws Error(lock_timeout) naming the holder.
// Advisory mode falls back to table mode when the server has no advisory locks.
std::unique_ptr<MigrationLock> acquire_lock(db::Connection& conn, const LockOptions& options);

}  // namespace previewdb::migrate
