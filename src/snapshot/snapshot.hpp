// Snapshots: on PostgreSQL a frozen template database on the same server (not connectable,
// marked IS_TEMPLATE, with metadata), optionally also written to a snapshot store as an archive.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "db/advisory_lock.hpp"
#include "db/connection.hpp"
#include "mask/mask.hpp"
#include "storage/store.hpp"

namespace previewdb::snapshot {

struct SnapshotRequest {
  std::string source = "dev";
  std::string created_by;
  std::string conninfo;  // the server, for pg_dump/pg_restore
  core::CloneStrategy strategy = core::CloneStrategy::automatic;
  std::optional<std::string> store_url;  // --to file://DIR or s3://BUCKET/PREFIX
  storage::StoreOptions store_options;   // credentials and settings of an s3:// store
  // Encrypt the archive (AES-256-GCM chunks) with store_options.encryption_key.
  bool encrypt = false;
  // A source with client sessions cannot be copied as a template: wait up to this long for
  // them to end, and/or end them (pg_terminate_backend), before the slower pg_dump copy.
  std::chrono::seconds wait_idle{0};
  bool terminate_sessions = false;
  // Mask the copy before it is frozen and before its archive is dumped (docs/MASKING.md).
  std::optional<mask::Spec> mask;
};

struct SnapshotResult {
  std::string id;
  std::string method;                  // "template (WAL_LOG)", "pg_dump | pg_restore (source busy)"
  std::optional<std::string> archive;  // where --to wrote the archive
  size_t snapshots_of_source = 0;      // including this one
  std::optional<mask::Report> masking;  // what masking changed, when asked
};

// Throws Error(not_found) when the source does not exist, Error(usage) for a bad source name.
SnapshotResult create_snapshot(db::Connection& maintenance, const SnapshotRequest& request);

// Zero setup: takes the first snapshot of request.source when the server has none yet (one
// caller at a time, under the advisory lock previewdb:first-snapshot:<source>, waiting at most
// `timeout`); nullopt when a snapshot already exists.
std::optional<SnapshotResult> ensure_first_snapshot(db::Connection& maintenance,
                                                    const SnapshotRequest& request,
                                                    std::chrono::seconds timeout);

// "snap_<source>_<YYYYMMDD_HHMMSS>", at most 63 bytes.
std::string snapshot_name(const std::string& source, const std::string& timestamp);

struct PrunePlan {
  std::vector<core::DatabaseInfo> keep;
  std::vector<core::DatabaseInfo> drop;
};
// For every source (or only `source`), keeps the newest `keep` snapshots.
PrunePlan plan_prune(const std::vector<core::DatabaseInfo>& all, size_t keep,
                     const std::optional<std::string>& source);

struct ArchivePrunePlan {
  std::vector<storage::ArchiveInfo> keep;  // newest first per source
  std::vector<storage::ArchiveInfo> drop;
};
// The same for archives in a store (snapshot prune --store): newest `keep` of each source by
// creation time (ties by id).
ArchivePrunePlan plan_archive_prune(std::vector<storage::ArchiveInfo> all, size_t keep,
                                    const std::optional<std::string>& source);

// Reads a snapshot's schema without copying it: a snapshot is a template that takes no
// connections, so this holds the snapshot's name lock (previewdb:spawn:<id>, the lock every
// clone from it and every drop of it takes, so none runs meanwhile), revokes PUBLIC's CONNECT
// (other roles cannot come in meanwhile), allows connections, opens
// one, and on destruction closes it and disallows connections again. Only for a snapshot the
// registry says previewdb made (Error(refused) otherwise, Error(not_found) when it is gone).
class SnapshotReader {
 public:
  SnapshotReader(db::Connection& maintenance, const std::string& conninfo,
                 const std::string& snapshot_id, std::chrono::seconds lock_timeout);
  ~SnapshotReader();
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;
  db::Connection& connection() { return *m_conn; }

 private:
  db::Connection& m_maintenance;
  std::string m_id;
  std::optional<db::AdvisoryLock> m_lock;
  std::optional<db::Connection> m_conn;
};

}  // namespace previewdb::snapshot
