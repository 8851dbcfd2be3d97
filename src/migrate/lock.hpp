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
#include "migrate/migration.hpp"

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

// ---- the owning tool's own lock ----------------------------------------------------------------
// While previewdb migrates a database it also holds the advisory lock that the folder's own tool
// takes, so the tool's CLI and previewdb never migrate it at once (docs/MIGRATIONS.md#tool-locks).

struct ToolLockKey {
  std::string tool;  // "Prisma", "golang-migrate"
  long long key = 0;
  std::string why;  // how the key is made, for messages
};

// Prisma Migrate's migration engine: pg_advisory_lock(72707369) on the migrated database.
inline constexpr long long k_prisma_lock_key = 72707369;

// golang-migrate's postgres driver: database.GenerateAdvisoryLockId(DatabaseName, schema, table):
// CRC-32 (IEEE) of the additional names and the database name joined by NUL bytes
// ("<schema>\0<table>\0<database>"), times the salt 1486364155, modulo 2^32.
long long golang_migrate_lock_key(const std::string& database_name, const std::string& schema,
                                  const std::string& table = "schema_migrations");

// The keys the folder's tool takes on database `dbname` with migrations in `schema`: Prisma's
// constant; golang-migrate's key twice (its CLI passes the URL path "/<db>" as the database name,
// a program using WithInstance passes current_database()). Empty for tools without a lock.
std::vector<ToolLockKey> tool_lock_keys(Format format, const std::string& dbname,
                                        const std::string& schema);

// Waits (polled with backoff, at most options.timeout, reporting every 10 s) for each key on
// conn's session; throws Error(lock_timeout) naming the tool, the key and the holder. Released
// when the returned lock goes (or the session ends).
std::unique_ptr<MigrationLock> acquire_tool_locks(db::Connection& conn,
                                                  const std::vector<ToolLockKey>& keys,
                                                  const LockOptions& options);

// Everything a run that writes migrations and their history holds: previewdb's migration lock
// and, in advisory mode, the folder's tool's own keys (behind a pooler session locks are not
// reliable, so none). Members go in reverse order: the tool's keys before previewdb's lock.
struct HeldLocks {
  std::unique_ptr<MigrationLock> lock;
  std::unique_ptr<MigrationLock> tool;
  std::vector<std::string> tool_keys;  // "Prisma:72707369", for reports
  LockMode mode() const { return lock->mode(); }
};
// `tool_timeout` (default: options.timeout) bounds the wait for the tool's keys, taken after
// previewdb's own lock.
HeldLocks acquire_migration_locks(db::Connection& conn, const LockOptions& options, Format format,
                                  const std::string& schema,
                                  std::optional<std::chrono::milliseconds> tool_timeout = {});

}  // namespace previewdb::migrate
