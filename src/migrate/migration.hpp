// What a migration folder contains, independent of the tool that wrote it: an ordered list of
// migrations, each with its statements (file and line kept for messages) and checksum.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace previewdb::migrate {

// The tools whose folders previewdb reads (and whose history tables it keeps in step).
enum class Format { prisma, drizzle, drizzle1, golang_migrate, dbmate, flyway, plain };

// "prisma", "drizzle", "drizzle1", "golang-migrate", "dbmate", "flyway", "plain".
std::string_view format_name(Format format);
// Accepts the names above (and "golang_migrate", "migrate"); nullopt for anything else.
std::optional<Format> parse_format(std::string_view name);
// Every accepted --format value, for messages.
std::vector<std::string> format_names();

struct Statement {
  std::string sql;  // verbatim from the file (after placeholder substitution)
  int line = 1;     // 1-based line of the statement's first token in its file
  // Cannot run inside a transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ALTER SYSTEM...).
  bool no_transaction = false;
  // BEGIN/COMMIT/ROLLBACK/SAVEPOINT... written in the file itself.
  enum class Control { none, begin, commit, rollback, savepoint, other } control = Control::none;
  // COPY ... FROM STDIN / TO STDOUT: needs a client to feed or drain the data (psql does), which
  // a migration file cannot provide; the runner refuses it, naming file and line.
  bool copy_stdio = false;
};

// How the runner executes a migration.
enum class Mode {
  transaction,      // BEGIN; statements; history rows; COMMIT (one round trip)
  own_transaction,  // the file is one BEGIN ... COMMIT block: history rows go before its COMMIT
  autocommit,       // statement by statement outside a transaction; history rows afterwards
};

struct SyntaxError {
  int line = 0;
  std::string message;
};

struct Migration {
  std::string id;       // the key in previewdb's history: directory or file name without .sql
  std::string name;     // description for people ("initial migration")
  std::string version;  // the tool's own key: golang-migrate/dbmate/Flyway version, Drizzle tag
  std::filesystem::path path;  // the SQL file
  std::string display_path;    // path as shown in messages and annotations (dir/file)
  std::string checksum;        // SHA-256 hex of the file's bytes
  std::vector<Statement> statements;
  Mode mode = Mode::transaction;
  std::string mode_reason;  // why not a plain transaction: "CREATE INDEX CONCURRENTLY at line 3"
  std::optional<SyntaxError> syntax_error;  // the parser rejected the file (statements: scanner's)
  // Tool specifics.
  bool repeatable = false;           // Flyway R__ scripts (re-applied when their checksum changes)
  long long created_millis = 0;      // Drizzle: the journal's "when" (folder timestamp for 1.x)
  std::int32_t flyway_checksum = 0;  // Flyway's CRC32 of the file's lines
  std::string script;                // Flyway "script" column: the file name
  std::vector<std::filesystem::path> down_files;  // companions that previewdb never applies
  // The down part ('previewdb migrate down'): golang-migrate's .down.sql, dbmate's
  // "-- migrate:down" section, Flyway's U<version>__ undo file, Prisma's rollback.sql (or
  // down.sql), plain's <id>.down.sql / <id>.rollback.sql. Its id and version are the up's; path,
  // display_path, checksum, statements and mode are the down's own (Flyway: flyway_checksum and
  // script of the U file). Null when the migration has none; down_error says why when a down
  // exists but cannot be read (never an error for 'migrate' itself).
  std::shared_ptr<const Migration> down;
  std::string down_error;
};

struct MigrationSet {
  Format format = Format::plain;
  std::filesystem::path dir;
  std::vector<Migration> migrations;  // in the tool's order
  std::vector<std::string> warnings;
};

}  // namespace previewdb::migrate
