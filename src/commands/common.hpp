// What every command shares: the common flags, parsing with --help, configuration loading, and
// resolving which server to talk to. Commands are wiring; this is the wiring they share.
#pragma once

#include <cxxopts.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "commands/commands.hpp"
#include "config/config.hpp"
#include "core/protection.hpp"
#include "db/connection.hpp"
#include "storage/store.hpp"

namespace previewdb::commands {

// --database-url, --config, --home, --protect, --user, -v/--verbose, -q/--quiet, -h/--help.
void add_common_options(cxxopts::Options& options);

// Parses args (args[0] is the program name). On --help prints the help to stdout and returns
// nullopt: the command then returns 0. Unknown flags throw (exit 2 with a hint). With
// PREVIEWDB_CHECK_ARGS=1 in the environment, also returns nullopt once parsing succeeded (a
// parse-only check of a command line: nothing is read, connected or changed).
std::optional<cxxopts::ParseResult> parse(cxxopts::Options& options, const Args& args);

// The one optional positional argument (option `key`, a vector of strings) of `command`, a
// database unless `noun` says otherwise: nullopt when none was given; more than one is a usage
// error naming the command.
std::optional<std::string> one_positional_database(const cxxopts::ParseResult& parsed,
                                                   const std::string& key,
                                                   const std::string& command,
                                                   const std::string& noun = "database");

// Configuration from the flags the user gave (any option whose long name is a config key's flag).
// Also protect_secrets(): an ambiguous DATABASE_URL is refused before anything can print it.
// default_file replaces ./previewdb.json when neither --config nor PREVIEWDB_CONFIG names a file
// (ci: the repository root's file); with default_wins it replaces those too (ci: the base
// branch's file under pull_request_target).
config::Config load_config(const cxxopts::ParseResult& parsed,
                           const std::optional<std::filesystem::path>& default_file = std::nullopt,
                           bool default_wins = false);

// Checks database_url and direct_url (db::register_conninfo_secrets, the error naming the
// setting's origin), registers their passwords and PGPASSWORD for scrubbing and masks them.
void protect_secrets(const config::Config& cfg);

// What an s3:// store needs: s3_* settings, and from the environment only the credentials
// (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else the _COCKROACH_BACKUP names the original
// scripts used; AWS_SESSION_TOKEN) and PREVIEWDB_MANIFEST_KEY, all registered as secrets.
// key_file (--encryption-key-file) wins over PREVIEWDB_ENCRYPTION_KEY.
storage::StoreOptions store_options(const config::Config& cfg,
                                    const std::optional<std::string>& key_file = std::nullopt);

// Under GitHub Actions (GITHUB_ACTIONS=true), prints ::add-mask:: for each secret to stderr, so
// that the runner hides them in every later log line and output.
void mask_in_ci(const std::vector<std::string>& secrets);

// The server to manage, as a conninfo, and how it was chosen.
struct Target {
  std::string conninfo;  // URL/key=value; empty means libpq's PG* environment
  std::string origin;    // "--database-url", "DATABASE_URL", "PG* environment", "local server"
  bool embedded = false;
};

// --database-url > DIRECT_URL (when prefer_direct, for migrations) > DATABASE_URL > PG* variables
// > the embedded local server (started on first use; with start_local false, only named: a plan
// describes the same target without starting anything).
Target resolve_target(const config::Config& cfg, bool prefer_direct = false,
                      bool start_local = true);

// The local server's home: --home / PREVIEWDB_HOME, else .previewdb at the root of the git
// repository the command runs in (from a subdirectory too), else ./.previewdb.
std::filesystem::path local_home(const config::Config& cfg);

// The repository previews are made for (recorded in their metadata, {repo}/{owner} in a name
// template): `github_repository` (GITHUB_REPOSITORY) when set, else the origin remote of the git
// repository the command runs in (owner/name for a forge URL, else the URL without
// credentials); "" when neither says. ci and `spawn --pr` use it alike.
std::string repository_of_checkout(const std::string& github_repository);

// Throws Error(usage) when a URL setting given as a flag (origin "--...") carries a password:
// process arguments are visible to every user (ps).
void refuse_password_in_flag(const std::optional<config::Value>& v);

// Connects to the server's maintenance database for CREATE/DROP DATABASE: "postgres", else
// (when it does not exist, refuses CONNECT or connections) the target's own database; never
// template1, whose sessions would block every plain CREATE DATABASE on the server. The session
// gets lock_timeout (the run's lock timeout), no statement_timeout, client_connection_check_
// interval, and reports every 10 s while a statement waits (db::Connection::set_limits).
db::Connection connect_maintenance(
    const Target& target, std::chrono::milliseconds lock_timeout = std::chrono::minutes(10));

// The lock timeout (--lock-timeout, PREVIEWDB_LOCK_TIMEOUT, lock_timeout; default 10m).
std::chrono::milliseconds lock_timeout_setting(const config::Config& cfg);

// The user for dev_<user>_<feature> and created_by: --user, else PREVIEWDB_USER, else git's
// user.name, else $USER; normalised to the allowed characters.
std::string resolve_user(const config::Config& cfg);

// Who made something, for metadata only (snapshots): resolve_user(), else the OS account name
// (getpwuid), else "unknown". Never fails.
std::string resolve_creator(const config::Config& cfg);

// Built-in protected names plus --protect / PREVIEWDB_PROTECT / previewdb.json "protect".
core::Protection make_protection(const config::Config& cfg);

// Asks "<question> [y/N]" on the terminal. Without a terminal, refuses (Error(refused)) unless
// `yes`; `what` names the action for the message ("drop 3 databases").
void confirm(const std::string& what, bool yes);

// The dotenv key where `spawn --update-env` keeps DATABASE_URL as it was before, and from which
// `cleanup --restore-env` puts it back.
inline constexpr const char* k_previous_database_url_key = "PREVIEWDB_PREVIOUS_DATABASE_URL";
// Likewise for DIRECT_URL (Prisma's directUrl), updated only when the file already has one.
inline constexpr const char* k_previous_direct_url_key = "PREVIEWDB_PREVIOUS_DIRECT_URL";

// A dotenv text pointed at url: DATABASE_URL set (and DIRECT_URL when present), each previous
// value remembered once under its PREVIEWDB_PREVIOUS_* key.
std::string dotenv_point_at(const std::string& text, const std::string& url);
// The text with DATABASE_URL and DIRECT_URL put back from their PREVIEWDB_PREVIOUS_* keys (an
// empty remembered value removes the key); `restored` names the keys put back.
std::string dotenv_restore(const std::string& text, std::vector<std::string>& restored);

// True when stdin and stderr are terminals (so we may ask for confirmation).
bool interactive();

}  // namespace previewdb::commands
