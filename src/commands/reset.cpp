// previewdb reset [DB]: drop and re-create a preview or personal database from the latest snapshot
// (or empty when there is none, or with --empty), then apply the migrations folder; on the
// embedded local server, the source database (dev) itself: wiped and re-migrated from the folder
// (the seed teams' db:reset:local). Built under a temporary name: a failure changes nothing.
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "core/naming.hpp"
#include "migrate/migrate.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::commands {

namespace {

// Why `info` may not be reset (protected, unmanaged, a snapshot or a build), or nullopt.
std::optional<Error> refusal(const core::DatabaseInfo& info, const core::Protection& protection,
                             const std::vector<core::DatabaseInfo>& all, bool embedded) {
  const std::string& name = info.name;
  if (auto why = protection.reason(name, all)) {
    return Error(ExitCode::refused,
                 "refusing to reset " + util::quoted(name) + ": it is protected (" + *why + ")",
                 {embedded ? "previewdb resets previews, personal databases and the local "
                             "server's source (--from, default dev)"
                           : "only the embedded local server's dev is reset in place ('previewdb "
                             "reset' without a server URL); a shared source is migrated and "
                             "snapshotted by 'previewdb ci --refresh-source'"});
  }
  if (!info.managed()) {
    return Error(ExitCode::refused,
                 "refusing to reset " + util::quoted(name) +
                     ": it is not managed by previewdb (owned by role " + util::quoted(info.owner) +
                     ", and previewdb's registry has no record of it under this name and owner)",
                 {"previewdb resets only the previews and personal databases it created; drop "
                  "and re-create it yourself if it is disposable"});
  }
  if (info.meta->kind == core::Kind::snapshot) {
    return Error(ExitCode::refused,
                 "refusing to reset " + util::quoted(name) + ": it is a snapshot",
                 {"take a new one with 'previewdb snapshot'; old ones go with 'previewdb "
                  "snapshot prune'"});
  }
  if (info.meta->kind == core::Kind::build) {
    return Error(ExitCode::refused,
                 "refusing to reset " + util::quoted(name) + ": it is a build in progress",
                 {"the next spawn or cleanup removes it once its builder is gone"});
  }
  return std::nullopt;
}

}  // namespace

int run_reset(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Drop and re-create a preview or personal database from the latest snapshot (or empty), "
      "then apply the migrations folder; on the embedded local server, wipe and re-migrate dev.\n"
      "  previewdb reset [DB] [options]");
  add_common_options(options);
  // clang-format off
  options.add_options("Reset")
      ("from", "the latest snapshot of this database (default dev); on the local server, the "
       "database reset in place", cxxopts::value<std::string>(), "SOURCE")
      ("snapshot", "clone this snapshot id instead of the latest", cxxopts::value<std::string>(),
       "ID")
      ("empty", "re-create it empty, then migrate (no snapshot)")
      ("dir", "migrations folder to apply afterwards (default migrations/schema)",
       cxxopts::value<std::string>(), "DIR")
      ("format", "migration folder format (default auto)", cxxopts::value<std::string>(), "FMT")
      ("strategy", "clone strategy: auto, wal_log, file_copy", cxxopts::value<std::string>(), "S")
      ("lock-timeout", "wait this long for locks (default 10m)", cxxopts::value<std::string>(),
       "DURATION")
      ("y,yes", "do not ask for confirmation (needed without a terminal)")
      ("json", "print the result as JSON")
      ("db", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"db"});
  options.positional_help("[DB]");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto& p = *parsed;
  auto cfg = load_config(p);
  auto named = one_positional_database(p, "db", "reset");
  if (p.count("empty") && p.count("snapshot")) {
    throw usage_error("--empty and --snapshot cannot be used together",
                      "--empty builds without a snapshot; --snapshot names the one to clone");
  }

  std::string source = cfg.get_string("source");
  core::validate_name(source, "source database");
  auto target = resolve_target(cfg, /*prefer_direct=*/true);
  std::string name;
  if (named) {
    name = *named;
  } else if (target.embedded) {
    name = source;  // the local server's dev: db:reset:local
  } else {
    throw usage_error("name the database to reset",
                      "for example: previewdb reset pr_12, or previewdb reset dev_alice_checkout");
  }
  core::validate_name(name);
  fs::path dir = cfg.get_path("migrations_dir");
  bool have_folder = fs::is_directory(dir);
  auto lock_timeout = lock_timeout_setting(cfg);

  auto conn = connect_maintenance(target, lock_timeout);
  auto all = core::list_databases(conn);
  std::optional<core::DatabaseInfo> info;
  for (auto& d : all) {
    if (d.name == name) info = d;
  }
  if (!info) {
    throw Error(ExitCode::not_found, "database " + util::quoted(name) + " does not exist",
                {"'previewdb list' shows the databases; 'previewdb spawn' creates one"});
  }
  auto protection = make_protection(cfg);
  bool local_source = target.embedded && name == source;
  if (!local_source) {
    if (auto why = refusal(*info, protection, all, target.embedded)) throw *why;
  }

  // The migrations, applied to the new database before it takes the name.
  long long applied = 0;
  auto migrate_into = [&](const std::string& database) {
    migrate::MigrateOptions o;
    o.target = {target.conninfo, database, lock_timeout};
    o.dir = dir;
    o.format = cfg.get_string("format");
    o.lock_mode = migrate::parse_lock_mode(cfg.get_string("lock_mode"));
    o.lock_timeout = lock_timeout;
    o.statement_timeout = cfg.find_duration("statement_timeout");
    o.lock_wait_timeout = cfg.find_duration("lock_wait_timeout");
    o.applied_by = "previewdb reset";
    auto report = migrate::migrate(o);
    applied = static_cast<long long>(report.applied_count());
  };

  bool yes = p.count("yes") > 0;
  std::string snapshot;
  bool empty = local_source || p.count("empty") > 0;
  if (local_source) {
    if (!have_folder) {
      throw usage_error("cannot reset " + util::quoted(name) + ": the migrations folder " +
                            util::quoted(dir.string()) + " does not exist",
                        "pass --dir with the folder to re-apply (or set migrations_dir)");
    }
    confirm("wipe " + util::quoted(name) + " on the local server and re-apply " +
                util::quoted(dir.string()),
            yes);
    db::naming_lost_connection("resetting " + util::quoted(name),
                               "run the reset again: " + name + " was left as it was",
                               [&] { core::rebuild_local_database(conn, name, migrate_into); });
  } else {
    core::SpawnRequest req;
    req.name = name;
    req.meta = *info->meta;
    req.source = source;
    req.conninfo = target.conninfo;
    req.if_exists = core::IfExists::replace;
    req.strategy = core::parse_clone_strategy(cfg.get_string("strategy"));
    if (p.count("snapshot")) req.snapshot = p["snapshot"].as<std::string>();
    if (!empty && !req.snapshot && core::snapshots_of(all, source).empty()) {
      util::log::info("no snapshot of " + util::quoted(source) + ": re-creating " + name +
                      " empty, then applying the migrations");
      empty = true;
    }
    if (empty && !have_folder) {
      throw usage_error("cannot reset " + util::quoted(name) + " empty: the migrations folder " +
                            util::quoted(dir.string()) + " does not exist",
                        "pass --dir with the folder to apply, or take a snapshot of " + source +
                            " first ('previewdb snapshot')");
    }
    req.empty = empty;
    if (have_folder) req.prepare = migrate_into;
    confirm("drop " + util::quoted(name) + " and re-create it " +
                (empty ? std::string("empty") : "from the latest snapshot of " + source) +
                (have_folder ? ", then apply " + util::quoted(dir.string()) : std::string()),
            yes);
    auto result = db::naming_lost_connection(
        "resetting " + util::quoted(name),
        "run the reset again: " + name + " is re-created only when complete",
        [&] { return core::spawn(conn, req, protection); });
    snapshot = result.snapshot;
  }

  std::string how = empty ? "empty" : "from " + snapshot;
  util::log::info("reset " + name + " (" + how + "; " + std::to_string(applied) +
                  " migration(s) applied)");
  if (p.count("json")) {
    std::cout << nlohmann::json{{"name", name},
                                {"snapshot", snapshot.empty() ? nlohmann::json(nullptr)
                                                              : nlohmann::json(snapshot)},
                                {"empty", empty},
                                {"migrations_applied", applied}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << name << "\n";
  }
  return 0;
}

}  // namespace previewdb::commands
