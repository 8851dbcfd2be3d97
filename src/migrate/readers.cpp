#include "migrate/readers.hpp"

#include <algorithm>
#include <regex>

#include "crypto/sha256.hpp"
#include "migrate/reader_common.hpp"
#include "migrate/splitter.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::migrate {

namespace {

struct FormatEntry {
  Format format;
  const char* name;
  const char* layout;  // for messages
  void (*read)(const ReadOptions&, MigrationSet&);
};

const FormatEntry k_formats[] = {
    {Format::prisma, "prisma", "migration_lock.toml and <timestamp>_<name>/migration.sql",
     detail::read_prisma},
    {Format::drizzle, "drizzle", "meta/_journal.json and <NNNN>_<tag>.sql", detail::read_drizzle},
    {Format::drizzle1, "drizzle1", "<YYYYMMDDHHMMSS>_<name>/migration.sql", detail::read_drizzle1},
    {Format::golang_migrate, "golang-migrate", "<version>_<name>.up.sql and .down.sql",
     detail::read_golang_migrate},
    {Format::dbmate, "dbmate", "<version>_<name>.sql with -- migrate:up / -- migrate:down",
     detail::read_dbmate},
    {Format::flyway, "flyway", "V<version>__<description>.sql and R__<description>.sql",
     detail::read_flyway},
    {Format::plain, "plain", "*.sql ordered by leading number, then name", detail::read_plain},
};

const FormatEntry& entry(Format f) {
  for (const auto& e : k_formats) {
    if (e.format == f) return e;
  }
  return k_formats[0];
}

// Position of the first byte that breaks UTF-8, or npos.
size_t first_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return i;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return i;
    }
    if (n == 2 && c < 0xC2) return i;  // overlong
    i += n;
  }
  return std::string_view::npos;
}

bool has_file_matching(const fs::path& dir, const std::regex& re) {
  for (const auto& name : detail::list_names(dir, false)) {
    if (std::regex_match(name, re)) return true;
  }
  return false;
}

}  // namespace

std::string_view format_name(Format format) {
  return entry(format).name;
}

std::optional<Format> parse_format(std::string_view name) {
  std::string n = util::to_lower(name);
  if (n == "golang_migrate" || n == "migrate" || n == "golang-migrate") {
    return Format::golang_migrate;
  }
  if (n == "drizzle0" || n == "drizzle-0") return Format::drizzle;
  if (n == "drizzle-1") return Format::drizzle1;
  if (n == "sql") return Format::plain;
  for (const auto& e : k_formats) {
    if (n == e.name) return e.format;
  }
  return std::nullopt;
}

std::vector<std::string> format_names() {
  std::vector<std::string> names = {"auto"};
  for (const auto& e : k_formats) names.emplace_back(e.name);
  return names;
}

std::optional<Format> detect_format(const fs::path& dir) {
  if (fs::exists(dir / "migration_lock.toml")) return Format::prisma;
  if (fs::exists(dir / "meta" / "_journal.json")) return Format::drizzle;
  static const std::regex drizzle1_dir(R"(\d{14}_.+)");
  for (const auto& name : detail::list_names(dir, true)) {
    if (std::regex_match(name, drizzle1_dir) && fs::exists(dir / name / "migration.sql")) {
      return Format::drizzle1;
    }
  }
  static const std::regex golang(R"(\d+_.*\.up\.sql)");
  if (has_file_matching(dir, golang)) return Format::golang_migrate;
  static const std::regex flyway(R"((V[0-9][0-9._]*__.*|R__.+)\.sql)");
  if (has_file_matching(dir, flyway)) return Format::flyway;
  bool any_sql = false;
  for (const auto& name : detail::list_names(dir, false)) {
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".sql") != 0) continue;
    any_sql = true;
    if (!std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    auto text = util::read_file_if_exists(dir / name);
    if (!text) continue;
    for (const auto& line : util::split(*text, '\n')) {
      if (util::trim(line).rfind("-- migrate:up", 0) == 0) return Format::dbmate;
    }
  }
  if (any_sql) return Format::plain;
  return std::nullopt;
}

MigrationSet read_migrations(const ReadOptions& options) {
  const fs::path& dir = options.dir;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    throw usage_error("migrations folder " + util::quoted(dir.string()) + " does not exist",
                      "pass --dir, or set migrations_dir in previewdb.json");
  }
  if (!fs::is_directory(dir, ec)) {
    throw usage_error("migrations folder " + util::quoted(dir.string()) + " is not a directory",
                      "pass --dir with the folder that holds the migration files");
  }
  MigrationSet set;
  set.dir = dir;
  if (options.format.empty() || options.format == "auto") {
    auto detected = detect_format(dir);
    if (!detected) {
      std::vector<std::string> layouts;
      for (const auto& e : k_formats) layouts.push_back(std::string(e.name) + ": " + e.layout);
      throw Error(ExitCode::usage, "no migrations found in " + util::quoted(dir.string()),
                  {"previewdb reads these layouts: " + util::join(layouts, "; "),
                   "pass --dir with the folder that holds the migrations"});
    }
    set.format = *detected;
  } else {
    auto f = parse_format(options.format);
    if (!f) {
      std::string hint = "--format accepts " + util::join(format_names(), ", ");
      auto guess = util::did_you_mean(options.format, format_names());
      Error e(ExitCode::usage, "unknown migration format " + util::quoted(options.format));
      if (guess) e.with_hint("did you mean " + util::quoted(*guess) + "?");
      e.with_hint(hint);
      throw e;
    }
    set.format = *f;
  }
  entry(set.format).read(options, set);
  if (set.migrations.empty()) {
    throw usage_error("no " + std::string(format_name(set.format)) + " migrations found in " +
                          util::quoted(dir.string()) + " (expected " + entry(set.format).layout +
                          ")",
                      "pass --dir with the folder that holds the migrations, or --format");
  }
  return set;
}

namespace detail {

std::string read_sql_file(const fs::path& path, const std::string& display_path,
                          const fs::path& root) {
  // A symlink may point elsewhere in the repository, never outside it (a link to /etc/passwd must
  // not be sent as SQL).
  std::error_code ec, cwd_ec;
  fs::path cwd = fs::current_path(cwd_ec);
  bool inside = !fs::exists(path, ec) || util::resolves_inside(path, root) ||
                (!cwd_ec && cwd != cwd.root_path() && util::resolves_inside(path, cwd));
  if (!inside) {
    throw usage_error("migration " + util::quoted(display_path) +
                          " is a symlink to a file outside the migrations folder and the "
                          "repository; refusing to read it",
                      "replace the link with the file itself, or link to a file in the repository");
  }
  std::string bytes;
  try {
    bytes = util::read_file(path);
  } catch (const Error& e) {
    throw usage_error("cannot read migration " + util::quoted(display_path) + ": " + e.what(),
                      "check the file's permissions");
  }
  if (auto nul = bytes.find('\0'); nul != std::string::npos) {
    // libpq would stop at the NUL and apply a truncated file recorded with the whole checksum.
    throw usage_error("migration " + util::quoted(display_path) +
                          " contains a NUL byte at byte offset " + std::to_string(nul) + " (line " +
                          std::to_string(line_of_offset(bytes, nul)) + "): it is not a text file",
                      "remove the NUL byte, or the file if it is not SQL");
  }
  size_t bad = first_invalid_utf8(bytes);
  if (bad != std::string::npos) {
    throw usage_error("migration " + util::quoted(display_path) + " is not valid UTF-8 (line " +
                          std::to_string(line_of_offset(bytes, bad)) + ", byte " +
                          std::to_string(bad + 1) + ")",
                      "save the file as UTF-8");
  }
  return bytes;
}

void load_statements(Migration& m, const std::string& bytes, std::string_view body, int first_line,
                     const std::string& forced_no_tx_reason) {
  m.checksum = crypto::sha256_hex(bytes);
  // A UTF-8 byte order mark is not SQL.
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
  auto split = split_statements(body, first_line);
  m.statements = std::move(split.statements);
  m.syntax_error = split.error;
  std::string reason = forced_no_tx_reason;
  if (reason.empty() && body.find(k_no_transaction_marker) != std::string_view::npos) {
    reason = "the file is marked " + std::string(k_no_transaction_marker);
  }
  choose_mode(m, reason);
}

namespace {

Migration down_of(const Migration& up, const fs::path& path, const std::string& display_path) {
  Migration d;
  d.id = up.id;
  d.name = up.name;
  d.version = up.version;
  d.path = path;
  d.display_path = display_path;
  d.repeatable = up.repeatable;
  d.created_millis = up.created_millis;
  return d;
}

}  // namespace

void attach_down(Migration& up, const fs::path& path, const std::string& display_path,
                 const std::string& bytes, std::string_view body, int first_line,
                 const std::string& forced_no_tx_reason) {
  Migration d = down_of(up, path, display_path);
  load_statements(d, bytes, body, first_line, forced_no_tx_reason);
  up.down = std::make_shared<const Migration>(std::move(d));
}

void attach_down_file(Migration& up, const fs::path& path, const std::string& display_path,
                      const fs::path& root,
                      const std::function<void(Migration&, const std::string&)>& load) {
  try {
    std::string bytes = read_sql_file(path, display_path, root);
    Migration d = down_of(up, path, display_path);
    if (load)
      load(d, bytes);
    else
      load_statements(d, bytes, bytes);
    up.down = std::make_shared<const Migration>(std::move(d));
  } catch (const Error& e) {
    up.down = nullptr;
    up.down_error = e.what();
  }
}

void load_statements_with_breakpoints(Migration& m, const std::string& bytes) {
  static const std::string_view k_breakpoint = "--> statement-breakpoint";
  m.checksum = crypto::sha256_hex(bytes);
  std::string_view body = bytes;
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
  size_t pos = 0;
  int line = 1;
  while (pos <= body.size()) {
    size_t next = body.find(k_breakpoint, pos);
    std::string_view chunk =
        body.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    auto split = split_statements(chunk, line);
    for (auto& st : split.statements) m.statements.push_back(std::move(st));
    if (split.error && !m.syntax_error) m.syntax_error = split.error;
    line += static_cast<int>(std::count(chunk.begin(), chunk.end(), '\n'));
    if (next == std::string_view::npos) break;
    pos = next + k_breakpoint.size();
  }
  std::string reason;
  if (body.find(k_no_transaction_marker) != std::string_view::npos) {
    reason = "the file is marked " + std::string(k_no_transaction_marker);
  }
  choose_mode(m, reason);
}

std::string display(const ReadOptions& options, const fs::path& relative) {
  return (options.dir / relative).lexically_normal().generic_string();
}

std::vector<std::string> list_names(const fs::path& dir, bool directories) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code ec2;
    bool is_dir = e.is_directory(ec2);
    if (is_dir == directories) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

int compare_numeric(std::string_view a, std::string_view b) {
  auto strip = [](std::string_view s) {
    size_t i = 0;
    while (i + 1 < s.size() && s[i] == '0') ++i;
    return s.substr(i);
  };
  a = strip(a);
  b = strip(b);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  int c = a.compare(b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

}  // namespace detail

}  // namespace previewdb::migrate
