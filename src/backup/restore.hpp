// Restore and rollback: a backup (or a plain .sql / .sql.gz file, or a pg_dump archive made by
// another tool) loaded into a new database built under a temporary name, then swapped in for the
// target (core::swap_database), the original kept as <db>_before_restore_<time>. Or, where a swap
// is impossible, in place (--clean). A failed or killed restore never leaves a half-restored
// database under the target's name.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backup/backup.hpp"
#include "core/protection.hpp"
#include "core/swap.hpp"
#include "db/connection.hpp"
#include "storage/store.hpp"

namespace previewdb::backup {

// ---- what to restore ---------------------------------------------------------------------------

enum class SourceKind {
  backup,   // previewdb's NAME.dump.zst with its manifest, in a store
  sql,      // plain SQL (pg_dump -Fp or any tool's), run by psql
  sql_gz,   // the same, gzip-compressed: gzip -dc | psql
  archive,  // a pg_dump archive made by another tool (custom or tar format): pg_restore
};
// By the file's name: *.dump.zst -> backup, *.sql -> sql, *.sql.gz -> sql_gz, else archive.
SourceKind classify_path(const std::filesystem::path& path);
std::string to_string(SourceKind kind);

struct RestoreSource {
  SourceKind kind = SourceKind::backup;
  storage::SnapshotStore* store = nullptr;  // backup: the store and the backup's name
  std::string name;
  std::filesystem::path path;  // the other kinds: the file
  std::string describe() const;
};

// The pg_dump major that wrote an archive, from `pg_restore --list` output ("; Dumped by pg_dump
// version: 16.4"); nullopt when the line is missing.
std::optional<int> archive_dump_major(const std::string& list_output);

// ---- restoring ---------------------------------------------------------------------------------

struct RestoreRequest {
  std::string conninfo;  // the server (children get the password through their environment)
  std::string target;    // the database to restore into (created when it does not exist)
  RestoreSource source;
  std::string timestamp;  // YYYYMMDD_HHMMSS: the kept original's name
  bool terminate_sessions = false;
  // In place: pg_restore --clean --if-exists --single-transaction into the target itself (no
  // swap, no kept original). Archives and backups only.
  bool clean = false;
  const core::Protection* protection = nullptr;
  bool allow_protected = false;
  std::string created_by = "previewdb restore";
  Progress progress;
  std::filesystem::path lib_root = "/usr/lib/postgresql";
  // Decrypts an encrypted backup; without it (or with another key) the restore is refused before
  // any database is created.
  std::optional<storage::EncryptionKey> encryption_key;
};

struct RestoreResult {
  std::string database;
  bool created = false;                  // the target did not exist: made from the backup
  bool in_place = false;                 // --clean
  std::optional<core::SwapResult> swap;  // the kept original, terminated sessions
  std::string tool;                      // "pg_restore 16", "psql"
};

// Restores request.source into request.target (see the file comment). Throws Error(refused) for a
// protected target without allow_protected, a busy target (naming its sessions) without
// terminate_sessions, a role that may not create databases (hint: --clean); Error(usage) for
// --clean with a plain SQL file; Error(failure) naming the tool's message when loading fails
// (the temporary database is dropped, the target untouched); Error(pending) when a backup's
// archive does not match its manifest or it has none. Before any database is created: a backup
// manifest not to be trusted is Error(refused) (read_manifest), a missing or wrong key Error(usage)
// or Error(refused) (check_key). An encrypted archive that fails authentication part way is
// Error(refused): no unauthenticated byte reaches pg_restore, the temporary database is dropped.
RestoreResult restore(db::Connection& maintenance, const RestoreRequest& request);

// ---- rollback ----------------------------------------------------------------------------------

// The newest backup of `database` whose manifest's history head precedes `current` (taken before
// the last migration run): a head that finished earlier (ties broken by id), or no head at all.
// nullopt when there is none, or when `current` is nullopt (nothing was ever migrated).
std::optional<std::string> choose_rollback(const std::vector<BackupInfo>& all,
                                           const std::string& database,
                                           const std::optional<HistoryHead>& current);

// Ids and names of applied migrations in previewdb's history (empty without the table).
std::vector<std::pair<std::string, std::string>> applied_migrations(db::Connection& conn);

// Prisma: rows of _prisma_migrations that a restore brought back as finished (finished_at set,
// rolled_back_at null) whose migration folder is not among `present` (the team removed it) get
// rolled_back_at = now(), as `prisma migrate resolve --rolled-back` does. Returns their names;
// nothing without the table.
std::vector<std::string> mark_removed_prisma_migrations(db::Connection& conn,
                                                        const std::set<std::string>& present);

}  // namespace previewdb::backup
