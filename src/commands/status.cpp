// previewdb status: applied, pending, changed, missing and failed migrations.
#include <iostream>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/migrate_options.hpp"
#include "migrate/migrate.hpp"
#include "util/error.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::commands {

int run_status(const Args& args) {
  cxxopts::Options options(args[0],
                           "Compare the migrations folder with the database's history tables");
  add_common_options(options);
  add_folder_options(options);
  options.add_options("Status")("json", "print the status as JSON on stdout")(
      "exit-code", "exit 9 when anything is pending, changed or failed");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  migrate::StatusOptions o;
  o.target = migration_target(cfg, *parsed);
  o.dir = cfg.get_path("migrations_dir").string();
  o.format = cfg.get_string("format");
  o.placeholders = placeholders(cfg, *parsed);
  auto report = migrate::status(o);
  if (parsed->count("json"))
    std::cout << migrate::to_json(report).dump(2) << "\n";
  else
    std::cout << util::workflow::neutralize_commands(migrate::format_status(report));
  std::cout << std::flush;
  if (parsed->count("exit-code") && report.needs_attention()) {
    return static_cast<int>(ExitCode::pending);
  }
  return 0;
}

}  // namespace previewdb::commands
