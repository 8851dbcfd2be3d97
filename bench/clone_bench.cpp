// Clone speed: `previewdb spawn` next to raw CREATE DATABASE ... TEMPLATE ... STRATEGY WAL_LOG and
// ... STRATEGY FILE_COPY of the same snapshot, at four sizes (pgbench databases of about 30 MB,
// 300 MB, 1 GB and 3 GB), in one run, on a durable server of its own (fsync on). The three are
// interleaved (their order rotates every round, a CHECKPOINT before each) and the medians and
// ratios printed; these machines are noisy, so only ratios within one run mean anything.
//
// spawn chooses its strategy from the clones recorded on this server (core/clone_policy): the
// snapshot's own clone is the first sample, so the first spawn of a size tries the other strategy
// and the later ones take the faster. Each round's choice is printed.
//
// Two raw baselines per strategy: the statement alone on the bench's open connection (in-session:
// the server's work only), and the statement as a whole client process, `psql -X -c "CREATE
// DATABASE ... TEMPLATE ... STRATEGY ..."`, connecting as spawn does (same server, socket and
// role), so that the share of process start and connection in spawn's time shows. spawn is compared
// with the faster of each.
//
//   clone_bench [--reps 5] [--sizes 30MB,300MB,1GB,3GB] [--previewdb PATH]
//   CLONE_BENCH_SIZES=30MB,300MB clone_bench          (the same limit from the environment)
//   --previewdb: another previewdb binary to time (default: the one built with the bench)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
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

// Size label -> pgbench scale (scale 1 is about 15 MB of data plus the database's catalog).
const std::vector<std::pair<std::string, int>> k_sizes = {
    {"30MB", 2}, {"300MB", 20}, {"1GB", 70}, {"3GB", 200}};

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
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  std::string sizes_arg = std::getenv("CLONE_BENCH_SIZES") ? std::getenv("CLONE_BENCH_SIZES") : "";
  std::string previewdb = PREVIEWDB_BIN;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--reps") reps = std::stoi(argv[i + 1]);
    if (a == "--sizes") sizes_arg = argv[i + 1];
    if (a == "--previewdb") previewdb = argv[i + 1];
  }
  std::vector<std::pair<std::string, int>> sizes;
  for (const auto& [label, scale] : k_sizes) {
    if (sizes_arg.empty()) {
      sizes.emplace_back(label, scale);
      continue;
    }
    for (const auto& want : util::split(sizes_arg, ',')) {
      if (util::to_lower(util::trim(want)) == util::to_lower(label))
        sizes.emplace_back(label, scale);
    }
  }
  if (sizes.empty()) {
    std::fprintf(stderr, "no size in %s: use 30MB, 300MB, 1GB, 3GB\n", sizes_arg.c_str());
    return 2;
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
  std::printf("server: PostgreSQL %d, max_wal_size %s, fsync on; %d rounds per size; %s\n",
              conn.server_version(),
              conn.exec("SELECT current_setting('max_wal_size')").get(0, 0).c_str(), reps,
              previewdb.c_str());

  std::printf("%-6s %6s %9s %11s %10s %12s %8s  %-9s %-10s %-9s %-11s %-9s %8s %s\n", "size", "MB",
              "wal_log_s", "file_copy_s", "psql_wal_s", "psql_file_s", "spawn_s", "/best_raw",
              "/best_psql", "/wal_log", "/file_copy", "psql/raw", "fixed_ms", "spawn's choices");
  for (const auto& [label, scale] : sizes) {
    std::string src = "bench_src_" + std::to_string(scale);
    conn.exec("DROP DATABASE IF EXISTS " + src + " WITH (FORCE)");
    conn.exec("CREATE DATABASE " + src);
    run_ok({.argv = {"pgbench", "-i", "-q", "-s", std::to_string(scale)}, .env = server_env(src)},
           "pgbench -i");
    conn.exec("CHECKPOINT");
    long long size = conn.exec("SELECT pg_database_size($1)", {src}).get_int(0, 0);
    // The snapshot spawn clones from; the raw strategies clone the same template.
    util::ProcessSpec snap{.argv = {previewdb, "snapshot", src, "-q"},
                           .env = {{"DATABASE_URL", url}, {"PREVIEWDB_USER", "bench"}},
                           .capture_stdout = true,
                           .capture_stderr = true};
    auto snap_r = util::run_process(snap);
    if (!snap_r.ok()) {
      std::fprintf(stderr, "snapshot failed: %s\n", snap_r.err.c_str());
      return 1;
    }
    std::string snapshot = util::trim(snap_r.out);

    std::map<std::string, std::vector<double>> times;
    std::optional<db::Connection> registry;
    std::string choices;
    const std::vector<std::string> variants = {"WAL_LOG", "FILE_COPY", "spawn", "psql WAL_LOG",
                                               "psql FILE_COPY"};
    for (int r = 0; r < reps; ++r) {
      // Interleaved: each round starts with another variant.
      for (size_t k = 0; k < variants.size(); ++k) {
        const std::string& v = variants[(k + static_cast<size_t>(r)) % variants.size()];
        conn.exec("CHECKPOINT");
        auto t = Clock::now();
        if (v == "spawn") {
          auto res = util::run_process(
              {.argv = {previewdb, "spawn", "--name", "bench_spawn", "--from", src, "--json"},
               .env = {{"DATABASE_URL", url}, {"PREVIEWDB_USER", "bench"}},
               .capture_stdout = true,
               .capture_stderr = true});
          times[v].push_back(seconds_since(t));
          if (!res.ok()) {
            std::fprintf(stderr, "previewdb spawn failed: %s\n", res.err.c_str());
            return 1;
          }
          // The CREATE DATABASE inside that spawn, as spawn timed it (its clone sample): the
          // rest of spawn's time is its fixed cost.
          if (!registry) {
            registry.emplace(
                db::Connection::open({.conninfo = url, .dbname = "previewdb_registry"}));
          }
          times["spawn's clone"].push_back(std::stod(
              registry->exec("SELECT seconds FROM registry.clone_samples ORDER BY id DESC LIMIT 1")
                  .get(0, 0)));
          auto j = nlohmann::json::parse(res.out);
          std::string chosen = j.value("strategy", "?");
          choices += (choices.empty() ? "" : ",") + chosen.substr(0, 1);
          std::fprintf(stderr, "  %s round %d: spawn %.3f s, %s: %s\n", label.c_str(), r + 1,
                       times[v].back(), chosen.c_str(),
                       j["strategy_reason"].is_string()
                           ? j["strategy_reason"].get<std::string>().c_str()
                           : "");
          conn.exec("DROP DATABASE bench_spawn");
        } else if (v.rfind("psql ", 0) == 0) {
          // The whole client process: start, connect, the statement, exit.
          auto res = util::run_process({.argv = {"psql", "-X", "-q", "-d", "postgres", "-c",
                                                 "CREATE DATABASE bench_raw TEMPLATE " + snapshot +
                                                     " STRATEGY " + v.substr(5)},
                                        .env = server_env("postgres"),
                                        .capture_stdout = true,
                                        .capture_stderr = true});
          times[v].push_back(seconds_since(t));
          if (!res.ok()) {
            std::fprintf(stderr, "psql failed: %s\n", res.err.c_str());
            return 1;
          }
          conn.exec("DROP DATABASE bench_raw");
        } else {
          conn.exec("CREATE DATABASE bench_raw TEMPLATE " + snapshot + " STRATEGY " + v);
          times[v].push_back(seconds_since(t));
          conn.exec("DROP DATABASE bench_raw");
        }
      }
    }
    double w = median(times["WAL_LOG"]), f = median(times["FILE_COPY"]), s = median(times["spawn"]);
    double pw = median(times["psql WAL_LOG"]), pf = median(times["psql FILE_COPY"]);
    // Per round: spawn's whole time minus its own CREATE DATABASE.
    std::vector<double> fixed;
    for (size_t i = 0; i < times["spawn"].size(); ++i) {
      fixed.push_back(times["spawn"][i] - times["spawn's clone"][i]);
    }
    auto ratio = [](double a, double b) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2fx", a / b);
      return std::string(buf);
    };
    std::printf(
        "%-6s %6.0f %9.3f %11.3f %10.3f %12.3f %8.3f  %-9s %-10s %-9s %-11s %-9s %8.0f %s\n",
        label.c_str(), static_cast<double>(size) / 1048576.0, w, f, pw, pf, s,
        ratio(s, std::min(w, f)).c_str(), ratio(s, std::min(pw, pf)).c_str(), ratio(s, w).c_str(),
        ratio(s, f).c_str(), ratio(std::min(pw, pf), std::min(w, f)).c_str(), median(fixed) * 1000,
        choices.c_str());
    std::fflush(stdout);
    conn.exec("ALTER DATABASE " + snapshot + " IS_TEMPLATE false");
    conn.exec("DROP DATABASE " + snapshot);
    conn.exec("DROP DATABASE " + src + " WITH (FORCE)");
  }
  std::printf(
      "target: spawn/best_raw <= 1.1x at every size. /best_raw: spawn over the faster in-session "
      "statement; /best_psql: over the faster psql process; psql/raw: the process and connection's "
      "share; fixed_ms: spawn's time beyond its own CREATE DATABASE (median; W = WAL_LOG, F = "
      "FILE_COPY)\n");
  cluster.stop();
  std::filesystem::remove_all(home);
  return 0;
}
