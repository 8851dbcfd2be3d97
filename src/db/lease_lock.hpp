// Locks that are rows: for servers without working session advisory locks (CockroachDB, where
// pg_advisory_lock is a no-op stub) and for transaction poolers. One mechanism, two users: the
// migration lock's table mode (_previewdb.migration_lock in the migrated database, row 'migrate')
// and previewdb's own name locks (_previewdb.name_lock in the maintenance database, one row per
// name; docs/COCKROACHDB.md#locks).
//
// A row holds the lock's name, a holder token, who holds it (host:pid, server pid, application)
// and a lease: it is taken with INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE the old lease
// has expired, extended while held (a heartbeat on its own connection), and deleted on release.
// A killed holder stops extending it, so the next run proceeds once the lease has run out.
#pragma once

#include <chrono>
#include <string>

#include "db/connection.hpp"

namespace previewdb::db::lease {

// How long a name lock's silent holder keeps it; the heartbeat extends it every third of this.
inline constexpr std::chrono::seconds k_name_lease{30};
// The name locks' table in the maintenance database.
inline constexpr const char* k_name_lock_schema = "_previewdb";
inline constexpr const char* k_name_lock_table = "name_lock";

// "host:pid" of this process, for the owner column.
std::string owner_id();

// CREATE SCHEMA / CREATE TABLE IF NOT EXISTS; two runs creating it at once is fine.
void ensure_table(Connection& conn, const std::string& schema, const std::string& table);

// The row operations. `table` is "schema.table" (previewdb's own constants, never input).
// try_take: true when the row is now ours (it was free, expired, or already ours).
bool try_take(Connection& conn, const std::string& table, const std::string& name,
              const std::string& token, const std::string& owner, std::chrono::seconds lease);
// renew: true when the row is still ours (its lease extended).
bool renew(Connection& conn, const std::string& table, const std::string& name,
           const std::string& token, std::chrono::seconds lease);
void give_back(Connection& conn, const std::string& table, const std::string& name,
               const std::string& token);
// "ci-runner-7:4242 (server pid 88, application_name \"previewdb\", since ..., lease until ...)"
// for the live row `name`; empty when there is none.
std::string holder(Connection& conn, const std::string& table, const std::string& name);

// ---- previewdb's name locks as lease rows ---------------------------------------------------
// The same calls as session advisory locks (db::AdvisoryLock routes here when the connection's
// dialect has no advisory locks): held per session (the libpq handle), re-entrant like
// PostgreSQL's, exclusive or shared. A shared holder has its own row ("<name>\n<token>"); an
// exclusive holder takes the row "<name>". Each first writes its row, then looks for the other
// kind and backs off (gives its row back) when it finds a live one: of two that race, at least
// the later one sees the earlier one's row, so an exclusive and a shared holder never both hold.
// Held rows are extended by one heartbeat thread per process (its own connection).
bool try_lock_name(Connection& conn, const std::string& key, bool shared = false);
void unlock_name(Connection& conn, const std::string& key, bool shared = false);
// Who holds `key` (exclusively, else the first shared holder); empty when no one does.
std::string describe_name_holder(Connection& conn, const std::string& key);
// Whether this session holds any name lock (a session that holds none may be closed while it
// waits).
bool holds_any_name(const Connection& conn);

}  // namespace previewdb::db::lease
