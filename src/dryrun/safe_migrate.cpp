#include "dryrun/safe_migrate.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include "backup/backup.hpp"
#include "backup/restore.hpp"
#include "core/lifecycle.hpp"
#include "core/naming.hpp"
#include "core/registry.hpp"
#include "core/swap.hpp"
#include "db/advisory_lock.hpp"
#include "snapshot/snapshot.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace previewdb::dryrun {

namespace {

using Clock = std::chrono::steady_clock;

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// ---- the state record
// ----------------------------------------------------------------------------

struct State {
  std::string step;
  std::string backup, kept_as;
  std::string backup_kind = "template", backup_store;  // archive: its store's URL
  // archive: every table and schema of the target at the backup (an in-place restore drops what
  // came after: it is not in the archive, and pg_restore --clean would leave it)
  std::vector<std::string> tables, schemas;
  std::map<std::string, long long> stats;     // write counters at the backup
  std::map<std::string, long long> expected;  // what our own migrations write (dry run)
  std::string pid, started_at;
};

nlohmann::json counters_json(const std::map<std::string, long long>& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

std::map<std::string, long long> counters_from(const nlohmann::json& j) {
  std::map<std::string, long long> m;
  if (!j.is_object()) return m;
  for (const auto& [k, v] : j.items()) {
    if (v.is_number_integer()) m[k] = v.get<long long>();
  }
  return m;
}

class StateRecord {
 public:
  StateRecord(db::Connection& registry, std::string database)
      : m_c(registry), m_db(std::move(database)) {
    m_c.exec(
        "CREATE TABLE IF NOT EXISTS safe_migrate_state (database text PRIMARY KEY, step text NOT "
        "NULL, backup text, kept_as text, stats jsonb, expected jsonb, pid integer, started_at "
        "timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())");
    m_c.exec(
        "ALTER TABLE safe_migrate_state ADD COLUMN IF NOT EXISTS backup_kind text, "
        "ADD COLUMN IF NOT EXISTS backup_store text, ADD COLUMN IF NOT EXISTS catalog jsonb");
  }
  std::optional<State> read() {
    auto r = m_c.exec(
        "SELECT step, coalesce(backup, ''), coalesce(kept_as, ''), coalesce(stats::text, '{}'), "
        "coalesce(expected::text, '{}'), coalesce(pid::text, '?'), "
        "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "coalesce(backup_kind, 'template'), coalesce(backup_store, ''), "
        "coalesce(catalog::text, '{}') "
        "FROM safe_migrate_state WHERE database = $1",
        {m_db});
    if (!r.rows()) return std::nullopt;
    State s;
    s.step = r.get(0, 0);
    s.backup = r.get(0, 1);
    s.kept_as = r.get(0, 2);
    s.stats = counters_from(nlohmann::json::parse(r.get(0, 3), nullptr, false));
    s.expected = counters_from(nlohmann::json::parse(r.get(0, 4), nullptr, false));
    s.pid = r.get(0, 5);
    s.started_at = r.get(0, 6);
    s.backup_kind = r.get(0, 7);
    s.backup_store = r.get(0, 8);
    auto catalog = nlohmann::json::parse(r.get(0, 9), nullptr, false);
    for (const char* key : {"tables", "schemas"}) {
      if (!catalog.is_object() || !catalog.contains(key) || !catalog[key].is_array()) continue;
      for (const auto& v : catalog[key]) {
        if (v.is_string()) (key[0] == 't' ? s.tables : s.schemas).push_back(v.get<std::string>());
      }
    }
    return s;
  }
  void begin() {
    m_c.exec(
        "INSERT INTO safe_migrate_state (database, step, pid) VALUES ($1, 'backup', $2) "
        "ON CONFLICT (database) DO UPDATE SET step = 'backup', backup = NULL, kept_as = NULL, "
        "stats = NULL, expected = NULL, backup_kind = NULL, backup_store = NULL, catalog = NULL, "
        "pid = $2, started_at = now(), updated_at = now()",
        {m_db, std::to_string(::getpid())});
  }
  void step(const std::string& step) {
    m_c.exec("UPDATE safe_migrate_state SET step = $2, updated_at = now() WHERE database = $1",
             {m_db, step});
  }
  void backup(const std::string& name, const std::map<std::string, long long>& stats,
              const std::string& kind, const std::string& store) {
    m_c.exec(
        "UPDATE safe_migrate_state SET backup = $2, stats = $3::jsonb, backup_kind = $4, "
        "backup_store = nullif($5, ''), updated_at = now() WHERE database = $1",
        {m_db, name, counters_json(stats).dump(), kind, store});
  }
  void expected(const std::map<std::string, long long>& writes) {
    m_c.exec(
        "UPDATE safe_migrate_state SET expected = $2::jsonb, updated_at = now() WHERE database = "
        "$1",
        {m_db, counters_json(writes).dump()});
  }
  void catalog(const std::vector<std::string>& tables, const std::vector<std::string>& schemas) {
    nlohmann::json j = {{"tables", tables}, {"schemas", schemas}};
    m_c.exec(
        "UPDATE safe_migrate_state SET catalog = $2::jsonb, updated_at = now() WHERE database = $1",
        {m_db, j.dump()});
  }
  void kept_as(const std::string& name) {
    m_c.exec("UPDATE safe_migrate_state SET kept_as = $2, updated_at = now() WHERE database = $1",
             {m_db, name});
  }

 private:
  db::Connection& m_c;
  std::string m_db;
};

// ---- the target --------------------------------------------------------------------------------

// Write counters of the target's tables (inserts + updates + deletes), outside previewdb's own
// schema and the tools' history tables (previewdb writes those itself). A fresh session on the
// target's server (not necessarily the maintenance one): its statistics snapshot is taken now.
db::Connection open_target(const SafeMigrateOptions& o) {
  return db::Connection::open({.conninfo = o.dry.migrate.target.conninfo,
                               .dbname = o.dry.database,
                               .busy_retry = o.dry.migrate.target.busy_retry});
}

std::map<std::string, long long> write_counters(const SafeMigrateOptions& o) {
  auto c = open_target(o);
  auto r = c.exec(
      "SELECT quote_ident(schemaname) || '.' || quote_ident(relname), "
      "n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
      "WHERE schemaname NOT IN ('_previewdb', 'drizzle') AND relname NOT IN "
      "('_prisma_migrations', 'schema_migrations', 'flyway_schema_history', "
      "'__drizzle_migrations')");
  std::map<std::string, long long> out;
  for (int i = 0; i < r.rows(); ++i) out[r.get(i, 0)] = r.get_int(i, 1);
  return out;
}

// The target's tables and schemas (outside the system's), quoted.
const char* k_tables_sql =
    "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN "
    "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN "
    "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1";
const char* k_schemas_sql =
    "SELECT quote_ident(nspname) FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', "
    "'information_schema') AND nspname NOT LIKE 'pg\\_%' ORDER BY 1";

std::vector<std::string> column(db::Connection& c, const char* sql) {
  auto r = c.exec(sql);
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.get(i, 0));
  return out;
}

bool exists(db::Connection& c, const std::string& db) {
  return c.exec("SELECT 1 FROM pg_database WHERE datname = $1", {db}).rows() > 0;
}

// Restore by rename: a copy of the snapshot is built under a temporary name (a registered build,
// dropped by a janitor if this process dies), then core::swap_database swaps it in for the
// database in one transaction (both renames, the owner, grants, settings, connection limit and
// comment carried over), keeping the old one as <db>_before_restore_<timestamp>. Killed at any
// point, the database is either the old one or the restored one. Returns the kept name.
std::string swap_in(db::Connection& maint, const std::string& db, const std::string& snapshot,
                    const std::string& timestamp, bool terminate,
                    const std::function<void(const std::string&)>& on_step) {
  if (!exists(maint, snapshot)) {
    throw Error(ExitCode::not_found, "the backup snapshot " + util::quoted(snapshot) + " is gone");
  }
  auto reg = core::Registry::open(maint);
  std::string temp = core::temp_database_name();
  db::AdvisoryLock build_lock(maint, core::build_lock_key(temp), std::chrono::seconds(5), temp);
  core::Metadata meta;
  meta.kind = core::Kind::personal;
  meta.created_at = util::to_iso8601(std::chrono::system_clock::now());
  meta.created_by = "previewdb safe-migrate (restore)";
  long long row = reg.begin_build(temp, db, meta);
  try {
    std::string chosen;
    std::string clause =
        core::strategy_clause(maint, core::CloneStrategy::automatic, snapshot, &chosen);
    maint.exec("CREATE DATABASE " + maint.quote_ident(temp) + " TEMPLATE " +
               maint.quote_ident(snapshot) + clause);
    reg.built(row, temp);
    if (on_step) on_step("swap");
    core::SwapRequest req;
    req.target = db;
    req.replacement = temp;
    req.timestamp = timestamp;
    req.terminate_sessions = terminate;
    req.replacement_row = row;
    // Its own backup of its own failed run: no protection check (a production database is
    // usually protected, and a snapshot of it makes it so anyway).
    req.created_by = "previewdb safe-migrate";
    return core::swap_database(maint, req).kept_as;
  } catch (...) {
    core::drop_temporary(maint, temp);
    try {
      reg.remove_row(row);
    } catch (...) {
    }
    throw;
  }
}

std::string restore_command(const std::string& db, const State& state) {
  if (state.backup_kind == "archive") {
    return "previewdb restore " + state.backup + " --store " + state.backup_store + " --into " + db;
  }
  return "previewdb safe-migrate " + db + " --restore " + state.backup;
}

bool same_server(const SafeMigrateOptions& o) {
  return o.maintenance_conninfo.empty();
}

const std::string& maintenance_conninfo(const SafeMigrateOptions& o) {
  return same_server(o) ? o.dry.migrate.target.conninfo : o.maintenance_conninfo;
}

// The target's role (may it create databases?) and the other client sessions on the target, from
// a session of its own that is closed again (a template copy needs the target idle).
BackupFacts target_facts(const SafeMigrateOptions& o) {
  BackupFacts f;
  auto c = open_target(o);
  auto r = c.exec(
      "SELECT current_user::text, coalesce((SELECT rolcreatedb OR rolsuper FROM pg_roles "
      "WHERE rolname = current_user), false)");
  f.role = r.get(0, 0);
  f.can_create = r.get_bool(0, 1);
  auto s = c.exec(
      "SELECT pid::text FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
      "pg_backend_pid() AND backend_type = 'client backend' ORDER BY pid");
  for (int i = 0; i < s.rows(); ++i) f.sessions.push_back(s.get(i, 0));
  f.same_server = same_server(o);
  return f;
}

// An archive put back: swapped in like a snapshot (backup::restore, the original kept) when the
// clones live on the target's server and the role may create databases there; else in place
// (pg_restore --clean --single-transaction) after dropping the tables created since the backup:
// they are not in the archive, so --clean would leave them. Returns the kept name ("" in place).
std::string restore_archive(db::Connection& maint, const SafeMigrateOptions& o, const State& state,
                            const std::string& timestamp) {
  if (!o.open_store) {
    throw Error(ExitCode::failure, "cannot open the backup store " + state.backup_store);
  }
  auto store = o.open_store(state.backup_store);
  backup::RestoreRequest rq;
  rq.conninfo = o.dry.migrate.target.conninfo;
  rq.target = o.dry.database;
  rq.source.kind = backup::SourceKind::backup;
  rq.source.store = store.get();
  rq.source.name = state.backup;
  rq.timestamp = timestamp;
  rq.terminate_sessions = o.terminate_sessions;
  rq.created_by = "previewdb safe-migrate";
  if (same_server(o) && target_facts(o).can_create) {
    auto result = backup::restore(maint, rq);
    return result.swap ? result.swap->kept_as : "";
  }
  rq.clean = true;
  auto c = open_target(o);
  std::set<std::string> tables(state.tables.begin(), state.tables.end());
  std::set<std::string> schemas(state.schemas.begin(), state.schemas.end());
  if (!schemas.empty()) {  // never without a record of what was there
    for (const auto& table : column(c, k_tables_sql)) {
      if (tables.count(table)) continue;
      util::log::info("restore: dropping table " + table + ", created after the backup");
      c.exec("DROP TABLE IF EXISTS " + table + " CASCADE");
    }
    for (const auto& schema : column(c, k_schemas_sql)) {
      if (schemas.count(schema)) continue;
      util::log::info("restore: dropping schema " + schema + ", created after the backup");
      c.exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    }
  }
  backup::restore(c, rq);
  return "";
}

// Restores unless someone else wrote since the backup (or --no-restore); fills the report.
void restore_or_explain(db::Connection& maint, StateRecord& record, const State& state,
                        const SafeMigrateOptions& o, SafeMigrateReport& report) {
  const std::string& db = o.dry.database;
  report.restore_command = restore_command(db, state);
  if (o.no_restore) {
    report.not_restored_reason = "--no-restore";
    record.step("done");
    return;
  }
  if (!same_server(o) || exists(maint, db)) {
    // Statistics reach shared memory when a session goes idle, at most a second later.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    auto now = write_counters(o);
    auto foreign = foreign_writes(state.stats, now, state.expected);
    if (!foreign.empty()) {
      report.not_restored_reason = "other sessions wrote to " + util::join(foreign, ", ") +
                                   " after the backup (their rows would be lost by a restore)";
      record.step("done");
      return;
    }
  }
  auto start = Clock::now();
  record.step("restore");
  if (o.on_step) o.on_step("restore");
  std::string kept;
  try {
    std::string stamp = util::compact_timestamp(std::chrono::system_clock::now());
    kept = state.backup_kind == "archive"
               ? restore_archive(maint, o, state, stamp)
               : swap_in(maint, db, state.backup, stamp, o.terminate_sessions, o.on_step);
    record.kept_as(kept);
  } catch (const Error& e) {
    if (e.code() == ExitCode::refused) {
      report.not_restored_reason = e.what();
      record.step("done");
      return;
    }
    report.steps.push_back({"restore", ms_since(start), "FAILED"});
    util::log::warn("!!! RESTORE FAILED: " + std::string(e.what()));
    util::log::warn("!!! the backup is " +
                    std::string(state.backup_kind == "archive" ? "archive " : "snapshot ") +
                    state.backup + "; restore it with: " + report.restore_command);
    report.exit_code = static_cast<int>(ExitCode::failure);
    report.error += std::string(report.error.empty() ? "" : "; ") + "restore failed: " + e.what();
    return;
  }
  record.step("done");
  report.restored = true;
  report.kept_as = kept;
  report.steps.push_back(
      {"restore", ms_since(start),
       "restored " + state.backup +
           (kept.empty() ? " in place" : ", the failed database kept as " + kept)});
}

std::map<std::string, long long> expected_writes(const DryRunReport& r) {
  std::map<std::string, long long> out;
  for (const auto& m : r.migrations) {
    for (const auto& [t, n] : m.writes) out[t] += n;
  }
  return out;
}

}  // namespace

std::vector<std::string> foreign_writes(const std::map<std::string, long long>& before,
                                        const std::map<std::string, long long>& after,
                                        const std::map<std::string, long long>& expected) {
  std::vector<std::string> out;
  for (const auto& [table, now] : after) {
    auto b = before.find(table);
    if (b == before.end()) continue;
    long long mine = 0;
    if (auto e = expected.find(table); e != expected.end()) mine = e->second;
    if (now - b->second > mine) out.push_back(table);
  }
  return out;
}

BackupKind parse_backup_kind(const std::string& text, const std::string& origin) {
  std::string v = util::to_lower(util::trim(text));
  if (v == "auto" || v.empty()) return BackupKind::automatic;
  if (v == "template" || v == "snapshot") return BackupKind::template_copy;
  if (v == "archive") return BackupKind::archive;
  throw usage_error("invalid backup kind " + util::quoted(text) + " (from " + origin + ")",
                    "use --backup auto, template or archive");
}

std::string to_string(BackupKind kind) {
  switch (kind) {
    case BackupKind::automatic:
      return "auto";
    case BackupKind::template_copy:
      return "template";
    case BackupKind::archive:
      return "archive";
  }
  return "?";
}

BackupChoice choose_backup(const BackupFacts& f) {
  std::optional<std::string> no_template;
  if (!f.same_server) {
    no_template = "previewdb's clones live on another server (--scratch-url), not the target's";
  } else if (!f.can_create) {
    no_template = "role " + util::quoted(f.role) +
                  " may not create databases on the target's server (no CREATEDB)";
  }
  std::string asked = "asked for" + (f.wanted_origin.empty() ? "" : " by " + f.wanted_origin);
  if (f.wanted == BackupKind::template_copy) {
    if (no_template) {
      throw Error(ExitCode::refused, "cannot take a template backup: " + *no_template,
                  {"use --backup archive (or auto): a verified pg_dump archive in a backup store"});
    }
    return {BackupKind::template_copy, asked};
  }
  if (f.wanted == BackupKind::archive) return {BackupKind::archive, asked};
  if (f.store_given) return {BackupKind::archive, "--backup-store names a store"};
  if (no_template) return {BackupKind::archive, *no_template};
  if (!f.sessions.empty()) {
    return {BackupKind::archive, "the target has " + std::to_string(f.sessions.size()) +
                                     " other session(s) (pids " + util::join(f.sessions, ", ") +
                                     "); a template copy needs it idle"};
  }
  return {BackupKind::template_copy, "the target is idle and on this server"};
}

std::string kept_name(const std::string& database, const std::string& timestamp) {
  return core::before_restore_name(database, timestamp);
}

SafeMigrateReport restore_snapshot(db::Connection& maint, const std::string& db,
                                   const std::string& snapshot, bool terminate_sessions,
                                   const std::function<void(const std::string&)>& on_step) {
  core::validate_name(db, "database");
  SafeMigrateReport report;
  report.database = db;
  report.backup = snapshot;
  auto start = Clock::now();
  std::string kept =
      swap_in(maint, db, snapshot, util::compact_timestamp(std::chrono::system_clock::now()),
              terminate_sessions, on_step);
  report.restored = true;
  report.kept_as = kept;
  report.steps.push_back({"restore", ms_since(start), "restored " + snapshot});
  return report;
}

SafeMigrateReport safe_migrate(db::Connection& maint, const SafeMigrateOptions& o) {
  const std::string& db = o.dry.database;
  core::validate_name(db, "database");
  SafeMigrateReport report;
  report.database = db;
  auto reg = core::Registry::open(maint);
  core::remove_stale_temporaries(maint);  // a killed run's restore copy or clone
  // One safe-migrate per database; whoever gets this lock knows a recorded run is dead.
  db::AdvisoryLock run_lock(
      maint, "previewdb:safe-migrate:" + db,
      std::chrono::duration_cast<std::chrono::seconds>(o.dry.migrate.lock_timeout),
      "safe-migrate of " + util::quoted(db));
  StateRecord record(reg.conn(), db);
  if (auto prev = record.read(); prev && prev->step != "done") {
    std::string what =
        "a previous safe-migrate of " + db + " (pid " + prev->pid + ", started " +
        prev->started_at + ") stopped during step " + util::quoted(prev->step) +
        (prev->backup.empty()
             ? ""
             : "; its backup is " +
                   std::string(prev->backup_kind == "archive" ? "archive " : "snapshot ") +
                   prev->backup);
    if (prev->step == "restore") {
      report.previous = what + ": finishing its restore";
      util::log::warn(*report.previous);
      report.backup = prev->backup;
      report.backup_kind = prev->backup_kind;
      if (prev->backup_kind == "archive")
        report.backup_url = prev->backup_store + "/" + prev->backup;
      report.failed = true;
      report.error = "the previous run's migration failed";
      report.exit_code = static_cast<int>(ExitCode::migration_failed);
      restore_or_explain(maint, record, *prev, o, report);
      return report;
    }
    report.previous =
        what + (prev->step == "apply"
                    ? ": each migration is one transaction, so the database is at a migration "
                      "boundary ('previewdb status' shows which applied); finishing the run"
                    : ": nothing was applied to the database; starting again");
    util::log::warn(*report.previous);
  }

  // Nothing to do (the usual deploy): no backup, no clone. Changed or failed migrations go the
  // whole way, so that migrate's own rules refuse or retry them.
  {
    auto t = Clock::now();
    migrate::StatusOptions so;
    so.target = o.dry.migrate.target;
    so.target.dbname = db;
    so.dir = o.dry.migrate.dir;
    so.format = o.dry.migrate.format;
    so.placeholders = o.dry.migrate.placeholders;
    auto st = migrate::status(so);
    if (st.count(migrate::State::pending) == 0 && st.count(migrate::State::failed) == 0 &&
        st.count(migrate::State::changed) == 0) {
      report.steps.push_back(
          {"check", ms_since(t),
           "nothing to apply: " + std::to_string(st.count(migrate::State::applied)) +
               " migration(s) already applied; no backup taken"});
      if (record.read()) record.step("done");
      return report;
    }
  }

  // 1. backup
  record.begin();
  if (o.on_step) o.on_step("backup");
  auto t = Clock::now();
  BackupFacts facts = target_facts(o);
  facts.wanted = o.backup;
  facts.wanted_origin = o.backup_origin;
  facts.store_given = o.backup_store_given;
  BackupChoice choice;
  try {
    choice = choose_backup(facts);
  } catch (const Error&) {
    record.step("done");
    throw;
  }
  report.backup_kind = to_string(choice.kind);
  report.backup_reason = choice.reason;
  util::log::info("backup: " + report.backup_kind + " (" + choice.reason + ")");
  auto stats = write_counters(o);
  if (choice.kind == BackupKind::template_copy) {
    snapshot::SnapshotRequest sr;
    sr.source = db;
    sr.created_by = o.created_by;
    sr.conninfo = o.dry.migrate.target.conninfo;
    sr.strategy = o.dry.strategy;
    auto snap = snapshot::create_snapshot(maint, sr);
    report.backup = snap.id;
    record.backup(snap.id, stats, "template", "");
    report.steps.push_back(
        {"backup", ms_since(t), "snapshot " + snap.id + " (" + snap.method + ")"});
    util::log::info("backup: snapshot " + snap.id + " (" + snap.method + ")");

    // 2. dry run on a clone of the snapshot
    record.step("dry-run");
    if (o.on_step) o.on_step("dry-run");
    t = Clock::now();
    DryRunOptions dry = o.dry;
    dry.clone_from = snap.id;
    report.dry_run = dryrun::dry_run(maint, dry);
  } else {
    if (!o.open_store) throw Error(ExitCode::usage, "no backup store to write an archive to");
    auto store = o.open_store(o.store_url);
    backup::Manifest m;
    {
      auto conn = open_target(o);
      record.catalog(column(conn, k_tables_sql), column(conn, k_schemas_sql));
      auto now = std::chrono::system_clock::now();
      backup::BackupRequest br;
      br.conninfo = o.dry.migrate.target.conninfo;
      br.database = db;
      br.level = o.backup_level;
      br.timestamp = util::compact_timestamp(now);
      br.created_at = util::to_iso8601(now);
      m = backup::create_backup(conn, *store, br);
    }
    report.backup = m.name;
    report.backup_url = store->describe() + "/" + m.name;
    record.backup(m.name, stats, "archive", o.store_url);
    report.steps.push_back({"backup", ms_since(t),
                            "archive " + report.backup_url + " (" +
                                util::human_bytes(static_cast<double>(m.size_compressed)) + ")"});
    util::log::info("backup: archive " + report.backup_url);

    // 2. verify (`backup verify --restore-test`: read back in full into a scratch database on the
    // maintenance server) and, on that restored copy, the dry run: what was backed up is exactly
    // what the dry run sees, and the busy target is not copied a second time.
    record.step("dry-run");
    if (o.on_step) o.on_step("dry-run");
    t = Clock::now();
    long long dry_ms = 0;
    // Its own session: the scratch database's build lock is held by `maint`, and a janitor on the
    // same session would take that (re-entrant) lock and see the scratch as abandoned.
    auto dry_conn = core::connect_like(maint, core::k_registry_database);
    backup::VerifyOptions vo;
    vo.maintenance = &maint;
    vo.conninfo = maintenance_conninfo(o);
    vo.on_restored = [&](const std::string& scratch) {
      auto t2 = Clock::now();
      DryRunOptions dry = o.dry;
      dry.clone_from = scratch;
      dry.migrate.target.conninfo = maintenance_conninfo(o);
      report.dry_run = dryrun::dry_run(dry_conn, dry);
      dry_ms = ms_since(t2);
    };
    auto v = backup::verify_backup(*store, m.name, vo);
    if (!v.ok || !report.dry_run) {
      record.step("done");
      throw Error(ExitCode::failure,
                  "backup " + report.backup_url + " failed its verification (" +
                      util::join(v.problems, "; ") + "); nothing was applied",
                  {"run 'previewdb backup verify " + m.name + " --store " + o.store_url +
                   " --restore-test' to see it again"});
    }
    backup::mark_verified(*store, *v.manifest, util::to_iso8601(std::chrono::system_clock::now()));
    report.steps.push_back(
        {"verify", ms_since(t) - dry_ms, "restore test of " + m.name + " passed"});
    t = Clock::now() - std::chrono::milliseconds(dry_ms);
  }
  const auto& findings = report.dry_run->findings;
  bool failing = std::any_of(findings.begin(), findings.end(),
                             [](const Finding& f) { return f.severity == Severity::failure; });
  bool loss = has_data_loss(findings);
  report.steps.push_back({"dry-run", ms_since(t),
                          std::to_string(report.dry_run->migrations.size()) + " migration(s), " +
                              std::to_string(findings.size()) + " finding(s)"});
  if (failing) {
    report.failed = true;
    report.error = "a migration fails in the dry run; nothing was applied";
    report.exit_code = static_cast<int>(ExitCode::migration_failed);
    record.step("done");
    return report;
  }
  if (loss && !o.allow_data_loss) {
    report.error =
        "the dry run found data loss; nothing was applied (--allow-data-loss applies "
        "it anyway)";
    report.exit_code = static_cast<int>(ExitCode::refused);
    record.step("done");
    return report;
  }
  record.expected(expected_writes(*report.dry_run));

  // 3. apply under the migration lock
  record.step("apply");
  if (o.on_step) o.on_step("apply");
  t = Clock::now();
  try {
    migrate::MigrateOptions mo = o.dry.migrate;
    mo.target.dbname = db;
    mo.dry_run = false;
    mo.command.clear();
    auto applied = migrate::migrate(mo);
    report.applied = applied.applied;
    report.steps.push_back(
        {"apply", ms_since(t), std::to_string(applied.applied.size()) + " migration(s) applied"});
    record.step("done");
    return report;
  } catch (const Error& e) {
    if (e.code() == ExitCode::lock_timeout || e.code() == ExitCode::refused ||
        e.code() == ExitCode::usage) {
      record.step("done");  // nothing was applied
      throw;
    }
    if (e.code() != ExitCode::migration_failed) throw;  // the record says "apply": next run tells
    report.failed = true;
    report.error = e.what();
    report.exit_code = static_cast<int>(ExitCode::migration_failed);
    report.steps.push_back({"apply", ms_since(t), "FAILED"});
  }
  // 4. restore
  auto state = record.read();
  restore_or_explain(maint, record, *state, o, report);
  return report;
}

nlohmann::json to_json(const SafeMigrateReport& r) {
  nlohmann::json j;
  j["database"] = r.database;
  j["backup"] = r.backup;
  if (!r.backup_kind.empty()) j["backup_kind"] = r.backup_kind;
  if (!r.backup_url.empty()) j["backup_url"] = r.backup_url;
  if (!r.backup_reason.empty()) j["backup_reason"] = r.backup_reason;
  j["steps"] = nlohmann::json::array();
  for (const auto& s : r.steps) {
    j["steps"].push_back({{"step", s.name}, {"duration_ms", s.ms}, {"result", s.result}});
  }
  if (r.previous) j["previous_run"] = *r.previous;
  if (r.dry_run) j["dry_run"] = to_json(*r.dry_run);
  j["applied"] = r.applied;
  j["failed"] = r.failed;
  if (!r.error.empty()) j["error"] = r.error;
  j["restored"] = r.restored;
  if (!r.kept_as.empty()) j["kept_as"] = r.kept_as;
  if (!r.not_restored_reason.empty()) j["not_restored_reason"] = r.not_restored_reason;
  if (!r.restore_command.empty() && !r.restored) j["restore_command"] = r.restore_command;
  j["exit_code"] = r.exit_code;
  return j;
}

std::string format_report(const SafeMigrateReport& r) {
  std::ostringstream out;
  if (r.previous) out << util::printable(*r.previous) << "\n";
  if (!r.backup_kind.empty()) {
    out << "backup_kind: " << r.backup_kind;
    if (!r.backup_reason.empty()) out << " (" << util::printable(r.backup_reason) << ")";
    out << "\n";
  }
  for (const auto& s : r.steps) {
    out << s.name << ": " << util::printable(s.result) << " (" << s.ms << " ms)\n";
  }
  if (r.dry_run) {
    for (const auto& f : r.dry_run->findings) {
      if (f.severity == Severity::info) continue;
      out << "  " << severity_name(f.severity) << ": " << f.migration << ": "
          << util::printable(f.message) << "\n";
    }
  }
  if (!r.error.empty()) out << "error: " << util::printable(r.error) << "\n";
  if (r.failed || !r.not_restored_reason.empty()) {
    if (r.restored) {
      out << "restored=true: " << r.database << " is back to backup " << r.backup;
      if (r.kept_as.empty()) {
        out << " (restored in place)\n";
      } else {
        out << "; the failed database is kept as " << r.kept_as << "\n";
      }
    } else {
      out << "restored=false";
      if (!r.not_restored_reason.empty()) out << ": " << util::printable(r.not_restored_reason);
      out << "\n";
      if (!r.restore_command.empty()) {
        out << "backup: " << r.backup << "; to restore it: " << r.restore_command << "\n";
      }
    }
  }
  if (!r.failed && r.exit_code == 0 && !r.backup.empty()) {
    out << "migrated " << r.database << ": " << r.applied.size() << " migration(s); backup "
        << r.backup << "\n";
  }
  return out.str();
}

}  // namespace previewdb::dryrun
