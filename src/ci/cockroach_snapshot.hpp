// Which snapshot `ci` restores a preview from on a server without template databases
// (CockroachDB). There a snapshot of SOURCE is a BACKUP in the collection <store>/<SOURCE> of the
// configured snapshot store, so "the latest snapshot of dev" is the newest backup SHOW BACKUPS IN
// lists (docs/COCKROACHDB.md#ci).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace previewdb::ci {

enum class CockroachSnapshotStep {
  refuse,          // Error(refused) with message and hints
  take_first,      // no backup of the source yet: take one (zero setup), then restore it
  restore_newest,  // restore `snapshot`, the newest backup
};

struct CockroachSnapshotPlan {
  CockroachSnapshotStep step = CockroachSnapshotStep::refuse;
  std::string snapshot;  // restore_newest: the backup's reference (collection + subdirectory)
  std::string message;   // refuse: why
  std::vector<std::string> hints;
};

// store_url: the configured snapshot store (snapshot_store / PREVIEWDB_SNAPSHOT_STORE), if any;
// newest_backup: the reference of the newest backup of `source` in it, if any; masking: masking
// rules apply to this run's snapshots (a BACKUP copies every row as it is, so it is refused).
CockroachSnapshotPlan plan_cockroach_snapshot(const std::optional<std::string>& store_url,
                                              const std::string& source,
                                              const std::optional<std::string>& newest_backup,
                                              bool masking);

}  // namespace previewdb::ci
