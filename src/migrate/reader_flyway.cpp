// Flyway: V<version>__<description>.sql in version order (compared numerically part by part, so
// 1.10 comes after 1.9), then R__<description>.sql repeatables by description. ${name}
// placeholders are replaced from the values previewdb was given.
#include <algorithm>
#include <array>
#include <regex>

#include <zlib.h>

#include "migrate/reader_common.hpp"
#include "migrate/splitter.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::migrate::detail {

namespace {

std::vector<std::string> version_parts(const std::string& v) {
  return util::split(v, '.');
}

int compare_versions(const std::string& a, const std::string& b) {
  auto pa = version_parts(a), pb = version_parts(b);
  for (size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    std::string x = i < pa.size() ? pa[i] : "0", y = i < pb.size() ? pb[i] : "0";
    if (int c = compare_numeric(x, y)) return c;
  }
  return 0;
}

// Flyway's checksum (its ChecksumCalculator): CRC-32 over the file's lines as readLine() returns
// them, without their line breaks ("\n", "\r\n", "\r"), the first without a UTF-8 BOM; stored as a
// signed 32-bit integer. zlib computes the CRC over each run of bytes between line breaks.
std::int32_t flyway_crc32(std::string_view bytes) {
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t start = 0;
  for (size_t i = 0; i <= bytes.size(); ++i) {
    if (i < bytes.size() && bytes[i] != '\n' && bytes[i] != '\r') continue;
    if (i > start) {
      crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + start),
                  static_cast<uInt>(i - start));
    }
    start = i + 1;
  }
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(crc));
}

std::string substitute(const std::string& text, const ReadOptions& options,
                       const std::string& display_path, const std::string& file_name) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t start = text.find("${", pos);
    if (start == std::string::npos) break;
    size_t end = text.find('}', start);
    if (end == std::string::npos) break;
    out.append(text, pos, start - pos);
    std::string name = text.substr(start + 2, end - start - 2);
    auto it = options.placeholders.find(name);
    if (it == options.placeholders.end()) {
      for (auto i = options.placeholders.begin(); i != options.placeholders.end(); ++i) {
        if (util::to_lower(i->first) == util::to_lower(name)) it = i;
      }
    }
    if (it != options.placeholders.end()) {
      out += it->second;
    } else if (name == "flyway:filename") {
      out += file_name;
    } else if (name == "flyway:table") {
      out += "flyway_schema_history";
    } else if (name == "flyway:defaultSchema") {
      out += "public";
    } else {
      throw usage_error("no value for placeholder ${" + name + "} in " + display_path + ":" +
                            std::to_string(line_of_offset(text, start)),
                        "pass --placeholder " + name +
                            "=VALUE, or set it under \"placeholders\" in previewdb.json");
    }
    pos = end + 1;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

// "U3__order_total.sql" -> "order total" (Flyway's description of the undo row).
std::string undo_description(const std::string& file) {
  auto sep = file.find("__");
  std::string d = file.substr(sep + 2, file.size() - sep - 2 - 4);
  std::replace(d.begin(), d.end(), '_', ' ');
  return d;
}

}  // namespace

void read_flyway(const ReadOptions& options, MigrationSet& set) {
  static const std::regex versioned(R"(V([0-9][0-9._]*?)__(.+)\.sql)");
  static const std::regex repeatable(R"(R__(.+)\.sql)");
  static const std::regex undo(R"(U([0-9][0-9._]*?)__(.+)\.sql)");
  std::vector<Migration> versions, repeatables;
  std::vector<std::pair<std::string, std::string>> undos;  // version -> U file (Flyway Teams)
  for (const auto& name : list_names(options.dir, false)) {
    std::smatch match;
    Migration m;
    if (std::regex_match(name, match, undo)) {
      std::string v = match[1];
      std::replace(v.begin(), v.end(), '_', '.');
      undos.emplace_back(v, name);
      continue;
    }
    if (std::regex_match(name, match, versioned)) {
      std::string v = match[1];
      std::replace(v.begin(), v.end(), '_', '.');
      m.version = v;
      m.name = match[2];
    } else if (std::regex_match(name, match, repeatable)) {
      m.repeatable = true;
      m.name = match[1];
    } else {
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".sql") == 0) {
        set.warnings.push_back(display(options, name) +
                               " is not V<version>__<description>.sql or R__<description>.sql: "
                               "not a migration");
      }
      continue;
    }
    std::replace(m.name.begin(), m.name.end(), '_', ' ');
    m.id = name.substr(0, name.size() - 4);
    m.script = name;
    m.path = options.dir / name;
    m.display_path = display(options, name);
    std::string bytes = read_sql_file(m.path, m.display_path, options.dir);
    m.flyway_checksum = flyway_crc32(bytes);
    std::string text = substitute(bytes, options, m.display_path, name);
    load_statements(m, bytes, text);
    (m.repeatable ? repeatables : versions).push_back(std::move(m));
  }
  std::stable_sort(versions.begin(), versions.end(), [](const Migration& a, const Migration& b) {
    return compare_versions(a.version, b.version) < 0;
  });
  for (size_t i = 1; i < versions.size(); ++i) {
    if (compare_versions(versions[i - 1].version, versions[i].version) == 0) {
      throw usage_error("duplicate migration version " + versions[i].version + ": " +
                            util::quoted(versions[i - 1].display_path) + " and " +
                            util::quoted(versions[i].display_path),
                        "give one of them a new version number");
    }
  }
  for (const auto& [version, name] : undos) {
    auto it = std::find_if(versions.begin(), versions.end(), [&](const Migration& m) {
      return compare_versions(m.version, version) == 0;
    });
    if (it == versions.end()) {
      set.warnings.push_back(display(options, name) + " undoes version " + version +
                             ", which has no V" + version + "__ file: never run");
      continue;
    }
    if (it->down || !it->down_error.empty()) {
      // Only 'migrate down' needs it: not an error for applying.
      it->down_error = "two undo files for version " + version + ": " +
                       util::quoted(it->down ? it->down->display_path : "") + " and " +
                       util::quoted(display(options, name)) + "; keep one of them";
      it->down = nullptr;
      continue;
    }
    std::string file = name;
    attach_down_file(*it, options.dir / name, display(options, name), options.dir,
                     [&](Migration& d, const std::string& bytes) {
                       d.flyway_checksum = flyway_crc32(bytes);
                       d.script = file;
                       d.name = undo_description(file);
                       load_statements(d, bytes, substitute(bytes, options, d.display_path, file));
                     });
  }
  std::stable_sort(repeatables.begin(), repeatables.end(),
                   [](const Migration& a, const Migration& b) { return a.name < b.name; });
  for (auto& m : versions) set.migrations.push_back(std::move(m));
  for (auto& m : repeatables) set.migrations.push_back(std::move(m));
}

}  // namespace previewdb::migrate::detail
