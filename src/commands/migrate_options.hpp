// Wiring shared by 'migrate' and 'status': the folder/format/database flags, and turning them
// (with previewdb.json and the environment) into the migrate API's plain values.
#pragma once

#include <cxxopts.hpp>

#include <map>
#include <string>

#include "config/config.hpp"
#include "migrate/migrate.hpp"

namespace previewdb::commands {

// --dir, --format, --database, --placeholder.
void add_folder_options(cxxopts::Options& options);

// The database to migrate: the resolved target (DIRECT_URL preferred over DATABASE_URL), with
// --database NAME naming another database on the same server.
migrate::Target migration_target(const config::Config& cfg, const cxxopts::ParseResult& parsed);

// Flyway placeholders: previewdb.json "placeholders" < --placeholder k=v.
std::map<std::string, std::string> placeholders(const config::Config& cfg,
                                                const cxxopts::ParseResult& parsed);

}  // namespace previewdb::commands
