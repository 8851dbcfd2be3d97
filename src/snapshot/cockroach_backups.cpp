#include "snapshot/cockroach_backups.hpp"

#include <algorithm>

#include "db/dialect.hpp"
#include "storage/cockroach_url.hpp"
#include "util/time.hpp"

namespace previewdb::snapshot {

std::string cockroach_collection(const std::string& store_url, const std::string& source) {
  std::string base = store_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + source;
}

std::vector<CockroachBackup> cockroach_backups(const std::string& collection,
                                               const std::vector<std::string>& paths) {
  std::vector<CockroachBackup> out;
  for (const auto& raw : paths) {
    auto when = db::cockroach::backup_path_time(raw);
    if (!when) continue;
    std::string path = raw.front() == '/' ? raw : "/" + raw;
    std::string base = collection;
    while (!base.empty() && base.back() == '/') base.pop_back();
    out.push_back({path, base + path, util::to_iso8601(*when), *when});
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created != b.created ? a.created > b.created : a.path > b.path;
  });
  return out;
}

BackupPrunePlan plan_backup_prune(const std::vector<CockroachBackup>& backups, size_t keep) {
  BackupPrunePlan plan;
  for (size_t i = 0; i < backups.size(); ++i) {
    (i < keep ? plan.keep : plan.drop).push_back(backups[i]);
  }
  return plan;
}

std::vector<CockroachBackup> list_cockroach_backups(db::Connection& conn,
                                                    const std::string& store_url,
                                                    const std::string& source,
                                                    const storage::StoreOptions& options) {
  std::string collection = cockroach_collection(store_url, source);
  auto rows = db::exec_redacted(
      conn, db::cockroach::show_backups(storage::cockroach_storage_url(collection, "", options)));
  std::vector<std::string> paths;
  for (int i = 0; i < rows.rows(); ++i) paths.push_back(rows.get(i, 0));
  return cockroach_backups(collection, paths);
}

}  // namespace previewdb::snapshot
