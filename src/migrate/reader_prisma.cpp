// Prisma: migration_lock.toml and <timestamp>_<name>/migration.sql, ordered by directory name
// (byte order, as Prisma sorts them). Directory names may contain spaces.
#include "migrate/reader_common.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::migrate::detail {

void read_prisma(const ReadOptions& options, MigrationSet& set) {
  if (!fs::exists(options.dir / "migration_lock.toml")) {
    set.warnings.push_back(display(options, "migration_lock.toml") +
                           " is missing: is this really a Prisma migrations folder?");
  }
  for (const auto& name : list_names(options.dir, true)) {
    fs::path file = options.dir / name / "migration.sql";
    if (!fs::exists(file)) {
      throw usage_error(
          "Prisma migration " + util::quoted(display(options, name)) + " has no migration.sql",
          "restore the file, or delete the directory (Prisma refuses it too)");
    }
    Migration m;
    m.id = name;
    m.version = name;
    auto underscore = name.find('_');
    m.name = underscore == std::string::npos ? name : name.substr(underscore + 1);
    m.path = file;
    m.display_path = display(options, fs::path(name) / "migration.sql");
    std::string bytes = read_sql_file(file, m.display_path, options.dir);
    load_statements(m, bytes, bytes);
    // Prisma writes no downs; the common convention ('prisma migrate diff ... --script') keeps
    // one next to migration.sql: rollback.sql, else down.sql.
    for (const char* down : {"rollback.sql", "down.sql"}) {
      if (fs::exists(options.dir / name / down)) {
        attach_down_file(m, options.dir / name / down, display(options, fs::path(name) / down),
                         options.dir);
        break;
      }
    }
    set.migrations.push_back(std::move(m));
  }
}

}  // namespace previewdb::migrate::detail
