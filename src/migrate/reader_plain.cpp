// Plain SQL: *.sql files ordered by their leading number (numerically), then by name; files
// without a number come after the numbered ones. <name>.down.sql and rollback.sql companions are
// never applied.
#include <algorithm>
#include <map>

#include "migrate/reader_common.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::migrate::detail {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string leading_digits(const std::string& name) {
  size_t n = 0;
  while (n < name.size() && std::isdigit(static_cast<unsigned char>(name[n]))) ++n;
  return name.substr(0, n);
}

bool is_companion(const std::string& name) {
  return ends_with(name, ".down.sql") || ends_with(name, ".rollback.sql") ||
         name == "rollback.sql" || name == "down.sql";
}

}  // namespace

void read_plain(const ReadOptions& options, MigrationSet& set) {
  std::vector<std::string> names;
  for (const auto& name : list_names(options.dir, false)) {
    if (ends_with(name, ".sql") && !is_companion(name)) names.push_back(name);
  }
  std::stable_sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    std::string na = leading_digits(a), nb = leading_digits(b);
    if (na.empty() != nb.empty()) return !na.empty();
    if (!na.empty()) {
      if (int c = compare_numeric(na, nb)) return c < 0;
    }
    return a < b;
  });
  std::map<std::string, std::string> numbers;  // leading number -> file, for duplicates
  for (const auto& name : names) {
    std::string number = leading_digits(name);
    if (!number.empty()) {
      std::string canonical =
          number.substr(std::min(number.find_first_not_of('0'), number.size() - 1));
      if (auto it = numbers.find(canonical); it != numbers.end()) {
        set.warnings.push_back(display(options, it->second) + " and " + display(options, name) +
                               " have the same number " + number + ": applied in name order");
      }
      numbers[canonical] = name;
    }
    Migration m;
    m.id = name.substr(0, name.size() - 4);
    m.version = number;
    m.name = m.id.substr(number.size());
    while (!m.name.empty() && (m.name[0] == '_' || m.name[0] == '-')) m.name.erase(0, 1);
    m.path = options.dir / name;
    m.display_path = display(options, name);
    for (const char* suffix : {".down.sql", ".rollback.sql"}) {
      fs::path companion = options.dir / (m.id + suffix);
      if (fs::exists(companion)) m.down_files.push_back(companion);
    }
    // <id>.down.sql first, then <id>.rollback.sql.
    if (!m.down_files.empty()) {
      attach_down_file(m, m.down_files[0], display(options, m.down_files[0].filename()),
                       options.dir);
    }
    std::string bytes = read_sql_file(m.path, m.display_path, options.dir);
    load_statements(m, bytes, bytes);
    set.migrations.push_back(std::move(m));
  }
}

}  // namespace previewdb::migrate::detail
