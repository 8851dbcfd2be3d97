// History tables: previewdb's own (_previewdb.schema_migrations) and the table of the tool that
// owns the folder (_prisma_migrations, drizzle.__drizzle_migrations, golang-migrate's and
// dbmate's schema_migrations, flyway_schema_history), read once per run and written in the same
// transaction as the migration they record.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "migrate/migration.hpp"

namespace previewdb::migrate {

// Not "previewdb": a schema named like the database user (previewdb's own local server user is
// "previewdb") would capture the default search_path ("$user", public) and the migrations' tables.
inline constexpr const char* k_own_schema = "_previewdb";
inline constexpr const char* k_own_table = "_previewdb.schema_migrations";

// What some history table says about one migration.
struct Applied {
  bool failed = false;
  std::string checksum;                         // SHA-256 hex; empty when the table keeps none
  std::optional<std::int32_t> flyway_checksum;  // flyway_schema_history's CRC32
  std::string name;
  std::string started_at, finished_at;  // ISO-8601 UTC; empty when unknown
  std::optional<long long> duration_ms;
  std::optional<int> statements;
  std::string applied_by;
  std::string error;   // failed: the error previewdb recorded
  std::string source;  // the table it came from
};

struct AppliedSet {
  std::map<std::string, Applied> by_id;  // keyed by Migration::id
  // Recorded as applied or failed, but no file in the folder has that id.
  std::vector<std::pair<std::string, Applied>> missing;
  bool own_table = false;   // _previewdb.schema_migrations exists
  bool tool_table = false;  // the tool's table exists
  std::vector<std::string> warnings;
};

// One run's record of a migration.
// Keeps one entry per missing migration when previewdb's table (the first own_count entries of
// applied.missing) and the tool's table both record it, matched by id or by leading version.
void dedupe_missing(AppliedSet& applied, size_t own_count);

struct RecordInfo {
  bool success = true;
  // Set for statement-by-statement runs; otherwise computed by the server within the
  // migration's transaction (now() .. clock_timestamp()).
  std::optional<long long> duration_ms;
  std::string started_at;  // ISO-8601; empty: the transaction's start
  std::string error;
  std::string applied_by;  // empty: current_user
};

// A tool's history table, kept in step so that the tool's own status command agrees.
class ToolHistory {
 public:
  virtual ~ToolHistory() = default;
  // The table as shown in messages and docs ("public._prisma_migrations").
  virtual std::string table() const = 0;
  // Adds what the table records to applied (ids previewdb's table already knows are kept).
  virtual void load(db::Connection& conn, const MigrationSet& set, AppliedSet& applied) = 0;
  // Creates the table exactly as the tool would, when it does not exist.
  virtual void create(db::Connection& conn) = 0;
  // SQL statements recording one migration (run inside the migration's transaction, if any).
  virtual std::vector<std::string> record(db::Connection& conn, const Migration& m,
                                          const RecordInfo& info) = 0;
  // SQL run before a statement-by-statement migration starts (golang-migrate's dirty flag).
  virtual std::vector<std::string> before_autocommit(db::Connection&, const Migration&) {
    return {};
  }
};

// The tool history for a format (nullptr for plain SQL). schema: where the tool's table lives
// (the connection's current schema, as the tools themselves choose).
std::unique_ptr<ToolHistory> make_tool_history(Format format, const std::string& schema);

// True when a table exists (schema-qualified, unquoted name).
bool table_exists(db::Connection& conn, const std::string& qualified);

// previewdb's own table.
void create_own_table(db::Connection& conn);
// Reads previewdb's table (when it exists) and the tool's table; one query each.
AppliedSet load_applied(db::Connection& conn, const MigrationSet& set, ToolHistory* tool);
// SQL recording one migration in previewdb's table (an upsert: a retried failure is replaced).
std::string record_own(db::Connection& conn, const Migration& m, Format format,
                       const RecordInfo& info);

// previewdb's table, newest first (history command).
struct HistoryEntry {
  std::string id, name, format, checksum, status, started_at, finished_at, applied_by, error;
  long long duration_ms = 0;
  int statements = 0;
};
std::vector<HistoryEntry> read_own_history(db::Connection& conn, int limit);

}  // namespace previewdb::migrate
