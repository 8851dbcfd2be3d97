#include "snapshot/snapshot.hpp"

#include <algorithm>
#include <map>

#include "core/naming.hpp"
#include "crypto/sha256.hpp"
#include "db/advisory_lock.hpp"
#include "snapshot/store.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace previewdb::snapshot {

std::string snapshot_name(const std::string& source, const std::string& timestamp) {
  std::string base = source;
  const size_t room = core::k_max_name_bytes - 5 - 1 - timestamp.size() - 2;  // "_N" suffix room
  if (base.size() > room)
    base = base.substr(0, room - 9) + "_" + crypto::sha256_hex(source).substr(0, 8);
  return "snap_" + base + "_" + timestamp;
}

SnapshotResult create_snapshot(db::Connection& conn, const SnapshotRequest& req) {
  core::validate_name(req.source, "source database");
  auto all = core::list_databases(conn);
  auto src = std::find_if(all.begin(), all.end(), [&](auto& d) { return d.name == req.source; });
  if (src == all.end()) {
    throw Error(ExitCode::not_found,
                "cannot snapshot " + util::quoted(req.source) + ": database does not exist",
                {"run 'previewdb list' to see the databases, or create " + req.source + " first"});
  }
  if (src->meta && src->meta->kind == core::Kind::snapshot) {
    throw usage_error(
        util::quoted(req.source) + " is itself a snapshot",
        "snapshot the database it was taken of: " + src->meta->source.value_or("dev"));
  }
  core::remove_stale_temporaries(conn);

  SnapshotResult result;
  std::string temp = core::temp_database_name();
  db::AdvisoryLock build_lock(conn, core::build_lock_key(temp), std::chrono::seconds(5), temp);
  auto now = std::chrono::system_clock::now();
  core::Metadata meta;
  meta.kind = core::Kind::snapshot;
  meta.created_at = util::to_iso8601(now);
  meta.created_by = req.created_by;
  meta.source = req.source;
  try {
    std::string chosen;
    std::string clause = core::strategy_clause(conn, req.strategy, req.source, &chosen);
    // CREATE DATABASE ... TEMPLATE needs the source to have no other sessions; when it has
    // some, the server retries for 5 s before failing (55006), so look first.
    bool busy = conn.exec(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                        "pg_backend_pid()",
                        {req.source})
                    .get_int(0, 0) > 0;
    if (!busy) {
      try {
        conn.exec("CREATE DATABASE " + conn.quote_ident(temp) + " TEMPLATE " +
                  conn.quote_ident(req.source) + clause);
        result.method = "template (" + chosen + ")";
      } catch (const db::QueryError& e) {
        if (e.sqlstate() != "55006") throw;  // object_in_use: a session arrived meanwhile
        busy = true;
      }
    }
    if (busy) {
      util::log::info(util::quoted(req.source) +
                      " has other sessions; copying it online with pg_dump | pg_restore");
      conn.exec("CREATE DATABASE " + conn.quote_ident(temp) + " TEMPLATE template0");
      copy_online(req.conninfo, req.source, temp);
      result.method = "pg_dump | pg_restore (source busy)";
    }
    if (req.store_url) {
      open_store(*req.store_url);  // reject a bad URL before the slow dump
      // Dumped now, while the copy still accepts connections; stored once it has its name.
      auto archive = std::filesystem::temp_directory_path() / (temp + ".dump");
      result.archive = archive.string();
      dump_archive(req.conninfo, temp, archive);
    }
    conn.exec("ALTER DATABASE " + conn.quote_ident(temp) + " ALLOW_CONNECTIONS false");
    conn.exec("ALTER DATABASE " + conn.quote_ident(temp) + " IS_TEMPLATE true");
    conn.exec("COMMENT ON DATABASE " + conn.quote_ident(temp) + " IS " +
              conn.quote_literal(core::to_comment(meta)));
    // Name it last: two snapshots in the same second get _2, _3, ...
    std::string base = snapshot_name(req.source, util::compact_timestamp(now));
    for (int attempt = 1;; ++attempt) {
      std::string id = attempt == 1 ? base : base + "_" + std::to_string(attempt);
      if (conn.try_exec(
              "ALTER DATABASE " + conn.quote_ident(temp) + " RENAME TO " + conn.quote_ident(id), {},
              "42P04")) {
        result.id = id;
        break;
      }
      if (attempt >= 9) throw Error(ExitCode::failure, "cannot name snapshot " + base);
    }
  } catch (...) {
    core::drop_temporary(conn, temp);
    if (result.archive) std::filesystem::remove(*result.archive);
    throw;
  }
  if (req.store_url && result.archive) {
    auto store = open_store(*req.store_url);
    std::filesystem::path archive = *result.archive;
    try {
      store->put(result.id, archive, core::to_comment(meta));
    } catch (...) {
      std::filesystem::remove(archive);
      throw;
    }
    std::filesystem::remove(archive);
    result.archive = store->describe() + "/" + result.id + ".dump";
  }
  result.snapshots_of_source = core::snapshots_of(core::list_databases(conn), req.source).size();
  return result;
}

PrunePlan plan_prune(const std::vector<core::DatabaseInfo>& all, size_t keep,
                     const std::optional<std::string>& source) {
  std::map<std::string, bool> sources;
  for (const auto& d : all) {
    if (d.meta && d.meta->kind == core::Kind::snapshot && d.meta->source) {
      sources[*d.meta->source] = true;
    }
  }
  PrunePlan plan;
  for (const auto& [s, _] : sources) {
    if (source && s != *source) continue;
    auto snaps = core::snapshots_of(all, s);
    for (size_t i = 0; i < snaps.size(); ++i) {
      (i < keep ? plan.keep : plan.drop).push_back(snaps[i]);
    }
  }
  return plan;
}

std::optional<SnapshotResult> ensure_first_snapshot(db::Connection& maintenance,
                                                    const SnapshotRequest& request,
                                                    std::chrono::seconds timeout) {
  if (!core::snapshots_of(core::list_databases(maintenance), request.source).empty()) {
    return std::nullopt;
  }
  db::AdvisoryLock lock(maintenance, "previewdb:first-snapshot:" + request.source, timeout,
                        "the first snapshot of " + util::quoted(request.source));
  // Another run may have taken it while this one waited.
  if (!core::snapshots_of(core::list_databases(maintenance), request.source).empty()) {
    return std::nullopt;
  }
  return create_snapshot(maintenance, request);
}

}  // namespace previewdb::snapshot
