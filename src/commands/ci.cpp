// previewdb ci: the CI entry point. Detect the provider and the pull request, decide whether it
// needs a preview database (migrations changed, the label, --force), get-or-create pr_<N> from
// the latest snapshot and migrate it, drop it when the PR is closed, and report the outcome in
// the formats CI systems read. Wiring only: the pieces live in ci/, git/, net/, core/, migrate/.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "ci/decision.hpp"
#include "ci/event.hpp"
#include "ci/outputs.hpp"
#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "core/lifecycle.hpp"
#include "core/naming.hpp"
#include "db/advisory_lock.hpp"
#include "db/connection.hpp"
#include "git/changes.hpp"
#include "git/head.hpp"
#include "migrate/migrate.hpp"
#include "net/github.hpp"
#include "snapshot/snapshot.hpp"
#include "util/dotenv.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace previewdb::commands {

namespace {

std::string env_or(const ci::Env& env, const char* key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

std::optional<std::chrono::milliseconds> duration_setting(const config::Config& cfg,
                                                          const char* key, const char* flag) {
  auto v = cfg.get(key);
  if (!v || v->value.empty()) return std::nullopt;
  return util::parse_duration(v->value, util::BareUnit::seconds, flag);
}

// Workflow commands (::add-mask::) bypass util::log on purpose: log lines are scrubbed, and a
// scrubbed mask command would mask "***" instead of the password. They go to stderr so that
// stdout stays one JSON document with --json; the runner reads commands from both streams.
void workflow_command(const std::string& line) {
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

// The GitHub client for the API fallback and label lookup, when a token and repository exist.
std::optional<net::GitHubClient> github_client(const ci::Env& env, const ci::Event& event) {
  std::string token = env_or(env, "GITHUB_TOKEN");
  if (token.empty() || event.repository.empty()) return std::nullopt;
  net::GitHubOptions o;
  o.token = token;
  o.repository = event.repository;
  if (auto api = env_or(env, "GITHUB_API_URL"); !api.empty()) o.api_url = api;
  return net::GitHubClient(o);
}

struct Settings {
  ci::Provider provider;
  ci::Event event;
  std::string base_ref;
  std::string label;
  std::vector<std::string> paths;
  std::filesystem::path dir;
  bool forced = false;
  bool dry_run = false;
  bool json = false;
  std::string on_divergence = "reset";
  std::string migrate_command;
  std::optional<std::string> env_file;
  bool export_env = false;
  std::vector<std::string> command;  // after --
};

std::vector<std::string> changed_migrations(const Settings& s, const ci::Env& env) {
  auto result = git::detect_changes({.repository = ".", .base_ref = s.base_ref, .paths = s.paths});
  if (result.ok()) {
    std::vector<std::string> out;
    for (const auto& f : result.changes->files) out.push_back(f.path);
    util::log::debug("merge base " + result.changes->merge_base + "; " +
                     std::to_string(out.size()) + " migration file(s) changed");
    return out;
  }
  const auto& why = *result.unavailable;
  auto client = s.event.pr_number ? github_client(env, s.event) : std::nullopt;
  if (!client) {
    Error e(ExitCode::usage, "cannot detect changed migrations: " + why.message, why.hints);
    e.with_hint("with GITHUB_TOKEN set, previewdb asks the GitHub API for the PR's files instead");
    throw e;
  }
  util::log::warn(why.message + "; asking the GitHub API for the files of pull request #" +
                  std::to_string(*s.event.pr_number) + " instead");
  for (const auto& h : why.hints) util::log::info("hint: " + h);
  std::vector<std::string> out;
  for (auto& f : client->pr_files(*s.event.pr_number)) {
    if (git::under_paths(f, s.paths)) out.push_back(f);
  }
  return out;
}

std::vector<std::string> labels_of(const Settings& s, const ci::Env& env) {
  if (s.event.labels) return *s.event.labels;
  if (auto it = env.find("PREVIEWDB_LABELS"); it != env.end()) {
    return ci::parse_labels(it->second, "PREVIEWDB_LABELS");
  }
  if (!s.event.pr_number) return {};
  if (auto client = github_client(env, s.event)) return client->pr_labels(*s.event.pr_number);
  return {};
}

// The server as configured, without starting anything: for plans and preview=false runs.
std::optional<std::string> configured_conninfo(const config::Config& cfg) {
  if (auto url = cfg.get("database_url")) return url->value;
  return std::nullopt;
}

std::string database_of(const std::string& conninfo) {
  try {
    return db::parse_conninfo(conninfo).get("dbname").value_or("");
  } catch (const Error&) {
    return {};
  }
}

void register_password(const std::string& conninfo, ci::Provider provider) {
  if (conninfo.empty()) return;
  std::optional<std::string> password;
  try {
    password = db::parse_conninfo(conninfo).get("password");
  } catch (const Error&) {
    return;
  }
  if (!password || password->empty()) return;
  util::register_secret(*password);
  // Before anything can print a URL carrying it.
  if (provider == ci::Provider::github) workflow_command(ci::add_mask_command(*password));
}

migrate::LockMode lock_mode_for(const config::Config& cfg, const std::string& conninfo) {
  auto mode = migrate::parse_lock_mode(cfg.get_or("lock_mode", "auto"));
  if (mode != migrate::LockMode::automatic) return mode;
  return migrate::looks_like_pooler(conninfo) ? migrate::LockMode::table
                                              : migrate::LockMode::advisory;
}

// Whether the preview's history diverged from the folder, read while holding the migration lock
// that migrate() takes: a run of `previewdb migrate` in progress is waited for instead of being
// mistaken for a failed migration. The lock and its connection are gone when this returns, before
// any DROP of the database.
bool diverged_under_migration_lock(const Settings& s, const config::Config& cfg,
                                   const migrate::Target& mt, std::chrono::milliseconds timeout) {
  auto conn = db::Connection::open({.conninfo = mt.conninfo, .dbname = mt.dbname});
  migrate::LockOptions lo{.mode = lock_mode_for(cfg, mt.conninfo),
                          .timeout = timeout,
                          .conninfo = mt.conninfo,
                          .dbname = mt.dbname,
                          .database_label = "database " + util::quoted(mt.dbname)};
  auto lock = migrate::acquire_lock(conn, lo);
  auto st = migrate::status({.target = mt, .dir = s.dir, .format = cfg.get_or("format", "auto")});
  return st.diverged();
}

// Zero setup: a server with no snapshot of the source yet gets one on the first run (a read-only
// copy of the source), so that previews work from the start. Refreshing it is the team's call
// (`previewdb snapshot` on a schedule). One run at a time takes it; the others then find it.
void ensure_snapshot(db::Connection& conn, const std::string& conninfo, const std::string& source,
                     const std::string& created_by, std::chrono::seconds timeout) {
  if (!core::snapshots_of(core::list_databases(conn), source).empty()) return;
  db::AdvisoryLock lock(conn, "previewdb:first-snapshot:" + source, timeout,
                        "the first snapshot of " + util::quoted(source));
  if (!core::snapshots_of(core::list_databases(conn), source).empty()) return;
  util::log::info("no snapshot of '" + source + "' yet: taking one (refresh it with 'previewdb " +
                  "snapshot " + source + "', e.g. on a schedule)");
  snapshot::SnapshotRequest req;
  req.source = source;
  req.created_by = created_by;
  req.conninfo = conninfo;
  auto made = snapshot::create_snapshot(conn, req);
  util::log::info("snapshot " + made.id + " of " + source + " created (" + made.method + ")");
}

// Creates or reuses pr_<N>, re-creating it when its history diverged from the branch, and
// migrates it. Fills facts; returns the URL with its password (for the environment only).
std::string preview(const Settings& s, const config::Config& cfg, ci::Facts& facts,
                    std::optional<core::DatabaseHold>& hold) {
  long long pr = *s.event.pr_number;
  auto target = resolve_target(cfg);
  register_password(target.conninfo, s.provider);
  auto lock_timeout = *duration_setting(cfg, "lock_timeout", "--lock-timeout");
  auto maintenance = connect_maintenance(target, lock_timeout);
  auto protection = make_protection(cfg);

  // Concurrent runs for one PR take turns through get-or-create, the divergence check, the reset
  // and the migration. Otherwise two runs that both saw a diverged preview would both reset it,
  // the second DROP ... WITH (FORCE) killing the first one's migration. It is the lock
  // core::spawn and core::drop_database take for the name (they nest on this session), so a
  // `spawn --reuse`/`--replace` or a cleanup of pr_<N> waits for the run too.
  std::string name = core::pr_database_name(pr);
  db::AdvisoryLock name_lock(
      maintenance, core::spawn_lock_key(name),
      std::max(std::chrono::seconds(1),
               std::chrono::duration_cast<std::chrono::seconds>(lock_timeout)),
      "database " + util::quoted(name), /*free_slot_while_waiting=*/true);

  core::SpawnRequest req;
  req.name = name;
  req.meta.kind = core::Kind::pr;
  req.meta.created_by = "previewdb ci (" + ci::to_string(s.provider) + ")";
  req.meta.pr_number = pr;
  if (!s.event.head_ref.empty()) {
    req.meta.branch = s.event.head_ref;
  } else {
    req.meta.branch = git::current_branch();  // generic CI: the checked-out branch, if any
  }
  req.source = cfg.get_or("source", "dev");
  core::validate_name(req.source, "source database");
  ensure_snapshot(maintenance, target.conninfo, req.source, req.meta.created_by,
                  std::max(std::chrono::seconds(1),
                           std::chrono::duration_cast<std::chrono::seconds>(lock_timeout)));
  req.conninfo = target.conninfo;
  req.if_exists = core::IfExists::reuse;
  req.strategy = core::parse_clone_strategy(cfg.get_or("strategy", "auto"));
  auto spawned = core::spawn(maintenance, req, protection);
  facts.created = spawned.created;
  facts.snapshot = spawned.snapshot;
  util::log::info(spawned.created ? "created " + spawned.name + " from " + spawned.snapshot
                                  : "reusing " + spawned.name);

  migrate::Target mt{target.conninfo, spawned.name};
  if (s.migrate_command.empty()) {
    // A preview whose history no longer matches the branch (an applied file edited, a failed
    // migration, a rebase that reordered them) cannot be migrated forward: re-create it.
    if (diverged_under_migration_lock(s, cfg, mt, lock_timeout)) {
      if (s.on_divergence == "fail") {
        throw Error(ExitCode::refused, spawned.name + " has diverged from the branch's migrations",
                    {"an applied migration was edited, failed, or the order changed after a "
                     "rebase; use --on-divergence reset to re-create it from the snapshot"});
      }
      if (spawned.created) {
        throw Error(ExitCode::refused,
                    "the snapshot " + spawned.snapshot +
                        " has diverged from the branch's "
                        "migrations (an applied migration was edited or reordered)",
                    {"a migration that is already in the snapshot must not be edited; add a new "
                     "migration instead, or take a new snapshot"});
      }
      util::log::warn(spawned.name +
                      " has diverged from the branch's migrations; re-creating it "
                      "from the snapshot");
      req.if_exists = core::IfExists::replace;
      spawned = core::spawn(maintenance, req, protection);
      facts.reset = true;
      facts.snapshot = spawned.snapshot;
    }
  }

  migrate::MigrateOptions mo;
  mo.target = mt;
  mo.dir = s.dir;
  mo.format = cfg.get_or("format", "auto");
  mo.lock_mode = migrate::parse_lock_mode(cfg.get_or("lock_mode", "auto"));
  mo.lock_timeout = lock_timeout;
  mo.statement_timeout = duration_setting(cfg, "statement_timeout", "--statement-timeout");
  mo.lock_wait_timeout = duration_setting(cfg, "lock_wait_timeout", "--lock-wait-timeout");
  mo.command = s.migrate_command;
  mo.github_annotations = s.provider == ci::Provider::github;
  mo.applied_by = req.meta.created_by;
  auto report = migrate::migrate(mo);
  facts.migrations_applied = static_cast<long long>(report.applied_count());

  facts.preview = true;
  facts.database_name = spawned.name;
  facts.database_url = db::url_for_database(target.conninfo, spawned.name, false);
  if (!s.command.empty()) {
    // CMD uses the preview after the name lock is gone: mark it in use (taken before the name
    // lock is released) so a cleanup skips it instead of dropping it under the build.
    hold.emplace(core::hold_database(
        connect_maintenance(target, lock_timeout), spawned.name,
        "previewdb ci -- " + s.command.front() + " (pid " + std::to_string(::getpid()) + ")",
        std::max(std::chrono::seconds(1),
                 std::chrono::duration_cast<std::chrono::seconds>(lock_timeout))));
  }
  std::string verb = facts.reset ? "re-created" : facts.created ? "created" : "reused";
  facts.message = spawned.name + " " + verb + " from snapshot " + facts.snapshot + "; " +
                  std::to_string(facts.migrations_applied) + " migration(s) applied";
  return db::url_for_database(target.conninfo, spawned.name, true);
}

void write_outputs(const Settings& s, const ci::Env& env, const ci::Facts& facts,
                   const std::string& full_url) {
  // A plan writes the same outputs (the summary says it is a plan), so later steps can branch.
  if (s.provider == ci::Provider::github) {
    if (auto out = env_or(env, "GITHUB_OUTPUT"); !out.empty()) {
      util::append_file(out, ci::github_output_text(ci::output_pairs(facts)));
    }
    if (auto summary = env_or(env, "GITHUB_STEP_SUMMARY"); !summary.empty()) {
      util::append_file(summary, ci::step_summary_markdown(facts));
    }
  }
  if (s.export_env && !full_url.empty() && !s.dry_run) {
    auto path = env_or(env, "GITHUB_ENV");
    if (path.empty()) {
      throw usage_error("--export-env needs GITHUB_ENV (set by GitHub Actions)",
                        "outside GitHub Actions use --env-file FILE");
    }
    util::append_file(path, ci::github_env_text({{"DATABASE_URL", full_url}}));
  }
  if (s.env_file && !full_url.empty() && !s.dry_run) {
    std::string text = util::read_file_if_exists(*s.env_file).value_or("");
    text = util::dotenv_set(text, "DATABASE_URL", full_url);
    // It carries the password: owner-only.
    util::write_file_atomic(
        *s.env_file, text,
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    util::log::info("wrote DATABASE_URL to " + *s.env_file);
  }
  if (s.json) {
    std::cout << ci::to_json(facts).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << std::endl;
  } else if (s.command.empty()) {
    for (const auto& [k, v] : ci::output_pairs(facts)) {
      std::cout << k << "=" << util::scrub(v) << "\n";
    }
    std::cout << std::flush;
  }
}

}  // namespace

int run_ci(const Args& all_args) {
  // Everything after "--" is the build command, never previewdb's flags.
  Args args;
  std::vector<std::string> command;
  bool after = false;
  for (size_t i = 0; i < all_args.size(); ++i) {
    if (!after && i > 0 && all_args[i] == "--") {
      after = true;
      continue;
    }
    (after ? command : args).push_back(all_args[i]);
  }

  cxxopts::Options options(
      args[0],
      "CI entry point: detect schema changes, create/migrate pr_<N>, drop it when the PR closes, "
      "and emit outputs.\n  previewdb ci [options] [-- CMD ARGS...]");
  add_common_options(options);
  // clang-format off
  options.add_options("CI")
      ("provider", "github, netlify or generic (default: detected from the environment)",
       cxxopts::value<std::string>(), "NAME")
      ("pr", "pull request number (generic CI; overrides the event)",
       cxxopts::value<std::string>(), "N")
      ("base-ref", "base branch to compare with (default: the event's, else main)",
       cxxopts::value<std::string>(), "REF")
      ("label", "the label that asks for a preview (default preview-db)",
       cxxopts::value<std::string>(), "NAME")
      ("force", "create a preview even without schema changes or the label")
      ("migrations-path", "where migrations live, for change detection (repeatable; default "
       "migrations/schema/)", cxxopts::value<std::vector<std::string>>(), "PATH")
      ("dir", "migrations folder to apply (default: the one --migrations-path, else "
       "migrations/schema)", cxxopts::value<std::string>(), "DIR")
      ("format", "migration folder format (default auto)", cxxopts::value<std::string>(), "FMT")
      ("from", "clone the latest snapshot of this database (default dev)",
       cxxopts::value<std::string>(), "SOURCE")
      ("strategy", "clone strategy: auto, wal_log, file_copy", cxxopts::value<std::string>(), "S")
      ("on-divergence", "reset (re-create from the snapshot, default) or fail",
       cxxopts::value<std::string>(), "MODE")
      ("migrate-command", "run this migrator under the lock instead of previewdb's engine",
       cxxopts::value<std::string>(), "CMD")
      ("lock-timeout", "wait this long for another run's lock (default 10m)",
       cxxopts::value<std::string>(), "DURATION")
      ("dry-run", "detect and decide, print the plan; touch no database")
      ("json", "print the outcome as one JSON object on stdout")
      ("env-file", "write DATABASE_URL to this dotenv file (atomically)",
       cxxopts::value<std::string>(), "FILE")
      ("export-env", "append DATABASE_URL to $GITHUB_ENV for later steps");
  // clang-format on
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  // `previewdb ci npm run build` (no "--") would otherwise never run the build. Empty arguments
  // are what the GitHub action passes for inputs left unset: those are ignored.
  for (const auto& extra : parsed->unmatched()) {
    if (extra.empty()) continue;
    throw usage_error(
        "unexpected argument " + util::quoted(extra) + " for 'previewdb ci'",
        "put the build command after '--': previewdb ci [options] -- " + extra + " ...");
  }
  auto& p = *parsed;
  auto cfg = load_config(p);
  auto env = config::process_env();

  Settings s;
  s.command = command;
  s.provider = ci::detect_provider(
      env, p.count("provider") ? std::optional(p["provider"].as<std::string>()) : std::nullopt);
  switch (s.provider) {
    case ci::Provider::github:
      s.event = ci::github_event(env);
      break;
    case ci::Provider::netlify:
      s.event = ci::netlify_event(env);
      break;
    case ci::Provider::generic:
      s.event.provider = ci::Provider::generic;
      s.event.repository = env_or(env, "GITHUB_REPOSITORY");
      break;
  }
  if (p.count("pr")) s.event.pr_number = ci::parse_pr_number(p["pr"].as<std::string>(), "--pr");
  // A flag the user typed wins; then the event's base branch; then configuration (default main).
  auto base_cfg = cfg.get("base_ref");
  if (base_cfg && base_cfg->origin == "--base-ref")
    s.base_ref = base_cfg->value;
  else if (!s.event.base_ref.empty())
    s.base_ref = s.event.base_ref;
  else
    s.base_ref = cfg.get_or("base_ref", "main");
  s.label = cfg.get_or("label", "preview-db");
  s.paths = p.count("migrations-path") ? p["migrations-path"].as<std::vector<std::string>>()
                                       : std::vector<std::string>{"migrations/schema/"};
  if (p.count("dir"))
    s.dir = p["dir"].as<std::string>();
  else if (p.count("migrations-path") && s.paths.size() == 1)
    s.dir = git::normalise_path(s.paths[0]);
  else
    s.dir = cfg.get_or("migrations_dir", "migrations/schema");
  s.forced = p.count("force") > 0;
  s.dry_run = p.count("dry-run") > 0;
  s.json = p.count("json") > 0;
  s.on_divergence = cfg.get_or("on_divergence", "reset");
  if (s.on_divergence != "reset" && s.on_divergence != "fail") {
    throw usage_error("invalid --on-divergence " + util::quoted(s.on_divergence),
                      "use reset (re-create the preview from the snapshot) or fail");
  }
  s.migrate_command = cfg.get_or("migrate_command", "");
  if (p.count("env-file")) s.env_file = p["env-file"].as<std::string>();
  s.export_env = p.count("export-env") > 0;
  if (auto token = env_or(env, "GITHUB_TOKEN"); !token.empty()) util::register_secret(token);
  // A Netlify clone URL can carry a token in its userinfo; never let it reach a log.
  if (auto repo_url = env_or(env, "REPOSITORY_URL"); !repo_url.empty()) {
    auto scheme = repo_url.find("://");
    auto at = repo_url.find('@');
    if (scheme != std::string::npos && at != std::string::npos && at > scheme + 3) {
      std::string userinfo = repo_url.substr(scheme + 3, at - scheme - 3);
      util::register_secret(userinfo);
      if (auto colon = userinfo.find(':'); colon != std::string::npos) {
        util::register_secret(userinfo.substr(colon + 1));
      }
    }
  }
  auto configured = configured_conninfo(cfg);
  if (configured) register_password(*configured, s.provider);

  util::log::info("provider " + ci::to_string(s.provider) +
                  (s.event.pr_number ? ", pull request #" + std::to_string(*s.event.pr_number)
                                     : ", not a pull request") +
                  (s.event.action.empty() ? "" : " (" + s.event.action + ")"));

  // Decide: closing and forcing need no detection; labels are asked for only when they matter.
  ci::DecisionInput in;
  in.pr_number = s.event.pr_number;
  in.closed = s.event.closed();
  in.forced = s.forced;
  in.label = s.label;
  if (in.pr_number && !in.closed && !in.forced) {
    in.changed_migrations = changed_migrations(s, env);
    if (in.changed_migrations.empty()) in.labels = labels_of(s, env);
  }
  auto decision = ci::decide(in);
  util::log::info(decision.explanation);

  ci::Facts facts;
  facts.reason = decision.reason;
  facts.dry_run = s.dry_run;
  facts.message = decision.explanation;
  std::string full_url;  // with the password: for the environment of later steps only
  std::optional<core::DatabaseHold> hold;  // the preview, marked in use while CMD runs

  if (decision.action == ci::Action::preview) {
    std::string name = core::pr_database_name(*s.event.pr_number);
    if (s.dry_run) {
      facts.preview = true;
      facts.database_name = name;
      if (configured) facts.database_url = db::url_for_database(*configured, name, false);
      facts.message = "plan: " + decision.explanation + "; would get-or-create " + name +
                      " from the latest snapshot and apply its pending migrations";
    } else {
      full_url = preview(s, cfg, facts, hold);
    }
  } else if (decision.action == ci::Action::drop) {
    std::string name = core::pr_database_name(*s.event.pr_number);
    facts.database_name = name;
    if (s.dry_run) {
      facts.message = "plan: " + decision.explanation + "; would drop " + name;
    } else {
      auto target = resolve_target(cfg);
      register_password(target.conninfo, s.provider);
      auto maintenance = connect_maintenance(target, lock_timeout_setting(cfg));
      auto r = core::drop_database(maintenance, name, make_protection(cfg), false);
      facts.dropped = r.outcome == core::DropOutcome::dropped;
      switch (r.outcome) {
        case core::DropOutcome::dropped:
          facts.message = "dropped " + name;
          break;
        case core::DropOutcome::absent:
          facts.message = name + " did not exist; nothing to drop";
          break;
        default:
          facts.message = "did not drop " + name + ": " + r.reason;
          util::log::warn(facts.message);
          break;
      }
      util::log::info(facts.message);
    }
  } else if (configured) {
    // No preview: the shared database stays what the build uses; nothing is migrated.
    facts.database_name = database_of(*configured);
    facts.database_url = facts.database_name.empty()
                             ? util::redact_url(*configured)
                             : db::url_for_database(*configured, facts.database_name, false);
  }
  if (s.dry_run && facts.message != decision.explanation) util::log::info(facts.message);

  write_outputs(s, env, facts, full_url);

  if (!s.command.empty()) {
    if (s.dry_run) {
      util::log::info("plan: would run the build command with DATABASE_URL set");
      return 0;
    }
    util::ProcessSpec spec;
    spec.argv = s.command;
    if (!full_url.empty()) {
      spec.env["DATABASE_URL"] = full_url;
      spec.env["PREVIEWDB_DATABASE"] = facts.database_name;
    }
    spec.env["PREVIEWDB_PREVIEW"] = facts.preview ? "true" : "false";
    auto r = util::run_process(spec);
    if (r.signal) return 128 + r.signal;
    return r.exit_code;
  }
  return 0;
}

}  // namespace previewdb::commands
