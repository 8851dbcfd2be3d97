// dbmate: <version>_<name>.sql (version = the leading digits) with "-- migrate:up" and
// "-- migrate:down" sections; "-- migrate:up transaction:false" runs outside a transaction.
#include <map>
#include <regex>

#include "migrate/reader_common.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::migrate::detail {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The "-- migrate:down" section: from that line to the "-- migrate:up" line after it, or the end.
// "-- migrate:down transaction:false" runs it outside a transaction, as dbmate does.
void attach_dbmate_down(Migration& m, const std::string& bytes) {
  size_t begin = std::string::npos, end = bytes.size();
  int first_line = 0, line = 1;
  std::string down_options;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t nl = bytes.find('\n', pos);
    size_t stop = nl == std::string::npos ? bytes.size() : nl;
    std::string text = util::trim(std::string_view(bytes).substr(pos, stop - pos));
    if (begin == std::string::npos && starts_with(text, "-- migrate:down")) {
      begin = nl == std::string::npos ? bytes.size() : nl + 1;
      first_line = line + 1;
      down_options = text.substr(std::string("-- migrate:down").size());
    } else if (begin != std::string::npos && starts_with(text, "-- migrate:up")) {
      end = pos;
      break;
    }
    pos = nl == std::string::npos ? bytes.size() : nl + 1;
    ++line;
  }
  if (begin == std::string::npos) return;  // no down section: 'migrate down' says so
  std::string forced;
  for (const auto& opt : util::split(util::trim(down_options), ' ')) {
    if (util::to_lower(util::trim(opt)) == "transaction:false") {
      forced = "dbmate option transaction:false";
    }
  }
  attach_down(m, m.path, m.display_path, bytes, std::string_view(bytes).substr(begin, end - begin),
              first_line, forced);
}

}  // namespace

void read_dbmate(const ReadOptions& options, MigrationSet& set) {
  static const std::regex pattern(R"((\d+).*\.sql)");
  std::map<std::string, std::string> seen;  // version -> file
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& name : list_names(options.dir, false)) {
    std::smatch match;
    if (!std::regex_match(name, match, pattern)) continue;
    std::string version = match[1];
    if (auto it = seen.find(version); it != seen.end()) {
      throw usage_error("duplicate migration version " + version + ": " +
                            util::quoted(display(options, it->second)) + " and " +
                            util::quoted(display(options, name)),
                        "give one of them a new version number");
    }
    seen[version] = name;
    files.emplace_back(version, name);
  }
  // dbmate sorts by file name; versions are fixed-width timestamps in practice.
  for (const auto& [version, name] : files) {
    Migration m;
    m.id = name.substr(0, name.size() - 4);
    m.version = version;
    m.name = m.id.substr(version.size());
    if (!m.name.empty() && m.name[0] == '_') m.name.erase(0, 1);
    m.path = options.dir / name;
    m.display_path = display(options, name);
    std::string bytes = read_sql_file(m.path, m.display_path, options.dir);
    // Find the sections line by line, keeping byte offsets.
    size_t up_begin = std::string::npos, up_end = bytes.size();
    int up_line = 0, line = 1;
    std::string up_options;
    size_t pos = 0;
    while (pos < bytes.size()) {
      size_t nl = bytes.find('\n', pos);
      size_t end = nl == std::string::npos ? bytes.size() : nl;
      std::string text = util::trim(std::string_view(bytes).substr(pos, end - pos));
      if (starts_with(text, "-- migrate:up") && up_begin == std::string::npos) {
        up_begin = nl == std::string::npos ? bytes.size() : nl + 1;
        up_line = line + 1;
        up_options = text.substr(std::string("-- migrate:up").size());
      } else if (starts_with(text, "-- migrate:down") && up_begin != std::string::npos) {
        up_end = pos;
        break;
      }
      pos = nl == std::string::npos ? bytes.size() : nl + 1;
      ++line;
    }
    if (up_begin == std::string::npos) {
      throw usage_error(
          "dbmate migration " + util::quoted(m.display_path) + " has no '-- migrate:up' line",
          "dbmate requires every migration to start its up block with "
          "'-- migrate:up'");
    }
    std::string forced;
    for (const auto& opt : util::split(util::trim(up_options), ' ')) {
      if (util::to_lower(util::trim(opt)) == "transaction:false") {
        forced = "dbmate option transaction:false";
      }
    }
    load_statements(m, bytes, std::string_view(bytes).substr(up_begin, up_end - up_begin), up_line,
                    forced);
    attach_dbmate_down(m, bytes);
    set.migrations.push_back(std::move(m));
  }
}

}  // namespace previewdb::migrate::detail
