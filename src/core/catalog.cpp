#include "core/catalog.hpp"

#include <algorithm>
#include <map>

#include "core/registry.hpp"
#include "db/dialect.hpp"
#include "util/log.hpp"

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
    case Group::pool:
      return "Warm pool";
    case Group::other:
      return "Other";
  }
  return "Other";
}

namespace {

// Size needs CONNECT privilege (or pg_read_all_stats); otherwise it is unknown rather than an
// error that would hide the whole list. A managed database's size comes from the registry's cache
// (pg_database_size walks the database's directory: about half a millisecond each, 1,000 previews
// made `list` take half a second) unless exact sizes are asked for. Runs on the registry's
// connection: pg_database is shared. A registry row applies only when oid, name and owner all match
// (a "building" row may also match by name before its oid is known, and under its target name once
// renamed).
const char* k_list_sql = R"SQL(
SELECT d.datname, d.oid, coalesce(o.rolname, d.datdba::text), d.datistemplate, d.datallowconn,
       CASE WHEN $1::bool AND ($3::bool OR r.id IS NULL)
                 AND (has_database_privilege(d.datname, 'CONNECT')
                      OR pg_has_role('pg_read_all_stats', 'MEMBER'))
            THEN pg_database_size(d.oid) END,
       r.kind, r.state, r.name, r.target, r.source, r.repository, r.pr_number,
       to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), r.created_by,
       r.branch, r.snapshot,
       s.size_bytes, to_char(s.measured_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       greatest(0, extract(epoch FROM now() - s.measured_at))::bigint,
       r.mask_rules_sha256
FROM pg_database d
LEFT JOIN pg_roles o ON o.oid = d.datdba
LEFT JOIN LATERAL (
  SELECT * FROM registry.databases r
  WHERE (r.oid = d.oid OR (r.oid IS NULL AND r.state = 'building' AND r.name = d.datname))
    AND d.datdba = r.owner
    AND (d.datname = r.name OR (r.state = 'building' AND d.datname = r.target))
  ORDER BY r.id DESC LIMIT 1) r ON true
LEFT JOIN registry.database_sizes s ON $1::bool AND NOT $3::bool AND r.id IS NOT NULL
                                       AND s.oid = d.oid
WHERE d.datname NOT IN ('template0', 'template1')
  AND ($2::text IS NULL OR d.datname = $2)
ORDER BY d.datname)SQL";

std::optional<Kind> parse_kind(const std::string& k) {
  if (k == "pr") return Kind::pr;
  if (k == "personal") return Kind::personal;
  if (k == "snapshot") return Kind::snapshot;
  if (k == "pool") return Kind::pool;
  return std::nullopt;
}

std::vector<DatabaseInfo> query(db::Connection& maintenance, bool with_sizes, bool exact_sizes,
                                const std::optional<std::string>& name) {
  auto reg = Registry::open(maintenance);
  reg.refresh_once();
  auto r = reg.conn().exec(k_list_sql,
                           {with_sizes ? "true" : "false", name, exact_sizes ? "true" : "false"});
  std::vector<CachedSize> cached;
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
        m.mask_rules_sha256 = r.get_opt(i, 20);
        d.meta = std::move(m);
      }
    }
    if (with_sizes && !exact_sizes && !r.is_null(i, 6)) {
      CachedSize c{.oid = d.oid};
      if (!r.is_null(i, 17)) {
        d.size_bytes = r.get_int(i, 17);
        d.size_as_of = r.get(i, 18);
        c.age = d.size_age = std::chrono::seconds(r.get_int(i, 19));
      }
      cached.push_back(c);
    }
    out.push_back(std::move(d));
  }
  if (auto due = sizes_to_measure(cached, k_size_max_age, k_size_refresh_budget); !due.empty()) {
    // Measured now and cached for the next call; a failure leaves the cached sizes (or none).
    try {
      std::map<long long, long long> fresh;
      for (auto [oid, bytes] : reg.measure_sizes(due)) fresh[oid] = bytes;
      for (auto& d : out) {
        if (auto it = fresh.find(d.oid); it != fresh.end()) {
          d.size_bytes = it->second;
          d.size_as_of.reset();
          d.size_age.reset();
        }
      }
    } catch (const db::QueryError& e) {
      if (e.connection_lost()) throw;
      util::log::debug(std::string("could not measure database sizes: ") + e.what());
    }
  }
  return out;
}

}  // namespace

std::vector<DatabaseInfo> list_databases(db::Connection& conn, bool with_sizes, bool exact_sizes) {
  // CockroachDB (Serverless above all) has no pg_database_size: unknown, shown as "-".
  return query(conn, with_sizes && db::dialect_of(conn).database_sizes, exact_sizes, std::nullopt);
}

std::vector<long long> sizes_to_measure(const std::vector<CachedSize>& cached,
                                        std::chrono::seconds max_age, size_t budget) {
  std::vector<long long> out;
  std::vector<const CachedSize*> stale;
  for (const auto& c : cached) {
    if (!c.age)
      out.push_back(c.oid);
    else if (*c.age > max_age)
      stale.push_back(&c);
  }
  std::stable_sort(stale.begin(), stale.end(), [](auto* a, auto* b) { return *a->age > *b->age; });
  for (size_t i = 0; i < stale.size() && i < budget; ++i) out.push_back(stale[i]->oid);
  return out;
}

std::optional<DatabaseInfo> find_database(db::Connection& conn, const std::string& name) {
  auto r = query(conn, false, false, name);
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
