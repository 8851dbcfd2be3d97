#include "commands/common.hpp"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "core/naming.hpp"
#include "db/dialect.hpp"
#include "git/user.hpp"
#include "local/cluster.hpp"
#include "util/duration.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

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

std::optional<cxxopts::ParseResult> parse(cxxopts::Options& options, const Args& args) {
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  auto parsed = options.parse(static_cast<int>(argv.size()), argv.data());
  if (parsed.count("help")) {
    std::cout << options.help() << std::flush;
    return std::nullopt;
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

config::Config load_config(const cxxopts::ParseResult& parsed) {
  std::map<std::string, std::string> flags;
  for (const auto& key : config::keys()) {
    if (!*key.flag) continue;
    std::string flag = key.flag;
    try {
      if (!parsed.count(flag)) continue;
      if (flag == "protect") {
        flags[flag] = util::join(parsed[flag].as<std::vector<std::string>>(), ",");
      } else {
        flags[flag] = parsed[flag].as<std::string>();
      }
    } catch (const cxxopts::exceptions::exception&) {
      // The command does not define this flag (or with another type): not a config flag there.
    }
  }
  std::optional<std::filesystem::path> file;
  if (parsed.count("config")) file = parsed["config"].as<std::string>();
  return config::Config::load(flags, file, config::process_env());
}

namespace {

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

}  // namespace

Target resolve_target(const config::Config& cfg, bool prefer_direct) {
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
  const char* env_home = std::getenv("PREVIEWDB_HOME");
  auto home_value = cfg.get("home");
  local::Cluster cluster(
      {.home = local::default_home(home_value ? home_value->value.c_str() : env_home)});
  cluster.start();
  return {cluster.conninfo("postgres"), "local server", true};
}

db::Connection connect_maintenance(const Target& target, std::chrono::milliseconds lock_timeout) {
  auto open = [&]() {
    try {
      return db::Connection::open({.conninfo = target.conninfo, .dbname = "postgres"});
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
        return db::Connection::open({.conninfo = target.conninfo});
      } catch (Error& second) {
        second.with_hint(
            "previewdb needs a maintenance database to run CREATE/DROP DATABASE from: "
            "\"postgres\", else the database of the URL; grant CONNECT on one of them");
        throw;
      }
    }
  };
  auto conn = open();
  db::dialect_of(conn);  // refuses servers we cannot manage yet (CockroachDB), before any change
  conn.set_limits({.lock_timeout = lock_timeout});
  return conn;
}

std::chrono::milliseconds lock_timeout_setting(const config::Config& cfg) {
  auto v = cfg.get("lock_timeout");
  if (!v || v->value.empty()) return std::chrono::minutes(10);
  return util::parse_duration(v->value, util::BareUnit::seconds, v->origin);
}

std::string resolve_user(const config::Config& cfg) {
  if (auto u = cfg.get("user")) return core::normalise_user(u->value);
  if (auto name = git::config_user_name()) return core::normalise_user(*name);
  if (const char* u = std::getenv("USER"); u && *u) return core::normalise_user(u);
  throw usage_error("cannot tell who you are for the database name",
                    "pass --user NAME, set PREVIEWDB_USER, or set git's user.name");
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

bool interactive() {
  return ::isatty(STDIN_FILENO) && ::isatty(STDERR_FILENO);
}

}  // namespace previewdb::commands
