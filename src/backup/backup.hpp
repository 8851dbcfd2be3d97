// Verified logical backups of one database: pg_dump -Fc -Z0 streamed through in-process zstd into
// an archive store (storage::SnapshotStore objects), a JSON manifest beside each archive, a full
// read-back verification, retention. Restore and rollback build on this API.
//
// In a store, a backup NAME is two objects: NAME.dump.zst (the archive) and NAME.json (its
// manifest, written after the archive). An archive without a manifest is incomplete.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "storage/store.hpp"

namespace previewdb::backup {

inline constexpr const char* k_archive_suffix = ".dump.zst";
inline constexpr const char* k_manifest_suffix = ".json";
inline constexpr const char* k_manifest_format = "previewdb-backup-1";

// ---- PostgreSQL client tools -------------------------------------------------------------------

struct PgTool {
  std::filesystem::path path;
  int major = 0;
  std::string version;  // "pg_dump (PostgreSQL) 16.4"
};

// The major version in a tool's --version output ("pg_dump (PostgreSQL) 15.4 (Debian 15.4-1)"
// -> 15, "... 9.6.24" -> 9); nullopt when there is none.
std::optional<int> parse_tool_major(const std::string& version_output);

// The first candidate (in order of preference) whose major is at least `needed`: a pg_dump must be
// at least as new as the server, a pg_restore at least as new as the pg_dump that wrote the
// archive. nullopt when none is.
std::optional<PgTool> choose_tool(const std::vector<PgTool>& candidates, int needed);

// `name` (pg_dump, pg_restore) from PATH, else from <lib_root>/<major>/bin (newest last), chosen by
// choose_tool. Throws Error(refused) naming the versions found and the one needed, with a hint.
PgTool find_tool(const std::string& name, int needed,
                 const std::filesystem::path& lib_root = "/usr/lib/postgresql");

// ---- names and manifests -----------------------------------------------------------------------

// "bak_<db>_<YYYYMMDD_HHMMSS>"; characters of db outside [A-Za-z0-9_-] become '_'.
std::string backup_name(const std::string& database, const std::string& timestamp);
// A label (--name) is 1-63 characters of [A-Za-z0-9._-], not starting with '.' or '-'.
bool valid_label(const std::string& label);

struct HistoryHead {
  std::string id;
  std::string name;
  std::string finished_at;
};

struct Manifest {
  std::string name;  // the backup's name (objects NAME.dump.zst and NAME.json)
  std::string database;
  std::string server_version;   // "16.4"
  std::string pg_dump_version;  // "pg_dump (PostgreSQL) 16.4"
  int pg_dump_major = 0;
  std::string created_at;  // ISO 8601 UTC, when the dump started
  std::uint64_t size_raw = 0;
  std::uint64_t size_compressed = 0;
  // Of the archive object (compressed). The uncompressed stream is covered by zstd's own
  // content checksum in the frame (checked on every decompression) and by size_raw.
  std::string sha256;
  int level = 0;
  std::optional<HistoryHead> history_head;  // _previewdb.schema_migrations at backup time
  long long duration_ms = 0;
  std::optional<std::string> label;
  std::optional<std::string> verified_at;
};

std::string to_json(const Manifest& m);
// nullopt for text that is not a well-formed manifest of this format.
std::optional<Manifest> parse_manifest(const std::string& text);

// ---- making a backup ---------------------------------------------------------------------------

// Called on stderr-worthy progress: bytes read from pg_dump and written so far.
using Progress = std::function<void(std::uint64_t raw, std::uint64_t compressed)>;

struct BackupRequest {
  std::string conninfo;  // the server; the password reaches pg_dump through its environment
  std::string database;
  int level = 3;
  std::optional<std::string> label;
  std::string timestamp;  // YYYYMMDD_HHMMSS (UTC), for the name
  std::string created_at;
  Progress progress;  // may be empty
  std::filesystem::path lib_root = "/usr/lib/postgresql";
};

// Dumps request.database (conn is connected to it) into the store. Nothing named NAME.dump.zst
// exists unless pg_dump exited 0 and the whole stream was written; the manifest follows the
// archive. Throws Error(not_found) for a missing database (checked by the caller's connect),
// Error(already_exists) when the label is taken for this database, Error(refused) for a too old
// pg_dump, Error(failure) when pg_dump fails (with its message).
Manifest create_backup(db::Connection& conn, storage::SnapshotStore& store,
                       const BackupRequest& request);

// ---- reading back ------------------------------------------------------------------------------

struct VerifyOptions {
  // Restore test: also restore into a scratch database (a registered previewdb_tmp_* on the
  // server of `maintenance`), dropped afterwards.
  db::Connection* maintenance = nullptr;
  // Without a restore test: pg_restore reads only the table of contents (--list) instead of every
  // data block. For backup's own read-back, right after a pg_dump that exited 0 and whose whole
  // stream is covered by the manifest's checksums; `backup verify` reads everything.
  bool toc_only = false;
  std::string conninfo;
  // Called with the scratch database's name after a successful restore, before it is dropped.
  std::function<void(const std::string& scratch)> on_restored;
  Progress progress;
  std::filesystem::path lib_root = "/usr/lib/postgresql";
};

struct VerifyResult {
  bool ok = false;
  std::vector<std::string> problems;  // why it is damaged, each naming what differed
  std::optional<Manifest> manifest;
  std::uint64_t size_raw = 0;
};

// A full read-back of backup `name`: the archive decompressed to its end, its SHA-256 and sizes
// against the manifest, pg_restore reading the table of contents and every data block from the
// decompressed stream (its output discarded, or restored into the scratch database). Damage is a
// result, not an exception; Error only for what makes the check impossible (no pg_restore).
VerifyResult verify_backup(storage::SnapshotStore& store, const std::string& name,
                           const VerifyOptions& options);

// Records a successful verification in the manifest.
void mark_verified(storage::SnapshotStore& store, Manifest manifest, const std::string& when);

// ---- listing and retention ---------------------------------------------------------------------

struct BackupInfo {
  std::string name;
  std::optional<Manifest> manifest;  // nullopt: archive without (readable) manifest: incomplete
  std::uint64_t size = 0;            // of the archive object
  std::chrono::system_clock::time_point modified;
};

// Backups in the store, oldest first (by created_at, else by the archive's time).
std::vector<BackupInfo> list_backups(storage::SnapshotStore& store);

// The backup a user named: a backup name, NAME.dump.zst, or a label; nullopt when none matches.
// With several backups of one label, the newest.
std::optional<std::string> resolve_backup(const std::vector<BackupInfo>& all,
                                          const std::string& wanted);

struct RetentionPolicy {
  std::size_t keep = 7;                         // newest N per database
  std::optional<std::chrono::hours> keep_days;  // and/or nothing older than this
};
// Which backups of `database` to delete: unnamed ones beyond the newest `keep`, or older than
// keep_days (never the newest one). Named (labelled) backups are never chosen; neither are
// backups without a manifest (someone else's, or incomplete: left for a person to look at).
std::vector<std::string> plan_retention(const std::vector<BackupInfo>& all,
                                        const std::string& database, const RetentionPolicy& policy,
                                        std::chrono::system_clock::time_point now);

// Deletes a backup's archive and manifest.
void remove_backup(storage::SnapshotStore& store, const std::string& name);

// previewdb's history head of the database on `conn` (nullopt: no history table, or empty):
// recorded in each manifest, and what `rollback` compares with.
std::optional<HistoryHead> current_history_head(db::Connection& conn);

}  // namespace previewdb::backup
