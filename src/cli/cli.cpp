#include "cli/cli.hpp"

#include <algorithm>
#include <cxxopts.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "commands/commands.hpp"
#include "commands/doctor.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

namespace previewdb::cli {

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const commands::Args&);
};

// The command table: `previewdb help` and "did you mean" are generated from it.
const Command k_commands[] = {
    {"ci", "CI entry point: detect schema changes, create/migrate/drop pr_<N>, emit outputs",
     commands::run_ci},
    {"snapshot", "snapshot a database (default dev); 'snapshot list', 'snapshot prune'",
     commands::run_snapshot},
    {"spawn", "create dev_<user>_<feature> (or pr_<N>) from the latest snapshot",
     commands::run_spawn},
    {"list", "list databases grouped by kind, with their metadata", commands::run_list},
    {"cleanup", "drop managed preview/personal databases by name, PR, pattern or age",
     commands::run_cleanup},
    {"migrate", "apply pending migrations under a lock; 'migrate down' undoes the newest",
     commands::run_migrate},
    {"resolve", "mark a migration applied or rolled back without running it",
     commands::run_resolve},
    {"status", "applied, pending, changed, missing and failed migrations", commands::run_status},
    {"history", "applied migrations with time and duration", commands::run_history},
    {"backup",
     "verified, compressed backup of a database; 'backup list', 'backup verify', 'backup prune'",
     commands::run_backup},
    {"restore", "restore a backup (or .sql/.sql.gz) into a new database swapped in for DB",
     commands::run_restore},
    {"rollback", "restore the newest backup taken before DB's last migration run",
     commands::run_rollback},
    {"lint", "find locking, rewriting and breaking statements in migrations", commands::run_lint},
    {"diff", "compare two schemas (databases or migrations folders) object by object",
     commands::run_diff},
    {"drift", "compare a database with the migrations it has applied", commands::run_drift},
    {"reset", "drop and re-create a preview or personal database (local server: dev itself)",
     commands::run_reset},
    {"dry-run", "apply pending migrations to a throwaway clone; report data loss, locks, rewrites",
     commands::run_dry_run},
    {"safe-migrate", "backup, dry run on a clone, migrate; restore the backup when it fails",
     commands::run_safe_migrate},
    {"local", "manage the embedded local PostgreSQL: start|stop|status|url", commands::run_local},
    {"webhook", "receive PR-close webhooks and drop the preview: 'webhook serve', 'webhook verify'",
     commands::run_webhook},
    {"hold", "mark a database in use until stdin closes, so cleanup skips it (build plugins)",
     commands::run_hold},
    {"doctor", "check step by step that previewdb works on a server (CockroachDB included)",
     commands::run_doctor},
};

void print_help() {
  std::string out = "previewdb " PREVIEWDB_VERSION
                    " - an isolated database for every pull request that changes the schema\n\n"
                    "usage: previewdb <command> [options]\n\ncommands:\n";
  for (const auto& c : k_commands) {
    std::string name = c.name;
    out += "  " + name + std::string(std::max<size_t>(12, name.size() + 1) - name.size(), ' ') +
           c.summary + "\n";
  }
  out +=
      "  help        show this help; 'previewdb <command> --help' for a command's options\n"
      "  version     print the version\n\n"
      "Connection: --database-url, else DATABASE_URL, else the PG* variables; with none of them\n"
      "previewdb runs its own local PostgreSQL under ./.previewdb (or $PREVIEWDB_HOME).\n";
  std::fputs(out.c_str(), stdout);
}

void print_error(const std::string& message, const std::vector<std::string>& hints) {
  util::log::raw_err("previewdb: error: " + message);
  for (const auto& h : hints) util::log::raw_err("hint: " + h);
}

}  // namespace

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    if (args.size() >= 2 && args[0] == "help") {
      // `previewdb help spawn` == `previewdb spawn --help`
      args = {args[1], "--help"};
    } else {
      print_help();
      return args.empty() ? static_cast<int>(ExitCode::usage) : 0;
    }
  }
  if (args[0] == "version" || args[0] == "--version") {
    std::puts("previewdb " PREVIEWDB_VERSION);
    return 0;
  }
  const Command* command = nullptr;
  for (const auto& c : k_commands) {
    if (args[0] == c.name) command = &c;
  }
  if (!command) {
    std::vector<std::string> names;
    for (const auto& c : k_commands) names.emplace_back(c.name);
    std::vector<std::string> hints;
    if (auto guess = util::did_you_mean(args[0], names)) {
      hints.push_back("did you mean 'previewdb " + *guess + "'?");
    }
    hints.push_back("run 'previewdb help' for the list of commands");
    print_error("unknown command " + util::quoted(args[0]), hints);
    return static_cast<int>(ExitCode::usage);
  }
  commands::Args command_args = args;
  command_args[0] = std::string("previewdb ") + command->name;
  try {
    return command->run(command_args);
  } catch (const Error& e) {
    print_error(e.what(), e.hints());
    return static_cast<int>(e.code());
  } catch (const cxxopts::exceptions::exception& e) {
    print_error(e.what(),
                {"run 'previewdb " + std::string(command->name) + " --help' for its options"});
    return static_cast<int>(ExitCode::usage);
  } catch (const std::exception& e) {
    print_error(std::string("internal error: ") + e.what(),
                {"this is a bug in previewdb; please report it with the command you ran"});
    return static_cast<int>(ExitCode::failure);
  }
}

}  // namespace previewdb::cli
