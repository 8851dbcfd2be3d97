// previewdb history: the migrations previewdb applied, newest first, with time and duration.
#include <iostream>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "migrate/migrate.hpp"
#include "util/error.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::commands {

int run_history(const Args& args) {
  cxxopts::Options options(args[0], "Migrations applied by previewdb, newest first");
  add_common_options(options);
  options.add_options("History")("database", "another database on the same server as the target",
                                 cxxopts::value<std::string>(), "NAME")(
      "n,limit", "how many (default 10)", cxxopts::value<int>()->default_value("10"), "N")(
      "json", "print the history as JSON on stdout");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  int limit = (*parsed)["limit"].as<int>();
  if (limit <= 0) throw usage_error("-n must be a positive number");
  Target target = resolve_target(cfg, /*prefer_direct=*/true);
  migrate::HistoryOptions o{{target.conninfo, ""}, limit};
  if (parsed->count("database"))
    o.target.dbname = (*parsed)["database"].as<std::string>();
  else if (target.embedded)
    o.target.dbname = cfg.get_string("source");
  auto entries = migrate::history(o);
  if (parsed->count("json"))
    std::cout << migrate::to_json(entries).dump(2) << "\n";
  else
    std::cout << util::workflow::neutralize_commands(migrate::format_history(entries));
  std::cout << std::flush;
  return 0;
}

}  // namespace previewdb::commands
