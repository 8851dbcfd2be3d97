// Files: read whole, write atomically (temp file + rename), temporary directories.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace previewdb::util {

// Inputs larger than this are refused (event payloads, migrations, previewdb.json, dotenv files).
inline constexpr std::uintmax_t k_max_input_bytes = 64u << 20;

// Reads a whole regular file (symlinks followed) of at most max_bytes; throws Error(usage) naming
// the path when it cannot be read, is not a regular file (FIFO, device, directory: refused at
// once, never waited on) or is too large.
std::string read_file(const std::filesystem::path& path,
                      std::uintmax_t max_bytes = k_max_input_bytes);
// nullopt when the file does not exist; otherwise as read_file.
std::optional<std::string> read_file_if_exists(const std::filesystem::path& path,
                                               std::uintmax_t max_bytes = k_max_input_bytes);
// True when path, symlinks resolved, is root itself or inside it (root resolved likewise).
bool resolves_inside(const std::filesystem::path& path, const std::filesystem::path& root);
// Checks, before any work, that path can be written: an existing regular file we may write, or a
// missing file in an existing folder we may write. Throws Error(usage) naming `what` and path.
void check_output_file(const std::filesystem::path& path, std::string_view what);
// Writes content to path atomically: a reader sees the old or the new file, never a mix.
void write_file_atomic(const std::filesystem::path& path, const std::string& content,
                       std::filesystem::perms perms = std::filesystem::perms(0644));
// Appends to a regular file (GITHUB_OUTPUT and friends are append-only by contract); a FIFO or
// device is refused (Error(failure)) without blocking.
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
