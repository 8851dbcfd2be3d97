// One entry point per subcommand. Each receives the arguments after the command name (args[0] is
// "previewdb <command>" for help text) and returns the exit status; failures throw Error.
#pragma once

#include <string>
#include <vector>

namespace previewdb::commands {

using Args = std::vector<std::string>;

int run_snapshot(const Args& args);  // snapshot [SOURCE] | snapshot list | snapshot prune
int run_spawn(const Args& args);
int run_list(const Args& args);
int run_cleanup(const Args& args);
int run_local(const Args& args);  // local start|stop|status|url
int run_migrate(const Args& args);
int run_status(const Args& args);
int run_history(const Args& args);
int run_ci(const Args& args);
int run_backup(const Args& args);  // backup [DB] | backup list | backup verify
int run_lint(const Args& args);    // lint [FILES...] | lint --dir DIR
// restore [BACKUP] [--into DB] | rollback [DB] (commands/restore.cpp)
int run_restore(const Args& args);
int run_rollback(const Args& args);
int run_diff(const Args& args);   // diff FROM TO
int run_drift(const Args& args);  // drift [DB]
// migrate down (dispatched from run_migrate) and resolve: src/commands/migrate_down.cpp.
int run_migrate_down(const Args& args);
int run_resolve(const Args& args);
int run_reset(const Args& args);         // reset [DB]: re-create it (the local server: dev itself)
int run_backup(const Args& args);        // backup [DB] | backup list | backup verify
int run_lint(const Args& args);          // lint [FILES...] | lint --dir DIR
int run_dry_run(const Args& args);       // dry-run [DB]
int run_safe_migrate(const Args& args);  // safe-migrate [DB]
// webhook serve | webhook verify (commands/webhook.cpp)
int run_webhook(const Args& args);
// hold NAME: mark a database in use until stdin closes (commands/hold.cpp)
int run_hold(const Args& args);

}  // namespace previewdb::commands
