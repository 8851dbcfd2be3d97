// Table sizes for grading, from the catalog of the database the migrations will run against.
#include "db/connection.hpp"
#include "lint/lint.hpp"

namespace previewdb::lint {

std::map<std::string, TableSize> table_sizes(db::Connection& connection,
                                             const std::set<std::string>& tables) {
  std::map<std::string, TableSize> out;
  if (tables.empty()) return out;
  nlohmann::json wanted = nlohmann::json::array();
  for (const auto& t : tables) {
    auto dot = t.find('.');
    if (dot == std::string::npos) continue;
    wanted.push_back({t.substr(0, dot), t.substr(dot + 1)});
  }
  // The names travel as one JSON parameter: no identifier is ever spliced into the SQL.
  auto r = connection.exec(
      "SELECT n.nspname, c.relname, pg_total_relation_size(c.oid), c.reltuples::float8 "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN jsonb_array_elements($1::jsonb) w ON n.nspname = w->>0 AND c.relname = w->>1 "
      "WHERE c.relkind IN ('r', 'p', 'm')",
      {wanted.dump()});
  for (int i = 0; i < r.rows(); ++i) {
    TableSize s;
    s.bytes = r.get_int(i, 2);
    s.rows = std::stod(r.get(i, 3));
    out[r.get(i, 0) + "." + r.get(i, 1)] = s;
  }
  return out;
}

}  // namespace previewdb::lint
