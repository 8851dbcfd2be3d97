#include "snapshot/snapshot.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "core/naming.hpp"
#include "core/registry.hpp"
#include "crypto/sha256.hpp"
#include "db/advisory_lock.hpp"
#include "db/dialect.hpp"
#include "snapshot/cockroach_backups.hpp"
#include "storage/cockroach_url.hpp"
#include "storage/encryption.hpp"
#include "storage/store.hpp"
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

namespace {

const std::string k_dump_dir_prefix = "previewdb-dump-";

// The client sessions on `source` other than ours: what blocks a template copy. Autovacuum and
// background workers are not users (CREATE DATABASE ends autovacuum itself).
std::vector<std::string> client_sessions(db::Connection& conn, const std::string& source,
                                         std::vector<int>* pids = nullptr) {
  auto r = conn.exec(
      "SELECT pid, coalesce(usename::text, '?'), coalesce(nullif(application_name, ''), '?'), "
      "coalesce(host(client_addr), 'local') FROM pg_stat_activity "
      "WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
      "ORDER BY pid",
      {source});
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back("pid " + r.get(i, 0) + " (user " + r.get(i, 1) + ", application " +
                  util::quoted(r.get(i, 2)) + ", client " + r.get(i, 3) + ")");
    if (pids) pids->push_back(static_cast<int>(r.get_int(i, 0)));
  }
  return out;
}

// Copies the source as a template (fast) when no client session uses it, after waiting for
// them (wait_idle) or ending them (terminate_sessions) when asked. Returns false when it stays
// busy, so the caller copies it online instead.
bool copy_as_template(db::Connection& conn, const SnapshotRequest& req, const std::string& temp,
                      const core::ClonePlan& plan) {
  auto sessions = client_sessions(conn, req.source);
  if (!sessions.empty() && req.wait_idle.count() > 0) {
    util::log::info("waiting up to " + std::to_string(req.wait_idle.count()) +
                    "s (--wait-idle) for the sessions on " + util::quoted(req.source) +
                    " to end: " + util::join(sessions, "; "));
    auto deadline = std::chrono::steady_clock::now() + req.wait_idle;
    while (!sessions.empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      sessions = client_sessions(conn, req.source);
    }
  }
  if (!sessions.empty() && req.terminate_sessions) {
    std::vector<int> pids;
    sessions = client_sessions(conn, req.source, &pids);
    util::log::warn("ending the sessions on " + util::quoted(req.source) +
                    " (--terminate-sessions): " + util::join(sessions, "; "));
    for (int pid : pids) conn.exec("SELECT pg_terminate_backend($1::int)", {std::to_string(pid)});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    do {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      sessions = client_sessions(conn, req.source);
    } while (!sessions.empty() && std::chrono::steady_clock::now() < deadline);
  }
  if (sessions.empty()) {
    try {
      // The server itself waits 5 s for stragglers before failing with 55006.
      auto started = std::chrono::steady_clock::now();
      conn.exec("CREATE DATABASE " + conn.quote_ident(temp) + " TEMPLATE " +
                conn.quote_ident(req.source) + plan.clause);
      // Evidence for the next clone's strategy, as spawn's clones are.
      core::record_clone(
          conn, plan,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      return true;
    } catch (const db::QueryError& e) {
      if (e.sqlstate() != "55006") throw;  // object_in_use: a session arrived meanwhile
      sessions = client_sessions(conn, req.source);
    }
  }
  util::log::info(util::quoted(req.source) + " is in use" +
                  (sessions.empty() ? "" : " by " + util::join(sessions, "; ")) +
                  "; copying it online with pg_dump | pg_restore (slower)");
  if (!req.wait_idle.count() && !req.terminate_sessions) {
    util::log::info(
        "hint: --wait-idle 30s waits for them, --terminate-sessions ends them, for the fast "
        "template copy");
  }
  return false;
}

}  // namespace

namespace {

// CockroachDB: no template databases, so a snapshot is a full BACKUP of the source into the
// source's collection, s3://BUCKET/PREFIX/<source> (a dated subdirectory per backup); spawn
// restores one of them (or the newest) under the preview's name. The cluster's nodes write it.
SnapshotResult backup_snapshot(db::Connection& conn, const SnapshotRequest& req,
                               const db::Dialect& dialect) {
  if (!req.store_url) {
    throw usage_error(std::string(dialect.name) +
                          " has no template databases: a snapshot is a BACKUP into an s3:// store",
                      "pass --to s3://BUCKET/PREFIX");
  }
  if (req.encrypt) {
    throw usage_error("--encrypt encrypts previewdb's own archives; a " +
                          std::string(dialect.name) + " BACKUP is written by the cluster",
                      "drop --encrypt (use the bucket's server-side encryption)");
  }
  if (conn.exec("SELECT 1 FROM pg_database WHERE datname = $1", {req.source}).rows() == 0) {
    throw Error(ExitCode::not_found,
                "cannot snapshot " + util::quoted(req.source) + ": database does not exist",
                {"run 'previewdb list' to see the databases, or create " + req.source + " first"});
  }
  SnapshotResult result;
  result.id = snapshot_name(req.source, util::compact_timestamp(std::chrono::system_clock::now()));
  std::string collection = cockroach_collection(*req.store_url, req.source);
  std::string url = storage::cockroach_storage_url(collection, "", req.store_options);
  db::exec_redacted(conn, db::cockroach::backup_database(req.source, url));
  result.method = "BACKUP";
  // The backup just written is the newest of the collection: its own reference, so a spawn from
  // it restores this one even after later backups.
  auto backups = list_cockroach_backups(conn, *req.store_url, req.source, req.store_options);
  result.archive = backups.empty() ? collection : backups.front().reference;
  result.snapshots_of_source = std::max<size_t>(1, backups.size());
  return result;
}

}  // namespace

SnapshotResult create_snapshot(db::Connection& conn, const SnapshotRequest& req) {
  core::validate_name(req.source, "source database");
  if (const auto& dialect = db::dialect_of(conn); !dialect.template_databases) {
    return backup_snapshot(conn, req, dialect);
  }
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
  core::require_createdb(conn);
  core::remove_stale_temporaries(conn);

  // --to: a bad URL is rejected before any work, and dumps that a killed previewdb left behind
  // are removed.
  std::unique_ptr<storage::SnapshotStore> store;
  if (req.encrypt && !req.store_url) {
    throw usage_error("--encrypt encrypts the archive written with --to, and there is none",
                      "add --to file://DIR or --to s3://BUCKET/PREFIX");
  }
  if (req.encrypt && !req.store_options.encryption_key) {
    throw usage_error("--encrypt needs a key",
                      "set PREVIEWDB_ENCRYPTION_KEY (32 bytes, hex or base64: 'openssl rand -hex "
                      "32') or pass --encryption-key-file FILE");
  }
  if (req.store_url) {
    store = storage::open_store(*req.store_url, req.store_options);
    util::remove_orphaned_temp_dirs(k_dump_dir_prefix);
  }

  SnapshotResult result;
  auto reg = core::Registry::open(conn);
  std::string temp = core::temp_database_name();
  db::AdvisoryLock build_lock(conn, core::build_lock_key(temp), std::chrono::seconds(5), temp);
  auto now = std::chrono::system_clock::now();
  core::Metadata meta;
  meta.kind = core::Kind::snapshot;
  meta.created_at = util::to_iso8601(now);
  meta.created_by = req.created_by;
  meta.source = req.source;
  if (req.mask) meta.mask_rules_sha256 = req.mask->rules_sha256;
  // Registered before it exists; a snapshot only because the registry says so.
  long long row =
      reg.begin_build(temp, snapshot_name(req.source, util::compact_timestamp(now)), meta);
  std::unique_ptr<storage::ArchiveWriter> archive;  // streamed into the store, published at naming
  try {
    auto plan = core::plan_clone(conn, req.strategy, req.source);
    if (copy_as_template(conn, req, temp, plan)) {
      reg.built(row, temp);
      result.method = "template (" + plan.keyword + ")";
    } else {
      conn.exec("CREATE DATABASE " + conn.quote_ident(temp) + " TEMPLATE template0");
      reg.built(row, temp);
      storage::copy_online(req.conninfo, req.source, temp);
      result.method = "pg_dump | pg_restore (source busy)";
    }
    if (req.mask) {
      // The copy only: the source is never written. Before the dump and before freezing.
      auto copy = db::Connection::open({.conninfo = req.conninfo, .dbname = temp});
      result.masking = mask::apply(copy, *req.mask, req.source);
    }
    if (store) {
      // Dumped now, while the copy still accepts connections, streamed into the store (no local
      // copy: an s3:// upload is bounded by one part); invisible until published below.
      archive = store->begin_archive(snapshot_name(req.source, util::compact_timestamp(now)));
      if (req.encrypt) {
        archive = storage::encrypting_writer(std::move(archive), *req.store_options.encryption_key);
      }
      storage::dump_to(req.conninfo, temp, *archive);
    }
    conn.exec("ALTER DATABASE " + conn.quote_ident(temp) + " ALLOW_CONNECTIONS false");
    conn.exec("ALTER DATABASE " + conn.quote_ident(temp) + " IS_TEMPLATE true");
    conn.exec("COMMENT ON DATABASE " + conn.quote_ident(temp) + " IS " +
              conn.quote_literal(core::to_comment(meta)));
    // Name it last: two snapshots in the same second get _2, _3, ... The archive is stored
    // under that name before the rename, so a snapshot that exists always has its archive
    // (all or nothing: a failed write leaves neither).
    std::string base = snapshot_name(req.source, util::compact_timestamp(now));
    for (int attempt = 1;; ++attempt) {
      if (attempt > 9) throw Error(ExitCode::failure, "cannot name snapshot " + base);
      std::string id = attempt == 1 ? base : base + "_" + std::to_string(attempt);
      if (core::find_database(conn, id)) continue;
      if (archive) archive->publish(id, core::to_comment(meta));
      reg.retarget(row, id);
      if (conn.try_exec(
              "ALTER DATABASE " + conn.quote_ident(temp) + " RENAME TO " + conn.quote_ident(id), {},
              "42P04")) {
        reg.finished(row, id);
        result.id = id;
        break;
      }
      if (archive) archive->unpublish();  // someone took the name meanwhile
    }
  } catch (...) {
    core::drop_temporary(conn, temp);
    try {
      reg.remove_row(row);
    } catch (const std::exception& e) {
      util::log::warn("could not update " + std::string(core::k_registry_database) + ": " +
                      e.what());
    }
    if (archive) {
      try {
        archive->unpublish();
        archive.reset();  // removes what was stored
      } catch (const std::exception& e) {
        util::log::warn("could not remove the archive of the failed snapshot: " +
                        std::string(e.what()));
      }
    }
    throw;
  }
  if (store) result.archive = store->describe() + "/" + result.id + ".dump";
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

ArchivePrunePlan plan_archive_prune(std::vector<storage::ArchiveInfo> all, size_t keep,
                                    const std::optional<std::string>& source) {
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    if (a.source != b.source) return a.source < b.source;
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
  });
  ArchivePrunePlan plan;
  std::map<std::string, size_t> seen;
  for (auto& a : all) {
    if (source && a.source != *source) continue;
    (seen[a.source]++ < keep ? plan.keep : plan.drop).push_back(std::move(a));
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

SnapshotReader::SnapshotReader(db::Connection& maintenance, const std::string& conninfo,
                               const std::string& snapshot_id, std::chrono::seconds lock_timeout)
    : m_maintenance(maintenance), m_id(snapshot_id) {
  m_lock.emplace(maintenance, core::spawn_lock_key(snapshot_id), lock_timeout,
                 "snapshot " + util::quoted(snapshot_id));
  auto info = core::find_database(maintenance, snapshot_id);
  if (!info) {
    throw Error(ExitCode::not_found,
                "the snapshot " + util::quoted(snapshot_id) + " does not exist");
  }
  if (!info->managed() || info->meta->kind != core::Kind::snapshot) {
    throw Error(ExitCode::refused,
                util::quoted(snapshot_id) + " is not a snapshot previewdb made; not opening it");
  }
  // While connections are allowed nobody else may come in: a clone does not inherit the
  // snapshot's database privileges, so PUBLIC's CONNECT and TEMPORARY are revoked for good (the
  // owner keeps its own; superusers are beyond any such rule).
  maintenance.exec("REVOKE CONNECT, TEMPORARY ON DATABASE " + maintenance.quote_ident(snapshot_id) +
                   " FROM PUBLIC");
  maintenance.exec("ALTER DATABASE " + maintenance.quote_ident(snapshot_id) +
                   " ALLOW_CONNECTIONS true");
  try {
    m_conn.emplace(db::Connection::open({.conninfo = conninfo, .dbname = snapshot_id}));
    m_conn->exec("SET default_transaction_read_only = on");
  } catch (...) {
    maintenance.exec("ALTER DATABASE " + maintenance.quote_ident(snapshot_id) +
                     " ALLOW_CONNECTIONS false");
    throw;
  }
}

SnapshotReader::~SnapshotReader() {
  m_conn.reset();
  try {
    m_maintenance.exec("ALTER DATABASE " + m_maintenance.quote_ident(m_id) +
                       " ALLOW_CONNECTIONS false");
  } catch (const std::exception& e) {
    util::log::warn("could not disallow connections to the snapshot " + util::quoted(m_id) +
                    " again: " + e.what() + "; run ALTER DATABASE " + util::quoted(m_id) +
                    " ALLOW_CONNECTIONS false");
  }
}

}  // namespace previewdb::snapshot
