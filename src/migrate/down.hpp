// Undoing migrations ('previewdb migrate down') and marking them without running anything
// ('previewdb resolve', Prisma's 'migrate resolve'). Same lock, same one-transaction-per-step
// runner as 'migrate'; the tool's history table is updated the way the tool itself does it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "migrate/migrate.hpp"

namespace previewdb::migrate {

struct DownOptions {
  // Target, folder, lock, timeouts, dry_run, annotations, applied_by (command is not used).
  MigrateOptions base;
  std::optional<size_t> steps;    // undo the newest N applied migrations
  std::optional<std::string> to;  // undo every applied migration after this one ("0": all)
};

struct DownReport {
  std::string database;
  std::string format;
  std::vector<std::string> undone;  // ids, newest first (dry run: would be undone)
  std::vector<MigrationRun> runs;   // details for `undone` (file: the down file)
  size_t remaining = 0;             // still applied afterwards
  std::vector<std::string> warnings;
  bool dry_run = false;
  std::string lock_mode;  // "advisory" or "table" ("" for a dry run)
};

// Runs the down parts of the newest applied migrations, newest first, one transaction each
// (outside one when the down cannot run in a transaction), under the migration lock. Throws
// Error(usage) without --steps/--to, for an unknown --to, a format without downs (Drizzle) or a
// missing down (naming the migration, before anything runs); Error(refused) when a failed
// migration is in the way; Error(migration_failed) when a down fails (naming it).
DownReport migrate_down(const DownOptions& options);

// The migrations to undo, newest first, from the folder and its status: pure, unit-tested.
// Throws as migrate_down does for the input's problems (nothing has run yet).
std::vector<const Migration*> plan_down(const MigrationSet& set, const StatusReport& status,
                                        std::optional<size_t> steps,
                                        const std::optional<std::string>& to,
                                        std::vector<std::string>& warnings);

// The migration `name` names: its id (directory or file name without .sql) or its version;
// nullptr when none.
const Migration* find_migration(const MigrationSet& set, const std::string& name);

// Where the down of `m` is expected, for messages ("migrations/1_x.down.sql", "the
// '-- migrate:down' section of ...").
std::string expected_down(Format format, const Migration& m);

enum class Mark { applied, rolled_back };

struct ResolveOptions {
  MigrateOptions base;  // target, folder, lock, applied_by
  Mark mark = Mark::applied;
  std::string name;  // migration id or version
};

struct ResolveReport {
  std::string database;
  std::string format;
  std::string id;
  std::string mark;                 // "applied" or "rolled-back"
  std::string previous_state;       // "pending", "failed"
  std::vector<std::string> tables;  // history tables written
  std::vector<std::string> warnings;
  std::string lock_mode;
};

// Records a migration as applied, or a failed one as rolled back, without running it, in
// previewdb's table and the tool's, with Prisma's rules: the name must be a migration of the
// folder (Error(usage)); --applied refuses one already applied, --rolled-back refuses one never
// applied or not failed (Error(refused)).
ResolveReport resolve(const ResolveOptions& options);

nlohmann::json to_json(const DownReport& report);
nlohmann::json to_json(const ResolveReport& report);
std::string format_down_plan(const DownReport& report);  // --dry-run

// The tool's side of an undo (undo_history.cpp), run in the down's transaction: golang-migrate's
// single row set to the previous version (or removed), dbmate's row removed, a Flyway UNDO_SQL
// row, Prisma's rolled_back_at. `previous`: the newest migration that stays applied.
std::vector<std::string> tool_undo_sql(db::Connection& conn, Format format,
                                       const std::string& schema, const Migration& up,
                                       const Migration* previous, const RecordInfo& info);
// Before a down that runs statement by statement: golang-migrate marks the target version dirty.
std::vector<std::string> tool_undo_before_autocommit(db::Connection& conn, Format format,
                                                     const std::string& schema,
                                                     const Migration* previous);
// previewdb's own table: the migration is no longer applied.
std::string unrecord_own(db::Connection& conn, const Migration& m);
// The tool's side of 'resolve --rolled-back' for a failed migration (Prisma: rolled_back_at;
// golang-migrate: the version before it, not dirty; Flyway: its failed rows removed, as
// 'flyway repair' does; dbmate and Drizzle keep no failed rows).
std::vector<std::string> tool_rolled_back_sql(db::Connection& conn, Format format,
                                              const std::string& schema, const Migration& m,
                                              const Migration* previous);

}  // namespace previewdb::migrate
