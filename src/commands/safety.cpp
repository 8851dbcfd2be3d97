// previewdb dry-run and previewdb safe-migrate: wiring only (options, the target, the interrupt
// scope, output); the work is in src/dryrun.
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

#include "ci/outputs.hpp"
#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/migrate_options.hpp"
#include "db/interrupt.hpp"
#include "dryrun/dryrun.hpp"
#include "dryrun/safe_migrate.hpp"
#include "storage/store.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace previewdb::commands {

namespace {

void add_rule_options(cxxopts::Options& options, bool fail_on) {
  // clang-format off
  options.add_options("Migrate")
      ("lock-timeout", "wait this long for a lock (default 10m)", cxxopts::value<std::string>(),
       "DURATION")
      ("statement-timeout", "PostgreSQL statement_timeout for each statement",
       cxxopts::value<std::string>(), "DURATION")
      ("lock-wait-timeout", "PostgreSQL lock_timeout: how long DDL waits for table locks",
       cxxopts::value<std::string>(), "DURATION")
      ("allow-changed", "go on even when already-applied files changed")
      ("strict-order", "refuse pending migrations older than the newest applied one")
      ("strategy", "clone strategy: auto, wal_log or file_copy", cxxopts::value<std::string>(),
       "S")
      ("json", "print the result as JSON on stdout")
      ("db", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  if (fail_on) {
    options.add_options("Migrate")(
        "fail-on",
        "which findings give exit 9: data-loss (default; also failing migrations), warning or "
        "never",
        cxxopts::value<std::string>(), "LEVEL");
  }
  options.parse_positional({"db"});
  options.positional_help("[DB]");
}

// The migrate options (same rules as `migrate`) and the target database's name.
dryrun::DryRunOptions dry_run_options(const config::Config& cfg, const cxxopts::ParseResult& parsed,
                                      const char* command) {
  dryrun::DryRunOptions o;
  auto& m = o.migrate;
  m.target = migration_target(cfg, parsed);
  if (auto db = one_positional_database(parsed, "db", command)) {
    if (parsed.count("database")) {
      throw usage_error("give the database either as DB or as --database, not both");
    }
    m.target.dbname = *db;
  }
  m.dir = cfg.get_path("migrations_dir").string();
  m.format = cfg.get_string("format");
  m.placeholders = placeholders(cfg, parsed);
  m.lock_mode = migrate::parse_lock_mode(cfg.get_string("lock_mode"));
  m.lock_timeout = lock_timeout_setting(cfg);
  m.statement_timeout = cfg.find_duration("statement_timeout");
  m.lock_wait_timeout = cfg.find_duration("lock_wait_timeout");
  m.timeout = cfg.find_duration("timeout");
  m.allow_changed = parsed.count("allow-changed") > 0;
  m.strict_order = parsed.count("strict-order") > 0;
  auto env = config::process_env();
  m.github_annotations = env.count("GITHUB_ACTIONS") && env["GITHUB_ACTIONS"] == "true";
  if (auto user = cfg.get("user"))
    m.applied_by = user->value;
  else if (env.count("GITHUB_ACTOR"))
    m.applied_by = env["GITHUB_ACTOR"];
  o.strategy = core::parse_clone_strategy(cfg.get_string("strategy"));
  // The database's name: --database / DB, else the one the target URL names (asked of the server,
  // in a session closed again before any clone: a template copy needs the database idle).
  o.database = m.target.dbname;
  if (o.database.empty()) {
    auto c =
        db::Connection::open({.conninfo = m.target.conninfo, .busy_retry = m.target.busy_retry});
    o.database = c.database();
  }
  return o;
}

dryrun::FailOn fail_on(const cxxopts::ParseResult& parsed) {
  return dryrun::parse_fail_on(parsed.count("fail-on") ? parsed["fail-on"].as<std::string>()
                                                       : "data-loss");
}

}  // namespace

int run_dry_run(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Apply the pending migrations to a throwaway clone of DB (default: the target's database)\n"
      "and report what they really do to its rows: duration, statements, rows affected, tables\n"
      "rewritten, locks taken, and data loss. The target is never changed; the clone is always\n"
      "dropped. Exit 0: nothing to review; 9: findings at the --fail-on level.");
  add_common_options(options);
  add_folder_options(options);
  add_rule_options(options, /*fail_on=*/true);
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto level = fail_on(*parsed);  // a bad value is a usage error before any connection
  auto cfg = load_config(*parsed);
  auto o = dry_run_options(cfg, *parsed, "dry-run");
  auto target = resolve_target(cfg, /*prefer_direct=*/true);
  auto maint = connect_maintenance(target, lock_timeout_setting(cfg));

  db::InterruptScope interrupt;
  o.watch = [&](db::Connection* c) { interrupt.watch(c); };
  o.interrupted = [] { return db::InterruptScope::received() != 0; };
  dryrun::DryRunReport report;
  try {
    report = dryrun::dry_run(maint, o);
  } catch (...) {
    interrupt.watch(nullptr);
    if (db::InterruptScope::received()) {
      throw Error(ExitCode::failure, "dry run interrupted by signal " +
                                         std::to_string(db::InterruptScope::received()) +
                                         "; the clone was dropped and the target not changed");
    }
    throw;
  }
  if (parsed->count("json")) {
    std::cout << dryrun::to_json(report).dump(2) << "\n";
  } else {
    std::cout << dryrun::format_report(report);
  }
  std::cout << std::flush;
  return dryrun::needs_review(report.findings, level) ? static_cast<int>(ExitCode::pending) : 0;
}

}  // namespace previewdb::commands

namespace previewdb::commands {

namespace {

// Tests stop a run at a step to kill it there (the SIGKILL loop): with PREVIEWDB_TEST_PAUSE_AT=STEP
// the run creates PREVIEWDB_TEST_PAUSE_FILE at that step and waits while the file exists.
std::function<void(const std::string&)> step_hook(std::map<std::string, std::string> env) {
  std::string at = env.count("PREVIEWDB_TEST_PAUSE_AT") ? env["PREVIEWDB_TEST_PAUSE_AT"] : "";
  std::string file = env.count("PREVIEWDB_TEST_PAUSE_FILE") ? env["PREVIEWDB_TEST_PAUSE_FILE"] : "";
  return [at, file](const std::string& step) {
    util::log::info("safe-migrate: " + step);
    if (at.empty() || file.empty() || step != at) return;
    util::write_file_atomic(file, step + "\n");
    while (std::filesystem::exists(file)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
}

}  // namespace

int run_safe_migrate(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Back up DB (a template snapshot on its server, else a verified pg_dump archive in a backup\n"
      "store), dry-run the pending migrations on a clone of that backup, apply them under the\n"
      "migration lock, and restore the backup when applying fails (unless others wrote since). "
      "Exit 0 migrated; 6 refused (data loss; the findings are\n"
      "printed); 7 a migration failed (restored=true/false says what happened); 1 the restore\n"
      "itself failed (the backup is named).\n"
      "  previewdb safe-migrate [DB] [--allow-data-loss] [--no-restore]\n"
      "  previewdb safe-migrate DB --restore SNAPSHOT   # put a safe-migrate backup back");
  add_common_options(options);
  add_folder_options(options);
  add_rule_options(options, /*fail_on=*/false);
  // clang-format off
  options.add_options("Safe-migrate")
      ("allow-data-loss", "apply even when the dry run finds data loss")
      ("no-restore", "do not restore the backup when applying fails")
      ("terminate-sessions", "end other sessions on DB when a restore needs it idle")
      ("restore", "only restore this safe-migrate backup (a snapshot) into DB, by rename",
       cxxopts::value<std::string>(), "SNAPSHOT")
      ("backup", "the backup's kind: auto (default), template (a snapshot on the target's server) "
       "or archive (a verified pg_dump archive in a store)", cxxopts::value<std::string>(), "KIND")
      ("backup-store", "take an archive backup into this store: a folder, file://DIR or "
       "s3://BUCKET/PREFIX (default for archives: BACKUP_DIR, ./backups)",
       cxxopts::value<std::string>(), "URL")
      ("scratch-url", "a server and login that may create databases, for the dry run's clones "
       "and previewdb's records when the target's role may not (no password in the flag)",
       cxxopts::value<std::string>(), "URL");
  // clang-format on
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  auto env = config::process_env();
  auto target = resolve_target(cfg, /*prefer_direct=*/true);
  dryrun::SafeMigrateReport report;
  // A bad kind is a usage error before any connection.
  auto backup_value = cfg.get("safe_migrate_backup");
  if (parsed->count("backup"))
    backup_value = config::Value{(*parsed)["backup"].as<std::string>(), "--backup"};
  auto kind = dryrun::parse_backup_kind(backup_value ? backup_value->value : "auto",
                                        backup_value ? backup_value->origin : "default");
  auto scratch = cfg.get("scratch_url");
  refuse_password_in_flag(scratch);
  if (scratch && parsed->count("restore")) {
    throw usage_error("--restore puts a template snapshot back on the target's own server",
                      "run it without --scratch-url / PREVIEWDB_SCRATCH_URL; an archive is put "
                      "back with 'previewdb restore BACKUP --store URL --into DB'");
  }
  {
    auto o = dry_run_options(cfg, *parsed, "safe-migrate");
    Target maintenance_target = target;
    if (scratch) maintenance_target = Target{scratch->value, scratch->origin, false};
    auto maint = connect_maintenance(maintenance_target, lock_timeout_setting(cfg));
    if (parsed->count("restore")) {
      report = dryrun::restore_snapshot(maint, o.database, (*parsed)["restore"].as<std::string>(),
                                        parsed->count("terminate-sessions") > 0);
    } else {
      dryrun::SafeMigrateOptions so;
      so.dry = o;
      so.created_by = resolve_creator(cfg);
      so.allow_data_loss = parsed->count("allow-data-loss") > 0;
      so.no_restore = parsed->count("no-restore") > 0;
      so.terminate_sessions = parsed->count("terminate-sessions") > 0;
      so.on_step = step_hook(env);
      so.backup = kind;
      so.backup_origin = backup_value ? backup_value->origin : "default";
      so.backup_store_given = parsed->count("backup-store") > 0;
      std::string where = so.backup_store_given ? (*parsed)["backup-store"].as<std::string>()
                                                : cfg.get_string("backup_store");
      // Absolute: the URL is recorded, and a later run (the restore after a kill) may start
      // elsewhere.
      if (!where.empty() && where.find("://") == std::string::npos) {
        where = std::filesystem::absolute(where).lexically_normal().string();
      }
      so.store_url = storage::store_url_from(where);
      auto opts = store_options(cfg);
      so.open_store = [opts](const std::string& url) { return storage::open_store(url, opts); };
      so.backup_level = static_cast<int>(cfg.get_int("backup_level", 1, 19));
      if (scratch) so.maintenance_conninfo = scratch->value;
      report = dryrun::safe_migrate(maint, so);
    }
  }
  if (auto out = env.count("GITHUB_OUTPUT") ? env["GITHUB_OUTPUT"] : ""; !out.empty()) {
    std::vector<std::pair<std::string, std::string>> pairs = {
        {"backup", report.backup_url.empty() ? report.backup : report.backup_url},
        {"backup-kind", report.backup_kind},
        {"restored", report.restored ? "true" : "false"},
        {"migrations-applied", std::to_string(report.applied.size())},
        {"exit-code", std::to_string(report.exit_code)}};
    if (!report.error.empty()) pairs.push_back({"error", report.error});
    util::append_file(out, ci::github_output_text(pairs));
  }
  if (parsed->count("json")) {
    std::cout << dryrun::to_json(report).dump(2) << "\n";
  } else {
    std::cout << dryrun::format_report(report);
  }
  std::cout << std::flush;
  return report.exit_code;
}

}  // namespace previewdb::commands
