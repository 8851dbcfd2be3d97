#include "migrate/parse.hpp"

#include <pg_query.h>

#include <memory>
#include <string>

namespace previewdb::migrate {

std::optional<nlohmann::json> parse_statement(std::string_view sql_view) {
  std::string sql(sql_view);  // NUL-terminated for libpg_query
  PgQueryParseResult r = pg_query_parse(sql.c_str());
  std::unique_ptr<PgQueryParseResult, void (*)(PgQueryParseResult*)> guard(
      &r, [](PgQueryParseResult* p) { pg_query_free_parse_result(*p); });
  if (r.error || !r.parse_tree) return std::nullopt;
  auto tree = nlohmann::json::parse(r.parse_tree, nullptr, false);
  if (!tree.is_object() || !tree.contains("stmts") || !tree["stmts"].is_array() ||
      tree["stmts"].empty()) {
    return std::nullopt;
  }
  auto& stmt = tree["stmts"][0]["stmt"];
  if (!stmt.is_object() || stmt.empty()) return std::nullopt;
  return std::move(stmt);
}

}  // namespace previewdb::migrate
