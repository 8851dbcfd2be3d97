#include <iostream>

#include "commands/common.hpp"
#include "local/cluster.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace previewdb::commands {

int run_local(const Args& args) {
  cxxopts::Options options(args[0],
                           "Manage previewdb's own local PostgreSQL (the default when no server is "
                           "configured).\n  previewdb local start|stop|status|url");
  add_common_options(options);
  // clang-format off
  options.add_options()
      ("database", "for 'url': the database (default dev)", cxxopts::value<std::string>(), "NAME")
      ("action", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"action"});
  options.positional_help("start|stop|status|url");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  std::vector<std::string> action;
  if (parsed->count("action")) action = parsed->operator[]("action").as<std::vector<std::string>>();
  if (action.size() != 1) {
    throw usage_error("'previewdb local' needs one action: start, stop, status or url",
                      "for example: previewdb local status");
  }
  local::Cluster cluster({.home = local_home(cfg)});
  const std::string& a = action[0];
  // Under GitHub Actions, the password is masked before a URL carrying it is printed.
  auto url_of = [&](const std::string& dbname) {
    std::string url = cluster.conninfo(dbname);
    mask_in_ci(db::register_conninfo_secrets(url));
    return url;
  };
  if (a == "start") {
    cluster.start();
    util::log::info("local PostgreSQL is running");
    std::cout << url_of("dev") << "\n";
  } else if (a == "stop") {
    if (cluster.stop()) {
      util::log::info("local PostgreSQL stopped");
    } else {
      util::log::info("no local PostgreSQL is running in " +
                      util::quoted(cluster.options().home.string()) + ": nothing to stop");
    }
  } else if (a == "status") {
    auto st = cluster.status();
    if (!st.initialized) {
      std::cout << "not created (it is created on first use, or with 'previewdb local start')\n";
      return 0;
    }
    std::cout << "status:   " << (st.running ? "running" : "stopped") << "\n"
              << "version:  " << st.version << "\n"
              << "data:     " << st.data_dir.string() << "\n"
              << "socket:   " << st.socket_dir.string() << "\n"
              << "url:      " << url_of("dev") << "\n";
  } else if (a == "url") {
    if (!cluster.status().running) cluster.start();
    std::cout << url_of(parsed->count("database") ? parsed->operator[]("database").as<std::string>()
                                                  : "dev")
              << "\n";
  } else {
    throw usage_error("unknown action " + util::quoted(a) + " for 'previewdb local'",
                      "use start, stop, status or url");
  }
  return 0;
}

}  // namespace previewdb::commands
