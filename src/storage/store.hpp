// Archive stores: where pg_dump archives (of snapshots) live so they can move between servers.
// Chosen by URL scheme from one table (file:// now; s3:// later). Below core and snapshot: both
// use it (spawn restores an archive, snapshot writes one), so neither depends on the other for it.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace previewdb::storage {

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;
  // Stores archive (a pg_dump custom-format file) as `id`, with its metadata JSON beside it.
  virtual void put(const std::string& id, const std::filesystem::path& archive,
                   const std::string& metadata_json) = 0;
  // A local path to the archive `id` ("latest": the newest). May download into scratch.
  virtual std::filesystem::path fetch(const std::string& id,
                                      const std::filesystem::path& scratch) = 0;
  // Removes the archive `id` and its metadata (nothing when absent).
  virtual void remove(const std::string& id) = 0;
  // Archive ids, oldest first.
  virtual std::vector<std::string> list() = 0;
  // The newest archive taken of `source` (by its metadata's creation time), never one of another
  // source; nullopt when there is none.
  virtual std::optional<std::string> latest_of(const std::string& source) = 0;
  // The store's URL, safe to print.
  virtual std::string describe() const = 0;
};

// file://DIR or file://DIR/<id>.dump. Throws Error(usage) for unknown schemes, bad URLs and
// s3:// ("not supported yet").
std::unique_ptr<SnapshotStore> open_store(const std::string& url);
// The object a URL names: "<id>" for file://DIR/<id>.dump, "latest" for file://DIR.
std::string store_object_id(const std::string& url);

// pg_dump -Fc of dbname into path; pg_restore of an archive into an existing empty dbname.
// The connection reaches the child through libpq environment variables, never its argv.
void dump_archive(const std::string& conninfo, const std::string& dbname,
                  const std::filesystem::path& path);
void restore_archive(const std::string& conninfo, const std::string& dbname,
                     const std::filesystem::path& archive);
// pg_dump -Fc source | pg_restore -d target: an online copy that needs no exclusive access.
void copy_online(const std::string& conninfo, const std::string& source, const std::string& target);

}  // namespace previewdb::storage
