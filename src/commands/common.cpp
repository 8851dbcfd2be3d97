#include "commands/common.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <typeinfo>

#include "ci/event.hpp"
#include "core/naming.hpp"
#include "core/registry.hpp"
#include "db/dialect.hpp"
#include "git/tree.hpp"
#include "git/user.hpp"
#include "local/cluster.hpp"
#include "storage/encryption.hpp"
#include "util/dotenv.hpp"
#include "util/duration.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::commands {

void add_common_options(cxxopts::Options& options) {
  // clang-format off
  options.add_options("Connection")
      ("database-url", "server to manage (else DATABASE_URL, else PG* variables, else the "
       "local server)", cxxopts::value<std::string>(), "URL")
      ("home", "local server and state directory (default ./.previewdb; env PREVIEWDB_HOME)",
       cxxopts::value<std::string>(), "DIR");
  options.add_options("General")
      ("config", "configuration file (default ./previewdb.json)", cxxopts::value<std::string>(),
       "FILE")
      ("protect", "also protect these databases (repeatable, comma list)",
       cxxopts::value<std::vector<std::string>>(), "NAME")
      ("user", "your name for dev_<user>_<feature> (else PREVIEWDB_USER, git user.name, $USER)",
       cxxopts::value<std::string>(), "NAME")
      ("v,verbose", "more detail on stderr")
      ("q,quiet", "only warnings and errors on stderr")
      ("h,help", "show this help");
  // clang-format on
}

namespace {

// The long option names a command takes, for "did you mean".
std::vector<std::string> long_option_names(const cxxopts::Options& options) {
  std::vector<std::string> names;
  for (const auto& group : options.groups()) {
    for (const auto& o : options.group_help(group).options) {
      for (const auto& l : o.l) {
        if (!o.desc.empty()) names.push_back(l);
      }
    }
  }
  return names;
}

// Unknown --flags get a "did you mean" before cxxopts sees them, as unknown commands do.
void check_long_flags(const cxxopts::Options& options, const Args& args) {
  auto names = long_option_names(options);
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.size() < 3 || a.rfind("--", 0) != 0) continue;
    std::string name =
        a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
    bool known = std::find(names.begin(), names.end(), name) != names.end();
    for (const auto& group : options.groups()) {
      for (const auto& o : options.group_help(group).options) {
        for (const auto& l : o.l) known = known || l == name;
      }
    }
    if (known) continue;
    Error e(ExitCode::usage,
            "unknown option " + util::quoted("--" + name) + " for '" + args[0] + "'");
    if (auto guess = util::did_you_mean(name, names)) e.with_hint("did you mean --" + *guess + "?");
    e.with_hint("run '" + args[0] + " --help' for its options");
    throw e;
  }
}

}  // namespace

std::optional<std::string> one_positional_database(const cxxopts::ParseResult& parsed,
                                                   const std::string& key,
                                                   const std::string& command,
                                                   const std::string& noun) {
  if (!parsed.count(key)) return std::nullopt;
  auto v = parsed[key].as<std::vector<std::string>>();
  if (v.size() > 1) {
    throw usage_error(command + " takes one " + noun + ", got " + std::to_string(v.size()),
                      "run it once for each " + noun);
  }
  return v.at(0);
}

std::optional<cxxopts::ParseResult> parse(cxxopts::Options& options, const Args& args) {
  check_long_flags(options, args);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  auto parsed = options.parse(static_cast<int>(argv.size()), argv.data());
  if (parsed.count("help")) {
    std::cout << options.help() << std::flush;
    return std::nullopt;
  }
  // Words a command does not take are refused, never ignored (`migrate dwon` must not migrate up).
  // Empty words are what the GitHub action passes for inputs left unset.
  std::vector<std::string> extra;
  for (const auto& u : parsed.unmatched()) {
    if (!u.empty()) extra.push_back(u);
  }
  if (!extra.empty()) {
    std::string more;
    for (size_t i = 1; i < extra.size(); ++i)
      more += (more.empty() ? "" : ", ") + util::quoted(extra[i]);
    Error e(ExitCode::usage, "unexpected argument " + util::quoted(extra[0]) + " for '" + args[0] +
                                 "'" + (more.empty() ? "" : " (then " + more + ")"));
    if (args[0] == "previewdb ci") {
      e.with_hint("put the build command after '--': previewdb ci [options] -- " + extra[0] +
                  " ...");
    }
    e.with_hint("run '" + args[0] + " --help' for the arguments it takes");
    throw e;
  }
  // PREVIEWDB_CHECK_ARGS=1: the command line parsed, so stop before any configuration, database
  // or network access. Lets tests check the command lines in workflows and action.yml.
  if (const char* check = std::getenv("PREVIEWDB_CHECK_ARGS"); check && std::string(check) == "1") {
    return std::nullopt;
  }
  if (parsed.count("verbose")) util::log::set_level(util::log::Level::verbose);
  if (parsed.count("quiet")) util::log::set_level(util::log::Level::quiet);
  return parsed;
}

namespace {

void check_found_config_file(const std::filesystem::path& file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(file, ec))) return;
  fs::path dir = fs::absolute(file, ec).parent_path();
  fs::path root = git::work_tree_root(dir).value_or(dir);
  if (util::resolves_inside(file, root)) return;
  fs::path target = fs::read_symlink(file, ec);
  throw usage_error(util::quoted(file.string()) + " is a symbolic link to " +
                        util::quoted(target.string()) + ", outside " + util::quoted(root.string()) +
                        "; a found previewdb.json must stay inside it",
                    "replace the link with the file, or name a file elsewhere on purpose with "
                    "--config PATH or PREVIEWDB_CONFIG");
}

}  // namespace

config::Config load_config(const cxxopts::ParseResult& parsed,
                           const std::optional<std::filesystem::path>& default_file,
                           bool default_wins) {
  // Tests of CockroachDB's lease-row locks on PostgreSQL (docs/COCKROACHDB.md#locks): not a
  // setting, so not in the configuration table.
  if (const char* f = std::getenv("PREVIEWDB_FORCE_LEASE_LOCKS"); f && std::string(f) == "1") {
    db::force_lease_locks(true);
  }
  std::map<std::string, std::string> flags;
  for (const auto& key : config::keys()) {
    if (!*key.flag) continue;
    std::string flag = key.flag;
    try {
      if (!parsed.count(flag)) continue;
      if (flag == "protect" || flag == "exclude-data") {
        flags[flag] = util::join(parsed[flag].as<std::vector<std::string>>(), ",");
      } else {
        flags[flag] = parsed[flag].as<std::string>();
      }
    } catch (const cxxopts::exceptions::exception&) {
      // The command does not define this flag (or with another type): not a config flag there.
    } catch (const std::bad_cast&) {
      // Defined with another type (cleanup's --pool is a switch, spawn's --pool a size).
    }
  }
  std::optional<std::filesystem::path> file;
  auto env = config::process_env();
  if (default_wins && default_file) {
    file = default_file;
  } else if (parsed.count("config")) {
    file = parsed["config"].as<std::string>();
  } else if (auto it = env.find("PREVIEWDB_CONFIG"); it == env.end() || it->second.empty()) {
    // Found, not named: ./previewdb.json (or the repository root's, from ci) is the repository's
    // file, so a symlink may not lead out of the repository. A file named with --config or
    // PREVIEWDB_CONFIG is the caller's choice and may be anywhere.
    file = default_file;
    std::error_code ec;
    if (!file && std::filesystem::symlink_status("previewdb.json", ec).type() !=
                     std::filesystem::file_type::not_found) {
      file = "previewdb.json";
    }
    if (file) check_found_config_file(*file);
  }
  auto cfg = config::Config::load(flags, file, env);
  protect_secrets(cfg);
  return cfg;
}

void protect_secrets(const config::Config& cfg) {
  std::vector<std::string> secrets;
  for (const char* key : {"database_url", "direct_url"}) {
    auto v = cfg.get(key);
    if (!v) continue;
    try {
      for (auto& s : db::register_conninfo_secrets(v->value)) secrets.push_back(std::move(s));
    } catch (const Error& e) {
      // Name where the URL came from; the message itself never quotes it.
      throw Error(e.code(), v->origin + ": " + e.what(), e.hints());
    }
  }
  if (secrets.empty()) {
    for (auto& s : db::register_conninfo_secrets("")) secrets.push_back(std::move(s));
  }
  mask_in_ci(secrets);
}

storage::StoreOptions store_options(const config::Config& cfg,
                                    const std::optional<std::string>& key_file) {
  auto env = config::process_env();
  auto first = [&](std::initializer_list<const char*> names) -> std::string {
    for (const char* n : names) {
      if (auto it = env.find(n); it != env.end() && !it->second.empty()) return it->second;
    }
    return "";
  };
  storage::StoreOptions o;
  o.s3_endpoint = cfg.get_string("s3_endpoint");
  o.s3_region = cfg.get_string("s3_region");
  o.s3_part_size = static_cast<std::uint64_t>(cfg.get_int("s3_part_size_mb", 5, 5120)) << 20;
  o.s3_sweep_after = cfg.get_duration("s3_sweep_after");
  o.s3_credentials.access_key_id = first({"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_COCKROACH_BACKUP"});
  o.s3_credentials.secret_access_key =
      first({"AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY_COCKROACH_BACKUP"});
  o.s3_credentials.session_token = first({"AWS_SESSION_TOKEN"});
  o.manifest_key = first({"PREVIEWDB_MANIFEST_KEY"});
  std::vector<std::string> secrets;
  std::string key_text = first({"PREVIEWDB_ENCRYPTION_KEY"});
  std::string key_origin = "PREVIEWDB_ENCRYPTION_KEY";
  if (key_file) {
    key_text = util::read_file(*key_file, 4096);
    key_origin = "--encryption-key-file " + util::quoted(*key_file);
  }
  if (!util::trim(key_text).empty()) {
    util::register_secret(util::trim(key_text));
    secrets.push_back(util::trim(key_text));
    o.encryption_key = storage::parse_encryption_key(key_text, key_origin);
  }
  for (const auto* s : {&o.s3_credentials.access_key_id, &o.s3_credentials.secret_access_key,
                        &o.s3_credentials.session_token, &o.manifest_key}) {
    if (s->empty()) continue;
    util::register_secret(*s);
    secrets.push_back(*s);
  }
  mask_in_ci(secrets);
  return o;
}

void mask_in_ci(const std::vector<std::string>& secrets) {
  const char* actions = std::getenv("GITHUB_ACTIONS");
  if (!actions || std::string(actions) != "true") return;
  // Straight to stderr, not through util::log: a scrubbed mask command would mask "***".
  for (const auto& s : secrets) std::fputs(util::workflow::add_mask_command(s).c_str(), stderr);
  std::fflush(stderr);
}

// A password on the command line is visible to every user of the machine (ps, /proc): refuse it
// and say where it belongs.
void refuse_password_in_flag(const std::optional<config::Value>& v) {
  if (!v || v->origin.rfind("--", 0) != 0) return;
  if (db::parse_conninfo(v->value).get("password")) {
    throw usage_error(v->origin +
                          " must not contain a password: other users can read process "
                          "arguments (ps)",
                      "put the URL in DATABASE_URL instead, or the password in PGPASSWORD or "
                      "~/.pgpass, and pass " +
                          v->origin + " without it");
  }
}

std::filesystem::path local_home(const config::Config& cfg) {
  if (auto home = cfg.get("home"); home && !home->value.empty()) {
    return local::default_home(home->value.c_str());
  }
  if (const char* env_home = std::getenv("PREVIEWDB_HOME"); env_home && *env_home) {
    return local::default_home(env_home);
  }
  // From a subdirectory, the repository's one home: not a second server per directory.
  if (auto root = git::work_tree_root(".")) return *root / ".previewdb";
  return local::default_home(nullptr);
}

std::string repository_of_checkout(const std::string& github_repository) {
  if (!github_repository.empty()) return github_repository;
  if (auto root = git::work_tree_root(".")) {
    if (auto url = git::remote_url(*root)) {
      if (auto r = ci::repository_from_url(*url)) return *r;
      return util::redact_url(*url);
    }
  }
  return {};
}

Target resolve_target(const config::Config& cfg, bool prefer_direct, bool start_local) {
  auto url = cfg.get("database_url");
  refuse_password_in_flag(url);
  refuse_password_in_flag(cfg.get("direct_url"));
  if (url && url->origin.rfind("--", 0) == 0) return {url->value, url->origin, false};
  if (prefer_direct) {
    if (auto direct = cfg.get("direct_url")) return {direct->value, direct->origin, false};
  }
  if (url) return {url->value, url->origin, false};
  for (const char* var : {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE", "PGHOSTADDR"}) {
    if (const char* v = std::getenv(var); v && *v) return {"", "PG* environment", false};
  }
  if (!start_local) return {"", "local server", true};
  local::Cluster cluster({.home = local_home(cfg)});
  cluster.start();
  Target local{cluster.conninfo("postgres"), "local server", true};
  mask_in_ci(db::register_conninfo_secrets(local.conninfo));
  return local;
}

db::Connection connect_maintenance(const Target& target, std::chrono::milliseconds lock_timeout) {
  auto open = [&]() {
    try {
      return db::Connection::open(
          {.conninfo = target.conninfo, .dbname = "postgres", .busy_retry = lock_timeout});
    } catch (const Error& e) {
      // Managed services sometimes forbid the postgres database (CONNECT revoked, or it does
      // not exist): fall back to the target's own database.
      std::string why = e.what();
      bool refused = e.code() == ExitCode::not_found ||
                     why.find("permission denied for database") != std::string::npos ||
                     why.find("not currently accepting connections") != std::string::npos;
      if (!refused) throw;
      util::log::info("cannot use the \"postgres\" database for maintenance (" +
                      std::string(e.code() == ExitCode::not_found ? "it does not exist"
                                                                  : "connections refused") +
                      "); using the URL's own database");
      try {
        return db::Connection::open({.conninfo = target.conninfo, .busy_retry = lock_timeout});
      } catch (Error& second) {
        second.with_hint(
            "previewdb needs a maintenance database to run CREATE/DROP DATABASE from: "
            "\"postgres\", else the database of the URL; grant CONNECT on one of them");
        throw;
      }
    }
  };
  // The registry's own database is the maintenance database: CREATE/DROP DATABASE run from any
  // database, and one connection then serves both (one slot per run, on a server near
  // max_connections). The first run on a server creates it from "postgres" (or the fallback).
  std::optional<db::Connection> conn;
  try {
    conn.emplace(
        db::Connection::open({.conninfo = target.conninfo, .dbname = core::k_registry_database}));
  } catch (const Error&) {
    // Missing (first run), or not ours: the bootstrap below creates it or says what is wrong.
  }
  if (!conn) {
    {
      auto boot = open();
      core::Registry::open(boot);
    }
    conn.emplace(
        db::Connection::open({.conninfo = target.conninfo, .dbname = core::k_registry_database}));
  }
  const auto& dialect = db::dialect_of(*conn);
  util::log::debug(std::string("server dialect: ") + dialect.name);
  conn->set_limits({.lock_timeout = lock_timeout});
  return std::move(*conn);
}

std::chrono::milliseconds lock_timeout_setting(const config::Config& cfg) {
  return cfg.get_duration("lock_timeout");
}

std::string resolve_user(const config::Config& cfg) {
  if (auto u = cfg.get("user")) return core::normalise_user(u->value);
  if (auto name = git::config_user_name()) return core::normalise_user(*name);
  if (const char* u = std::getenv("USER"); u && *u) return core::normalise_user(u);
  throw usage_error("cannot tell who you are for the database name",
                    "pass --user NAME, set PREVIEWDB_USER, or set git's user.name");
}

std::string resolve_creator(const config::Config& cfg) {
  try {
    return resolve_user(cfg);
  } catch (const Error&) {
    // A container step often has neither $USER nor git's user.name: the account name, else a
    // fixed word, is enough for metadata that only records who made it.
  }
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name && *pw->pw_name) {
    try {
      return core::normalise_user(pw->pw_name);
    } catch (const Error&) {
    }
  }
  return "unknown";
}

core::Protection make_protection(const config::Config& cfg) {
  return core::Protection(cfg.get_list("protect"));
}

void confirm(const std::string& what, bool yes) {
  if (yes) return;
  if (!interactive()) {
    throw Error(ExitCode::refused, "refusing to " + what + " without confirmation: no terminal",
                {"pass --yes to confirm, or --dry-run to see what would happen"});
  }
  std::cerr << "previewdb: " << what << "? [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  answer = util::to_lower(util::trim(answer));
  if (answer != "y" && answer != "yes") {
    throw Error(ExitCode::refused, "not confirmed; nothing was changed");
  }
}

namespace {
const std::pair<const char*, const char*> k_env_url_keys[] = {
    {"DATABASE_URL", k_previous_database_url_key}, {"DIRECT_URL", k_previous_direct_url_key}};
}

std::string dotenv_point_at(const std::string& text, const std::string& url) {
  std::string out = text;
  for (const auto& [key, previous_key] : k_env_url_keys) {
    auto current = util::dotenv_get(out, key);
    if (!current && std::string(key) != "DATABASE_URL") continue;
    // Remember the original once, so that `cleanup --restore-env` returns to it; an empty value
    // records that there was none.
    if (!util::dotenv_get(out, previous_key)) {
      out = util::dotenv_set(out, previous_key, current.value_or(""));
    }
    out = util::dotenv_set(out, key, url);
  }
  return out;
}

std::string dotenv_restore(const std::string& text, std::vector<std::string>& restored) {
  std::string out = text;
  for (const auto& [key, previous_key] : k_env_url_keys) {
    auto previous = util::dotenv_get(out, previous_key);
    if (!previous) continue;
    out = util::dotenv_set(out, key, previous->empty() ? std::nullopt : std::optional(*previous));
    out = util::dotenv_set(out, previous_key, std::nullopt);
    restored.emplace_back(key);
  }
  return out;
}

bool interactive() {
  return ::isatty(STDIN_FILENO) && ::isatty(STDERR_FILENO);
}

}  // namespace previewdb::commands
