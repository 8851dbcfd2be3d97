#include "core/lifecycle.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/catalog.hpp"
#include "core/naming.hpp"
#include "core/pool.hpp"
#include "core/registry.hpp"
#include "crypto/random.hpp"
#include "db/advisory_lock.hpp"
#include "db/dialect.hpp"
#include "storage/cockroach_url.hpp"
#include "storage/store.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace previewdb::core {

namespace {

// Databases are built under this prefix and renamed when complete: nothing under the target
// name ever looks ready before it is.
const std::string k_temp_prefix = "previewdb_tmp_";

}  // namespace

ClonePlan plan_clone(db::Connection& conn, CloneStrategy strategy, const std::string& from) {
  ClonePlan plan;
  auto r = conn.exec(
      "SELECT pg_database_size(oid), pg_size_bytes(current_setting('max_wal_size')), oid "
      "FROM pg_database WHERE datname = $1",
      {from});
  if (r.rows()) {
    plan.size_bytes = r.get_int(0, 0);
    plan.template_oid = r.get_int(0, 2);
  }
  if (conn.server_version() < 150000) {
    plan.keyword = "FILE_COPY";
    plan.reason = "the only strategy before PostgreSQL 15";
    return plan;
  }
  if (strategy != CloneStrategy::automatic) {
    plan.keyword = strategy_keyword(strategy);
    plan.reason = "asked for (--strategy, PREVIEWDB_CLONE_STRATEGY or strategy in previewdb.json)";
  } else {
    ServerHints hints;
    if (r.rows()) hints.max_wal_size_bytes = r.get_int(0, 1);
    std::vector<CloneSample> samples;
    long long next = 0;
    try {
      samples = Registry::open(conn).clone_samples_near(plan.size_bytes, &next);
    } catch (const std::exception& e) {
      // Evidence helps; its absence never stops a clone.
      util::log::debug(std::string("clone samples unavailable: ") + e.what());
    }
    auto choice = choose_clone_strategy(samples, plan.size_bytes, next, hints);
    plan.keyword = strategy_keyword(choice.strategy);
    plan.reason = choice.reason;
  }
  plan.clause = " STRATEGY " + plan.keyword;
  return plan;
}

void record_clone(db::Connection& conn, const ClonePlan& plan, double seconds) {
  auto strategy = strategy_from_keyword(plan.keyword);
  if (!strategy || plan.clause.empty() || plan.size_bytes <= 0) return;
  try {
    Registry::open(conn).record_clone_sample(
        {.strategy = *strategy, .size_bytes = plan.size_bytes, .seconds = seconds});
  } catch (const std::exception& e) {
    util::log::warn(std::string("could not record the clone's duration in ") + k_registry_database +
                    ": " + e.what());
  }
}

std::string strategy_clause(db::Connection& conn, CloneStrategy strategy, const std::string& from,
                            std::string* chosen) {
  auto plan = plan_clone(conn, strategy, from);
  *chosen = plan.keyword;
  return plan.clause;
}

namespace {

// A snapshot store URL (file://, s3://, ...) rather than the name of a snapshot database.
bool is_file_snapshot(const std::string& id) {
  return id.find("://") != std::string::npos;
}

// The run's lock timeout (the maintenance session's limits), else 10 minutes.
std::chrono::seconds name_lock_timeout(const db::Connection& conn) {
  if (!conn.limits()) return std::chrono::minutes(10);
  return std::max(std::chrono::seconds(1),
                  std::chrono::duration_cast<std::chrono::seconds>(conn.limits()->lock_timeout));
}

bool same_owner(const Metadata& existing, const Metadata& wanted) {
  if (existing.kind != wanted.kind) return false;
  if (wanted.kind == Kind::pr) return existing.pr_number == wanted.pr_number;
  return existing.created_by == wanted.created_by;
}

}  // namespace

void drop_temporary(db::Connection& conn, const std::string& name) {
  try {
    const auto& dialect = db::dialect_of(conn);
    // A half-made snapshot may already be a template, which DROP refuses.
    if (dialect.template_databases) {
      conn.exec("ALTER DATABASE " + conn.quote_ident(name) + " IS_TEMPLATE false");
    }
    conn.exec(dialect.drop_database(name, /*if_exists=*/true));
  } catch (const std::exception& e) {
    util::log::warn("could not remove temporary database " + name + ": " + e.what());
  }
}

void abandon_build(db::Connection& conn, Registry& reg, const std::string& temp, long long row) {
  drop_temporary(conn, temp);
  try {
    reg.remove_row(row);
  } catch (const std::exception& e) {
    util::log::warn("could not update " + std::string(k_registry_database) + ": " + e.what());
  }
}

std::string temp_database_name() {
  return k_temp_prefix + crypto::random_hex(8);
}
bool is_temp_database_name(const std::string& name) {
  return name.rfind(k_temp_prefix, 0) == 0;
}
std::string build_lock_key(const std::string& temp) {
  return "previewdb:build:" + temp;
}
std::string spawn_lock_key(const std::string& name) {
  return "previewdb:spawn:" + name;
}

CloneStrategy parse_clone_strategy(const std::string& s) {
  std::string v = util::to_lower(s);
  if (v == "auto" || v.empty()) return CloneStrategy::automatic;
  if (v == "wal_log" || v == "wal-log") return CloneStrategy::wal_log;
  if (v == "file_copy" || v == "file-copy") return CloneStrategy::file_copy;
  throw usage_error("invalid clone strategy " + util::quoted(s),
                    "use --strategy auto, wal_log or file_copy");
}

void require_createdb(db::Connection& conn) {
  auto r = conn.exec(
      "SELECT current_user::text, coalesce((SELECT rolcreatedb OR rolsuper FROM pg_roles "
      "WHERE rolname = current_user), false)");
  if (r.get_bool(0, 1)) return;
  std::string role = r.get(0, 0);
  throw Error(ExitCode::refused,
              "role " + util::quoted(role) +
                  " may not create databases (it has neither CREATEDB nor SUPERUSER)",
              {"as a superuser (or a role with ADMIN on it), run: ALTER ROLE " +
               conn.quote_ident(role) + " CREATEDB;"});
}

void remove_stale_temporaries(db::Connection& conn) {
  remove_stale_temporaries(conn, list_databases(conn));
}

void remove_stale_temporaries(db::Connection& conn, const std::vector<DatabaseInfo>& all) {
  std::optional<Registry> reg;
  for (const auto& d : all) {
    if (!is_temp_database_name(d.name)) continue;
    // Only builds previewdb registered: anyone may name a database previewdb_tmp_*.
    if (!d.meta || d.meta->kind != Kind::build) {
      util::log::debug("leaving " + d.name + " alone: previewdb did not create it (owned by " +
                       d.owner + ")");
      continue;
    }
    std::string key = build_lock_key(d.name);
    // The builder holds this lock while it works; if we get it, the builder is gone.
    if (!db::AdvisoryLock::try_lock(conn, key)) continue;
    // The list is older than the lock: a builder that finished meanwhile renamed it (same oid)
    // and released the lock. Forgetting that oid would unregister the finished database.
    auto now = find_database(conn, d.name);
    if (!now || now->oid != d.oid || !now->meta || now->meta->kind != Kind::build) {
      db::AdvisoryLock::unlock(conn, key);
      continue;
    }
    util::log::info("removing " + d.name +
                    ", left behind by an interrupted previewdb (a build of " +
                    d.build_target.value_or("?") + ")");
    drop_temporary(conn, d.name);
    try {
      if (!reg) reg.emplace(Registry::open(conn));
      reg->forget_oid(d.oid);
    } catch (const std::exception& e) {
      util::log::warn("could not update " + std::string(k_registry_database) + ": " + e.what());
    }
    db::AdvisoryLock::unlock(conn, key);
  }
}

namespace {

// The use key taken exclusively for a drop: refused while a running build holds it shared
// (hold_database), released when this goes (the name lock keeps new holds out meanwhile only
// for as long as this lives).
class ExclusiveUse {
 public:
  ExclusiveUse(db::Connection& conn, std::string key) : m_conn(conn), m_key(std::move(key)) {
    m_held = db::AdvisoryLock::try_lock(m_conn, m_key);
  }
  ~ExclusiveUse() {
    if (!m_held) return;
    try {
      db::AdvisoryLock::unlock(m_conn, m_key);
    } catch (...) {
      // The session ends soon; the server releases it then.
    }
  }
  ExclusiveUse(const ExclusiveUse&) = delete;
  ExclusiveUse& operator=(const ExclusiveUse&) = delete;
  bool held() const { return m_held; }

 private:
  db::Connection& m_conn;
  std::string m_key;
  bool m_held = false;
};

// Who holds the use lock of `name` (the build that is using it), for the refusal message.
std::string describe_use_holder(db::Connection& conn, const std::string& name) {
  std::string holder = db::AdvisoryLock::describe_holder(conn, use_lock_key(name));
  return "in use by a running build" + (holder.empty() ? "" : ": " + holder);
}

}  // namespace

SpawnResult spawn(db::Connection& conn, const SpawnRequest& req, const Protection& protection) {
  validate_name(req.name);
  if (is_pool_name(req.name)) {
    throw usage_error("invalid database name " + util::quoted(req.name) + ": names starting with " +
                          std::string(k_pool_prefix) + " are reserved for previewdb's warm pool",
                      "choose another name");
  }
  const auto& dialect = db::dialect_of(conn);
  // The name lock first: every decision below comes from one catalog read made under it.
  db::AdvisoryLock name_lock(conn, spawn_lock_key(req.name), name_lock_timeout(conn),
                             "database " + util::quoted(req.name),
                             /*free_slot_while_waiting=*/true);
  const auto all = list_databases(conn);
  if (auto why = protection.reason(req.name, all)) {
    throw Error(ExitCode::refused,
                "refusing to create database " + util::quoted(req.name) + ": it is protected (" +
                    *why + ")",
                {"choose another name"});
  }
  remove_stale_temporaries(conn, all);

  SpawnResult result;
  result.name = req.name;
  std::optional<DatabaseInfo> existing;
  for (const auto& d : all) {
    if (d.name == req.name) existing = d;
  }
  if (existing) {
    if (req.if_exists == IfExists::fail) {
      throw Error(ExitCode::already_exists,
                  "cannot create database " + util::quoted(req.name) + ": database " +
                      util::quoted(req.name) + " already exists",
                  {"run 'previewdb cleanup " + req.name + "' or pass --reuse (or --replace)"});
    }
    if (!existing->managed() || existing->meta->kind == Kind::build) {
      throw Error(ExitCode::refused,
                  "database " + util::quoted(req.name) +
                      " already exists and is not managed by previewdb (owned by role " +
                      util::quoted(existing->owner) +
                      ", and previewdb's registry has no record of it under this name and owner); "
                      "refusing to " +
                      (req.if_exists == IfExists::reuse ? "reuse" : "replace") + " it",
                  {"choose another name, or drop it yourself if it is really disposable"});
    }
    if (!same_owner(*existing->meta, req.meta)) {
      throw Error(
          ExitCode::refused,
          "database " + util::quoted(req.name) + " already exists and belongs to " +
              (existing->meta->pr_number ? "PR #" + std::to_string(*existing->meta->pr_number)
               : existing->meta->created_by.empty() ? "someone else"
                                                    : existing->meta->created_by),
          {"choose another name with --name"});
    }
    const auto& theirs = existing->meta->repository;
    const auto& ours = req.meta.repository;
    if (ours && theirs && *ours != *theirs) {
      throw Error(ExitCode::refused,
                  "database " + util::quoted(req.name) + " is the preview of " + *theirs +
                      (existing->meta->pr_number ? " #" + std::to_string(*existing->meta->pr_number)
                                                 : std::string()) +
                      ", not of " + *ours + "; refusing to reuse or replace it",
                  {"several repositories share this server: give previews distinct names with a "
                   "name template, e.g. --name-template 'pr_{repo}_{pr}' "
                   "(PREVIEWDB_NAME_TEMPLATE, or name_template in previewdb.json)"});
    }
    if (ours && !theirs) {
      // Made before repositories were recorded: the first repository that claims it adopts it.
      Registry::open(conn).set_repository(existing->oid, *ours);
      util::log::info(req.name + " had no repository recorded (made by an earlier previewdb); " +
                      "adopted into " + *ours);
    }
    if (req.if_exists == IfExists::reuse) {
      result.created = false;
      result.snapshot = existing->meta->snapshot.value_or("");
      return result;
    }
  }
  // Replacing drops the database: not from under a running build (`ci -- CMD` holds it shared
  // while CMD runs). Refused at once, before anything is built; held exclusively until the end,
  // so no build starts on it meanwhile.
  std::optional<ExclusiveUse> exclusive_use;
  if (existing) {
    exclusive_use.emplace(conn, use_lock_key(req.name));
    if (!exclusive_use->held()) {
      throw Error(ExitCode::refused,
                  "refusing to replace database " + util::quoted(req.name) + ": it is " +
                      describe_use_holder(conn, req.name),
                  {"run again when that build has finished (its hold ends with it)"});
    }
  }

  // The role's CREATEDB was read with the registry's owner check (once per session); the
  // query that names the missing grant runs only when it is missing.
  auto reg = Registry::open(conn);
  if (!reg.may_create_databases()) require_createdb(conn);
  // Which snapshot.
  std::string snapshot_id;
  long long snapshot_oid = 0;
  if (req.empty) {
    // No snapshot: an empty database that `prepare` fills.
  } else if (req.snapshot) {
    snapshot_id = *req.snapshot;
    if (!dialect.template_databases) {
      // CockroachDB: a BACKUP collection or one backup of it; a bad URL is refused before any
      // change.
      storage::cockroach_storage_url(db::cockroach::split_backup_reference(snapshot_id).collection,
                                     "", req.store_options);
    } else if (is_file_snapshot(snapshot_id)) {
      // An unsupported scheme or missing settings are refused before any change.
      storage::open_store(snapshot_id, req.store_options);
    } else {
      auto snap = std::find_if(all.begin(), all.end(),
                               [&](const DatabaseInfo& d) { return d.name == snapshot_id; });
      if (snap == all.end() || !snap->meta || snap->meta->kind != Kind::snapshot) {
        throw Error(ExitCode::not_found, "no snapshot " + util::quoted(snapshot_id) + " found",
                    {"run 'previewdb snapshot list' to see the snapshots"});
      }
      snapshot_oid = snap->oid;
    }
  } else if (!dialect.template_databases) {
    throw Error(ExitCode::not_found,
                std::string(dialect.name) +
                    " has no template databases: previews are restored "
                    "from a BACKUP, and no snapshot collection was named",
                {"take one with 'previewdb snapshot " + req.source +
                 " --to s3://BUCKET/PREFIX' and pass the printed s3:// location as --snapshot"});
  } else {
    auto snaps = snapshots_of(all, req.source);
    if (snaps.empty()) {
      throw Error(ExitCode::not_found, "no snapshot of '" + req.source + "' found",
                  {"run 'previewdb snapshot " + (req.source == "dev" ? "" : req.source + " ") +
                   "' first (the snapshot is the template every preview is cloned from)"});
    }
    snapshot_id = snaps.front().name;
    snapshot_oid = snaps.front().oid;
  }
  result.snapshot = snapshot_id;
  // The warm pool: a ready clone of this very snapshot, taken by rename (no copy at all).
  if (req.use_pool && !existing && !req.empty && !req.snapshot && !req.prepare) {
    if (take_from_pool(conn, all, req.source, snapshot_id, req.name, req.meta)) {
      result.created = true;
      result.pooled = true;
      result.strategy = "pool";
      return result;
    }
  }
  // Held while cloning: a prune (drop_database takes the same lock) never drops the snapshot
  // under a running clone. Re-checked once held (the clone plan reads its oid): it may have been
  // dropped, or dropped and re-made, just before.
  std::optional<db::AdvisoryLock> snapshot_lock;
  std::optional<ClonePlan> plan;
  if (!req.empty && !is_file_snapshot(snapshot_id) && dialect.template_databases) {
    snapshot_lock.emplace(conn, spawn_lock_key(snapshot_id), std::chrono::minutes(10),
                          "snapshot " + util::quoted(snapshot_id));
    plan = plan_clone(conn, req.strategy, snapshot_id);
    if (plan->template_oid == 0 || plan->template_oid != snapshot_oid) {
      throw Error(ExitCode::not_found,
                  "the snapshot " + util::quoted(snapshot_id) + " was dropped while choosing it",
                  {"run the command again: it picks the newest snapshot then"});
    }
  }

  // Build under a temporary name, holding its build lock so a concurrent janitor leaves it alone,
  // registered (as "building") before it exists: never an unregistered database of ours, never a
  // half-made one that counts as ready.
  std::string temp = temp_database_name();
  db::AdvisoryLock build_lock(conn, build_lock_key(temp), std::chrono::seconds(5), temp);
  Metadata meta = req.meta;
  meta.created_at = util::to_iso8601(std::chrono::system_clock::now());
  if (req.empty)
    meta.snapshot.reset();
  else
    meta.snapshot = snapshot_id;
  long long row = reg.begin_build(temp, req.name, meta);
  SpawnResult::Evidence evidence{.name = req.name};
  try {
    // Whether the row has the new database's oid yet (a template clone records it in the
    // transaction that renames it).
    bool oid_recorded = true;
    if (req.empty) {
      conn.exec(db::dialect_of(conn).create_empty_database(temp));
      reg.built(row, temp);
      result.strategy = "empty";
    } else if (!dialect.template_databases) {
      // CockroachDB: one backup of the snapshot's collection (or its newest), restored under
      // the temporary name (RESTORE creates the database). The URL carries the credentials.
      auto ref = db::cockroach::split_backup_reference(snapshot_id);
      std::string url = storage::cockroach_storage_url(ref.collection, "", req.store_options);
      db::exec_redacted(
          conn, ref.subdir.empty()
                    ? db::cockroach::restore_database(req.source, url, temp)
                    : db::cockroach::restore_database_from(req.source, ref.subdir, url, temp));
      reg.built(row, temp);
      result.strategy = "RESTORE";
    } else if (is_file_snapshot(snapshot_id)) {
      auto store = storage::open_store(snapshot_id, req.store_options);
      std::string object = storage::store_object_id(snapshot_id);
      if (object == "latest") {
        // The newest archive of the requested source, not the last name across sources.
        auto latest = store->latest_of(req.source);
        if (!latest) {
          throw Error(
              ExitCode::not_found,
              "no snapshot archive of " + util::quoted(req.source) + " in " + store->describe(),
              {"create one with 'previewdb snapshot " + req.source + " --to " + store->describe() +
               "'"});
        }
        object = *latest;
      }
      if (store->remote() || storage::archive_encrypted(*store, object)) {
        // Streamed into pg_restore: a damaged or tampered archive fails the restore into the
        // temporary database, which is dropped below; nothing is ever visible under req.name.
        conn.exec(db::dialect_of(conn).create_empty_database(temp));
        reg.built(row, temp);
        storage::restore_stream(req.conninfo, temp, *store, object,
                                req.store_options.encryption_key);
      } else {
        util::TempDir scratch;
        auto archive = store->fetch(object, scratch.path());
        conn.exec(db::dialect_of(conn).create_empty_database(temp));
        reg.built(row, temp);
        storage::restore_archive(req.conninfo, temp, archive);
      }
      result.strategy = "pg_restore";
    } else {
      auto started = std::chrono::steady_clock::now();
      conn.exec("CREATE DATABASE " + conn.quote_ident(temp) + " TEMPLATE " +
                conn.quote_ident(snapshot_id) + plan->clause);
      evidence.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      evidence.plan_keyword = plan->keyword;
      evidence.plan_has_clause = !plan->clause.empty();
      evidence.size_bytes = plan->size_bytes;
      result.strategy = plan->keyword;
      result.strategy_reason = plan->reason;
      oid_recorded = false;
    }
    if (req.prepare) {
      // It may run for long (migrations): the row holds the oid meanwhile.
      if (!oid_recorded) reg.built(row, temp);
      oid_recorded = true;
      req.prepare(temp);
    }
    // The comment, the rename and the registry's rows commit together where the server allows
    // renames in a transaction (PostgreSQL): one commit, and never a renamed database whose row
    // still says "building". DROP DATABASE (--replace) cannot run in a transaction: between.
    auto together = [&](const std::function<void()>& body) {
      if (!dialect.template_databases) return body();
      conn.exec("BEGIN");
      try {
        body();
        conn.exec("COMMIT");
      } catch (...) {
        try {
          conn.exec("ROLLBACK");
        } catch (const std::exception&) {
          // The session is gone (the server rolls back on its own): the first error is the one.
        }
        throw;
      }
    };
    auto rename = [&] {
      conn.exec("ALTER DATABASE " + conn.quote_ident(temp) + " RENAME TO " +
                conn.quote_ident(req.name));
      reg.finished(row, req.name);
    };
    together([&] {
      if (!oid_recorded) reg.built(row, temp);
      if (dialect.comment_on_database) {
        conn.exec("COMMENT ON DATABASE " + conn.quote_ident(temp) + " IS " +
                  conn.quote_literal(to_comment(meta)));
      }
      if (!existing) rename();
    });
    if (existing) {
      conn.exec(dialect.drop_database(req.name, /*if_exists=*/false));
      together([&] {
        reg.forget_oid(existing->oid);
        rename();
      });
      result.replaced = true;
    }
  } catch (...) {
    abandon_build(conn, reg, temp, row);
    throw;
  }
  result.created = true;
  // The clone's duration (the evidence for the next choice) and the new database's size as `list`
  // shows it until measured again: best-effort, after the caller's outputs when it asked.
  result.evidence = std::move(evidence);
  if (!req.defer_evidence) {
    record_spawn_evidence(conn, result);
    result.evidence.reset();
  }
  return result;
}

void record_spawn_evidence(db::Connection& conn, const SpawnResult& result) {
  if (!result.evidence) return;
  const auto& e = *result.evidence;
  if (!e.plan_keyword.empty()) {
    ClonePlan plan{.keyword = e.plan_keyword,
                   .clause = e.plan_has_clause ? " STRATEGY " + e.plan_keyword : "",
                   .size_bytes = e.size_bytes};
    record_clone(conn, plan, e.seconds);
  }
  try {
    Registry::open(conn).record_size(e.name);
  } catch (const std::exception& e2) {
    util::log::warn("could not record the size of " + e.name + " in " +
                    std::string(k_registry_database) + ": " + e2.what());
  }
}

void rebuild_local_database(db::Connection& conn, const std::string& name,
                            const std::function<void(const std::string& temp)>& prepare) {
  validate_name(name);
  remove_stale_temporaries(conn);
  db::AdvisoryLock name_lock(conn, spawn_lock_key(name), name_lock_timeout(conn),
                             "database " + util::quoted(name), /*free_slot_while_waiting=*/true);
  auto existing = find_database(conn, name);
  if (!existing) {
    throw Error(ExitCode::not_found, "database " + util::quoted(name) + " does not exist",
                {"'previewdb local start' creates it"});
  }
  ExclusiveUse exclusive_use(conn, use_lock_key(name));
  if (!exclusive_use.held()) {
    throw Error(ExitCode::refused,
                "refusing to reset database " + util::quoted(name) + ": it is " +
                    describe_use_holder(conn, name),
                {"run again when that build has finished (its hold ends with it)"});
  }
  require_createdb(conn);
  auto reg = Registry::open(conn);
  std::string temp = temp_database_name();
  db::AdvisoryLock build_lock(conn, build_lock_key(temp), std::chrono::seconds(5), temp);
  Metadata meta;  // a "building" row: Kind::build to everyone until it is removed below
  meta.kind = Kind::personal;
  meta.created_by = "previewdb reset";
  meta.created_at = util::to_iso8601(std::chrono::system_clock::now());
  long long row = reg.begin_build(temp, name, meta);
  try {
    conn.exec(db::dialect_of(conn).create_empty_database(temp));
    reg.built(row, temp);
    if (prepare) prepare(temp);
    conn.exec(db::dialect_of(conn).drop_database(name, /*if_exists=*/false));
    if (existing->managed()) reg.forget_oid(existing->oid);
    conn.exec("ALTER DATABASE " + conn.quote_ident(temp) + " RENAME TO " + conn.quote_ident(name));
    // Unregistered, as `local start` made it: dev is the source, not something previewdb drops.
    reg.remove_row(row);
  } catch (...) {
    abandon_build(conn, reg, temp, row);
    throw;
  }
}

std::string use_lock_key(const std::string& name) {
  return "previewdb:use:" + name;
}

DatabaseHold::DatabaseHold(db::Connection conn, std::string name)
    : m_conn(std::make_unique<db::Connection>(std::move(conn))), m_name(std::move(name)) {}

DatabaseHold::~DatabaseHold() {
  // Closing the session releases the shared advisory lock; a lease row is given back first.
  if (m_conn) {
    try {
      if (db::AdvisoryLock::uses_leases(*m_conn)) {
        db::AdvisoryLock::unlock_shared(*m_conn, use_lock_key(m_name));
      }
    } catch (const std::exception&) {
      // Its lease runs out on its own.
    }
  }
  m_conn.reset();
}

DatabaseHold hold_database(db::Connection conn, const std::string& name, const std::string& holder,
                           std::chrono::seconds timeout) {
  conn.exec("SELECT set_config('application_name', $1, false)", {holder.substr(0, 63)});
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(20);
  // A drop holds the key exclusively for a moment (its checks and the DROP): wait it out.
  while (!db::AdvisoryLock::try_lock_shared(conn, use_lock_key(name))) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error(ExitCode::lock_timeout,
                  "timed out after " + std::to_string(timeout.count()) +
                      "s waiting to mark database " + util::quoted(name) +
                      " as in use: it is being dropped",
                  {"run the build again"});
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(500));
  }
  return DatabaseHold(std::move(conn), name);
}

DropResult drop_database(db::Connection& conn, const std::string& name,
                         const Protection& protection, bool include_unmanaged,
                         const std::optional<std::string>& repository,
                         const DropCheck& still_wanted) {
  // Serialise with a concurrent spawn/ci of the same name, and decide under that lock: what the
  // caller saw before may be a database that was dropped and re-created since.
  db::AdvisoryLock name_lock(conn, spawn_lock_key(name), name_lock_timeout(conn),
                             "database " + util::quoted(name), /*free_slot_while_waiting=*/true);
  auto all = list_databases(conn);
  if (auto why = protection.reason(name, all)) {
    return {DropOutcome::refused_protected, *why};
  }
  auto it = std::find_if(all.begin(), all.end(), [&](auto& d) { return d.name == name; });
  if (it == all.end()) return {DropOutcome::absent, "does not exist"};
  if (!it->managed() && !include_unmanaged) {
    return {DropOutcome::refused_unmanaged,
            "not created by previewdb (not in its registry under this name and owner; owned by " +
                it->owner + ")"};
  }
  if (repository && it->meta && it->meta->repository && *it->meta->repository != *repository) {
    return {DropOutcome::refused_other_repository,
            "the preview of another repository (" + *it->meta->repository + ")"};
  }
  if (still_wanted) {
    if (auto keep = still_wanted(*it)) return {DropOutcome::kept, *keep};
  }
  // A running build holds the use key shared; taking it exclusively (until the session's next
  // unlock) also keeps a new build from starting on a database being dropped.
  ExclusiveUse exclusive_use(conn, use_lock_key(name));
  if (!exclusive_use.held()) {
    return {DropOutcome::refused_in_use, describe_use_holder(conn, name)};
  }
  const auto& dialect = db::dialect_of(conn);
  if (it->meta && it->meta->kind == Kind::snapshot && dialect.template_databases) {
    conn.exec("ALTER DATABASE " + conn.quote_ident(name) + " IS_TEMPLATE false");
  }
  conn.exec(dialect.drop_database(name, /*if_exists=*/true));
  if (it->managed()) Registry::open(conn).forget_oid(it->oid);
  return {DropOutcome::dropped, ""};
}

}  // namespace previewdb::core
