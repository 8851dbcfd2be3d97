#include "util/files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::util {

std::optional<std::string> read_file_if_exists(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    throw Error(ExitCode::usage,
                "cannot read " + util::quoted(path.string()) + ": " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    throw Error(ExitCode::usage, "cannot read " + util::quoted(path.string()) + ": read error");
  }
  return ss.str();
}

std::string read_file(const fs::path& path) {
  auto content = read_file_if_exists(path);
  if (!content) {
    throw Error(ExitCode::usage, "cannot read " + util::quoted(path.string()) + ": no such file");
  }
  return *content;
}

void write_file_atomic(const fs::path& path, const std::string& content, fs::perms perms) {
  fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) {
    throw Error(ExitCode::failure,
                "cannot write " + util::quoted(path.string()) + ": " + std::strerror(errno));
  }
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmpl.c_str());
      throw Error(ExitCode::failure,
                  "cannot write " + util::quoted(path.string()) + ": " + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  ::fchmod(fd, static_cast<mode_t>(perms));
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmpl.c_str());
    throw Error(ExitCode::failure,
                "cannot write " + util::quoted(path.string()) + ": " + std::strerror(e));
  }
}

void append_file(const fs::path& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw Error(ExitCode::failure,
                "cannot append to " + util::quoted(path.string()) + ": " + std::strerror(errno));
  }
  // One write() so that concurrent appenders (O_APPEND) never interleave within a block.
  ssize_t n = ::write(fd, content.data(), content.size());
  int e = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(content.size())) {
    throw Error(ExitCode::failure,
                "cannot append to " + util::quoted(path.string()) + ": " + std::strerror(e));
  }
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) {
    throw Error(ExitCode::failure,
                std::string("cannot create a temporary directory: ") + std::strerror(errno));
  }
  m_path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(m_path, ec);
}

std::unique_ptr<TempDir> private_temp_dir(const std::string& prefix) {
  // mkdtemp makes it 0700: nobody else can read what goes inside.
  return std::make_unique<TempDir>(prefix + std::to_string(::getpid()) + "-");
}

void remove_orphaned_temp_dirs(const std::string& prefix) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path(), ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string rest = name.substr(prefix.size());
    auto dash = rest.find('-');
    if (dash == std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::atoll(rest.substr(0, dash).c_str()));
    struct stat st {};
    if (pid <= 0 || ::lstat(e.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != ::geteuid()) {
      continue;
    }
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // its process still runs
    std::error_code ignored;
    fs::remove_all(e.path(), ignored);
  }
}

}  // namespace previewdb::util
