// Splitting SQL into statements with libpg_query (PostgreSQL's own scanner and parser), so that
// dollar quotes, comments, E'' strings and BEGIN ATOMIC bodies never split a statement.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "migrate/migration.hpp"

namespace previewdb::migrate {

struct SplitResult {
  std::vector<Statement> statements;
  // Set when the parser rejected the text; statements then come from the scanner.
  std::optional<SyntaxError> error;
};

// Splits sql into statements, each with its line (line 1 of sql is first_line in the file) and
// classified (no_transaction, control). Empty statements and comment-only text yield nothing.
SplitResult split_statements(std::string_view sql, int first_line = 1);

// Chooses how the runner executes a migration from its statements: a transaction, the file's
// own BEGIN ... COMMIT, or statement by statement. An explicit opt-out (dbmate
// transaction:false, "-- previewdb:no-transaction") is passed as forced_reason.
void choose_mode(Migration& migration, const std::string& forced_reason = {});

// The marker that makes previewdb run a file outside a transaction.
inline constexpr std::string_view k_no_transaction_marker = "-- previewdb:no-transaction";

// The 1-based line of a byte offset in text.
int line_of_offset(std::string_view text, size_t offset);
// The byte offset of a 1-based character position (PostgreSQL error positions count characters).
size_t byte_offset_of_char(std::string_view text, size_t char_position);

}  // namespace previewdb::migrate
