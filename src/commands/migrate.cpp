// previewdb migrate: apply pending migrations under a lock (or run the team's migrator under it).
#include <iostream>
#include <set>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/migrate_options.hpp"
#include "migrate/migrate.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

namespace {

std::optional<std::chrono::milliseconds> duration_setting(const config::Config& cfg,
                                                          const char* key, const char* /*flag*/) {
  return cfg.find_duration(key);
}

// Where 'down' is a word of its own ('migrate down ...', also 'migrate --dir D down ...'), never a
// flag's value ('--dir down'): the flags of `options` that take a value, and migrate down's own.
std::optional<size_t> down_word(const cxxopts::Options& options, const Args& args) {
  std::set<std::string> takes_value = {"steps", "to"};
  for (const auto& group : options.groups()) {
    for (const auto& o : options.group_help(group).options) {
      if (o.is_boolean) continue;
      for (const auto& l : o.l) takes_value.insert(l);
    }
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a == "down") return i;
    if (a.rfind("--", 0) == 0 && a.find('=') == std::string::npos && takes_value.count(a.substr(2)))
      ++i;
  }
  return std::nullopt;
}

}  // namespace

int run_migrate(const Args& args) {
  cxxopts::Options options(args[0],
                           "Apply pending migrations, one transaction each, under a lock "
                           "('previewdb migrate down --help': undo them)");
  add_common_options(options);
  add_folder_options(options);
  options.add_options("Migrate")("lock-timeout",
                                 "wait this long for another run's lock (default 10m)",
                                 cxxopts::value<std::string>(), "DURATION")(
      "lock-mode", "advisory, table (a lease row, for poolers) or auto (default)",
      cxxopts::value<std::string>(),
      "MODE")("statement-timeout", "PostgreSQL statement_timeout for each statement",
              cxxopts::value<std::string>(), "DURATION")(
      "lock-wait-timeout", "PostgreSQL lock_timeout: how long DDL waits for table locks",
      cxxopts::value<std::string>(),
      "DURATION")("timeout", "give up (and roll back) when the whole run takes longer",
                  cxxopts::value<std::string>(),
                  "DURATION")("allow-changed", "apply even when already-applied files changed")(
      "strict-order", "refuse pending migrations older than the newest applied one")(
      "command",
      "run this migrator under previewdb's lock instead (DATABASE_URL, DIRECT_URL "
      "and PG* point at the target)",
      cxxopts::value<std::string>(),
      "CMD")("dry-run",
             "list what would be applied, in order, changing nothing (to run them on a "
             "clone and see what they do to the rows: previewdb dry-run)")(
      "json", "print the result as JSON on stdout");
  if (auto at = down_word(options, args)) {
    Args rest = {args[0] + " down"};
    for (size_t i = 1; i < args.size(); ++i) {
      if (i != *at) rest.push_back(args[i]);
    }
    return run_migrate_down(rest);
  }
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  auto env = config::process_env();

  migrate::MigrateOptions o;
  o.target = migration_target(cfg, *parsed);
  o.dir = cfg.get_path("migrations_dir").string();
  o.format = cfg.get_string("format");
  o.placeholders = placeholders(cfg, *parsed);
  o.lock_mode = migrate::parse_lock_mode(cfg.get_string("lock_mode"));
  o.lock_timeout = *duration_setting(cfg, "lock_timeout", "--lock-timeout");
  o.statement_timeout = duration_setting(cfg, "statement_timeout", "--statement-timeout");
  o.lock_wait_timeout = duration_setting(cfg, "lock_wait_timeout", "--lock-wait-timeout");
  o.timeout = duration_setting(cfg, "timeout", "--timeout");
  o.dry_run = parsed->count("dry-run") > 0;
  o.allow_changed = parsed->count("allow-changed") > 0;
  o.strict_order = parsed->count("strict-order") > 0;
  if (parsed->count("command"))
    o.command = (*parsed)["command"].as<std::string>();
  else
    o.command = cfg.get_string("migrate_command");
  o.github_annotations = env.count("GITHUB_ACTIONS") && env["GITHUB_ACTIONS"] == "true";
  if (auto user = cfg.get("user"))
    o.applied_by = user->value;
  else if (env.count("GITHUB_ACTOR"))
    o.applied_by = env["GITHUB_ACTOR"];

  auto report = migrate::migrate(o);
  if (parsed->count("json")) {
    std::cout << migrate::to_json(report).dump(2) << "\n";
  } else if (report.command_exit_code) {
    // The command's own output (on stderr) is the result.
  } else if (o.dry_run) {
    std::cout << migrate::format_plan(report);
  } else if (report.applied.empty()) {
    std::cout << "nothing to apply: " << report.skipped << " migration"
              << (report.skipped == 1 ? "" : "s") << " already applied to " << report.database
              << "\n";
  } else {
    std::cout << "applied " << report.applied.size() << " migration"
              << (report.applied.size() == 1 ? "" : "s") << " to " << report.database << " ("
              << report.skipped << " already applied)\n";
  }
  std::cout << std::flush;
  return report.command_exit_code.value_or(0);
}

}  // namespace previewdb::commands
