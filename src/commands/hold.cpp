// previewdb hold NAME: mark a database in use (core::hold_database, the shared
// previewdb:use:<NAME> lock a `ci -- CMD` build takes) from a process of its own, for builds whose
// steps run outside previewdb (the Netlify build plugin: onPreBuild to onEnd). Prints "holding
// NAME" once held, then keeps the hold until stdin closes (or the process ends: SIGTERM, SIGINT),
// so a cleanup meanwhile skips NAME instead of dropping it.
#include <unistd.h>

#include <cerrno>
#include <iostream>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/hold.hpp"
#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "core/naming.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace previewdb::commands {

void keep_hold_until_stdin_closes(const core::DatabaseHold& hold) {
  std::cout << "holding " << hold.name() << std::endl;
  char buffer[256];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  util::log::info("released " + hold.name());
}

int run_hold(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Mark a database in use until stdin closes (or the process is ended), so that cleanup skips "
      "it: for build steps that use a preview outside 'previewdb ci -- CMD'. Prints 'holding "
      "NAME' once held.\n"
      "  previewdb hold NAME [options]");
  add_common_options(options);
  // clang-format off
  options.add_options("Hold")
      ("lock-timeout", "wait this long for a drop under way (default 10m)",
       cxxopts::value<std::string>(), "DURATION")
      ("name", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"name"});
  options.positional_help("NAME");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto& p = *parsed;
  auto cfg = load_config(p);
  std::vector<std::string> names;
  if (p.count("name")) names = p["name"].as<std::vector<std::string>>();
  if (names.size() != 1) {
    throw usage_error("hold takes one database name, got " + std::to_string(names.size()),
                      "for example: previewdb hold pr_12 (it holds until stdin closes)");
  }
  const std::string& name = names[0];
  core::validate_name(name);
  auto lock_timeout = lock_timeout_setting(cfg);
  auto target = resolve_target(cfg);

  auto hold = core::hold_database(connect_maintenance(target, lock_timeout), name,
                                  "previewdb hold (pid " + std::to_string(::getpid()) + ")",
                                  std::chrono::duration_cast<std::chrono::seconds>(lock_timeout));
  // Held: no drop can start now. A drop that finished before the hold leaves nothing to hold.
  bool exists = false;
  {
    auto conn = connect_maintenance(target, lock_timeout);
    for (auto& d : core::list_databases(conn)) exists = exists || d.name == name;
  }
  if (!exists) {
    throw Error(ExitCode::not_found, "database " + util::quoted(name) + " does not exist",
                {"'previewdb list' shows the databases; 'previewdb ci' creates the preview"});
  }
  keep_hold_until_stdin_closes(hold);
  return 0;
}

}  // namespace previewdb::commands
