// golang-migrate: <version>_<name>.up.sql / .down.sql, in numeric version order; two files
// with the same version (and direction) are an error, as in golang-migrate.
#include <algorithm>
#include <map>
#include <regex>

#include "migrate/reader_common.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::migrate::detail {

void read_golang_migrate(const ReadOptions& options, MigrationSet& set) {
  static const std::regex pattern(R"((\d+)_(.*)\.(up|down)\.sql)");
  struct Entry {
    std::string up, down;
  };
  std::map<unsigned long long, Entry> by_version;
  for (const auto& name : list_names(options.dir, false)) {
    std::smatch match;
    if (!std::regex_match(name, match, pattern)) {
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".sql") == 0) {
        set.warnings.push_back(display(options, name) +
                               " is not <version>_<name>.up.sql or .down.sql: not a migration");
      }
      continue;
    }
    auto version = util::parse_uint(match[1].str());
    if (!version) {
      throw usage_error("migration " + util::quoted(display(options, name)) + ": version " +
                        match[1].str() + " does not fit in 64 bits");
    }
    Entry& e = by_version[static_cast<unsigned long long>(*version)];
    std::string& slot = match[3] == "up" ? e.up : e.down;
    if (!slot.empty()) {
      throw usage_error("duplicate migration version " + std::to_string(*version) + ": " +
                            util::quoted(display(options, slot)) + " and " +
                            util::quoted(display(options, name)),
                        "give one of them a new version number");
    }
    slot = name;
  }
  for (const auto& [version, e] : by_version) {
    if (e.up.empty()) {
      set.warnings.push_back(display(options, e.down) + " has no .up.sql: nothing to apply");
      continue;
    }
    Migration m;
    m.id = e.up.substr(0, e.up.size() - std::string(".up.sql").size());
    m.version = std::to_string(version);
    m.name = m.id.substr(m.id.find('_') + 1);
    m.path = options.dir / e.up;
    m.display_path = display(options, e.up);
    if (!e.down.empty()) {
      m.down_files.push_back(options.dir / e.down);
      attach_down_file(m, options.dir / e.down, display(options, e.down), options.dir);
    }
    std::string bytes = read_sql_file(m.path, m.display_path, options.dir);
    load_statements(m, bytes, bytes);
    set.migrations.push_back(std::move(m));
  }
}

}  // namespace previewdb::migrate::detail
