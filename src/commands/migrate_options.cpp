#include "commands/migrate_options.hpp"

#include "commands/common.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::commands {

void add_folder_options(cxxopts::Options& options) {
  options.add_options("Migrations")(
      "dir", "migrations folder (default migrations/schema; env PREVIEWDB_MIGRATIONS_DIR)",
      cxxopts::value<std::string>(),
      "DIR")("format",
             "auto, prisma, drizzle, drizzle1, golang-migrate, dbmate, flyway or plain "
             "(default auto)",
             cxxopts::value<std::string>(),
             "FORMAT")("database", "another database on the same server as the target",
                       cxxopts::value<std::string>(),
                       "NAME")("placeholder", "Flyway placeholder value (repeatable)",
                               cxxopts::value<std::vector<std::string>>(), "KEY=VALUE");
}

migrate::Target migration_target(const config::Config& cfg, const cxxopts::ParseResult& parsed) {
  Target target = resolve_target(cfg, /*prefer_direct=*/true);
  migrate::Target out{target.conninfo, "", lock_timeout_setting(cfg)};
  if (parsed.count("database")) {
    out.dbname = parsed["database"].as<std::string>();
    if (out.dbname.empty()) throw usage_error("--database needs a database name");
  } else if (target.embedded) {
    // The local server's conninfo names "postgres"; the database people work in is the source.
    out.dbname = cfg.get_string("source");
  }
  return out;
}

std::map<std::string, std::string> placeholders(const config::Config& cfg,
                                                const cxxopts::ParseResult& parsed) {
  std::map<std::string, std::string> out;
  const auto& section = cfg.file_section("placeholders");
  if (section.is_object()) {
    for (const auto& [k, v] : section.items()) {
      out[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  if (parsed.count("placeholder")) {
    for (const auto& kv : parsed["placeholder"].as<std::vector<std::string>>()) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw usage_error("--placeholder " + util::quoted(kv) + " is not KEY=VALUE",
                          "for example --placeholder schema=app");
      }
      out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  return out;
}

}  // namespace previewdb::commands
