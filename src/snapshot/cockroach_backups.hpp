// CockroachDB snapshots: a snapshot of SOURCE is a full BACKUP into the collection
// <store>/<SOURCE> (s3://BUCKET/PREFIX/dev), one dated subdirectory per backup, as CockroachDB
// lays out a collection. SHOW BACKUPS IN lists them, RESTORE ... FROM LATEST IN restores the newest
// and RESTORE ... FROM '<subdir>' IN one of them (docs/COCKROACHDB.md#snapshots).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "storage/store.hpp"

namespace previewdb::snapshot {

// <store>/<source>: the collection of SOURCE's backups (the store's trailing '/' dropped).
std::string cockroach_collection(const std::string& store_url, const std::string& source);

struct CockroachBackup {
  std::string path;        // "/2026/11/30-072146.12", as SHOW BACKUPS IN lists it
  std::string reference;   // collection + path: what spawn --snapshot takes
  std::string created_at;  // ISO 8601 UTC, from the path
  std::chrono::system_clock::time_point created;
};

// The rows of SHOW BACKUPS IN `collection` (its path column), newest first; a row whose path is
// not a backup subdirectory (<year>/<month>/<day>-<HHMMSS.ss>) is left out.
std::vector<CockroachBackup> cockroach_backups(const std::string& collection,
                                               const std::vector<std::string>& paths);

// Keeps the newest `keep` (backups newest first, as cockroach_backups returns them).
struct BackupPrunePlan {
  std::vector<CockroachBackup> keep;
  std::vector<CockroachBackup> drop;
};
BackupPrunePlan plan_backup_prune(const std::vector<CockroachBackup>& backups, size_t keep);

// Runs SHOW BACKUPS IN the collection of `source` on `conn` (the statement carries credentials:
// redacted) and returns cockroach_backups of its rows.
std::vector<CockroachBackup> list_cockroach_backups(db::Connection& conn,
                                                    const std::string& store_url,
                                                    const std::string& source,
                                                    const storage::StoreOptions& options);

}  // namespace previewdb::snapshot
