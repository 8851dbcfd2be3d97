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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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
  std::uint64_t size_compressed = 0;  // of the archive object as stored (encrypted, if it is)
  // Of the archive object as stored. The uncompressed stream is covered by zstd's own content
  // checksum in the frame (checked on every decompression) and by size_raw.
  std::string sha256;
  // Set: the archive is zstd then AES-256-GCM chunks (storage/encryption.hpp) under the key with
  // this id (a hash prefix, safe to print).
  std::optional<std::string> encryption_key_id;
  int level = 0;
  std::optional<HistoryHead> history_head;  // _previewdb.schema_migrations at backup time
  long long duration_ms = 0;
  std::optional<std::string> label;
  std::optional<std::string> verified_at;
};

std::string to_json(const Manifest& m);
// nullopt for text that is not a well-formed manifest of this format.
std::optional<Manifest> parse_manifest(const std::string& text);

// Backup `name`'s manifest. Error(pending) when there is none (an incomplete backup);
// Error(refused) when it is there but not to be trusted: not a manifest of this format, or (s3://)
// its HMAC fails.
Manifest read_manifest(storage::SnapshotStore& store, const std::string& name);

// Before anything is read or restored: an encrypted backup needs its key. Error(usage) naming how
// to give one when there is none; Error(refused) naming both key ids when key is another key.
// Nothing for an unencrypted backup.
void check_key(const Manifest& m, const std::optional<storage::EncryptionKey>& key,
               const std::string& store);

// Turns an archive object, as stored, back into pg_dump's stream: decrypts it (when the manifest
// says it is encrypted; only authenticated bytes come out) and decompresses it. Throws Error
// (refused from decryption, failure from zstd) naming what is wrong with the stream.
class ArchiveDecoder {
 public:
  ArchiveDecoder(const Manifest& m, const std::optional<storage::EncryptionKey>& key,
                 const std::string& what);
  ~ArchiveDecoder();
  // Appends what is ready to out.
  void update(std::string_view stored, std::string& out);
  // At the end of the object: throws when the stream is incomplete.
  void finish(std::string& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

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
  // Set: the archive is encrypted after compression (--encrypt), the key's id in the manifest.
  std::optional<storage::EncryptionKey> encryption_key;
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
  // Decrypts an encrypted backup (check_key: Error before anything is read without it).
  std::optional<storage::EncryptionKey> encryption_key;
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
// result, not an exception (an encrypted chunk that fails authentication, a truncated archive);
// Error only for what makes the check impossible: no pg_restore, a manifest not to be trusted
// (read_manifest), a missing or wrong key (check_key).
VerifyResult verify_backup(storage::SnapshotStore& store, const std::string& name,
                           const VerifyOptions& options);

// Records a successful verification in the manifest.
void mark_verified(storage::SnapshotStore& store, Manifest manifest, const std::string& when);

// ---- listing and retention ---------------------------------------------------------------------

struct BackupInfo {
  std::string name;
  // nullopt: archive without a manifest (incomplete), or with one not to be trusted (invalid).
  std::optional<Manifest> manifest;
  std::uint64_t size = 0;  // of the archive object
  std::chrono::system_clock::time_point modified;
  // Why the manifest is not to be trusted (a failed HMAC, not a manifest): set when there is a
  // manifest object that read_manifest refuses. Such a backup is listed but never chosen.
  std::optional<std::string> invalid;
};

// Backups in the store, oldest first (by created_at, else by the archive's time). A manifest
// not to be trusted does not fail the listing: that backup gets `invalid`.
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

// Which backups to delete for `backup prune`: plan_retention for every database with backups in
// the store (or only `database`), newest first within each.
std::vector<std::string> plan_prune(const std::vector<BackupInfo>& all,
                                    const std::optional<std::string>& database,
                                    const RetentionPolicy& policy,
                                    std::chrono::system_clock::time_point now);

// More backups of one database than this in a store gets a warning (as snapshots do), unless
// retention is configured to keep more.
inline constexpr std::size_t k_backup_warn_count = 5;
// The databases with more backups (complete ones, named or not) in the store than
// max(k_backup_warn_count, keep), with their counts.
std::vector<std::pair<std::string, std::size_t>> crowded_databases(
    const std::vector<BackupInfo>& all, std::size_t keep);

// Deletes a backup's archive and manifest.
void remove_backup(storage::SnapshotStore& store, const std::string& name);

// previewdb's history head of the database on `conn` (nullopt: no history table, or empty):
// recorded in each manifest, and what `rollback` compares with.
std::optional<HistoryHead> current_history_head(db::Connection& conn);

}  // namespace previewdb::backup
