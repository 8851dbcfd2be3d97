#include "harness/harness.hpp"
#include "harness/cli_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "local/cluster.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace previewdb::test {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

PgServer& PgServer::shared() {
  static PgServer server;
  return server;
}

PgServer::PgServer(const PgServerOptions& options) {
  char tmpl[] = "/tmp/previewdb-test-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  m_home = tmpl;
  ::chmod(tmpl, 0755);  // the unprivileged server user must reach it when tests run as root
  m_port = free_port();
  local::Cluster cluster({.home = m_home,
                          .tcp_port = m_port,
                          .durable = false,
                          .create_database = "dev",
                          .max_connections = options.max_connections});
  cluster.start();
  std::string url = cluster.conninfo("postgres");
  // postgresql://previewdb:<pw>@127.0.0.1:<port>/postgres
  auto colon = url.find(':', std::string("postgresql://").size());
  m_password = url.substr(colon + 1, url.find('@') - colon - 1);
}

PgServer::~PgServer() {
  try {
    local::Cluster({.home = m_home}).stop();
  } catch (...) {
  }
  std::error_code ec;
  fs::remove_all(m_home, ec);
  // The data directory may live in /var/tmp when the home was not reachable by the server user.
}

std::string PgServer::url(const std::string& dbname) const {
  return "postgresql://previewdb:" + m_password + "@127.0.0.1:" + std::to_string(m_port) + "/" +
         dbname;
}

std::string PgServer::url_without_password(const std::string& dbname) const {
  return "postgresql://previewdb@127.0.0.1:" + std::to_string(m_port) + "/" + dbname;
}

db::Connection PgServer::connect(const std::string& dbname) const {
  return db::Connection::open({.conninfo = url(dbname), .application_name = "previewdb-test"});
}

void PgServer::exec(const std::string& dbname, const std::string& sql) const {
  connect(dbname).exec(sql);
}

bool PgServer::database_exists(const std::string& dbname) const {
  return connect().exec("SELECT 1 FROM pg_database WHERE datname = $1", {dbname}).rows() == 1;
}

void PgServer::reset() const {
  auto conn = connect();
  auto dbs = conn.exec(
      "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres','template0','template1')");
  for (int i = 0; i < dbs.rows(); ++i) {
    std::string name = dbs.get(i, 0);
    conn.exec("ALTER DATABASE " + conn.quote_ident(name) + " IS_TEMPLATE false");
    conn.exec("DROP DATABASE " + conn.quote_ident(name) + " WITH (FORCE)");
  }
  conn.exec("CREATE DATABASE dev");
}

namespace {

bool isolated_out(const std::string& key) {
  static const char* prefixes[] = {"PG",      "GITHUB_", "RUNNER_", "PREVIEWDB_",
                                   "NETLIFY", "INPUT_",  "AWS_"};
  static const char* exact[] = {"DATABASE_URL", "DIRECT_URL",     "CI",         "CONTEXT",
                                "REVIEW_ID",    "PULL_REQUEST",   "BRANCH",     "HEAD",
                                "COMMIT_REF",   "REPOSITORY_URL", "DEPLOY_URL", "URL"};
  for (auto p : prefixes) {
    if (key.rfind(p, 0) == 0) return true;
  }
  for (auto e : exact) {
    if (key == e) return true;
  }
  return false;
}

}  // namespace

util::ProcessSpec cli_spec(const std::vector<std::string>& args, const Env& env,
                           const std::string& cwd) {
  util::ProcessSpec spec;
  spec.argv = {PREVIEWDB_BIN};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    if (isolated_out(key)) spec.env[key] = std::nullopt;
  }
  spec.env["PREVIEWDB_HOME"] = std::nullopt;
  for (const auto& [k, v] : env) spec.env[k] = v;
  spec.cwd = cwd;
  return spec;
}

CliResult run_cli(const std::vector<std::string>& args, const Env& env, const std::string& cwd) {
  auto spec = cli_spec(args, env, cwd);
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  auto r = util::run_process(spec);
  return {r.signal ? 128 + r.signal : r.exit_code, r.out, r.err};
}

int start_cli(const std::vector<std::string>& args, const Env& env, const std::string& cwd) {
  auto spec = cli_spec(args, env, cwd);
  // A plain fork/exec; the caller waits (waitpid) or kills it.
  std::vector<std::string> envs;
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    merged[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  }
  for (const auto& [k, v] : spec.env) {
    if (v)
      merged[k] = *v;
    else
      merged.erase(k);
  }
  for (const auto& [k, v] : merged) envs.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& a : spec.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) _exit(126);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

fs::path fixtures_dir() {
  return fs::path(PREVIEWDB_SOURCE_DIR) / "tests" / "fixtures";
}

std::optional<fs::path> shared_dir() {
  fs::path p = PREVIEWDB_SHARED_DIR;
  if (fs::exists(p / "corpora")) return fs::canonical(p);
  return std::nullopt;
}

}  // namespace previewdb::test
