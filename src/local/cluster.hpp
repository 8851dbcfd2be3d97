// previewdb's own local PostgreSQL: the zero-configuration default, also used by the test harness.
// initdb + pg_ctl from PATH or /usr/lib/postgresql/*/bin; as root, the server runs as an
// unprivileged user. It listens on a private Unix socket and, only when asked, on loopback TCP
// with password (SCRAM) authentication.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace previewdb::local {

struct ClusterOptions {
  std::filesystem::path home;   // e.g. ./.previewdb; holds cluster.json, the log and the lock
  std::optional<int> tcp_port;  // listen on 127.0.0.1:port too (tests); else socket only
  bool durable = true;          // false: fsync=off, for throwaway test servers
  std::string create_database = "dev";  // created on first start (empty: none)
  int max_connections = 200;            // set at initdb (tests use a small one)
};

struct ClusterStatus {
  bool initialized = false;
  bool running = false;
  std::filesystem::path data_dir;
  std::filesystem::path socket_dir;
  int port = 0;
  std::string version;  // "15.18" when initialized
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options);

  // Creates (initdb) on first use, then starts the server if it is not running; waits until it
  // accepts connections. Safe to call from concurrent processes (a file lock serialises them).
  void start();
  // Stops the server if it runs; false when there was nothing to stop (no home, never created,
  // or already stopped). Never creates anything.
  bool stop();
  ClusterStatus status() const;
  // Connection string for a database: socket URL, or TCP URL with the password when TCP is on.
  std::string conninfo(const std::string& dbname = "postgres") const;
  const ClusterOptions& options() const { return m_options; }

 private:
  struct State;
  State load_state() const;
  void write_state(const State& s) const;
  // Creates the server; never deletes a data directory it did not just create (adopts one it
  // recognises, else refuses with a hint).
  void initialize();

  ClusterOptions m_options;
};

// Directory of PostgreSQL's server programs (initdb, pg_ctl): PATH first, then the newest
// /usr/lib/postgresql/<N>/bin. nullopt when there is none.
std::optional<std::filesystem::path> find_server_bin_dir();

// The default home: $PREVIEWDB_HOME, else ./.previewdb. (Callers pass the environment value.)
std::filesystem::path default_home(const char* env_home);

}  // namespace previewdb::local
