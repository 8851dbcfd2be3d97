// One statement's parse tree from libpg_query (PostgreSQL's own parser), as JSON: what the lint
// rules read instead of matching text.
#pragma once

#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace previewdb::migrate {

// The statement's node, e.g. {"IndexStmt": {...}} (the first statement when sql holds several);
// nullopt when the parser rejects sql or it holds no statement.
std::optional<nlohmann::json> parse_statement(std::string_view sql);

}  // namespace previewdb::migrate
