#include "core/catalog.hpp"

#include <algorithm>

namespace previewdb::core {

std::string to_string(Group g) {
  switch (g) {
    case Group::production:
      return "Production";
    case Group::development:
      return "Development";
    case Group::pr_preview:
      return "PR previews";
    case Group::personal:
      return "Personal";
    case Group::snapshot:
      return "Snapshots";
    case Group::other:
      return "Other";
  }
  return "Other";
}

namespace {

// Size needs CONNECT privilege (or pg_read_all_stats); otherwise it is unknown rather than an
// error that would hide the whole list.
const char* k_list_sql = R"SQL(
SELECT d.datname,
       shobj_description(d.oid, 'pg_database'),
       d.datistemplate,
       d.datallowconn,
       CASE WHEN $1::bool AND (has_database_privilege(d.datname, 'CONNECT')
                               OR pg_has_role('pg_read_all_stats', 'MEMBER'))
            THEN pg_database_size(d.oid) END
FROM pg_database d
WHERE d.datname NOT IN ('template0', 'template1')
  AND ($2::text IS NULL OR d.datname = $2)
ORDER BY d.datname)SQL";

std::vector<DatabaseInfo> query(db::Connection& conn, bool with_sizes,
                                const std::optional<std::string>& name) {
  auto r = conn.exec(k_list_sql, {with_sizes ? "true" : "false", name});
  std::vector<DatabaseInfo> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    DatabaseInfo d;
    d.name = r.get(i, 0);
    if (auto c = r.get_opt(i, 1)) d.meta = parse_comment(*c);
    d.is_template = r.get_bool(i, 2);
    d.allow_connections = r.get_bool(i, 3);
    d.size_bytes = r.is_null(i, 4) ? -1 : r.get_int(i, 4);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

std::vector<DatabaseInfo> list_databases(db::Connection& conn, bool with_sizes) {
  return query(conn, with_sizes, std::nullopt);
}

std::optional<DatabaseInfo> find_database(db::Connection& conn, const std::string& name) {
  auto r = query(conn, false, name);
  if (r.empty()) return std::nullopt;
  return r.front();
}

std::vector<DatabaseInfo> snapshots_of(const std::vector<DatabaseInfo>& all,
                                       const std::string& source) {
  std::vector<DatabaseInfo> out;
  for (const auto& d : all) {
    // A snapshot still being built lives under a temporary name: never offer it.
    if (d.meta && d.meta->kind == Kind::snapshot && d.meta->source == source &&
        d.name.rfind("previewdb_tmp_", 0) != 0) {
      out.push_back(d);
    }
  }
  // Newest first: created_at is ISO-8601 UTC (sorts as text); the name breaks ties.
  std::sort(out.begin(), out.end(), [](const DatabaseInfo& a, const DatabaseInfo& b) {
    if (a.meta->created_at != b.meta->created_at) return a.meta->created_at > b.meta->created_at;
    return a.name > b.name;
  });
  return out;
}

}  // namespace previewdb::core
