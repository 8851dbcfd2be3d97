// previewdb ci: the CI entry point, one pipeline:
//   settings (resolved once) -> decide -> act (plan / preview / base-branch refresh / drop)
//   -> outputs (also when the act failed) -> the build command after "--".
// Wiring only: the policy lives in ci/ (decision, preview_policy), git/, net/, core/, migrate/.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "ci/cockroach_snapshot.hpp"
#include "ci/decision.hpp"
#include "ci/event.hpp"
#include "ci/outputs.hpp"
#include "ci/preview_policy.hpp"
#include "ci/preview_state.hpp"
#include "ci/report.hpp"
#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/hold.hpp"
#include "commands/lint_sources.hpp"
#include "commands/mask_options.hpp"
#include "commands/pool_topup.hpp"
#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "core/migration_role.hpp"
#include "core/naming.hpp"
#include "db/advisory_lock.hpp"
#include "db/connection.hpp"
#include "db/dialect.hpp"
#include "git/changes.hpp"
#include "git/head.hpp"
#include "git/tree.hpp"
#include "lint/lint.hpp"
#include "migrate/migrate.hpp"
#include "migrate/readers.hpp"
#include "net/github.hpp"
#include "schema/schema.hpp"
#include "snapshot/cockroach_backups.hpp"
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

namespace fs = std::filesystem;

namespace {

std::string env_or(const ci::Env& env, const char* key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

std::optional<std::chrono::milliseconds> duration_setting(const config::Config& cfg,
                                                          const char* key, const char* /*flag*/) {
  return cfg.find_duration(key);
}

std::chrono::seconds whole_seconds(std::chrono::milliseconds ms) {
  return std::max(std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(ms));
}

// Workflow commands (::add-mask::) bypass util::log on purpose: log lines are scrubbed, and a
// scrubbed mask command would mask "***" instead of the password. They go to stderr so that
// stdout stays one JSON document with --json; the runner reads commands from both streams.
void workflow_command(const std::string& line) {
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

// True when a setting came from a configuration file (not a flag, the environment or a default).
bool from_file(const config::Value& v) {
  if (v.origin == "default" || v.origin.rfind("--", 0) == 0) return false;
  return v.origin.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string::npos;
}

// Everything the run needs, resolved once before anything is decided or touched.
struct Settings {
  ci::Provider provider = ci::Provider::generic;
  ci::Event event;
  ci::Env env;
  std::string repository;  // owner/name: the event, else GITHUB_REPOSITORY, else the origin URL
  fs::path root;           // the repository's root (the working directory outside a repository)
  bool in_repository = false;
  std::string base_ref;  // the base branch
  std::string label;
  std::vector<std::string> paths;  // change detection, relative to the root
  fs::path dir;                    // the migrations folder (absolute)
  std::string dir_in_repo;         // the same, relative to the root ("" when outside it)
  std::string format, strategy, source, migrate_command, lock_mode;
  std::chrono::milliseconds lock_timeout{std::chrono::minutes(10)};
  std::optional<std::chrono::milliseconds> statement_timeout, lock_wait_timeout;
  bool forced = false, dry_run = false, json = false, fail_on_divergence = false;
  bool refresh_source = false;
  size_t keep_snapshots = 5;
  std::optional<std::string> env_file;
  bool export_env = false;
  std::vector<std::string> command;  // after --
  bool hold = false;  // --hold: keep the preview marked in use after the outputs, until stdin ends
  Target target;      // which server; the local one is started only when acting
  core::Protection protection;
  std::vector<std::string> protect_configured;
  std::string name_template;                 // --name-template; empty: pr_<N>
  std::optional<config::Value> migrate_url;  // --migrate-url: the PR's SQL runs as this login
  ci::ReportKinds report;                    // --report diff,lint
  bool pr_comment = false;                   // --pr-comment: the report as one PR comment
  std::optional<ci::FailLevel> fail_on;      // --fail-on: exit 9 for findings at this level
  size_t pool_size = 0;                      // --pool: warm clones kept at the end of the run
  std::optional<mask::Spec> mask;            // mask_rules, exclude_data, require_rules
};

// The preview's name for this run's pull request (name template, repository).
std::string preview_name(const Settings& s) {
  return core::preview_database_name(s.name_template, *s.event.pr_number, s.repository);
}

// Registers one conninfo's secrets for scrubbing (and masking on GitHub) before anything can
// print a URL carrying them. The one place secrets are registered: see register_secrets.
void register_conninfo(const std::string& conninfo, ci::Provider provider) {
  if (conninfo.empty()) return;
  std::optional<db::ConnInfo> parsed;
  try {
    parsed = db::parse_conninfo(conninfo);
  } catch (const Error&) {
    return;
  }
  for (const char* key : {"password", "sslpassword"}) {
    auto secret = parsed->get(key);
    if (!secret || secret->empty()) continue;
    util::register_secret(*secret);
    if (provider == ci::Provider::github) workflow_command(ci::add_mask_command(*secret));
  }
}

void register_secrets(const Settings& s, const config::Config& cfg) {
  // The runner masks its own token; PGPASSWORD may be a plain variable, so mask it.
  if (auto v = env_or(s.env, "GITHUB_TOKEN"); !v.empty()) util::register_secret(v);
  if (auto v = env_or(s.env, "PGPASSWORD"); !v.empty()) {
    util::register_secret(v);
    if (s.provider == ci::Provider::github) workflow_command(ci::add_mask_command(v));
  }
  // The masking salt (mask_spec registered it for logs): also masked in the runner's log.
  if (s.mask && !s.mask->salt.empty() && s.provider == ci::Provider::github) {
    workflow_command(ci::add_mask_command(s.mask->salt));
  }
  // A Netlify clone URL can carry a token in its userinfo; never let it reach a log.
  if (auto repo_url = env_or(s.env, "REPOSITORY_URL"); !repo_url.empty()) {
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
  for (const char* key : {"database_url", "direct_url"}) {
    if (auto v = cfg.get(key)) register_conninfo(v->value, s.provider);
  }
  register_conninfo(s.target.conninfo, s.provider);
  if (s.migrate_url) register_conninfo(s.migrate_url->value, s.provider);
}

// An output file must be writable before any database is created or migrated: a run that
// migrated pr_<N> and then cannot report it is worse than one that stops at once.
void check_writable(const std::string& path, const std::string& what) {
  if (path.empty()) return;
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (!ec && fs::exists(st)) {
    if (!fs::is_regular_file(st)) {
      throw usage_error(what + " " + util::quoted(path) + " is not a regular file",
                        "point " + what + " at a file (not a directory, FIFO or device)");
    }
    if (::access(path.c_str(), W_OK) != 0) {
      throw usage_error(what + " " + util::quoted(path) + " is not writable",
                        "make it writable for this user, or point " + what + " elsewhere");
    }
    return;
  }
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent, ec) || ::access(parent.c_str(), W_OK) != 0) {
    throw usage_error(what + " " + util::quoted(path) + " cannot be created: its folder " +
                          util::quoted(parent.string()) + " is missing or not writable",
                      "create the folder, or point " + what + " elsewhere");
  }
}

// The GitHub client for the API fallback and label lookup, when a token and repository exist.
std::optional<net::GitHubClient> github_client(const Settings& s) {
  std::string token = env_or(s.env, "GITHUB_TOKEN");
  if (token.empty() || s.repository.empty()) return std::nullopt;
  net::GitHubOptions o;
  o.token = token;
  o.repository = s.repository;
  if (auto api = env_or(s.env, "GITHUB_API_URL"); !api.empty()) o.api_url = api;
  return net::GitHubClient(o);
}

// The base branch: --base-ref; the PR's base from the event; PREVIEWDB_BASE_REF / base_ref;
// the event's repository.default_branch; origin/HEAD; main.
std::string resolve_base_ref(const config::Config& cfg, const ci::Event& event,
                             const fs::path& root, bool in_repository) {
  auto configured = cfg.get("base_ref");
  if (configured && configured->origin == "--base-ref") return configured->value;
  if (!event.base_ref.empty()) return event.base_ref;
  if (configured && configured->origin != "default") return configured->value;
  if (!event.default_branch.empty()) return event.default_branch;
  if (in_repository) {
    if (auto head = git::remote_head(root)) return *head;
  }
  return "main";
}

// pull_request_target / forks: previewdb.json from the base branch's tree, never the checkout.
// Returns the file to load (a private temporary copy; "{}" when the base has none).
fs::path trusted_config_file(const std::string& base_ref, const fs::path& root, bool in_repository,
                             const util::TempDir& scratch) {
  std::string text = "{}";
  std::optional<std::optional<std::string>> at_base;
  if (in_repository) at_base = git::file_at(root, base_ref, "previewdb.json");
  if (!at_base) {
    util::log::warn("the base branch " + util::quoted(base_ref) +
                    " is not in this clone: its previewdb.json cannot be read, so none is used "
                    "(the pull request's own is never read for an untrusted head)");
  } else if (*at_base) {
    text = **at_base;
  }
  fs::path file = scratch.path() / "previewdb.json";
  util::write_file_atomic(file, text, fs::perms::owner_read | fs::perms::owner_write);
  return file;
}

// Masking rules decide which personal data a snapshot keeps, so under an untrusted head a rules
// file inside the repository is read from the base branch's tree, never from the pull request's
// checkout (which could empty it). A file outside the repository is the workflow's own.
std::optional<std::string> trusted_mask_rules(const fs::path& rules, const std::string& base_ref,
                                              const fs::path& root, bool in_repository) {
  if (!in_repository) return std::nullopt;
  fs::path inside = fs::absolute(rules).lexically_normal().lexically_relative(
      fs::absolute(root).lexically_normal());
  if (inside.empty() || *inside.begin() == "..") return std::nullopt;
  auto at_base = git::file_at(root, base_ref, inside.generic_string());
  if (!at_base || !*at_base) {
    throw usage_error("the masking rules file " + util::quoted(rules.string()) + " is not " +
                          (at_base ? "on the base branch " : "readable: the base branch ") +
                          util::quoted(base_ref) + (at_base ? "" : " is not in this clone"),
                      "for a fork's pull request or pull_request_target previewdb reads the rules "
                      "from the base branch, never from the pull request: merge the rules file "
                      "first (or fetch the base branch: actions/checkout with fetch-depth: 0)");
  }
  return **at_base;
}

// The event's repository, else what `spawn --pr` would record (GITHUB_REPOSITORY, the origin).
std::string repository_identity(const ci::Event& event, const ci::Env& env) {
  if (!event.repository.empty()) return event.repository;
  return repository_of_checkout(env_or(env, "GITHUB_REPOSITORY"));
}

std::vector<std::string> changed_migrations(const Settings& s) {
  // A path in neither tree is a typo: "changes no migrations" would be a green lie.
  for (const auto& p : s.in_repository ? s.paths : std::vector<std::string>{}) {
    bool in_base = false;
    // A base branch missing from the clone (shallow) cannot tell: detection falls back then.
    bool base_known = git::folder_entries(s.root, s.base_ref, p, &in_base).has_value();
    if (base_known && !in_base && !git::exists_at_head(s.root, p)) {
      throw usage_error(
          "the migrations path " + util::quoted(p) +
              " exists neither in HEAD nor on the base "
              "branch " +
              util::quoted(s.base_ref),
          "pass --dir (or --migrations-path) with the folder your migrations live in, relative "
          "to the repository root " +
              util::quoted(s.root.string()));
    }
  }
  auto result =
      git::detect_changes({.repository = s.root, .base_ref = s.base_ref, .paths = s.paths});
  if (result.ok()) {
    std::vector<std::string> out;
    for (const auto& f : result.changes->files) out.push_back(f.path);
    util::log::debug("merge base " + result.changes->merge_base + "; " +
                     std::to_string(out.size()) + " migration file(s) changed");
    return out;
  }
  const auto& why = *result.unavailable;
  auto client = s.event.pr_number ? github_client(s) : std::nullopt;
  if (!client) {
    Error e(ExitCode::usage, "cannot detect changed migrations: " + why.message);
    e.with_hint("pass --base-ref with the branch the pull request merges into, if it is not " +
                util::quoted(s.base_ref));
    for (const auto& h : why.hints) e.with_hint(h);
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

std::vector<std::string> labels_of(const Settings& s) {
  if (s.event.labels) return *s.event.labels;
  if (auto it = s.env.find("PREVIEWDB_LABELS"); it != s.env.end()) {
    return ci::parse_labels(it->second, "PREVIEWDB_LABELS");
  }
  if (!s.event.pr_number) return {};
  if (auto client = github_client(s)) return client->pr_labels(*s.event.pr_number);
  return {};
}

// A push to the base branch (or Netlify production, or generic CI) that asks for the refresh.
bool on_base_branch(const Settings& s) {
  if (s.event.pr_number) return false;
  switch (s.provider) {
    case ci::Provider::github: {
      if (s.event.name != "push" && s.event.name != "workflow_dispatch" &&
          s.event.name != "schedule") {
        return false;
      }
      // The branch the run is for: the push's, else GITHUB_REF (a dispatch picks any branch).
      std::string branch = s.event.pushed_branch;
      if (branch.empty()) {
        std::string ref = env_or(s.env, "GITHUB_REF");
        if (ref.rfind("refs/heads/", 0) == 0) branch = ref.substr(11);
      }
      return !branch.empty() && branch == s.base_ref;
    }
    case ci::Provider::netlify:
      return s.event.name == "production";
    case ci::Provider::generic:
      return true;
  }
  return false;
}

// The shared database a run without a preview leaves the build on: the one the target names;
// libpq's default when it names none (PGDATABASE, else the user's name), never the maintenance
// database or a URL with a placeholder password; the source (dev) on the embedded local server.
std::string shared_database(const Settings& s) {
  if (s.target.embedded) return s.source;
  std::optional<db::ConnInfo> info;
  try {
    info = db::parse_conninfo(s.target.conninfo);
  } catch (const Error&) {
    return {};
  }
  if (auto name = info->get("dbname"); name && !name->empty()) return *name;
  if (auto name = env_or(s.env, "PGDATABASE"); !name.empty()) return name;
  if (auto user = info->get("user"); user && !user->empty()) return *user;
  return env_or(s.env, "PGUSER");
}

// The local server starts only now, when something is really done with it.
const Target& started_target(Settings& s, const config::Config& cfg) {
  if (s.target.embedded && s.target.conninfo.empty()) {
    s.target = resolve_target(cfg);
    register_conninfo(s.target.conninfo, s.provider);
  }
  return s.target;
}

migrate::LockMode lock_mode_for(const Settings& s, const std::string& conninfo) {
  auto mode = migrate::parse_lock_mode(s.lock_mode);
  if (mode != migrate::LockMode::automatic) return mode;
  return migrate::looks_like_pooler(conninfo) ? migrate::LockMode::table
                                              : migrate::LockMode::advisory;
}

migrate::MigrateOptions migrate_options(const Settings& s, const migrate::Target& mt,
                                        const std::string& applied_by) {
  migrate::MigrateOptions mo;
  mo.target = mt;
  mo.dir = s.dir;
  mo.format = s.format;
  mo.lock_mode = migrate::parse_lock_mode(s.lock_mode);
  mo.lock_timeout = s.lock_timeout;
  mo.statement_timeout = s.statement_timeout;
  mo.lock_wait_timeout = s.lock_wait_timeout;
  mo.command = s.migrate_command;
  mo.github_annotations = s.provider == ci::Provider::github;
  mo.applied_by = applied_by;
  return mo;
}

// What a migration run applied: with --migrate-command, what the tool's own history table gained
// (nullopt when previewdb cannot read it: reported as "unknown", never as 0). A command that
// failed is a failed migration (exit 7), with the outputs of a failed run.
std::optional<long long> applied_by(const Settings& s, const migrate::MigrateReport& report,
                                    const std::string& database) {
  if (report.command_exit_code && *report.command_exit_code != 0) {
    throw Error(ExitCode::migration_failed,
                "the migration command " + util::quoted(s.migrate_command) + " failed on " +
                    util::quoted(database) + " (exit status " +
                    std::to_string(*report.command_exit_code) + ")",
                {"its output is above; the migration lock was released"});
  }
  if (!report.applied_known) return std::nullopt;
  return static_cast<long long>(report.applied_count());
}

std::string applied_phrase(const std::optional<long long>& applied) {
  return applied ? std::to_string(*applied) + " migration(s) applied"
                 : "migrations applied by the migration command (how many is unknown: its "
                   "history table is not one previewdb reads)";
}

// The base branch's entries of the migrations folder: from git, else (shallow clone) from the
// GitHub contents API; nullopt when neither can tell (plan_preview then asks for fetch-depth: 0).
std::optional<std::vector<std::string>> base_entries(const Settings& s) {
  if (s.dir_in_repo.empty() && !s.in_repository) return std::nullopt;
  if (auto e = git::folder_entries(s.root, s.base_ref, s.dir_in_repo)) return e;
  auto client = github_client(s);
  if (!client) return std::nullopt;
  util::log::info("the base branch " + util::quoted(s.base_ref) +
                  " is not in this clone: asking the GitHub API for its migrations");
  auto entries = client->folder_entries(s.dir_in_repo, s.base_ref, s.event.pr_number.value_or(0));
  return entries ? entries : std::vector<std::string>{};
}

ci::MigrationFact::State fact_state(migrate::State st) {
  switch (st) {
    case migrate::State::applied:
      return ci::MigrationFact::State::applied;
    case migrate::State::pending:
      return ci::MigrationFact::State::pending;
    case migrate::State::changed:
      return ci::MigrationFact::State::changed;
    case migrate::State::failed:
      return ci::MigrationFact::State::failed;
    case migrate::State::missing:
      return ci::MigrationFact::State::missing;
  }
  return ci::MigrationFact::State::applied;
}

// The preview's history against the branch, read while holding the migration lock that
// migrate() takes (a `previewdb migrate` in progress is waited for, not mistaken for a failed
// migration), then the policy's verdict. The lock is gone when this returns, before any DROP.
ci::PreviewPlan evaluate_preview(const Settings& s, const migrate::Target& mt, bool created) {
  auto conn = db::Connection::open(
      {.conninfo = mt.conninfo, .dbname = mt.dbname, .busy_retry = mt.busy_retry});
  migrate::LockOptions lo{.mode = lock_mode_for(s, mt.conninfo),
                          .timeout = s.lock_timeout,
                          .conninfo = mt.conninfo,
                          .dbname = mt.dbname,
                          .database_label = "database " + util::quoted(mt.dbname)};
  auto lock = migrate::acquire_lock(conn, lo);
  auto st = migrate::status({.target = mt, .dir = s.dir, .format = s.format});
  ci::PreviewFacts facts;
  for (const auto& m : st.migrations) {
    facts.migrations.push_back({.id = m.id,
                                .state = fact_state(m.state),
                                .out_of_order = m.out_of_order,
                                .file_checksum = m.file_checksum});
  }
  if (ci::needs_base_entries(facts.migrations)) facts.base_entries = base_entries(s);
  facts.base_ref = s.base_ref;
  facts.created = created;
  facts.fail_on_divergence = s.fail_on_divergence;
  facts.recorded_cause = ci::read_reset_cause(conn);
  return ci::plan_preview(facts);
}

void record_cause(const migrate::Target& mt, const std::string& cause) {
  auto conn = db::Connection::open(
      {.conninfo = mt.conninfo, .dbname = mt.dbname, .busy_retry = mt.busy_retry});
  ci::record_reset_cause(conn, cause);
}

// Zero setup: a server with no snapshot of the source yet gets one on the first run.
void ensure_snapshot(db::Connection& conn, const std::string& conninfo, const std::string& source,
                     const std::string& created_by, std::chrono::seconds timeout,
                     const std::optional<mask::Spec>& mask) {
  snapshot::SnapshotRequest req;
  req.source = source;
  req.created_by = created_by;
  req.conninfo = conninfo;
  req.mask = mask;
  if (auto made = snapshot::ensure_first_snapshot(conn, req, timeout)) {
    if (made->masking) log_masking(*made->masking);
    util::log::info("no snapshot of '" + source + "' yet: taking one: " + made->id + " (" +
                    made->method + "); keep it current with 'previewdb ci --refresh-source' on " +
                    "the base branch, or 'previewdb snapshot'");
  }
}

// A server without template databases (CockroachDB): the preview is restored from the newest
// BACKUP of the source in the configured store, the first one taken when there is none
// (ci::plan_cockroach_snapshot decides; docs/COCKROACHDB.md#ci).
void prepare_cockroach_snapshot(db::Connection& conn, const config::Config& cfg,
                                core::SpawnRequest& req, std::chrono::seconds timeout,
                                bool masking) {
  std::optional<std::string> store;
  if (auto v = cfg.get("snapshot_store")) store = v->value;
  storage::StoreOptions options;
  if (store) options = store_options(cfg);
  auto newest = [&]() -> std::optional<std::string> {
    if (!store || store->rfind("s3://", 0) != 0 || masking) return std::nullopt;
    auto backups = snapshot::list_cockroach_backups(conn, *store, req.source, options);
    if (backups.empty()) return std::nullopt;
    return backups.front().reference;
  };
  auto plan = ci::plan_cockroach_snapshot(store, req.source, newest(), masking);
  if (plan.step == ci::CockroachSnapshotStep::take_first) {
    db::AdvisoryLock lock(conn, "previewdb:first-snapshot:" + req.source, timeout,
                          "the first snapshot of " + util::quoted(req.source));
    // Another run may have taken it while this one waited.
    plan = ci::plan_cockroach_snapshot(store, req.source, newest(), masking);
    if (plan.step == ci::CockroachSnapshotStep::take_first) {
      snapshot::SnapshotRequest sr;
      sr.source = req.source;
      sr.created_by = req.meta.created_by;
      sr.conninfo = req.conninfo;
      sr.store_url = store;
      sr.store_options = options;
      auto made = snapshot::create_snapshot(conn, sr);
      util::log::info("no backup of '" + req.source + "' yet: took one: " +
                      util::redact_url(made.archive.value_or(made.id)) + " (" + made.method +
                      "); keep it current with 'previewdb ci --refresh-source' on the base branch");
      plan.step = ci::CockroachSnapshotStep::restore_newest;
      plan.snapshot = made.archive.value_or(snapshot::cockroach_collection(*store, req.source));
    }
  }
  if (plan.step == ci::CockroachSnapshotStep::refuse) {
    throw Error(ExitCode::refused, plan.message, plan.hints);
  }
  req.snapshot = plan.snapshot;
  req.store_options = options;
}

// Creates or reuses pr_<N>; resets it when it diverged (never twice for one cause); migrates
// it, the branch's own pending migrations on top of any it is behind. Fills facts; returns the
// URL with its password (for the environment only).
std::string act_preview(Settings& s, const config::Config& cfg, ci::Facts& facts,
                        std::optional<core::DatabaseHold>& hold) {
  long long pr = *s.event.pr_number;
  const Target& target = started_target(s, cfg);
  auto maintenance = connect_maintenance(target, s.lock_timeout);
  if (auto warning = core::superuser_warning(maintenance)) util::log::warn(*warning);
  // With a migration login, the PR's SQL (and previewdb's reads of the preview) run as it, on
  // rights lent for this one preview; previewdb's own role runs nothing inside the preview.
  std::optional<core::MigrationRole> migration_role;
  if (s.migrate_url) {
    auto user = db::parse_conninfo(s.migrate_url->value).get("user");
    if (!user) {
      throw usage_error(s.migrate_url->origin + " names no user",
                        "give the migration login's user: postgresql://pr_migrator@host/db");
    }
    migration_role = core::check_migration_role(maintenance, *user, s.migrate_url->origin);
  }
  std::string name = preview_name(s);
  facts.database_name = name;

  // Concurrent runs for one PR take turns through get-or-create, the divergence check, the reset
  // and the migration (the lock core::spawn and core::drop_database take for the name).
  db::AdvisoryLock name_lock(maintenance, core::spawn_lock_key(name), whole_seconds(s.lock_timeout),
                             "database " + util::quoted(name), /*free_slot_while_waiting=*/true);

  core::SpawnRequest req;
  req.name = name;
  req.meta.kind = core::Kind::pr;
  req.meta.created_by = "previewdb ci (" + ci::to_string(s.provider) + ")";
  req.meta.pr_number = pr;
  if (!s.repository.empty()) req.meta.repository = s.repository;
  if (!s.event.head_ref.empty()) {
    req.meta.branch = s.event.head_ref;
  } else {
    req.meta.branch = git::current_branch(s.root.string());  // generic CI: the checkout's branch
  }
  req.source = s.source;
  req.conninfo = target.conninfo;
  if (db::dialect_of(maintenance).template_databases) {
    ensure_snapshot(maintenance, target.conninfo, req.source, req.meta.created_by,
                    whole_seconds(s.lock_timeout), s.mask);
  } else {
    prepare_cockroach_snapshot(maintenance, cfg, req, whole_seconds(s.lock_timeout),
                               s.mask.has_value());
  }
  req.if_exists = core::IfExists::reuse;
  req.strategy = core::parse_clone_strategy(s.strategy);
  req.use_pool = true;
  auto spawned = core::spawn(maintenance, req, s.protection);
  req.use_pool = false;  // a divergence reset below re-creates it by a clone
  facts.created = spawned.created;
  facts.pooled = spawned.pooled;
  facts.snapshot = spawned.snapshot;
  util::log::info(spawned.created ? "created " + spawned.name + " from " + spawned.snapshot +
                                        (spawned.pooled ? " (taken from the warm pool)" : "")
                                  : "reusing " + spawned.name);

  migrate::Target mt{migration_role ? s.migrate_url->value : target.conninfo, spawned.name,
                     s.lock_timeout};
  // The migration login's rights on this preview, lent only while its SQL or reads run (never
  // across a reset, which previewdb's own role does).
  auto lend = [&]() -> std::unique_ptr<core::PreviewLoan> {
    if (!migration_role) return nullptr;
    return std::make_unique<core::PreviewLoan>(maintenance, spawned.name, *migration_role,
                                               whole_seconds(s.lock_timeout));
  };
  if (s.migrate_command.empty()) {
    auto plan = [&] {
      auto loan = lend();
      return evaluate_preview(s, mt, spawned.created);
    }();
    if (plan.step == ci::PreviewStep::reset) {
      util::log::warn(spawned.name + " " + plan.message);
      req.if_exists = core::IfExists::replace;
      spawned = core::spawn(maintenance, req, s.protection);
      facts.reset = true;
      facts.pooled = false;
      facts.snapshot = spawned.snapshot;
      auto loan = lend();
      record_cause(mt, plan.cause);
      plan = evaluate_preview(s, mt, /*created=*/true);
    }
    if (plan.step == ci::PreviewStep::refuse) {
      // Remember the cause: the next run with the same cause does not reset again.
      if (!s.fail_on_divergence) {
        auto loan = lend();
        record_cause(mt, plan.cause);
      }
      throw Error(ExitCode::refused, spawned.name + " " + plan.message, plan.hints);
    }
    facts.behind = plan.behind;
    if (!plan.behind.empty()) {
      util::log::warn(spawned.name + " is " + std::to_string(plan.behind.size()) +
                      " migration(s) behind the base branch " + util::quoted(s.base_ref) + " (" +
                      util::join(plan.behind, ", ") +
                      "): the branch's own migrations are applied on top; merge the base branch "
                      "to test them together");
    }
    if (!plan.out_of_order.empty()) {
      util::log::info("applying " + util::join(plan.out_of_order, ", ") +
                      " out of order, after migrations of the base branch (allowed for previews)");
    }
  }

  auto loan = lend();
  auto report = migrate::migrate(migrate_options(s, mt, req.meta.created_by));
  loan.reset();
  facts.preview = true;
  facts.database_url = db::url_for_database(target.conninfo, spawned.name, false);
  facts.migrations_applied = applied_by(s, report, spawned.name);
  if (!s.command.empty() || s.hold) {
    // CMD (or, with --hold, the build steps after this run) uses the preview after the name lock
    // is gone: mark it in use (taken before the name lock is released) so a cleanup skips it
    // instead of dropping it under the build. No moment between the two is left unheld.
    std::string holder =
        s.hold ? std::string("previewdb ci --hold") : "previewdb ci -- " + s.command.front();
    hold.emplace(core::hold_database(connect_maintenance(target, s.lock_timeout), spawned.name,
                                     holder + " (pid " + std::to_string(::getpid()) + ")",
                                     whole_seconds(s.lock_timeout)));
  }
  std::string verb = facts.reset ? "re-created" : facts.created ? "created" : "reused";
  facts.message = spawned.name + " " + verb + " from snapshot " + facts.snapshot + "; " +
                  applied_phrase(facts.migrations_applied);
  if (!facts.behind.empty()) {
    facts.message +=
        "; " + std::to_string(facts.behind.size()) + " migration(s) behind the base branch";
  }
  return db::url_for_database(target.conninfo, spawned.name, true);
}

// The one place previewdb migrates the shared source database: on the base branch, with
// --refresh-source. Migrate it (under the migration lock), snapshot it, prune old snapshots.
void act_refresh(Settings& s, const config::Config& cfg, ci::Facts& facts) {
  const Target& target = started_target(s, cfg);
  auto maintenance = connect_maintenance(target, s.lock_timeout);
  auto all = core::list_databases(maintenance);
  bool configured = std::find(s.protect_configured.begin(), s.protect_configured.end(), s.source) !=
                    s.protect_configured.end();
  if ((s.protection.is_builtin(s.source) && s.source != "dev") || configured ||
      s.source == "production") {
    throw Error(ExitCode::refused,
                "refusing to migrate " + util::quoted(s.source) +
                    " with --refresh-source: it is a protected database, not a preview source",
                {"--refresh-source migrates only the snapshot source (--from, default dev); "
                 "point --from at the database previews are cloned from"});
  }
  if (!core::find_database(maintenance, s.source)) {
    throw Error(ExitCode::not_found,
                "the source database " + util::quoted(s.source) + " does not exist",
                {"create it (previewdb local start creates dev), or pass --from NAME"});
  }
  facts.database_name = s.source;
  facts.database_url = db::url_for_database(target.conninfo, s.source, false);

  std::string by = "previewdb ci (" + ci::to_string(s.provider) + ", base branch)";
  auto report = migrate::migrate(migrate_options(s, {target.conninfo, s.source}, by));
  facts.migrations_applied = applied_by(s, report, s.source);

  snapshot::SnapshotRequest req;
  req.source = s.source;
  req.created_by = by;
  req.conninfo = target.conninfo;
  req.strategy = core::parse_clone_strategy(s.strategy);
  req.mask = s.mask;
  if (!db::dialect_of(maintenance).template_databases) {
    // CockroachDB: a BACKUP into the configured store's collection of the source.
    if (auto v = cfg.get("snapshot_store")) {
      req.store_url = v->value;
      req.store_options = store_options(cfg);
    }
  }
  auto made = snapshot::create_snapshot(maintenance, req);
  if (made.masking) log_masking(*made.masking);
  facts.snapshot = made.id;
  util::log::info("snapshot " + made.id + " of " + s.source + " taken (" + made.method + ")");

  auto plan = snapshot::plan_prune(core::list_databases(maintenance), s.keep_snapshots, s.source);
  for (const auto& d : plan.drop) {
    // A spawn cloning it holds its name lock: never drop a snapshot under a running clone.
    std::string key = core::spawn_lock_key(d.name);
    if (!db::AdvisoryLock::try_lock(maintenance, key)) {
      util::log::info("kept " + d.name + ": a preview is being cloned from it");
      continue;
    }
    auto r = core::drop_database(maintenance, d.name, s.protection, false);
    db::AdvisoryLock::unlock(maintenance, key);
    if (r.outcome == core::DropOutcome::dropped) {
      ++facts.snapshots_pruned;
      util::log::info("pruned snapshot " + d.name);
    } else {
      util::log::warn("kept " + d.name + ": " + r.reason);
    }
  }
  facts.message = s.source + " migrated (" + applied_phrase(facts.migrations_applied) +
                  ") and snapshotted as " + made.id + "; " +
                  std::to_string(facts.snapshots_pruned) + " old snapshot(s) pruned";
}

void act_drop(Settings& s, const config::Config& cfg, ci::Facts& facts) {
  std::string name = preview_name(s);
  facts.database_name = name;
  const Target& target = started_target(s, cfg);
  auto maintenance = connect_maintenance(target, s.lock_timeout);
  auto r = core::drop_database(maintenance, name, s.protection, false,
                               s.repository.empty() ? std::nullopt : std::optional(s.repository));
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

// The plan: what the real run would do, on the same target (nothing started or touched).
void act_plan(const Settings& s, const ci::Decision& decision, ci::Facts& facts) {
  std::string url_base = s.target.conninfo;
  auto url_for = [&](const std::string& db) {
    return url_base.empty() ? std::string() : db::url_for_database(url_base, db, false);
  };
  switch (decision.action) {
    case ci::Action::preview:
      facts.preview = true;
      facts.database_name = preview_name(s);
      facts.database_url = url_for(facts.database_name);
      facts.message = "plan: " + decision.explanation + "; would get-or-create " +
                      facts.database_name + " on " + s.target.origin +
                      " from the latest snapshot of " + s.source +
                      " and apply its pending migrations";
      break;
    case ci::Action::drop:
      facts.database_name = preview_name(s);
      facts.message = "plan: " + decision.explanation + "; would drop " + facts.database_name;
      break;
    case ci::Action::refresh_source:
      facts.database_name = s.source;
      facts.database_url = url_for(s.source);
      facts.message = "plan: " + decision.explanation + "; would migrate " + s.source + " on " +
                      s.target.origin + ", snapshot it and keep " +
                      std::to_string(s.keep_snapshots) + " snapshot(s)";
      break;
    case ci::Action::none:
      break;
  }
}

// The schema diff between the snapshot the preview came from and the preview, as Markdown
// (schema::render_markdown); nullopt when there is no snapshot database to compare with. The
// snapshot is read in place (snapshot::SnapshotReader), never copied.
std::optional<std::string> render_diff_section(const Target& target, const std::string& snapshot,
                                               const std::string& preview,
                                               std::chrono::seconds lock_timeout) {
  if (snapshot.empty() || snapshot.find('/') != std::string::npos) {
    // Made empty, or from an archive: there is no snapshot database to compare with.
    return std::nullopt;
  }
  try {
    auto maintenance = connect_maintenance(target, lock_timeout);
    snapshot::SnapshotReader reader(maintenance, target.conninfo, snapshot, lock_timeout);
    auto preview_conn = db::Connection::open({.conninfo = target.conninfo, .dbname = preview});
    auto diff = schema::compare_databases(reader.connection(), preview_conn);
    // Kinds it does not compare are listed with the differences, but alone they are not
    // something this pull request changed.
    if (diff.differences.empty()) return std::nullopt;
    diff.from = snapshot;
    diff.to = preview;
    auto text = schema::render_markdown(diff);
    if (text.rfind("### ", 0) == 0) text.insert(0, "#");  // a section of the report
    return text;
  } catch (const Error& e) {
    // The report never fails the build: say what is missing and why.
    util::log::warn("schema diff for the report: " + std::string(e.what()));
    return "The schema diff between `" + snapshot + "` and `" + preview +
           "` could not be computed: " + util::printable(e.what());
  }
}

// "public.users: ~12 rows, 16 KiB" (and the grading) for a finding the preview's data graded.
std::string size_text(const lint::Finding& f) {
  if (!f.size) return {};
  std::string rows = f.size->rows < 0 ? std::string("rows unknown")
                                      : "~" + std::to_string(std::llround(f.size->rows)) + " rows";
  std::string out =
      f.table + ": " + rows + ", " + util::human_bytes(static_cast<double>(f.size->bytes));
  if (f.ungraded) {
    out += ", " + std::string(lint::severity_name(*f.ungraded)) + " graded " +
           std::string(lint::severity_name(f.severity));
  }
  return out;
}

// The lint findings for the PR's migrations (the files it adds or changes under the folder),
// linted as one run (they are applied together) and graded by the preview's table sizes.
std::vector<ci::ReportFinding> report_lint(const Settings& s, const Target& target,
                                           const std::string& preview,
                                           const std::vector<std::string>& changed,
                                           size_t& linted) {
  std::set<std::string> changed_files(changed.begin(), changed.end());
  auto set = migrate::read_migrations({s.dir, s.format, {}});
  std::set<std::string> ids;
  std::map<std::string, std::string> shown;  // display path -> path in the repository
  std::error_code ec;
  auto root = fs::weakly_canonical(s.root, ec);
  for (const auto& m : set.migrations) {
    auto rel = fs::weakly_canonical(m.path, ec).lexically_relative(root).generic_string();
    if (!changed_files.count(rel)) continue;
    ids.insert(m.id);
    shown[m.display_path] = rel;
  }
  auto sources = lint_sources(set, &ids);
  // Findings name files as the pull request shows them: relative to the repository root.
  for (auto& source : sources) {
    if (auto it = shown.find(source.file); it != shown.end()) source.file = it->second;
  }
  linted = sources.size();
  lint::Context context;
  context.runner_sets_lock_timeout = s.lock_wait_timeout && s.lock_wait_timeout->count() > 0;
  std::vector<lint::Finding> findings;
  for (const auto& source : sources) {
    auto f = lint::lint(source, context);
    findings.insert(findings.end(), std::make_move_iterator(f.begin()),
                    std::make_move_iterator(f.end()));
  }
  if (!findings.empty()) {
    // Read as previewdb's own role: pg_class is readable by any role that can connect.
    auto conn = db::Connection::open({.conninfo = target.conninfo, .dbname = preview});
    lint::grade(findings, lint::table_sizes(conn, lint::tables_to_measure(findings)));
  }
  std::vector<ci::ReportFinding> out;
  for (const auto& f : findings) {
    out.push_back({.severity = std::string(lint::severity_name(f.severity)),
                   .rule = f.rule,
                   .file = f.file,
                   .line = f.line,
                   .message = f.message,
                   .hint = f.hint,
                   .size = size_text(f)});
  }
  return out;
}

// Brings the PR comment in line with the report: one comment, found by its marker, updated in
// place, created when absent, deleted when there is nothing to say. A failure is a warning: the
// comment never fails the build. Returns what was done (for --json).
std::string sync_pr_comment(const Settings& s, const ci::Report& report,
                            const std::string& identity) {
  auto client = github_client(s);
  if (!client) {
    util::log::warn(
        "--pr-comment needs GITHUB_TOKEN and the repository (GITHUB_REPOSITORY): no comment "
        "written");
    return "none";
  }
  long long pr = *s.event.pr_number;
  try {
    auto plan = ci::plan_comment(client->pr_comments(pr), report, identity);
    for (long long id : plan.extra) client->delete_comment(id, pr);
    switch (plan.action) {
      case ci::CommentAction::create: {
        auto made = client->create_comment(pr, report.comment);
        util::log::info("commented on pull request #" + std::to_string(pr) + " (comment " +
                        std::to_string(made.id) + ")");
        break;
      }
      case ci::CommentAction::update:
        if (plan.unchanged) {
          util::log::info("the pull request comment is up to date");
          return "unchanged";
        }
        client->update_comment(plan.id, report.comment, pr);
        util::log::info("updated the pull request comment " + std::to_string(plan.id));
        break;
      case ci::CommentAction::remove:
        client->delete_comment(plan.id, pr);
        util::log::info("nothing to review: deleted the pull request comment " +
                        std::to_string(plan.id));
        break;
      case ci::CommentAction::none:
        break;
    }
    return ci::to_string(plan.action);
  } catch (const Error& e) {
    std::string text = e.what();
    for (const auto& h : e.hints()) text += "; hint: " + h;
    util::log::warn("could not update the pull request comment: " + text);
    return "failed";
  }
}

// --report after the preview was migrated: the findings (for --fail-on), the step summary's
// section, the PR comment.
std::vector<ci::ReportFinding> act_report(Settings& s, const config::Config& cfg,
                                          const std::vector<std::string>& changed,
                                          ci::Facts& facts) {
  const Target& target = started_target(s, cfg);
  ci::ReportInput in;
  in.identity = facts.database_name;
  in.lint = s.report.lint;
  in.diff = s.report.diff;
  if (s.report.lint) {
    in.findings = report_lint(s, target, facts.database_name, changed, in.migrations_linted);
  }
  if (s.report.diff)
    in.diff_section = render_diff_section(target, facts.snapshot, facts.database_name,
                                          whole_seconds(s.lock_timeout));
  auto report = ci::compose_report(in);
  facts.report = report.summary;
  facts.report_findings = in.findings.size();
  if (s.pr_comment) facts.report_comment = sync_pr_comment(s, report, in.identity);
  return in.findings;
}

// The no-op path (no migration changed) with --pr-comment: a comment from an earlier run can
// only exist when this pull request has a preview, because a report is written only after its
// preview was migrated, and the preview stays until the pull request closes. So the registry is
// asked first (one query, no API call); only when the preview exists are the PR's comments
// listed, and previewdb's deleted. The embedded local server is not started for this.
void remove_stale_comment(Settings& s, ci::Facts& facts) {
  if (!s.pr_comment || s.target.embedded) return;
  std::string name = preview_name(s);
  try {
    auto maintenance = connect_maintenance(s.target, s.lock_timeout);
    auto info = core::find_database(maintenance, name);
    if (!info || !info->meta || info->meta->pr_number != s.event.pr_number) {
      facts.report_comment = "none";
      return;
    }
  } catch (const Error& e) {
    util::log::warn("could not check for an earlier report comment: " + std::string(e.what()));
    facts.report_comment = "failed";
    return;
  }
  util::log::info(name + " exists: removing the report comment of an earlier run, if any");
  facts.report_comment = sync_pr_comment(s, ci::Report{}, name);
}

void write_outputs(const Settings& s, const ci::Facts& facts, const std::string& full_url) {
  // A plan writes the same outputs (the summary says it is a plan), so later steps can branch.
  if (s.provider == ci::Provider::github) {
    if (auto out = env_or(s.env, "GITHUB_OUTPUT"); !out.empty()) {
      util::append_file(out, ci::github_output_text(ci::output_pairs(facts)));
    }
    if (auto summary = env_or(s.env, "GITHUB_STEP_SUMMARY"); !summary.empty()) {
      util::append_file(summary, ci::step_summary_markdown(facts));
    }
  }
  if (s.export_env && !full_url.empty() && !s.dry_run) {
    util::append_file(env_or(s.env, "GITHUB_ENV"),
                      ci::github_env_text({{"DATABASE_URL", full_url}}));
  }
  if (s.env_file && !full_url.empty() && !s.dry_run) {
    std::string text = util::read_file_if_exists(*s.env_file).value_or("");
    text = util::dotenv_set(text, "DATABASE_URL", full_url);
    // It carries the password: owner-only.
    util::write_file_atomic(*s.env_file, text, fs::perms::owner_read | fs::perms::owner_write);
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

// The outputs of a failed run; a failure to write them must not hide the run's own error.
void report_failure(const Settings& s, const ci::Facts& facts) {
  try {
    write_outputs(s, facts, "");
  } catch (const std::exception& e) {
    util::log::warn(std::string("could not report the failure in the outputs: ") + e.what());
  }
}

// In CI the fix is a push or a re-run, not a command on a developer's machine.
std::vector<std::string> ci_hints(const Error& e) {
  std::vector<std::string> hints;
  for (const auto& h : e.hints()) {
    if (h.find("previewdb migrate") == std::string::npos) {
      hints.push_back(h);
      continue;
    }
    // Keep what happened ("its transaction was rolled back ..."), drop the local advice.
    auto fix = h.find("fix the file");
    std::string kept = fix == std::string::npos ? std::string() : h.substr(0, fix);
    while (!kept.empty() && (kept.back() == ' ' || kept.back() == ';' || kept.back() == ',')) {
      kept.pop_back();
    }
    if (!kept.empty()) hints.push_back(kept);
  }
  switch (e.code()) {
    case ExitCode::migration_failed:
      hints.push_back("fix the migration in the branch and push: the next run applies it again");
      break;
    case ExitCode::connection:
    case ExitCode::lock_timeout:
      hints.push_back("re-run the job once the server is reachable and free");
      break;
    default:
      break;
  }
  return hints;
}

Settings resolve_settings(const cxxopts::ParseResult& p, std::vector<std::string> command,
                          config::Config& cfg_out, util::TempDir& scratch) {
  Settings s;
  s.command = std::move(command);
  s.env = config::process_env();
  if (auto root = git::work_tree_root(".")) {
    s.root = *root;
    s.in_repository = true;
  } else {
    s.root = fs::current_path();
  }

  s.provider = ci::detect_provider(
      s.env, p.count("provider") ? std::optional(p["provider"].as<std::string>()) : std::nullopt);
  switch (s.provider) {
    case ci::Provider::github:
      s.event = ci::github_event(s.env);
      break;
    case ci::Provider::netlify:
      s.event = ci::netlify_event(s.env);
      break;
    case ci::Provider::generic:
      s.event.provider = ci::Provider::generic;
      s.event.repository = env_or(s.env, "GITHUB_REPOSITORY");
      break;
  }
  if (p.count("pr")) s.event.pr_number = ci::parse_pr_number(p["pr"].as<std::string>(), "--pr");

  // Configuration: the repository root's previewdb.json (also from a subdirectory); for an
  // untrusted head (pull_request_target, forks) the base branch's, never the checkout's.
  std::optional<fs::path> default_file;
  bool untrusted = s.event.untrusted_head();
  if (untrusted) {
    fs::path none = scratch.path() / "none.json";
    util::write_file_atomic(none, "{}");
    auto pre = load_config(p, none, /*default_wins=*/true);  // flags and environment only
    std::string base = resolve_base_ref(pre, s.event, s.root, s.in_repository);
    default_file = trusted_config_file(base, s.root, s.in_repository, scratch);
    if (p.count("config") || !env_or(s.env, "PREVIEWDB_CONFIG").empty()) {
      util::log::warn(
          "--config / PREVIEWDB_CONFIG is ignored for an untrusted head: the base "
          "branch's previewdb.json is used");
    }
  } else if (!fs::exists("previewdb.json") && fs::exists(s.root / "previewdb.json")) {
    default_file = s.root / "previewdb.json";
  }
  cfg_out = load_config(p, default_file, untrusted);
  const config::Config& cfg = cfg_out;

  s.repository = repository_identity(s.event, s.env);
  s.base_ref = resolve_base_ref(cfg, s.event, s.root, s.in_repository);
  s.label = cfg.get_string("label");

  // The folder applied; detection follows it unless --migrations-path says otherwise.
  auto dir_v = cfg.get("migrations_dir");
  std::vector<std::string> given_paths = p.count("migrations-path")
                                             ? p["migrations-path"].as<std::vector<std::string>>()
                                             : std::vector<std::string>{};
  std::string dir;
  if (dir_v && dir_v->origin == "--dir")
    dir = dir_v->value;
  else if (given_paths.size() == 1)
    dir = git::normalise_path(given_paths[0]);
  else
    dir = cfg.get_path("migrations_dir").string();
  s.dir = fs::path(dir).is_absolute() ? fs::path(dir) : (s.root / dir).lexically_normal();
  auto rel = s.dir.lexically_relative(s.root);
  s.dir_in_repo = rel.empty() || rel.begin()->string() == ".."
                      ? std::string()
                      : git::normalise_path(rel.generic_string());
  s.paths = given_paths.empty() ? std::vector<std::string>{s.dir_in_repo} : given_paths;

  s.forced = p.count("force") > 0;
  s.dry_run = p.count("dry-run") > 0;
  s.json = p.count("json") > 0;
  s.hold = p.count("hold") > 0;
  if (s.hold && !s.command.empty()) {
    throw usage_error("--hold and a build command after '--' both hold the preview: give one",
                      "'previewdb ci -- CMD' holds it while CMD runs; '--hold' holds it until "
                      "stdin closes, for build steps that run outside previewdb");
  }
  if (s.hold && s.dry_run) {
    throw usage_error("--hold holds the preview a run made, and --dry-run makes none",
                      "leave out one of --hold and --dry-run");
  }
  std::string on_divergence = cfg.get_string("on_divergence");
  if (on_divergence != "reset" && on_divergence != "fail") {
    throw usage_error("invalid --on-divergence " + util::quoted(on_divergence),
                      "use reset (re-create the preview from the snapshot) or fail");
  }
  s.fail_on_divergence = on_divergence == "fail";
  s.format = cfg.get_string("format");
  s.strategy = cfg.get_string("strategy");
  s.lock_mode = cfg.get_string("lock_mode");
  s.lock_timeout = cfg.get_duration("lock_timeout");
  s.statement_timeout = duration_setting(cfg, "statement_timeout", "--statement-timeout");
  s.lock_wait_timeout = duration_setting(cfg, "lock_wait_timeout", "--lock-wait-timeout");

  // Commands and sources: under an untrusted head, only from the workflow (flags/environment).
  auto trusted = [&](const char* key) -> std::optional<config::Value> {
    auto v = cfg.get(key);
    if (v && s.event.untrusted_head() && from_file(*v)) {
      util::log::warn(std::string(key) + " in " + v->origin + " is ignored for " +
                      (s.event.fork ? "a fork's pull request" : "pull_request_target") +
                      ": set it in the workflow (flag or PREVIEWDB_* variable)");
      return std::nullopt;
    }
    return v;
  };
  s.migrate_command = trusted("migrate_command").value_or(config::Value{}).value;
  auto source = trusted("source");
  if (source) {
    s.source = source->value;
  } else {  // ignored from the PR's file: the table's default
    for (const auto& key : config::keys()) {
      if (std::string_view(key.name) == "source") s.source = key.default_value;
    }
  }
  core::validate_name(s.source, "source database");

  s.refresh_source = cfg.get_bool("refresh_source");
  s.keep_snapshots = static_cast<size_t>(cfg.get_int("keep_snapshots", 1, 1000));
  s.pool_size = pool_size_setting(cfg);
  std::optional<std::string> rules_text;
  if (auto rules = cfg.find_path("mask_rules"); rules && s.event.untrusted_head()) {
    rules_text = trusted_mask_rules(*rules, s.base_ref, s.root, s.in_repository);
  }
  s.mask = mask_spec(cfg, rules_text);

  if (p.count("env-file")) s.env_file = p["env-file"].as<std::string>();
  s.export_env = p.count("export-env") > 0;
  s.protect_configured = cfg.get_list("protect");
  s.protection = make_protection(cfg);
  s.target = resolve_target(cfg, false, /*start_local=*/false);
  s.migrate_url = trusted("migrate_url");
  if (s.migrate_url && s.migrate_url->value.empty()) s.migrate_url.reset();  // an unset input
  refuse_password_in_flag(s.migrate_url);
  if (auto t = cfg.get("name_template")) {
    s.name_template = t->value;
    if (s.event.pr_number) preview_name(s);  // a bad template is a usage error before any SQL
  }

  // The report: what to compose, whether to comment, when to fail (never by default).
  if (auto v = cfg.get("report")) {
    s.report = ci::parse_report_kinds(cfg.get_list("report"), v->origin);
  } else {
    s.report = ci::parse_report_kinds(cfg.get_list("report"), "previewdb.json");
  }
  s.pr_comment = cfg.get_bool("pr_comment");
  auto fail_on = cfg.get("report_fail_on");
  s.fail_on = ci::parse_fail_level(fail_on->value, fail_on->origin);
  if (s.pr_comment && !s.report.any()) {
    throw usage_error(
        "--pr-comment needs a report to post (from " + cfg.get("pr_comment")->origin + ")",
        "add --report lint (or diff,lint; action input report)");
  }
  if (s.fail_on && !s.report.lint) {
    throw usage_error("--fail-on " + fail_on->value + " (from " + fail_on->origin +
                          ") grades the report's lint findings, and no lint report is asked for",
                      "add --report lint (action input report), or leave --fail-on out");
  }

  // Output files first: nothing is created or migrated when the result cannot be reported.
  if (s.provider == ci::Provider::github) {
    check_writable(env_or(s.env, "GITHUB_OUTPUT"), "GITHUB_OUTPUT");
    check_writable(env_or(s.env, "GITHUB_STEP_SUMMARY"), "GITHUB_STEP_SUMMARY");
  }
  if (s.export_env) {
    if (env_or(s.env, "GITHUB_ENV").empty()) {
      throw usage_error("--export-env needs GITHUB_ENV (set by GitHub Actions)",
                        "outside GitHub Actions use --env-file FILE");
    }
    check_writable(env_or(s.env, "GITHUB_ENV"), "GITHUB_ENV");
  }
  if (s.env_file) check_writable(*s.env_file, "--env-file");
  return s;
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
      "refresh the source on the base branch, and emit outputs.\n"
      "  previewdb ci [options] [-- CMD ARGS...]");
  add_common_options(options);
  // clang-format off
  options.add_options("CI")
      ("provider", "github, netlify or generic (default: detected from the environment)",
       cxxopts::value<std::string>(), "NAME")
      ("pr", "pull request number (generic CI; overrides the event)",
       cxxopts::value<std::string>(), "N")
      ("base-ref", "base branch to compare with (default: the event's PR base, else the "
       "repository's default branch, else origin/HEAD, else main)",
       cxxopts::value<std::string>(), "REF")
      ("label", "the label that asks for a preview (default preview-db)",
       cxxopts::value<std::string>(), "NAME")
      ("force", "create a preview even without schema changes or the label")
      ("migrations-path", "where migrations live, for change detection (repeatable; default "
       "the --dir folder)", cxxopts::value<std::vector<std::string>>(), "PATH")
      ("dir", "migrations folder to apply, relative to the repository root (default: the one "
       "--migrations-path, else migrations/schema)", cxxopts::value<std::string>(), "DIR")
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
      ("refresh-source", "on the base branch: migrate the source database, snapshot it and "
       "prune old snapshots", cxxopts::value<std::string>()->implicit_value("true"), "BOOL")
      ("keep-snapshots", "with --refresh-source: snapshots of the source to keep (default 5)",
       cxxopts::value<std::string>(), "N")
      ("dry-run", "detect and decide, print the plan; touch no database")
      ("json", "print the outcome as one JSON object on stdout")
      ("hold", "with a preview: after the outputs, print 'holding NAME' and keep the preview "
       "marked in use (cleanup skips it) until stdin closes or the process is ended; for build "
       "steps that run outside previewdb (the Netlify build plugin)")
      ("env-file", "write DATABASE_URL to this dotenv file (atomically)",
       cxxopts::value<std::string>(), "FILE")
      ("export-env", "append DATABASE_URL to $GITHUB_ENV for later steps")
      ("name-template", "name previews with {pr}, {repo}, {owner} (default pr_{pr})",
       cxxopts::value<std::string>(), "TEMPLATE")
      ("migrate-url", "run the PR's migrations as this separate login (no password here: "
       "PREVIEWDB_MIGRATE_URL or PGPASSWORD/.pgpass)", cxxopts::value<std::string>(), "URL")
      ("report", "after migrating the preview, report the PR's lint findings and/or the schema "
       "diff in the step summary: lint, diff or diff,lint", cxxopts::value<std::string>(), "KINDS")
      ("pr-comment", "with --report and GITHUB_TOKEN: keep the report in one PR comment (updated "
       "in place, deleted when there is nothing to say)",
       cxxopts::value<std::string>()->implicit_value("true"), "BOOL")
      ("fail-on", "exit 9 when the report has a lint finding at this level: error, warning or "
       "never (default never)", cxxopts::value<std::string>(), "LEVEL")
      ("pool", "at the end of the run, keep N ready clones of the latest snapshot (the warm "
       "pool; default 0)", cxxopts::value<std::string>(), "N");
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

  // 1. Settings, once.
  util::TempDir scratch("previewdb-ci-");
  config::Config cfg;
  Settings s = resolve_settings(*parsed, command, cfg, scratch);
  register_secrets(s, cfg);
  util::log::info("provider " + ci::to_string(s.provider) +
                  (s.event.pr_number ? ", pull request #" + std::to_string(*s.event.pr_number)
                                     : ", not a pull request") +
                  (s.event.action.empty() ? "" : " (" + util::printable(s.event.action) + ")") +
                  (s.repository.empty() ? "" : ", repository " + util::printable(s.repository)) +
                  ", base branch " + util::printable(util::quoted(s.base_ref)));

  // 2. Decide: closing and forcing need no detection; labels are asked for only when they matter.
  ci::DecisionInput in;
  in.pr_number = s.event.pr_number;
  in.closed = s.event.closed();
  in.forced = s.forced;
  in.label = s.label;
  in.refresh_source = s.refresh_source && on_base_branch(s);
  in.base_branch = s.base_ref;
  if (in.pr_number && !in.closed && !in.forced) {
    in.changed_migrations = changed_migrations(s);
    if (in.changed_migrations.empty()) in.labels = labels_of(s);
  }
  auto decision = ci::decide(in);
  util::log::info(decision.explanation);

  // 3. Act. A failure still reports (outputs, summary, JSON) before it ends the run.
  ci::Facts facts;
  facts.reason = decision.reason;
  facts.dry_run = s.dry_run;
  facts.message = decision.explanation;
  std::string full_url;  // with the password: for the environment of later steps only
  std::optional<core::DatabaseHold> hold;  // the preview, marked in use while CMD runs
  try {
    if (s.dry_run) {
      act_plan(s, decision, facts);
      if (facts.message != decision.explanation) util::log::info(facts.message);
    } else if (decision.action == ci::Action::preview) {
      // A server that goes away mid-run is named as such (exit 3), never "fix the file".
      full_url = db::naming_lost_connection(
          "preparing the preview " + preview_name(s),
          "re-run the job once the server is back: the preview is re-checked and completed",
          [&] { return act_preview(s, cfg, facts, hold); });
    } else if (decision.action == ci::Action::refresh_source) {
      db::naming_lost_connection("refreshing " + util::quoted(s.source) + " and its snapshot",
                                 "re-run the job once the server is back",
                                 [&] { act_refresh(s, cfg, facts); });
    } else if (decision.action == ci::Action::drop) {
      db::naming_lost_connection("dropping " + preview_name(s),
                                 "re-run the job once the server is back",
                                 [&] { act_drop(s, cfg, facts); });
    }
    if (decision.action == ci::Action::none) {
      // No preview: the shared database stays what the build uses; nothing is migrated.
      facts.database_name = shared_database(s);
      if (!facts.database_name.empty() && !s.target.conninfo.empty()) {
        facts.database_url = db::url_for_database(s.target.conninfo, facts.database_name, false);
      }
    }
  } catch (const Error& e) {
    facts.error = util::scrub(e.what());
    facts.exit_code = static_cast<int>(e.code());
    facts.preview = facts.preview || decision.action == ci::Action::preview;
    facts.message = "failed: " + *facts.error;
    report_failure(s, facts);
    throw Error(e.code(), e.what(), ci_hints(e));
  } catch (const std::exception& e) {
    facts.error = util::scrub(e.what());
    facts.exit_code = static_cast<int>(ExitCode::failure);
    facts.message = "failed: " + *facts.error;
    report_failure(s, facts);
    throw;
  }

  // 3b. The report, after the preview was migrated: it never fails the run (--fail-on decides).
  std::vector<ci::ReportFinding> findings;
  if (s.report.any() && !s.dry_run && s.event.pr_number && !in.closed) {
    if (decision.action == ci::Action::preview) {
      try {
        // A forced run did not detect changes; a label run found none (then nothing is linted).
        auto changed = in.forced ? changed_migrations(s) : in.changed_migrations;
        findings = act_report(s, cfg, changed, facts);
      } catch (const Error& e) {
        std::string text = e.what();
        for (const auto& h : e.hints()) text += "; hint: " + h;
        util::log::warn("could not compose the report: " + text);
        facts.report = "#### previewdb report: could not be composed\n\n" +
                       ci::markdown_cell(util::scrub(e.what())) + "\n";
      }
    } else if (decision.action == ci::Action::none) {
      remove_stale_comment(s, facts);
    }
  }
  bool review = ci::report_fails(findings, s.fail_on);

  // 4. Outputs.
  write_outputs(s, facts, full_url);
  if (review) {
    util::log::warn("the report has findings at the --fail-on level: exit " +
                    std::to_string(static_cast<int>(ExitCode::pending)));
  }

  // 5. --hold: the build steps that follow run outside previewdb; they end the hold.
  if (s.hold && hold) {
    keep_hold_until_stdin_closes(*hold);
    hold.reset();
  }

  // 6. The build command, then 7. the warm pool (after the outputs and the build: neither waits
  // for it; in this process, never a detached one a CI job would kill).
  int exit_code = review ? static_cast<int>(ExitCode::pending) : 0;
  bool touched = decision.action != ci::Action::none;
  auto top_up = [&] {
    if (s.dry_run || !touched || s.pool_size == 0) return;
    hold.reset();
    try {
      auto maintenance = connect_maintenance(started_target(s, cfg), s.lock_timeout);
      top_up_pool_at_end(maintenance, s.source, s.pool_size, core::parse_clone_strategy(s.strategy),
                         "previewdb ci (" + ci::to_string(s.provider) + ")");
    } catch (const std::exception& e) {
      util::log::warn("could not top up the warm pool of " + s.source + ": " + e.what());
    }
  };
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
    // The build's own failure comes first; a clean build still reports the review.
    if (r.signal) {
      exit_code = 128 + r.signal;
    } else if (r.exit_code != 0) {
      exit_code = r.exit_code;
    }
  }
  top_up();
  return exit_code;
}

}  // namespace previewdb::commands
