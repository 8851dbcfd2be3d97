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

namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::optional<std::string> read_file_if_exists(const fs::path& path, std::uintmax_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw Error(ExitCode::usage,
                "cannot read " + util::quoted(path.string()) + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ExitCode::usage,
                "cannot read " + util::quoted(path.string()) + ": it is " + kind_of(st.st_mode) +
                    ", not a regular file",
                {"point it at an ordinary file"});
  }
  auto too_big = [&](std::uintmax_t size) {
    ::close(fd);
    return Error(ExitCode::usage, "cannot read " + util::quoted(path.string()) + ": it is " +
                                      std::to_string(size) + " bytes or more; at most " +
                                      std::to_string(max_bytes) + " are accepted");
  };
  if (static_cast<std::uintmax_t>(st.st_size) > max_bytes) throw too_big(st.st_size);
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw Error(ExitCode::usage,
                  "cannot read " + util::quoted(path.string()) + ": " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    // The file may grow while it is read (a /proc file reports size 0): bound what is read too.
    if (out.size() > max_bytes) throw too_big(out.size());
  }
  ::close(fd);
  return out;
}

bool resolves_inside(const fs::path& path, const fs::path& root) {
  std::error_code ec;
  fs::path real = fs::weakly_canonical(path, ec);
  if (ec) return false;
  fs::path base = fs::weakly_canonical(root, ec);
  if (ec) return false;
  auto rel = real.lexically_relative(base);
  return !rel.empty() && *rel.begin() != "..";
}

void check_output_file(const fs::path& path, std::string_view what) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  std::string name = std::string(what) + " " + util::quoted(path.string());
  if (fs::exists(st)) {
    if (!fs::is_regular_file(st)) {
      struct stat raw {};
      ::stat(path.c_str(), &raw);
      throw usage_error("cannot write " + name + ": it is " + kind_of(raw.st_mode),
                        "point it at a file (it is created when missing)");
    }
    if (::access(path.c_str(), W_OK) != 0) {
      throw usage_error("cannot write " + name + ": " + std::strerror(errno),
                        "check the file's permissions");
    }
    return;
  }
  fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) {
    throw usage_error(
        "cannot write " + name + ": folder " + util::quoted(dir.string()) + " does not exist",
        "create the folder first, or point it at an existing folder");
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw usage_error("cannot write " + name + ": folder " + util::quoted(dir.string()) + ": " +
                          std::strerror(errno),
                      "check the folder's permissions");
  }
}

std::string read_file(const fs::path& path, std::uintmax_t max_bytes) {
  auto content = read_file_if_exists(path, max_bytes);
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
  // O_NONBLOCK: a FIFO without a reader fails at once instead of blocking.
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0) {
    int e = errno;
    struct stat st {};
    std::string why = ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)
                          ? "it is " + kind_of(st.st_mode) + ", not a regular file"
                          : std::strerror(e);
    throw Error(ExitCode::failure, "cannot append to " + util::quoted(path.string()) + ": " + why);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ExitCode::failure, "cannot append to " + util::quoted(path.string()) + ": it is " +
                                       kind_of(st.st_mode) + ", not a regular file");
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
