// What kind of server we talk to, and how each does the few things that differ: cloning
// (PostgreSQL: template databases; CockroachDB: BACKUP/RESTORE in an s3:// collection), the
// migration lock (advisory locks, or the lease row CockroachDB needs), dropping, session settings,
// sizes, and DDL in transactions. Chosen once per connection from SELECT version(); callers test
// the table's fields and call its functions, never the kind (docs/COCKROACHDB.md).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/connection.hpp"

namespace previewdb::db {

enum class ServerKind { postgres, cockroach };

struct ServerInfo {
  ServerKind kind = ServerKind::postgres;
  std::string version;  // "15.18", "v23.1.11"
};

// Classifies the text of SELECT version().
ServerInfo classify_version(const std::string& version_text);

// SQL quoting that needs no connection (CockroachDB's statements are built and unit-tested
// without a server): "name" with '"' doubled; 'text' with '\'' doubled, as E'...' with
// backslashes doubled when the text has one (both servers read that the same way).
std::string quote_identifier(std::string_view ident);
std::string quote_string(std::string_view text);

// One server kind's answers. A function-pointer table: PostgreSQL and CockroachDB are the two
// rows, tests may copy a row and change a field (the CockroachDB choices that also work on
// PostgreSQL, forced on a PostgreSQL connection with force_dialect).
struct Dialect {
  ServerKind kind;
  const char* name;          // "PostgreSQL", "CockroachDB"
  bool template_databases;   // CREATE DATABASE ... TEMPLATE: snapshots are frozen templates
  bool clone_strategy;       // CREATE DATABASE ... STRATEGY (PostgreSQL 15+)
  bool comment_on_database;  // COMMENT ON DATABASE (metadata for people)
  bool advisory_locks;       // false: the migration lock is the lease row (migrate/lock table)
  bool transactional_ddl;    // false: migrations run a statement at a time, history after
  bool database_sizes;       // false: sizes are unknown ("-" in list)
  bool terminate_on_drop;    // DROP DATABASE ... WITH (FORCE) ends the sessions on it
  // Statements that make a session a maintenance session: the lock timeout, no statement
  // timeout, and (PostgreSQL 14+) client_connection_check_interval.
  std::vector<std::string> (*session_settings)(std::chrono::milliseconds lock_timeout,
                                               int server_version_num);
  // DROP DATABASE of `name` (quoted here): PostgreSQL ends its sessions (WITH (FORCE)),
  // CockroachDB drops its objects with it (CASCADE; it has no FORCE).
  std::string (*drop_database)(std::string_view name, bool if_exists);
  // CREATE DATABASE of an empty database `name` (quoted here): PostgreSQL copies template0 (never
  // template1, which may hold objects); CockroachDB has no templates.
  std::string (*create_empty_database)(std::string_view name);
};

const Dialect& postgres_dialect(int server_version_num);
const Dialect& cockroach_dialect();
const Dialect& dialect_for(const ServerInfo& info, int server_version_num);

// The connection's dialect: asks SELECT version() once per session and remembers the answer
// (keyed by the session: libpq handle and server pid).
const Dialect& dialect_of(Connection& conn);
// Replaces what dialect_of answers for this session (tests: CockroachDB's choices on
// PostgreSQL). The dialect must outlive the connection.
void force_dialect(Connection& conn, const Dialect& dialect);

// Process-wide: PostgreSQL servers are answered with their row but advisory_locks false, so
// previewdb's name locks, the registry's schema lock and the migration lock take lease rows as on
// CockroachDB (tests of that path on PostgreSQL; the command layer sets it from
// PREVIEWDB_FORCE_LEASE_LOCKS=1). Applies to sessions whose dialect is asked afterwards.
void force_lease_locks(bool on);
bool lease_locks_forced();

// Runs a statement that carries secrets in its text (CockroachDB's BACKUP/RESTORE with a storage
// URL's credentials): a failure's message, detail and hints, which may quote the statement or the
// server's echo of the URL, go through util::redact_url. The caller registers the secret values
// too (util::register_secret: storage::cockroach_storage_url does), so log lines are scrubbed.
Result exec_redacted(Connection& conn, const std::string& sql);

// CockroachDB's own statements (docs/COCKROACHDB.md cites the documentation for each). The
// collection URI carries credentials: run these with exec_redacted.
namespace cockroach {
// BACKUP DATABASE "db" INTO 'collection': a new full backup in the collection.
std::string backup_database(std::string_view database, std::string_view collection_uri);
// RESTORE DATABASE "db" FROM LATEST IN 'collection' WITH new_db_name = 'new': the newest backup
// of the collection under another name (the backed-up database may still exist).
std::string restore_database(std::string_view database, std::string_view collection_uri,
                             std::string_view new_name);
// SHOW BACKUPS IN 'collection': the backups (subdirectories) of a collection.
std::string show_backups(std::string_view collection_uri);
// RESTORE DATABASE "db" FROM 'subdir' IN 'collection' WITH new_db_name = 'new': one backup of
// the collection (a path SHOW BACKUPS IN lists), under another name.
std::string restore_database_from(std::string_view database, std::string_view subdir,
                                  std::string_view collection_uri, std::string_view new_name);
// The time in a backup subdirectory as SHOW BACKUPS IN lists it: "/2022/04/13-202334.48" is
// <year>/<month>/<day>-<HHMMSS.ss> (UTC; the leading slash optional). nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> backup_path_time(std::string_view path);
// A CockroachDB snapshot reference: a collection (s3://BUCKET/PREFIX/<source>, meaning its newest
// backup) or one backup of it (the collection followed by a path SHOW BACKUPS IN lists,
// s3://BUCKET/PREFIX/dev/2026/11/30-072146.12).
struct BackupReference {
  std::string collection;
  std::string subdir;  // "/2026/11/30-072146.12"; empty: the newest (FROM LATEST)
};
BackupReference split_backup_reference(std::string_view reference);
}  // namespace cockroach

}  // namespace previewdb::db
