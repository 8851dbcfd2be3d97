// Shared by the readers (not part of the migrate API): loading one SQL file into a Migration.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "migrate/migration.hpp"
#include "migrate/readers.hpp"

namespace previewdb::migrate::detail {

// The file's bytes; throws Error(usage) naming display_path when it cannot be read, is not a
// regular file, resolves (through a symlink) outside `root` and the working directory, holds a
// NUL byte (with its offset), or is not valid UTF-8 (with the line of the first bad byte).
std::string read_sql_file(const std::filesystem::path& path, const std::string& display_path,
                          const std::filesystem::path& root);

// Fills checksum, statements (split from `body`, whose first line is `first_line` in the file),
// mode and syntax_error. `bytes` is the whole file (the checksum covers it all).
void load_statements(Migration& m, const std::string& bytes, std::string_view body,
                     int first_line = 1, const std::string& forced_no_tx_reason = {});

// Sets up.down from a down part whose text is `body` (inside `bytes`, the whole file, whose first
// line is `first_line`): id, version and name are the up's, the rest the down's own.
void attach_down(Migration& up, const std::filesystem::path& path, const std::string& display_path,
                 const std::string& bytes, std::string_view body, int first_line = 1,
                 const std::string& forced_no_tx_reason = {});

// Sets up.down from a file of its own. `load` fills statements and checksums from the file's
// bytes (default: load_statements over the whole file). A down is only needed by 'migrate down',
// so a file that cannot be read never fails a reader: up.down stays null and up.down_error says
// why.
void attach_down_file(
    Migration& up, const std::filesystem::path& path, const std::string& display_path,
    const std::filesystem::path& root,
    const std::function<void(Migration& down, const std::string& bytes)>& load = {});

// Drizzle's "--> statement-breakpoint" chunks, each split on its own.
void load_statements_with_breakpoints(Migration& m, const std::string& bytes);

// display path: the folder as the user wrote it joined with the path inside it.
std::string display(const ReadOptions& options, const std::filesystem::path& relative);

// Names in dir (files or directories), sorted by byte order; hidden entries skipped.
std::vector<std::string> list_names(const std::filesystem::path& dir, bool directories);

// Compares decimal digit strings numerically (any length): "9" < "10", "007" == "7".
int compare_numeric(std::string_view a, std::string_view b);

// Readers, one per format (reader_<format>.cpp).
void read_prisma(const ReadOptions& options, MigrationSet& set);
void read_drizzle(const ReadOptions& options, MigrationSet& set);
void read_drizzle1(const ReadOptions& options, MigrationSet& set);
void read_golang_migrate(const ReadOptions& options, MigrationSet& set);
void read_dbmate(const ReadOptions& options, MigrationSet& set);
void read_flyway(const ReadOptions& options, MigrationSet& set);
void read_plain(const ReadOptions& options, MigrationSet& set);

}  // namespace previewdb::migrate::detail
