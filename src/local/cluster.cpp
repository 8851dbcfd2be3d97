#include "local/cluster.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "crypto/random.hpp"
#include "crypto/sha256.hpp"
#include "db/connection.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace previewdb::local {

namespace {

const char* k_superuser = "previewdb";
const int k_socket_port = 5432;  // the socket's name; the socket directory is private

// The unprivileged account the server runs as when previewdb runs as root.
struct ServerUser {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::string name;
};

ServerUser server_user() {
  if (::geteuid() != 0) return {};
  for (const char* name : {"postgres", "nobody"}) {
    if (passwd* pw = ::getpwnam(name)) return {pw->pw_uid, pw->pw_gid, name};
  }
  throw Error(ExitCode::failure,
              "cannot start the local PostgreSQL as root: no unprivileged 'postgres' user",
              {"create one ('useradd --system postgres') or set DATABASE_URL to a server"});
}

// Runs a PostgreSQL program as the server user; throws with its output when it fails.
util::ProcessResult run_pg(const fs::path& bin, const std::vector<std::string>& args,
                           const ServerUser& user, const std::string& what, bool check = true) {
  util::ProcessSpec spec;
  spec.argv = args;
  spec.argv[0] = (bin / args[0]).string();
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  spec.uid = user.uid;
  spec.gid = user.gid;
  spec.cwd = "/";
  spec.env["LC_ALL"] = "C.UTF-8";
  auto r = util::run_process(spec);
  if (check && !r.ok()) {
    throw Error(ExitCode::failure, "cannot " + what + ": " + util::trim(r.err + "\n" + r.out));
  }
  return r;
}

bool accessible_by(const fs::path& dir, const ServerUser& user) {
  if (!user.uid) return true;
  util::ProcessSpec spec{.argv = {"test", "-w", dir.string(), "-a", "-x", dir.string()}};
  spec.uid = user.uid;
  spec.gid = user.gid;
  spec.capture_stderr = true;
  return util::run_process(spec).ok();
}

void chown_to(const fs::path& p, const ServerUser& user) {
  if (user.uid && ::chown(p.c_str(), *user.uid, *user.gid) != 0) {
    throw Error(ExitCode::failure, "cannot give " + util::quoted(p.string()) + " to user " +
                                       user.name + ": " + std::strerror(errno));
  }
}

// An exclusive lock on home/lock held for the object's lifetime: concurrent first uses
// (8 parallel spawns with zero configuration) initialise and start the server once.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (m_fd < 0) {
      throw Error(ExitCode::failure,
                  "cannot lock " + util::quoted(path.string()) + ": " + std::strerror(errno));
    }
    // Bounded: another previewdb may be initialising or starting the server (initdb takes
    // seconds); five minutes is far beyond that.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    bool announced = false;
    while (::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      bool busy = err == EWOULDBLOCK || err == EINTR;
      if (!busy || std::chrono::steady_clock::now() > deadline) {
        ::close(m_fd);  // the destructor does not run when we throw
        m_fd = -1;
        if (!busy) {
          throw Error(ExitCode::failure,
                      "cannot lock " + util::quoted(path.string()) + ": " + std::strerror(err));
        }
        throw Error(ExitCode::lock_timeout,
                    "timed out after 5m waiting for " + util::quoted(path.string()) +
                        ": another previewdb is starting the local server",
                    {"check 'previewdb local status'"});
      }
      if (!announced) {
        util::log::info("waiting for another previewdb starting the local server (lock " +
                        path.string() + ")");
        announced = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~FileLock() {
    if (m_fd >= 0) ::close(m_fd);
  }

 private:
  int m_fd = -1;
};

// A data directory previewdb set up (its settings block in postgresql.conf) for a socket-only
// server, complete (PG_VERSION) and owned by the account the server runs as: safe to adopt.
bool adoptable(const fs::path& data_dir, const fs::path& socket_dir, bool tcp,
               const ServerUser& user) {
  auto conf = util::read_file_if_exists(data_dir / "postgresql.conf");
  struct stat st {};
  uid_t expected = user.uid.value_or(::geteuid());
  return !tcp && fs::exists(data_dir / "PG_VERSION") && conf &&
         conf->find("\n# previewdb\nunix_socket_directories = '" + socket_dir.string() + "'") !=
             std::string::npos &&
         conf->find("listen_addresses = ''") != std::string::npos &&
         ::stat(data_dir.c_str(), &st) == 0 && st.st_uid == expected;
}

}  // namespace

struct Cluster::State {
  fs::path data_dir;
  fs::path socket_dir;
  fs::path bin_dir;
  int port = k_socket_port;
  std::optional<int> tcp_port;
  std::string password;
  bool exists = false;
};

std::optional<fs::path> find_server_bin_dir() {
  if (auto initdb = util::find_program("initdb")) {
    fs::path dir = fs::path(*initdb).parent_path();
    if (fs::exists(dir / "pg_ctl")) return dir;
  }
  std::vector<std::pair<int, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    auto name = entry.path().filename().string();
    if (auto v = util::parse_uint(name); v && fs::exists(entry.path() / "bin" / "initdb")) {
      found.emplace_back(static_cast<int>(*v), entry.path() / "bin");
    }
  }
  if (found.empty()) return std::nullopt;
  std::sort(found.begin(), found.end());
  return found.back().second;
}

fs::path default_home(const char* env_home) {
  if (env_home && *env_home) return fs::absolute(env_home);
  return fs::absolute(".previewdb");
}

Cluster::Cluster(ClusterOptions options) : m_options(std::move(options)) {
  m_options.home = fs::absolute(m_options.home);
}

Cluster::State Cluster::load_state() const {
  State s;
  auto text = util::read_file_if_exists(m_options.home / "cluster.json");
  if (!text) return s;
  try {
    auto j = json::parse(*text);
    s.data_dir = j.at("data_dir").get<std::string>();
    s.socket_dir = j.at("socket_dir").get<std::string>();
    s.bin_dir = j.at("bin_dir").get<std::string>();
    s.port = j.value("port", k_socket_port);
    if (j.contains("tcp_port") && !j["tcp_port"].is_null()) s.tcp_port = j["tcp_port"].get<int>();
    s.password = j.value("password", "");
    s.exists = true;
  } catch (const json::exception& e) {
    throw Error(ExitCode::failure,
                "the local server's state file " +
                    util::quoted((m_options.home / "cluster.json").string()) +
                    " is damaged: " + e.what(),
                {"move " + m_options.home.string() + " aside to start a fresh local server"});
  }
  if (!s.password.empty()) util::register_secret(s.password);
  return s;
}

void Cluster::initialize() {
  auto bin = find_server_bin_dir();
  if (!bin) {
    throw Error(ExitCode::connection,
                "no database configured and no PostgreSQL server programs (initdb, pg_ctl) found",
                {"install PostgreSQL ('apt-get install postgresql') for the local default, or set "
                 "DATABASE_URL / --database-url to an existing server"});
  }
  ServerUser user = server_user();
  fs::create_directories(m_options.home);
  // The home keeps itself out of git (data, socket, a password in cluster.json): nobody has to
  // remember to add it to the repository's .gitignore.
  if (!fs::exists(m_options.home / ".gitignore")) {
    util::write_file_atomic(m_options.home / ".gitignore",
                            "# created by previewdb: nothing in this folder belongs in git\n*\n");
  }
  // The server's files live in home unless the server user cannot reach it (e.g. root's
  // home directory), or the socket path would be too long for a Unix socket (107 bytes).
  fs::path base = m_options.home;
  // The home belongs to the server user (root keeps access to it anyway).
  if (user.uid) chown_to(m_options.home, user);
  bool home_ok = accessible_by(m_options.home, user) &&
                 (m_options.home / "run" / ".s.PGSQL.5432.lock").string().size() < 100;
  if (!home_ok) {
    std::string tag = crypto::sha256_hex(m_options.home.string()).substr(0, 12);
    base = fs::path("/var/tmp") / ("previewdb-" + std::to_string(::geteuid()) + "-" + tag);
    fs::create_directories(base);
    chown_to(base, user);
    fs::permissions(base, fs::perms::owner_all);
  }
  State s;
  s.bin_dir = *bin;
  s.data_dir = base / "data";
  s.socket_dir = base / "run";
  s.tcp_port = m_options.tcp_port;
  s.password = crypto::random_hex(16);
  util::register_secret(s.password);
  fs::create_directories(s.socket_dir);
  chown_to(s.socket_dir, user);
  fs::permissions(s.socket_dir, fs::perms::owner_all);  // private socket
  // Present only while initdb runs: a data directory next to it is a half-made attempt of ours.
  fs::path in_progress = base / "initdb-in-progress";
  if (fs::exists(s.data_dir)) {
    if (!fs::exists(in_progress)) {
      // cluster.json is gone but the data is not: never delete data we did not just create.
      if (adoptable(s.data_dir, s.socket_dir, m_options.tcp_port.has_value(), user)) {
        util::log::warn(
            "the local server's state file was missing; adopting the existing data "
            "directory " +
            s.data_dir.string() + " (nothing was deleted)");
        // Socket connections use trust authentication: the password only matters over TCP.
        write_state(s);
        return;
      }
      throw Error(ExitCode::failure,
                  "the local server's state file " +
                      util::quoted((m_options.home / "cluster.json").string()) +
                      " is missing, but its data directory " + util::quoted(s.data_dir.string()) +
                      " exists; previewdb will not delete it",
                  {"restore cluster.json, or (after 'pg_ctl stop -D " + s.data_dir.string() +
                   "' if a server still runs from it) move " + base.string() +
                   " aside to start a fresh local server"});
    }
    util::log::info("removing " + s.data_dir.string() + ", left by an interrupted initdb");
    fs::remove_all(s.data_dir);
  }
  util::write_file_atomic(in_progress, "previewdb initdb\n");

  // initdb reads the superuser password from a file only the server user can read.
  fs::path pwfile = base / ".pwfile";
  util::write_file_atomic(pwfile, s.password + "\n",
                          fs::perms::owner_read | fs::perms::owner_write);
  chown_to(pwfile, user);
  std::vector<std::string> args = {"initdb",
                                   "-D",
                                   s.data_dir.string(),
                                   "-U",
                                   k_superuser,
                                   "--pwfile=" + pwfile.string(),
                                   "--auth-local=trust",
                                   "--auth-host=scram-sha-256",
                                   "-E",
                                   "UTF8",
                                   "--locale=C.UTF-8"};
  if (!m_options.durable) args.push_back("--no-sync");
  util::log::info("initialising a local PostgreSQL in " + s.data_dir.string());
  try {
    run_pg(*bin, args, user, "initialise the local PostgreSQL (initdb)");
  } catch (...) {
    std::error_code ignored;  // never let the cleanup replace initdb's error
    fs::remove(pwfile, ignored);
    throw;
  }
  fs::remove(pwfile);

  // Settings in the config file rather than on pg_ctl's command line (which goes through a shell).
  std::string conf = "\n# previewdb\nunix_socket_directories = '" + s.socket_dir.string() + "'\n";
  conf += "port = " + std::to_string(s.tcp_port.value_or(k_socket_port)) + "\n";
  conf += s.tcp_port ? "listen_addresses = '127.0.0.1'\n" : "listen_addresses = ''\n";
  conf += "max_connections = " + std::to_string(m_options.max_connections) + "\n";
  if (!m_options.durable) conf += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
  util::append_file(s.data_dir / "postgresql.conf", conf);
  s.port = s.tcp_port.value_or(k_socket_port);

  write_state(s);
  fs::remove(in_progress);
}

void Cluster::write_state(const State& s) const {
  json j = {{"data_dir", s.data_dir.string()},
            {"socket_dir", s.socket_dir.string()},
            {"bin_dir", s.bin_dir.string()},
            {"port", s.port},
            {"tcp_port", s.tcp_port ? json(*s.tcp_port) : json(nullptr)},
            {"password", s.password}};
  util::write_file_atomic(m_options.home / "cluster.json", j.dump(2) + "\n",
                          fs::perms::owner_read | fs::perms::owner_write);
}

void Cluster::start() {
  fs::create_directories(m_options.home);
  FileLock lock(m_options.home / "lock");
  State s = load_state();
  if (!s.exists) {
    initialize();
    s = load_state();
  }
  ServerUser user = server_user();
  auto st = run_pg(s.bin_dir, {"pg_ctl", "status", "-D", s.data_dir.string()}, user, "", false);
  if (st.exit_code != 0) {
    util::log::info("starting the local PostgreSQL (" + s.data_dir.string() + ")");
    fs::path logfile = s.data_dir.parent_path() / "server.log";
    run_pg(s.bin_dir,
           {"pg_ctl", "start", "-w", "-t", "60", "-D", s.data_dir.string(), "-l", logfile.string()},
           user, "start the local PostgreSQL (log: " + logfile.string() + ")");
  }
  if (!m_options.create_database.empty()) {
    auto conn = db::Connection::open({.conninfo = conninfo("postgres")});
    auto exists =
        conn.exec("SELECT 1 FROM pg_database WHERE datname = $1", {m_options.create_database});
    if (exists.rows() == 0) {
      conn.exec("CREATE DATABASE " + conn.quote_ident(m_options.create_database));
    }
  }
}

bool Cluster::stop() {
  // No home: no server was ever made here (stopping is idempotent; nothing is created).
  if (!fs::exists(m_options.home)) return false;
  FileLock lock(m_options.home / "lock");
  State s = load_state();
  if (!s.exists) return false;
  ServerUser user = server_user();
  auto st = run_pg(s.bin_dir, {"pg_ctl", "status", "-D", s.data_dir.string()}, user, "", false);
  if (st.exit_code != 0) return false;
  run_pg(s.bin_dir, {"pg_ctl", "stop", "-w", "-m", "fast", "-D", s.data_dir.string()}, user,
         "stop the local PostgreSQL");
  return true;
}

ClusterStatus Cluster::status() const {
  ClusterStatus out;
  State s = load_state();
  if (!s.exists) return out;
  out.initialized = true;
  out.data_dir = s.data_dir;
  out.socket_dir = s.socket_dir;
  out.port = s.port;
  if (auto v = util::read_file_if_exists(s.data_dir / "PG_VERSION")) out.version = util::trim(*v);
  auto st =
      run_pg(s.bin_dir, {"pg_ctl", "status", "-D", s.data_dir.string()}, server_user(), "", false);
  out.running = st.exit_code == 0;
  return out;
}

std::string Cluster::conninfo(const std::string& dbname) const {
  State s = load_state();
  if (!s.exists) {
    throw Error(ExitCode::connection, "the local PostgreSQL has not been created yet",
                {"run 'previewdb local start'"});
  }
  if (s.tcp_port) {
    return "postgresql://" + std::string(k_superuser) + ":" + s.password +
           "@127.0.0.1:" + std::to_string(*s.tcp_port) + "/" + dbname;
  }
  return "postgresql://" + std::string(k_superuser) + "@/" + dbname +
         "?host=" + util::url_encode(s.socket_dir.string(), /*keep_slash=*/true) +
         "&port=" + std::to_string(s.port);
}

}  // namespace previewdb::local
