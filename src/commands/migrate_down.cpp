// previewdb migrate down: run the down parts of the newest applied migrations under the lock.
// previewdb resolve: mark a migration applied or rolled back without running it.
#include <iostream>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/migrate_options.hpp"
#include "migrate/down.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::commands {

namespace {

// What 'migrate down' and 'resolve' share with 'migrate': target, folder, lock, applied_by.
migrate::MigrateOptions base_options(const config::Config& cfg,
                                     const cxxopts::ParseResult& parsed) {
  auto env = config::process_env();
  migrate::MigrateOptions o;
  o.target = migration_target(cfg, parsed);
  o.dir = cfg.get_path("migrations_dir").string();
  o.format = cfg.get_string("format");
  o.placeholders = placeholders(cfg, parsed);
  o.lock_mode = migrate::parse_lock_mode(cfg.get_string("lock_mode"));
  o.lock_timeout = *cfg.find_duration("lock_timeout");
  o.github_annotations = env.count("GITHUB_ACTIONS") && env["GITHUB_ACTIONS"] == "true";
  if (auto user = cfg.get("user"))
    o.applied_by = user->value;
  else if (env.count("GITHUB_ACTOR"))
    o.applied_by = env["GITHUB_ACTOR"];
  return o;
}

void add_lock_options(cxxopts::Options& options) {
  options.add_options("Lock")("lock-timeout", "wait this long for another run's lock (default 10m)",
                              cxxopts::value<std::string>(), "DURATION")(
      "lock-mode", "advisory, table (a lease row, for poolers) or auto (default)",
      cxxopts::value<std::string>(), "MODE");
}

}  // namespace

int run_migrate_down(const Args& args) {
  cxxopts::Options options(args[0],
                           "Undo the newest applied migrations with their down parts, newest "
                           "first, one transaction each, under the migration lock");
  add_common_options(options);
  add_folder_options(options);
  add_lock_options(options);
  options.add_options("Down")("steps", "undo the newest N applied migrations",
                              cxxopts::value<std::string>(), "N")(
      "to", "undo every applied migration after VERSION (id or version; 0: all of them)",
      cxxopts::value<std::string>(),
      "VERSION")("statement-timeout", "PostgreSQL statement_timeout for each statement",
                 cxxopts::value<std::string>(), "DURATION")(
      "lock-wait-timeout", "PostgreSQL lock_timeout: how long DDL waits for table locks",
      cxxopts::value<std::string>(),
      "DURATION")("timeout", "give up (and roll back) when the whole run takes longer",
                  cxxopts::value<std::string>(),
                  "DURATION")("dry-run", "show what would be undone, in order, changing nothing")(
      "json", "print the result as JSON on stdout");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  migrate::DownOptions d;
  if (parsed->count("steps")) {
    std::string text = (*parsed)["steps"].as<std::string>();
    auto n = util::parse_uint(text);
    if (!n || *n == 0) {
      throw usage_error(
          "--steps " + util::quoted(text) + " is not a number of migrations (1 or more)",
          "for example --steps 1 to undo the newest migration");
    }
    d.steps = static_cast<size_t>(*n);
  }
  if (parsed->count("to")) {
    d.to = (*parsed)["to"].as<std::string>();
    if (d.to->empty()) throw usage_error("--to needs a migration id or version (0: all)");
  }
  if (d.steps && d.to) throw usage_error("--steps and --to cannot be used together", "pass one");
  if (!d.steps && !d.to) {
    throw usage_error("'migrate down' needs --steps N or --to VERSION: nothing was undone",
                      "--steps 1 undoes the newest applied migration; --to 0 undoes all of them");
  }
  auto cfg = load_config(*parsed);
  d.base = base_options(cfg, *parsed);
  d.base.statement_timeout = cfg.find_duration("statement_timeout");
  d.base.lock_wait_timeout = cfg.find_duration("lock_wait_timeout");
  d.base.timeout = cfg.find_duration("timeout");
  d.base.dry_run = parsed->count("dry-run") > 0;

  auto report = migrate::migrate_down(d);
  if (parsed->count("json")) {
    std::cout << migrate::to_json(report).dump(2) << "\n";
  } else if (d.base.dry_run) {
    std::cout << migrate::format_down_plan(report);
  } else if (report.undone.empty()) {
    std::cout << "nothing to undo on " << report.database << "\n";
  } else {
    std::cout << "undid " << report.undone.size() << " migration"
              << (report.undone.size() == 1 ? "" : "s") << " on " << report.database << " ("
              << report.remaining << " still applied)\n";
  }
  std::cout << std::flush;
  return 0;
}

int run_resolve(const Args& args) {
  cxxopts::Options options(args[0],
                           "Mark a migration applied, or a failed one rolled back, without "
                           "running it (as 'prisma migrate resolve'), in previewdb's history "
                           "and the tool's");
  add_common_options(options);
  add_folder_options(options);
  add_lock_options(options);
  options.add_options("Resolve")("applied", "record NAME as applied (you applied it by hand)",
                                 cxxopts::value<std::string>(), "NAME")(
      "rolled-back", "record the failed migration NAME as rolled back (it will run again)",
      cxxopts::value<std::string>(), "NAME")("json", "print the result as JSON on stdout");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  bool applied = parsed->count("applied") > 0, rolled_back = parsed->count("rolled-back") > 0;
  if (applied == rolled_back) {
    throw usage_error(applied ? "--applied and --rolled-back cannot be used together"
                              : "'resolve' needs --applied NAME or --rolled-back NAME",
                      "for example: previewdb resolve --rolled-back 20260101090000_create_users");
  }
  migrate::ResolveOptions r;
  r.mark = applied ? migrate::Mark::applied : migrate::Mark::rolled_back;
  r.name = (*parsed)[applied ? "applied" : "rolled-back"].as<std::string>();
  if (r.name.empty()) throw usage_error("--applied/--rolled-back needs a migration name");
  auto cfg = load_config(*parsed);
  r.base = base_options(cfg, *parsed);
  auto report = migrate::resolve(r);
  if (parsed->count("json")) {
    std::cout << migrate::to_json(report).dump(2) << "\n";
  } else {
    std::cout << "marked " << report.id << " " << report.mark << " on " << report.database << " ("
              << util::join(report.tables, ", ") << ")\n";
  }
  std::cout << std::flush;
  return 0;
}

}  // namespace previewdb::commands
