#include "core/catalog.hpp"

#include <algorithm>

#include "core/registry.hpp"
#include "db/dialect.hpp"

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
// error that would hide the whole list. Runs on the registry's connection: pg_database is shared.
// A registry row applies only when oid, name and owner all match (a "building" row may also
// match by name before its oid is known, and under its target name once renamed).
const char* k_list_sql = R"SQL(
SELECT d.datname, d.oid, coalesce(o.rolname, d.datdba::text), d.datistemplate, d.datallowconn,
       CASE WHEN $1::bool AND (has_database_privilege(d.datname, 'CONNECT')
                               OR pg_has_role('pg_read_all_stats', 'MEMBER'))
            THEN pg_database_size(d.oid) END,
       r.kind, r.state, r.name, r.target, r.source, r.repository, r.pr_number,
       to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), r.created_by,
       r.branch, r.snapshot
FROM pg_database d
LEFT JOIN pg_roles o ON o.oid = d.datdba
LEFT JOIN LATERAL (
  SELECT * FROM registry.databases r
  WHERE (r.oid = d.oid OR (r.oid IS NULL AND r.state = 'building' AND r.name = d.datname))
    AND d.datdba = r.owner
    AND (d.datname = r.name OR (r.state = 'building' AND d.datname = r.target))
  ORDER BY r.id DESC LIMIT 1) r ON true
WHERE d.datname NOT IN ('template0', 'template1')
  AND ($2::text IS NULL OR d.datname = $2)
ORDER BY d.datname)SQL";

std::optional<Kind> parse_kind(const std::string& k) {
  if (k == "pr") return Kind::pr;
  if (k == "personal") return Kind::personal;
  if (k == "snapshot") return Kind::snapshot;
  return std::nullopt;
}

std::vector<DatabaseInfo> query(db::Connection& maintenance, bool with_sizes,
                                const std::optional<std::string>& name) {
  auto reg = Registry::open(maintenance);
  reg.refresh();
  auto r = reg.conn().exec(k_list_sql, {with_sizes ? "true" : "false", name});
  std::vector<DatabaseInfo> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    DatabaseInfo d;
    d.name = r.get(i, 0);
    d.oid = r.get_int(i, 1);
    d.owner = r.get(i, 2);
    d.is_template = r.get_bool(i, 3);
    d.allow_connections = r.get_bool(i, 4);
    d.size_bytes = r.is_null(i, 5) ? -1 : r.get_int(i, 5);
    if (!r.is_null(i, 6)) {
      if (auto kind = parse_kind(r.get(i, 6))) {
        Metadata m;
        m.kind = *kind;
        // Still under its temporary name: half-made (or left by an interrupted build).
        if (r.get(i, 7) == "building" && d.name == r.get(i, 8)) {
          m.kind = Kind::build;
          d.build_target = r.get(i, 9);
        }
        m.source = r.get_opt(i, 10);
        m.repository = r.get_opt(i, 11);
        if (!r.is_null(i, 12)) m.pr_number = r.get_int(i, 12);
        m.created_at = r.get(i, 13);
        m.created_by = r.get(i, 14);
        m.branch = r.get_opt(i, 15);
        m.snapshot = r.get_opt(i, 16);
        d.meta = std::move(m);
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

std::vector<DatabaseInfo> list_databases(db::Connection& conn, bool with_sizes) {
  // CockroachDB (Serverless above all) has no pg_database_size: unknown, shown as "-".
  return query(conn, with_sizes && db::dialect_of(conn).database_sizes, std::nullopt);
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
