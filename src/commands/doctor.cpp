// previewdb doctor [--url URL] [--store s3://BUCKET/PREFIX] [--json]: checks step by step that
// previewdb works on a server (connect, server kind, lock, snapshot, spawn, migrate, cleanup) on
// throwaway databases named previewdb_doctor_<random>. Exit 0 when every step passed, 1 when one
// failed, 3 when it cannot connect.
#include "commands/doctor.hpp"

#include <filesystem>
#include <iostream>
#include <thread>

#include "commands/common.hpp"
#include "crypto/random.hpp"
#include "db/interrupt.hpp"
#include "doctor/doctor.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

namespace previewdb::commands {

int run_doctor(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Check step by step that previewdb works on a server (CockroachDB included): connect, "
      "server kind, migration lock, snapshot, spawn, migrate, cleanup, all on throwaway "
      "databases named previewdb_doctor_<random> that it drops at the end.\n"
      "  previewdb doctor [--url URL] [--store s3://BUCKET/PREFIX] [--json]");
  add_common_options(options);
  // clang-format off
  options.add_options("Doctor")
      ("url", "the server to check (same as --database-url; no password: use DATABASE_URL, "
              "PGPASSWORD or ~/.pgpass)", cxxopts::value<std::string>(), "URL")
      ("store", "CockroachDB: where the snapshot's BACKUP goes", cxxopts::value<std::string>(),
       "s3://BUCKET/PREFIX")
      ("lock-timeout", "wait at most this long for locks (default 10m)",
       cxxopts::value<std::string>(), "DURATION")
      ("json", "print one JSON document");
  // clang-format on
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto& p = *parsed;
  if (p.count("url") && p.count("database-url")) {
    throw usage_error("--url and --database-url name the same thing", "pass one of them");
  }
  auto cfg = load_config(p);
  auto lock_timeout = lock_timeout_setting(cfg);
  bool json = p.count("json") > 0;

  doctor::Options o;
  o.lock_timeout = lock_timeout;
  o.suffix = crypto::random_hex(4);
  if (p.count("store")) {
    o.store_url = p["store"].as<std::string>();
    o.store_options = store_options(cfg);
  }
  // Tests stop a run after a step (to interrupt it there, or break the next step): with
  // PREVIEWDB_TEST_PAUSE_AT=STEP the run creates PREVIEWDB_TEST_PAUSE_FILE once STEP ended and
  // waits while the file exists (or until SIGINT/SIGTERM), as safe-migrate does.
  auto env = config::process_env();
  std::string pause_at = env.count("PREVIEWDB_TEST_PAUSE_AT") ? env["PREVIEWDB_TEST_PAUSE_AT"] : "";
  std::string pause_file =
      env.count("PREVIEWDB_TEST_PAUSE_FILE") ? env["PREVIEWDB_TEST_PAUSE_FILE"] : "";
  auto print = [&](const doctor::Step& s) {
    if (!json) std::cout << util::printable(util::scrub(doctor::format_step(s))) << std::endl;
    if (pause_at.empty() || pause_file.empty() || s.name != pause_at) return;
    util::write_file_atomic(pause_file, s.name + "\n");
    while (std::filesystem::exists(pause_file) && !db::InterruptScope::received()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  Target target;
  if (p.count("url")) {
    // As --database-url: no password in process arguments, checked before anything prints it.
    config::Value url{p["url"].as<std::string>(), "--url"};
    refuse_password_in_flag(url);
    mask_in_ci(db::register_conninfo_secrets(url.value));
    target = {url.value, "--url", false};
  } else {
    target = resolve_target(cfg);
  }
  o.conninfo = target.conninfo;
  std::optional<db::Connection> conn;
  try {
    conn.emplace(connect_maintenance(target, lock_timeout));
  } catch (const Error& e) {
    doctor::Step failed{"connect", doctor::Status::failed, e.what(), 0};
    if (json) {
      std::cout << nlohmann::json{{"ok", false},
                                  {"steps", nlohmann::json::array({{{"step", "connect"},
                                                                    {"status", "failed"},
                                                                    {"detail", e.what()}}})}}
                       .dump(2)
                << "\n";
    } else {
      print(failed);
    }
    throw;
  }
  print({"connect", doctor::Status::ok, "connected to " + conn->description(), 0});
  // SIGINT/SIGTERM cancel the running statement; the steps stop and cleanup still runs.
  db::InterruptScope interrupt;
  interrupt.watch(&*conn);
  auto report = doctor::run(*conn, o, make_protection(cfg), print);
  interrupt.watch(nullptr);
  report.steps.insert(report.steps.begin(),
                      {"connect", doctor::Status::ok, "connected to " + conn->description(), 0});
  if (json) {
    std::cout << util::scrub(doctor::to_json(report).dump(2)) << "\n";
  } else {
    std::cout << (report.ok() ? "all steps passed on " : "a step failed on ")
              << util::printable(report.server.empty() ? conn->description() : report.server)
              << "\n";
  }
  // Interrupted: the steps after the signal failed ("interrupted"), cleanup ran; exit 1.
  return report.ok() ? 0 : 1;
}

}  // namespace previewdb::commands
