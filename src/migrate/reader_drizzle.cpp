// Drizzle. 0.x: meta/_journal.json lists the migrations in order (its "entries" array, not the
// file names); <tag>.sql files not in the journal are not migrations. 1.x:
// <YYYYMMDDHHMMSS>_<name>/migration.sql. Both split statements on "--> statement-breakpoint".
#include <ctime>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "migrate/reader_common.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::migrate::detail {

void read_drizzle(const ReadOptions& options, MigrationSet& set) {
  fs::path journal_path = options.dir / "meta" / "_journal.json";
  std::string journal_name = display(options, "meta/_journal.json");
  auto text = util::read_file_if_exists(journal_path);
  if (!text) {
    throw usage_error("Drizzle journal " + util::quoted(journal_name) + " does not exist",
                      "run 'drizzle-kit generate', or pass --format for another layout");
  }
  nlohmann::json journal;
  try {
    journal = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::parse_error& e) {
    throw usage_error("cannot parse Drizzle journal " + util::quoted(journal_name) + ": " +
                      e.what());
  }
  if (!journal.is_object() || !journal.contains("entries") || !journal["entries"].is_array()) {
    throw usage_error("Drizzle journal " + util::quoted(journal_name) +
                      " has no \"entries\" array");
  }
  std::set<std::string> listed;
  size_t index = 0;
  for (const auto& e : journal["entries"]) {
    if (!e.is_object() || !e.contains("tag") || !e["tag"].is_string()) {
      throw usage_error("Drizzle journal " + util::quoted(journal_name) + ": entry " +
                        std::to_string(index) + " has no \"tag\"");
    }
    std::string tag = e["tag"].get<std::string>();
    Migration m;
    m.id = tag;
    m.version = tag;
    auto underscore = tag.find('_');
    m.name = underscore == std::string::npos ? tag : tag.substr(underscore + 1);
    m.created_millis = e.contains("when") && e["when"].is_number() ? e["when"].get<long long>() : 0;
    m.path = options.dir / (tag + ".sql");
    m.display_path = display(options, tag + ".sql");
    if (!fs::exists(m.path)) {
      throw usage_error("Drizzle journal " + util::quoted(journal_name) + " lists " +
                            util::quoted(tag) + " (entry " + std::to_string(index) + ") but " +
                            util::quoted(m.display_path) + " does not exist",
                        "restore the file, or remove the entry with 'drizzle-kit drop'");
    }
    listed.insert(tag + ".sql");
    std::string bytes = read_sql_file(m.path, m.display_path, options.dir);
    load_statements_with_breakpoints(m, bytes);
    set.migrations.push_back(std::move(m));
    ++index;
  }
  for (const auto& name : list_names(options.dir, false)) {
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".sql") == 0 && !listed.count(name)) {
      set.warnings.push_back(display(options, name) +
                             " is not in meta/_journal.json: not a migration, not applied");
    }
  }
}

namespace {

// "20250101120000" -> milliseconds since the epoch (UTC), as drizzle-kit 1.x stamps folders.
long long folder_millis(const std::string& ts) {
  std::tm tm{};
  tm.tm_year = std::stoi(ts.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(ts.substr(4, 2)) - 1;
  tm.tm_mday = std::stoi(ts.substr(6, 2));
  tm.tm_hour = std::stoi(ts.substr(8, 2));
  tm.tm_min = std::stoi(ts.substr(10, 2));
  tm.tm_sec = std::stoi(ts.substr(12, 2));
  return static_cast<long long>(timegm(&tm)) * 1000;
}

}  // namespace

void read_drizzle1(const ReadOptions& options, MigrationSet& set) {
  static const std::regex folder(R"((\d{14})_(.+))");
  for (const auto& name : list_names(options.dir, true)) {
    std::smatch match;
    if (!std::regex_match(name, match, folder)) {
      if (name != "meta") {
        set.warnings.push_back(display(options, name) +
                               " is not a <YYYYMMDDHHMMSS>_<name> folder: not a migration");
      }
      continue;
    }
    Migration m;
    m.id = name;
    m.version = name;
    m.name = match[2];
    m.created_millis = folder_millis(match[1]);
    m.path = options.dir / name / "migration.sql";
    m.display_path = display(options, fs::path(name) / "migration.sql");
    if (!fs::exists(m.path)) {
      throw usage_error(
          "Drizzle migration " + util::quoted(display(options, name)) + " has no migration.sql",
          "restore the file, or delete the folder");
    }
    std::string bytes = read_sql_file(m.path, m.display_path, options.dir);
    load_statements_with_breakpoints(m, bytes);
    set.migrations.push_back(std::move(m));
  }
}

}  // namespace previewdb::migrate::detail
