#include "storage/store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "crypto/random.hpp"
#include "db/connection.hpp"
#include "storage/encryption.hpp"
#include "storage/s3.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace fs = std::filesystem;

namespace previewdb::storage {

namespace {

bool valid_object_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

std::optional<pid_t> stale_partial_pid(const std::string& file) {
  // ".<object>.partial-<pid>", as FileWriter names its temporary.
  const std::string mark = ".partial-";
  auto at = file.rfind(mark);
  if (file.empty() || file[0] != '.' || at == std::string::npos || at < 2) return std::nullopt;
  if (!valid_object_name(file.substr(1, at - 1))) return std::nullopt;
  auto digits = file.substr(at + mark.size());
  auto pid = util::parse_uint(digits);
  if (!pid || *pid == 0 || *pid > 0x3fffffff || std::to_string(*pid) != digits) return std::nullopt;
  return static_cast<pid_t>(*pid);
}

namespace {

void check_object_name(const std::string& name) {
  if (!valid_object_name(name)) {
    throw usage_error("invalid object name " + util::quoted(name),
                      "names use letters, digits, '.', '_' and '-' and do not start with '.'");
  }
}

class FileWriter : public ObjectWriter {
 public:
  FileWriter(fs::path target, std::string store) : m_target(std::move(target)) {
    m_temp = m_target.parent_path() /
             ("." + m_target.filename().string() + ".partial-" + std::to_string(::getpid()));
    m_fd = ::open(m_temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (m_fd < 0) {
      throw Error(ExitCode::failure,
                  "cannot write to store " + store + ": " + util::quoted(m_temp.string()) + ": " +
                      std::strerror(errno),
                  {"check that the folder is writable, or choose another with --store"});
    }
  }
  ~FileWriter() override {
    if (m_fd >= 0) ::close(m_fd);
    if (!m_committed) ::unlink(m_temp.c_str());
  }
  void write(std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::write(m_fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Error(ExitCode::failure,
                    "cannot write " + util::quoted(m_temp.string()) + ": " + std::strerror(errno));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  void commit() override {
    if (::fsync(m_fd) != 0 || ::close(m_fd) != 0) {
      m_fd = -1;
      throw Error(ExitCode::failure,
                  "cannot write " + util::quoted(m_temp.string()) + ": " + std::strerror(errno));
    }
    m_fd = -1;
    if (::rename(m_temp.c_str(), m_target.c_str()) != 0) {
      throw Error(ExitCode::failure, "cannot rename " + util::quoted(m_temp.string()) + " to " +
                                         util::quoted(m_target.string()) + ": " +
                                         std::strerror(errno));
    }
    m_committed = true;
  }

 private:
  fs::path m_target, m_temp;
  int m_fd = -1;
  bool m_committed = false;
};

class FileReader : public ObjectReader {
 public:
  explicit FileReader(int fd) : m_fd(fd) {}
  ~FileReader() override { ::close(m_fd); }
  size_t read(char* buf, size_t size) override {
    for (;;) {
      ssize_t n = ::read(m_fd, buf, size);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR)
        throw Error(ExitCode::failure, std::string("read failed: ") + std::strerror(errno));
    }
  }

 private:
  int m_fd;
};

// Staged as a hidden file; publish writes the metadata, then links the archive under its id.
class FileArchiveWriter : public ArchiveWriter {
 public:
  FileArchiveWriter(fs::path dir, std::string store) : m_dir(std::move(dir)) {
    std::error_code ec;
    fs::create_directories(m_dir, ec);
    if (ec)
      throw Error(ExitCode::failure, "cannot create snapshot store " + store + ": " + ec.message());
    m_staged = m_dir / (".staged-" + crypto::random_hex(8) + ".dump.partial");
    m_fd = ::open(m_staged.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (m_fd < 0) {
      throw Error(ExitCode::failure,
                  "cannot write to snapshot store " + store + ": " + std::strerror(errno),
                  {"check that the folder is writable, or choose another with --to"});
    }
  }
  ~FileArchiveWriter() override {
    if (m_fd >= 0) ::close(m_fd);
    ::unlink(m_staged.c_str());
  }
  void write(std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::write(m_fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Error(ExitCode::failure, "cannot write " + util::quoted(m_staged.string()) + ": " +
                                           std::strerror(errno));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  void finish() override {
    int fd = m_fd;
    m_fd = -1;
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      throw Error(ExitCode::failure,
                  "cannot write " + util::quoted(m_staged.string()) + ": " + std::strerror(errno));
    }
  }
  void publish(const std::string& id, const std::string& meta) override {
    fs::path target = m_dir / (id + ".dump");
    // The metadata first, the archive last (list() shows .dump files).
    util::write_file_atomic(m_dir / (id + ".json"), meta + "\n");
    if (::link(m_staged.c_str(), target.c_str()) != 0) {
      int err = errno;
      std::error_code ignored;
      fs::remove(m_dir / (id + ".json"), ignored);
      throw Error(ExitCode::failure,
                  "cannot write " + util::quoted(target.string()) + ": " + std::strerror(err));
    }
    m_published = id;
  }
  void unpublish() override {
    if (m_published.empty()) return;
    std::error_code ignored;
    fs::remove(m_dir / (m_published + ".dump"), ignored);
    fs::remove(m_dir / (m_published + ".json"), ignored);
    m_published.clear();
  }

 private:
  fs::path m_dir, m_staged;
  int m_fd = -1;
  std::string m_published;
};

class FileStore : public SnapshotStore {
 public:
  explicit FileStore(fs::path dir) : m_dir(std::move(dir)) {}

  void put(const std::string& id, const fs::path& archive, const std::string& meta) override {
    std::error_code ec;
    fs::create_directories(m_dir, ec);
    if (ec) {
      throw Error(ExitCode::failure,
                  "cannot create snapshot store " + describe() + ": " + ec.message());
    }
    fs::path target = m_dir / (id + ".dump");
    fs::path partial = target.string() + ".partial";
    // The metadata first, the archive last (list() shows .dump files): a reader never sees an
    // archive without its metadata, nor a half-written one.
    try {
      util::write_file_atomic(m_dir / (id + ".json"), meta + "\n");
    } catch (const Error& e) {
      throw Error(ExitCode::failure,
                  "cannot write the snapshot store " + describe() + ": " + e.what());
    }
    fs::copy_file(archive, partial, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(partial, target, ec);
    if (ec) {
      std::error_code ignored;
      fs::remove(partial, ignored);
      fs::remove(m_dir / (id + ".json"), ignored);
      throw Error(ExitCode::failure,
                  "cannot write " + util::quoted(target.string()) + ": " + ec.message());
    }
  }

  void remove(const std::string& id) override {
    std::error_code ec;
    fs::remove(m_dir / (id + ".dump"), ec);
    fs::remove(m_dir / (id + ".dump.partial"), ec);
    fs::remove(m_dir / (id + ".json"), ec);
  }

  fs::path fetch(const std::string& id, const fs::path&) override {
    std::string wanted = id;
    if (id == "latest") {
      auto all = list();
      if (all.empty()) {
        throw Error(ExitCode::not_found, "no snapshot archive found in " + describe(),
                    {"create one with 'previewdb snapshot --to " + describe() + "'"});
      }
      wanted = all.back();
    }
    fs::path p = m_dir / (wanted + ".dump");
    if (!fs::exists(p)) {
      throw Error(ExitCode::not_found, "no snapshot archive " + util::quoted(p.string()),
                  {"list the store with 'ls " + m_dir.string() + "'"});
    }
    return p;
  }

  std::vector<std::string> list() override {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(m_dir, ec)) {
      if (e.path().extension() == ".dump") ids.push_back(e.path().stem().string());
    }
    // Snapshot ids end in a UTC timestamp, so name order is time order within a source.
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  std::vector<ArchiveInfo> archives() override {
    std::vector<ArchiveInfo> out;
    for (const auto& id : list()) {
      auto text = util::read_file_if_exists(m_dir / (id + ".json"), 1 << 20);
      if (!text) continue;
      auto meta = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (!meta.is_object()) {
        // As s3:// does: one damaged file neither fails the listing nor goes unmentioned.
        util::log::warn("skipped snapshot archive " + util::printable(id) + " in " + describe() +
                        ": its metadata " + id + ".json is not a JSON object");
        continue;
      }
      std::error_code ec;
      auto size = fs::file_size(m_dir / (id + ".dump"), ec);
      out.push_back({id, meta.value("source", ""), meta.value("created_at", ""),
                     ec ? 0 : static_cast<std::uint64_t>(size), mask_hash_of(meta)});
    }
    return out;
  }

  std::optional<std::string> latest_of(const std::string& source) override {
    std::optional<std::string> best;
    std::string best_time;
    for (const auto& id : list()) {
      auto text = util::read_file_if_exists(m_dir / (id + ".json"), 1 << 20);
      if (!text) continue;
      auto meta = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (!meta.is_object() || meta.value("source", "") != source) continue;
      std::string created = meta.value("created_at", "");
      // ISO 8601 UTC times sort as strings; equal times fall back to the id's order.
      if (!best || created >= best_time) {
        best = id;
        best_time = created;
      }
    }
    return best;
  }

  std::unique_ptr<ObjectWriter> create_object(const std::string& name) override {
    check_object_name(name);
    ensure_private_dir();
    sweep_stale_partials();
    return std::make_unique<FileWriter>(m_dir / name, describe());
  }

  std::unique_ptr<ObjectReader> open_object(const std::string& name) override {
    check_object_name(name);
    int fd = ::open((m_dir / name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return nullptr;
      throw Error(ExitCode::failure, "cannot read " + util::quoted((m_dir / name).string()) + ": " +
                                         std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(ExitCode::failure,
                  "cannot read " + util::quoted((m_dir / name).string()) + ": not a regular file");
    }
    return std::make_unique<FileReader>(fd);
  }

  std::vector<StoreObject> list_objects() override {
    std::vector<StoreObject> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(m_dir, ec)) {
      std::string name = e.path().filename().string();
      if (!valid_object_name(name) || !e.is_regular_file(ec)) continue;
      StoreObject o;
      o.name = name;
      o.size = e.file_size(ec);
      auto t = e.last_write_time(ec);
      o.modified = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
          std::chrono::file_clock::to_sys(t));
      out.push_back(std::move(o));
    }
    std::sort(out.begin(), out.end(),
              [](const StoreObject& a, const StoreObject& b) { return a.name < b.name; });
    return out;
  }

  bool remove_object(const std::string& name) override {
    check_object_name(name);
    std::error_code ec;
    bool removed = fs::remove(m_dir / name, ec);
    if (ec) {
      throw Error(ExitCode::failure,
                  "cannot remove " + util::quoted((m_dir / name).string()) + ": " + ec.message());
    }
    return removed;
  }

  std::optional<fs::path> local_path(const std::string& name) const override {
    check_object_name(name);
    return m_dir / name;
  }

  std::string describe() const override { return "file://" + m_dir.string(); }

  std::unique_ptr<ArchiveWriter> begin_archive(const std::string&) override {
    return std::make_unique<FileArchiveWriter>(m_dir, describe());
  }

  std::unique_ptr<ObjectReader> open_archive(const std::string& id) override {
    fs::path p = fetch(id, {});
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      throw Error(ExitCode::failure,
                  "cannot read " + util::quoted(p.string()) + ": " + std::strerror(errno));
    }
    return std::make_unique<FileReader>(fd);
  }

  bool remote() const override { return false; }

  // Temporaries of writers that died (.NAME.partial-PID, SIGKILL leaves them): removed when
  // their process is gone. A live PID (or one reused since) keeps its file: never someone's
  // running write.
  void sweep_stale_partials() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(m_dir, ec)) {
      auto pid = stale_partial_pid(e.path().filename().string());
      if (!pid || ::kill(*pid, 0) == 0 || errno != ESRCH) continue;
      std::error_code rm;
      if (fs::remove(e.path(), rm)) {
        util::log::info("removed " + e.path().filename().string() +
                        ", left behind by a previewdb that was killed while writing (pid " +
                        std::to_string(*pid) + ")");
      }
    }
  }

 private:
  // Backups hold a database's data: the folder is the owner's only, and never committed to git.
  void ensure_private_dir() {
    std::error_code ec;
    if (!fs::exists(m_dir, ec)) {
      if (!m_dir.parent_path().empty()) fs::create_directories(m_dir.parent_path(), ec);
      if (::mkdir(m_dir.c_str(), 0700) != 0 && errno != EEXIST) {
        throw Error(ExitCode::failure,
                    "cannot create store folder " + util::quoted(m_dir.string()) + ": " +
                        std::strerror(errno),
                    {"check the path and its permissions, or choose another with --store"});
      }
      ::chmod(m_dir.c_str(), 0700);
    } else if (!fs::is_directory(m_dir, ec)) {
      throw Error(ExitCode::failure, "store " + util::quoted(m_dir.string()) + " is not a folder",
                  {"pass a folder path or file://DIR with --store"});
    }
    if (!fs::exists(m_dir / ".gitignore", ec)) {
      int fd =
          ::open((m_dir / ".gitignore").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0) {
        const char text[] = "# previewdb backups hold data: never commit them\n*\n";
        ssize_t ignored = ::write(fd, text, sizeof text - 1);
        (void)ignored;
        ::close(fd);
      }
    }
  }

  fs::path m_dir;
};

struct Scheme {
  const char* prefix;
  std::function<std::unique_ptr<SnapshotStore>(const std::string& rest, const StoreOptions&)> open;
};

fs::path file_store_dir(const std::string& rest) {
  fs::path p = rest;
  if (p.extension() == ".dump") p = p.parent_path();
  return p.empty() ? fs::path(".") : p;
}

const std::vector<Scheme>& schemes() {
  static const std::vector<Scheme> table = {
      {"file://",
       [](const std::string& rest, const StoreOptions&) -> std::unique_ptr<SnapshotStore> {
         return std::make_unique<FileStore>(file_store_dir(rest));
       }},
      {"s3://",
       [](const std::string& rest, const StoreOptions& options) -> std::unique_ptr<SnapshotStore> {
         return open_s3_store(rest, options);
       }},
  };
  return table;
}

void check(const util::ProcessResult& r, const std::string& what) {
  if (r.ok()) return;
  std::string err = util::trim(r.err);
  if (err.size() > 2000) err = "..." + err.substr(err.size() - 2000);
  throw Error(
      ExitCode::failure,
      "cannot " + what + ": " + (err.empty() ? "exit code " + std::to_string(r.exit_code) : err));
}

// The portable binary carries no PostgreSQL client programs: when one is missing, say which
// major version it must be (the server's, or newer) before anything is started.
void require_client_program(const std::string& conninfo, const std::string& dbname,
                            const std::string& program) {
  if (util::find_program(program)) return;
  std::string version = "the server's major version";
  std::string package = "postgresql-client-<major>";
  try {
    db::ConnectOptions options;
    options.conninfo = conninfo;
    options.dbname = dbname;
    options.busy_retry = std::chrono::milliseconds(0);
    int major = db::Connection::open(options).server_version() / 10000;
    version = "PostgreSQL " + std::to_string(major) + " or newer (the server's version)";
    package = "postgresql-client-" + std::to_string(major);
  } catch (const Error&) {
    // The message below still names the program; the connection error comes with the run.
  }
  throw Error(ExitCode::failure,
              "cannot run " + util::quoted(program) + ": it is not installed (not on PATH); " +
                  "snapshot archives and online copies need " + program + " of " + version,
              {"install " + package +
               " (Debian/Ubuntu; or the PostgreSQL client of that version "
               "or newer) or add its bin directory to PATH; everything else in previewdb works "
               "without it"});
}

util::ProcessSpec pg_tool(const std::string& conninfo, const std::string& dbname,
                          std::vector<std::string> argv) {
  require_client_program(conninfo, dbname, argv.front());
  util::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = db::libpq_environment(conninfo, dbname);
  spec.capture_stderr = true;
  return spec;
}

}  // namespace

std::unique_ptr<SnapshotStore> open_store(const std::string& url, const StoreOptions& options) {
  for (const auto& s : schemes()) {
    std::string prefix = s.prefix;
    if (url.rfind(prefix, 0) == 0) {
      std::string rest = url.substr(prefix.size());
      if (rest.empty())
        throw usage_error("snapshot store URL " + util::quoted(url) + " has no path",
                          "use file:///absolute/dir or file://relative/dir");
      return s.open(rest, options);
    }
  }
  throw usage_error("unknown snapshot store " + util::quoted(url),
                    "use file://DIR (a directory for pg_dump archives) or s3://BUCKET/PREFIX");
}

std::optional<std::string> mask_hash_of(const nlohmann::json& metadata) {
  if (!metadata.is_object() || metadata.value("masked", false) != true) return std::nullopt;
  auto hash = metadata.find("mask_rules_sha256");
  return hash != metadata.end() && hash->is_string() ? hash->get<std::string>() : std::string();
}

std::string store_url_from(const std::string& path_or_url) {
  if (path_or_url.find("://") != std::string::npos) return path_or_url;
  if (path_or_url.empty()) {
    throw usage_error("empty store path", "pass a folder path or file://DIR with --store");
  }
  return "file://" + path_or_url;
}

std::optional<std::string> read_object_text(SnapshotStore& store, const std::string& name,
                                            size_t max_bytes) {
  auto reader = store.open_object(name);
  if (!reader) return std::nullopt;
  std::string text;
  char buf[65536];
  while (size_t n = reader->read(buf, sizeof buf)) {
    text.append(buf, n);
    if (text.size() > max_bytes) {
      throw Error(ExitCode::failure, "object " + util::quoted(name) + " in " + store.describe() +
                                         " is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  return text;
}

void write_object_text(SnapshotStore& store, const std::string& name, std::string_view text) {
  auto w = store.create_object(name);
  w->write(text);
  w->commit();
}

std::string store_object_id(const std::string& url) {
  fs::path p = url.substr(url.find("://") + 3);
  return p.extension() == ".dump" ? p.stem().string() : "latest";
}

void dump_archive(const std::string& conninfo, const std::string& dbname, const fs::path& path) {
  check(util::run_process(
            pg_tool(conninfo, dbname, {"pg_dump", "-Fc", "--no-password", "-f", path.string()})),
        "dump database " + util::quoted(dbname) + " with pg_dump");
}

void restore_archive(const std::string& conninfo, const std::string& dbname,
                     const fs::path& archive) {
  check(util::run_process(pg_tool(conninfo, dbname,
                                  {"pg_restore", "--no-password", "--no-owner", "-j", "2", "-d",
                                   dbname, archive.string()})),
        "restore " + util::quoted(archive.string()) + " into " + util::quoted(dbname));
}

void dump_to(const std::string& conninfo, const std::string& dbname, ArchiveWriter& writer) {
  util::StreamingProcess dump(pg_tool(conninfo, dbname, {"pg_dump", "-Fc", "--no-password"}),
                              /*feed_stdin=*/false, /*read_stdout=*/true);
  std::string buf(1 << 20, '\0');
  while (size_t n = dump.read(buf.data(), buf.size()))
    writer.write(std::string_view(buf.data(), n));
  const auto& r = dump.wait();
  check(r, "dump database " + util::quoted(dbname) + " with pg_dump");
  writer.finish();
}

bool archive_encrypted(SnapshotStore& store, const std::string& id) {
  auto reader = store.open_archive(id);
  std::string head(k_encryption_magic.size(), '\0');
  size_t got = 0;
  while (got < head.size()) {
    size_t n = reader->read(head.data() + got, head.size() - got);
    if (n == 0) break;
    got += n;
  }
  return looks_encrypted(std::string_view(head.data(), got));
}

void restore_stream(const std::string& conninfo, const std::string& dbname, SnapshotStore& store,
                    const std::string& id, const std::optional<EncryptionKey>& key) {
  auto reader = decrypting_reader(store.open_archive(id), key, id + " in " + store.describe());
  auto spec = pg_tool(conninfo, dbname,
                      {"pg_restore", "--no-password", "--no-owner", "--no-acl", "-d", dbname});
  spec.capture_stderr = false;
  util::StreamingProcess restore(spec, /*feed_stdin=*/true, /*read_stdout=*/false);
  std::string buf(1 << 20, '\0');
  // A damaged archive throws here; the child is killed on the way out and the caller drops the
  // half-restored database.
  while (size_t n = reader->read(buf.data(), buf.size())) {
    if (!restore.write(buf.data(), n)) break;
  }
  reader.reset();
  check(restore.wait(),
        "restore " + id + " from " + store.describe() + " into " + util::quoted(dbname));
}

void copy_online(const std::string& conninfo, const std::string& source,
                 const std::string& target) {
  auto [dump, restore] =
      util::run_pipeline(pg_tool(conninfo, source, {"pg_dump", "-Fc", "--no-password"}),
                         pg_tool(conninfo, target, {"pg_restore", "--no-password", "-d", target}));
  check(dump, "dump " + util::quoted(source) + " with pg_dump");
  check(restore, "restore the copy of " + util::quoted(source) + " with pg_restore");
}

}  // namespace previewdb::storage
