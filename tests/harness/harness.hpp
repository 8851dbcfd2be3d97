// The integration-test harness: a real PostgreSQL started for this test process (initdb + pg_ctl
// in a temporary directory, on a free loopback port, with a password), and a runner for the built
// previewdb binary. No database is mocked.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"

namespace previewdb::test {

struct PgServerOptions {
  int max_connections = 200;
};

class PgServer {
 public:
  // The server of this test process, started on first use and stopped at exit.
  static PgServer& shared();
  // Another server (e.g. with few connection slots), stopped and removed when destroyed.
  explicit PgServer(const PgServerOptions& options);

  // postgresql://previewdb:<password>@127.0.0.1:<port>/<dbname>
  std::string url(const std::string& dbname = "postgres") const;
  // The same URL without the password (for flags; the password then goes in PGPASSWORD).
  std::string url_without_password(const std::string& dbname = "postgres") const;
  const std::string& password() const { return m_password; }
  int port() const { return m_port; }
  db::Connection connect(const std::string& dbname = "postgres") const;
  // Drops every database but postgres/template0/template1 and re-creates an empty `dev`.
  void reset() const;
  // Runs SQL in a database (psql-like convenience for test setup).
  void exec(const std::string& dbname, const std::string& sql) const;
  bool database_exists(const std::string& dbname) const;
  const std::filesystem::path& home() const { return m_home; }

  ~PgServer();

 private:
  PgServer() : PgServer(PgServerOptions{}) {}
  std::filesystem::path m_home;
  std::string m_password;
  int m_port = 0;
};

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
  std::string all() const { return out + err; }
};

using Env = std::map<std::string, std::optional<std::string>>;

// Runs the built previewdb binary with args. The environment is the test's, minus every variable
// that could point previewdb elsewhere (DATABASE_URL, PG*, GITHUB_*, NETLIFY, CI...), plus env.
CliResult run_cli(const std::vector<std::string>& args, const Env& env = {},
                  const std::string& cwd = {});

// Starts the built binary without waiting (for kill tests and concurrency); returns its pid.
int start_cli(const std::vector<std::string>& args, const Env& env = {},
              const std::string& cwd = {});

// tests/fixtures in this repository: what every test needs for its core case (event payloads,
// migration histories of each format, recorded GitHub API responses).
std::filesystem::path fixtures_dir();

// ../shared next to the repository (real corpora and payloads), or nullopt. Only extra cases use
// it; they skip with k_skip_shared when it is missing.
std::optional<std::filesystem::path> shared_dir();

// Every GTEST_SKIP message starts with one of these tags. tests/run_gtest.py (which ctest runs
// each test binary through) checks each skip's tag against this machine and fails the run when a
// test skipped that should have run here; a skip without a tag always fails.
//   [shared]       an extra case on ../shared: expected only when ../shared is missing
//   [peer:<tool>]  a real peer (dbmate, drizzle-orm) that scripts/install-deps.sh --peers
//                  installs: expected only when it is not installed and PREVIEWDB_REQUIRE_PEERS
//                  is unset (scripts/test.sh sets it)
//   [root]         needs root and a 'nobody' user: expected only when not running as root
//   [peer:verdaccio] the local npm registry of tests/packaging/npm_test.cpp (--peers installs it)
inline constexpr const char* k_skip_shared = "[shared] ";
inline constexpr const char* k_skip_peer_dbmate = "[peer:dbmate] ";
inline constexpr const char* k_skip_peer_drizzle = "[peer:drizzle] ";
inline constexpr const char* k_skip_root = "[root] ";
inline constexpr const char* k_skip_peer_verdaccio = "[peer:verdaccio] ";
//   [peer:s3rver]  the npm s3rver behind tests/peers/s3_server.cjs (tests/harness/s3_server.hpp)
inline constexpr const char* k_skip_peer_s3rver = "[peer:s3rver] ";

// A free TCP port on 127.0.0.1.
int free_port();

}  // namespace previewdb::test
