// Files: read whole, write atomically (temp file + rename), temporary directories.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace previewdb::util {

// Reads a whole file; throws Error(usage) naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);
// nullopt when the file does not exist; throws when it exists but cannot be read.
std::optional<std::string> read_file_if_exists(const std::filesystem::path& path);
// Writes content to path atomically: a reader sees the old or the new file, never a mix.
void write_file_atomic(const std::filesystem::path& path, const std::string& content,
                       std::filesystem::perms perms = std::filesystem::perms(0644));
// Appends to a file (GITHUB_OUTPUT and friends are append-only by contract).
void append_file(const std::filesystem::path& path, const std::string& content);

// A directory removed (recursively) when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "previewdb-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

// A private directory (0700) "<prefix><pid>-XXXXXX" in the temporary directory, for files that
// hold data (dumps). remove_orphaned_temp_dirs(prefix) deletes the ones whose process is gone
// (killed before its destructor ran) and that belong to this user.
std::unique_ptr<TempDir> private_temp_dir(const std::string& prefix);
void remove_orphaned_temp_dirs(const std::string& prefix);

}  // namespace previewdb::util
