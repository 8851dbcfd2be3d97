// Clone speed: `previewdb spawn` next to raw CREATE DATABASE ... TEMPLATE (WAL_LOG, FILE_COPY)
// and pg_dump -Fd -j2 + pg_restore -j2, on pgbench databases of growing size, in one run, on a
// durable server of its own. Prints medians and ratios against the best raw strategy; these
// machines are noisy, so only ratios within one run mean anything.
//
//   clone_bench [--scales 1,10,70] [--reps 3]      (pgbench scale 70 is about 1 GB)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "local/cluster.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

using namespace previewdb;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void run_ok(util::ProcessSpec spec, const char* what) {
  spec.capture_stderr = true;
  spec.capture_stdout = true;
  auto r = util::run_process(spec);
  if (!r.ok()) {
    std::fprintf(stderr, "%s failed: %s\n", what, r.err.c_str());
    std::exit(1);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> scales = {1, 10, 70};
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--scales") {
      scales.clear();
      for (auto& s : util::split(argv[i + 1], ',')) scales.push_back(std::stoi(s));
    } else if (a == "--reps") {
      reps = std::stoi(argv[i + 1]);
    }
  }
  char tmpl[] = "/var/tmp/previewdb-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) return 1;
  std::filesystem::path home = tmpl;
  std::filesystem::permissions(home, std::filesystem::perms(0755));
  local::Cluster cluster({.home = home, .durable = true, .create_database = ""});
  cluster.start();
  std::string url = cluster.conninfo("postgres");
  auto conn = db::Connection::open({.conninfo = url});
  auto server_env = [&](const std::string& db) { return db::libpq_environment(url, db); };

  std::printf("%-7s %9s %10s %10s %10s %10s  %-22s %-22s\n", "scale", "size_MB", "wal_log_s",
              "file_copy_s", "spawn_s", "dump_rest_s", "spawn/best_raw", "dump_restore/spawn");
  for (int scale : scales) {
    std::string src = "bench_src_" + std::to_string(scale);
    conn.exec("DROP DATABASE IF EXISTS " + src + " WITH (FORCE)");
    conn.exec("CREATE DATABASE " + src);
    run_ok({.argv = {"pgbench", "-i", "-q", "-s", std::to_string(scale)}, .env = server_env(src)},
           "pgbench -i");
    conn.exec("CHECKPOINT");
    long long size = conn.exec("SELECT pg_database_size($1)", {src}).get_int(0, 0);
    // The snapshot spawn clones from; raw strategies clone the same template.
    util::ProcessSpec snap{.argv = {PREVIEWDB_BIN, "snapshot", src, "-q"},
                           .env = {{"DATABASE_URL", url}, {"PREVIEWDB_USER", "bench"}},
                           .capture_stdout = true,
                           .capture_stderr = true};
    auto snap_r = util::run_process(snap);
    if (!snap_r.ok()) {
      std::fprintf(stderr, "snapshot failed: %s\n", snap_r.err.c_str());
      return 1;
    }
    std::string snapshot = util::trim(snap_r.out);

    std::vector<double> wal, file, spawn, dump;
    for (int r = 0; r < reps; ++r) {
      for (const char* strategy : {"WAL_LOG", "FILE_COPY"}) {
        conn.exec("CHECKPOINT");
        auto t = Clock::now();
        conn.exec("CREATE DATABASE bench_raw TEMPLATE " + snapshot + " STRATEGY " + strategy);
        (std::string(strategy) == "WAL_LOG" ? wal : file).push_back(seconds_since(t));
        conn.exec("DROP DATABASE bench_raw");
      }
      conn.exec("CHECKPOINT");
      auto t = Clock::now();
      run_ok({.argv = {PREVIEWDB_BIN, "spawn", "--name", "bench_spawn", "--from", src, "-q"},
              .env = {{"DATABASE_URL", url}, {"PREVIEWDB_USER", "bench"}}},
             "previewdb spawn");
      spawn.push_back(seconds_since(t));
      conn.exec("DROP DATABASE bench_spawn");

      conn.exec("CHECKPOINT");
      util::TempDir dir;
      t = Clock::now();
      run_ok({.argv = {"pg_dump", "-Fd", "-j", "2", "-f", (dir.path() / "d").string()},
              .env = server_env(src)},
             "pg_dump");
      conn.exec("CREATE DATABASE bench_restore");
      run_ok({.argv = {"pg_restore", "-j", "2", "-d", "bench_restore", (dir.path() / "d").string()},
              .env = server_env("bench_restore")},
             "pg_restore");
      dump.push_back(seconds_since(t));
      conn.exec("DROP DATABASE bench_restore");
    }
    double w = median(wal), f = median(file), s = median(spawn), d = median(dump);
    double best = std::min(w, f);
    char r1[64], r2[64];
    std::snprintf(r1, sizeof r1, "%.2fx (target <= 1.2)", s / best);
    std::snprintf(r2, sizeof r2, "%.1fx (target >= 2)", d / s);
    std::printf("%-7d %9.0f %10.3f %10.3f %10.3f %10.3f  %-22s %-22s\n", scale,
                static_cast<double>(size) / 1048576.0, w, f, s, d, r1, r2);
    std::fflush(stdout);
    conn.exec("ALTER DATABASE " + snapshot + " IS_TEMPLATE false");
    conn.exec("DROP DATABASE " + snapshot);
    conn.exec("DROP DATABASE " + src + " WITH (FORCE)");
  }
  cluster.stop();
  std::filesystem::remove_all(home);
  return 0;
}
