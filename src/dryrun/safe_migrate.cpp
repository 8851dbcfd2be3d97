#include "dryrun/safe_migrate.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include "core/naming.hpp"
#include "core/registry.hpp"
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
  }
  std::optional<State> read() {
    auto r = m_c.exec(
        "SELECT step, coalesce(backup, ''), coalesce(kept_as, ''), coalesce(stats::text, '{}'), "
        "coalesce(expected::text, '{}'), coalesce(pid::text, '?'), "
        "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
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
    return s;
  }
  void begin() {
    m_c.exec(
        "INSERT INTO safe_migrate_state (database, step, pid) VALUES ($1, 'backup', $2) "
        "ON CONFLICT (database) DO UPDATE SET step = 'backup', backup = NULL, kept_as = NULL, "
        "stats = NULL, expected = NULL, pid = $2, started_at = now(), updated_at = now()",
        {m_db, std::to_string(::getpid())});
  }
  void step(const std::string& step) {
    m_c.exec("UPDATE safe_migrate_state SET step = $2, updated_at = now() WHERE database = $1",
             {m_db, step});
  }
  void backup(const std::string& name, const std::map<std::string, long long>& stats) {
    m_c.exec(
        "UPDATE safe_migrate_state SET backup = $2, stats = $3::jsonb, updated_at = now() "
        "WHERE database = $1",
        {m_db, name, counters_json(stats).dump()});
  }
  void expected(const std::map<std::string, long long>& writes) {
    m_c.exec(
        "UPDATE safe_migrate_state SET expected = $2::jsonb, updated_at = now() WHERE database = "
        "$1",
        {m_db, counters_json(writes).dump()});
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
// schema and the tools' history tables (previewdb writes those itself). A fresh session: its
// statistics snapshot is taken now.
std::map<std::string, long long> write_counters(db::Connection& maint, const std::string& db) {
  auto c = core::connect_like(maint, db);
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

std::vector<std::string> sessions_on(db::Connection& c, const std::string& db,
                                     std::vector<std::string>* pids = nullptr) {
  auto r = c.exec(
      "SELECT pid::text, coalesce(usename::text, '?'), coalesce(nullif(application_name, ''), "
      "'?') FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
      "AND backend_type = 'client backend' ORDER BY pid",
      {db});
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back("pid " + r.get(i, 0) + " (user " + r.get(i, 1) + ", application " +
                  util::quoted(r.get(i, 2)) + ")");
    if (pids) pids->push_back(r.get(i, 0));
  }
  return out;
}

bool exists(db::Connection& c, const std::string& db) {
  return c.exec("SELECT 1 FROM pg_database WHERE datname = $1", {db}).rows() > 0;
}

// What a new database would lose and the old one had: owner, database grants, ALTER DATABASE ...
// SET settings (also per role), comment. Statements for `to`, read from `from`.
std::vector<std::string> carry_over(db::Connection& c, const std::string& from,
                                    const std::string& to) {
  std::vector<std::string> sql;
  std::string q = c.quote_ident(to);
  auto d = c.exec(
      "SELECT d.oid, pg_get_userbyid(d.datdba), d.datacl IS NULL, "
      "shobj_description(d.oid, 'pg_database') FROM pg_database d WHERE d.datname = $1",
      {from});
  if (!d.rows()) return sql;
  std::string oid = d.get(0, 0);
  sql.push_back("ALTER DATABASE " + q + " OWNER TO " + c.quote_ident(d.get(0, 1)));
  if (!d.get_bool(0, 2)) {
    sql.push_back("REVOKE ALL ON DATABASE " + q + " FROM PUBLIC");
    auto acl = c.exec(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) "
        "END, a.privilege_type, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a "
        "WHERE d.oid = $1::oid",
        {oid});
    for (int i = 0; i < acl.rows(); ++i) {
      sql.push_back("GRANT " + acl.get(i, 1) + " ON DATABASE " + q + " TO " + acl.get(i, 0) +
                    (acl.get_bool(i, 2) ? " WITH GRANT OPTION" : ""));
    }
  }
  auto settings = c.exec(
      "SELECT s.setrole, CASE WHEN s.setrole = 0 THEN '' ELSE quote_ident(pg_get_userbyid("
      "s.setrole)) END, unnest(s.setconfig) FROM pg_db_role_setting s WHERE s.setdatabase = "
      "$1::oid",
      {oid});
  for (int i = 0; i < settings.rows(); ++i) {
    std::string kv = settings.get(i, 2);
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string set =
        " SET " + c.quote_ident(kv.substr(0, eq)) + " = " + c.quote_literal(kv.substr(eq + 1));
    sql.push_back(settings.get(i, 0) == "0"
                      ? "ALTER DATABASE " + q + set
                      : "ALTER ROLE " + settings.get(i, 1) + " IN DATABASE " + q + set);
  }
  if (!d.is_null(0, 3)) {
    sql.push_back("COMMENT ON DATABASE " + q + " IS " + c.quote_literal(d.get(0, 3)));
  }
  return sql;
}

// Restore by rename: a copy of the snapshot is built under a temporary name (a registered build,
// dropped by a janitor if this process dies), given what the database had (carry_over), then the
// database is renamed to `kept` and the copy to its name. Killed between the two renames, the
// name is missing; the next run sees `kept` in the state record and finishes (database absent:
// only the second half). Returns the name the old database is kept under.
void swap_in(db::Connection& maint, const std::string& db, const std::string& snapshot,
             const std::string& kept, bool terminate,
             const std::function<void(const std::string&)>& on_step) {
  if (!exists(maint, snapshot)) {
    throw Error(ExitCode::not_found, "the backup snapshot " + util::quoted(snapshot) + " is gone");
  }
  bool have_db = exists(maint, db);
  if (have_db) {
    // Sessions that have just closed (ours among them) linger in pg_stat_activity while their
    // backend exits: give them a moment.
    auto sessions = sessions_on(maint, db);
    for (int i = 0; i < 30 && !sessions.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      sessions = sessions_on(maint, db);
    }
    if (!sessions.empty() && !terminate) {
      throw Error(
          ExitCode::refused,
          "database " + util::quoted(db) + " has other sessions: " + util::join(sessions, "; "),
          {"a restore renames the database, which needs it idle: stop the application "
           "or pass --terminate-sessions"});
    }
  }
  auto reg = core::Registry::open(maint);
  std::string temp = core::temp_database_name();
  db::AdvisoryLock build_lock(maint, core::build_lock_key(temp), std::chrono::seconds(5), temp);
  core::Metadata meta;
  meta.kind = core::Kind::personal;
  meta.created_at = util::to_iso8601(std::chrono::system_clock::now());
  meta.created_by = "previewdb safe-migrate (restore)";
  long long row = reg.begin_build(temp, temp, meta);
  try {
    std::string chosen;
    std::string clause =
        core::strategy_clause(maint, core::CloneStrategy::automatic, snapshot, &chosen);
    maint.exec("CREATE DATABASE " + maint.quote_ident(temp) + " TEMPLATE " +
               maint.quote_ident(snapshot) + clause);
    reg.built(row, temp);
    for (const auto& s : carry_over(maint, have_db ? db : kept, temp)) maint.exec(s);
    if (have_db) {
      std::vector<std::string> pids;
      sessions_on(maint, db, &pids);
      for (const auto& pid : pids) maint.exec("SELECT pg_terminate_backend($1::int)", {pid});
      maint.exec("ALTER DATABASE " + maint.quote_ident(db) + " RENAME TO " +
                 maint.quote_ident(kept));
    }
    if (on_step) on_step("swap");
    maint.exec("ALTER DATABASE " + maint.quote_ident(temp) + " RENAME TO " + maint.quote_ident(db));
    reg.remove_row(row);
  } catch (...) {
    core::drop_temporary(maint, temp);
    try {
      reg.remove_row(row);
    } catch (...) {
    }
    throw;
  }
}

std::string restore_command(const std::string& db, const std::string& snapshot) {
  return "previewdb safe-migrate " + db + " --restore " + snapshot;
}

// Restores unless someone else wrote since the backup (or --no-restore); fills the report.
void restore_or_explain(db::Connection& maint, StateRecord& record, const State& state,
                        const SafeMigrateOptions& o, SafeMigrateReport& report) {
  const std::string& db = o.dry.database;
  report.restore_command = restore_command(db, state.backup);
  if (o.no_restore) {
    report.not_restored_reason = "--no-restore";
    record.step("done");
    return;
  }
  if (exists(maint, db)) {
    // Statistics reach shared memory when a session goes idle, at most a second later.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    auto now = write_counters(maint, db);
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
  std::string kept = state.kept_as.empty()
                         ? kept_name(db, util::compact_timestamp(std::chrono::system_clock::now()))
                         : state.kept_as;
  record.kept_as(kept);
  try {
    swap_in(maint, db, state.backup, kept, o.terminate_sessions, o.on_step);
  } catch (const Error& e) {
    if (e.code() == ExitCode::refused) {
      report.not_restored_reason = e.what();
      record.step("done");
      return;
    }
    report.steps.push_back({"restore", ms_since(start), "FAILED"});
    util::log::warn("!!! RESTORE FAILED: " + std::string(e.what()));
    util::log::warn("!!! the backup is snapshot " + state.backup +
                    "; restore it with: " + report.restore_command);
    report.exit_code = static_cast<int>(ExitCode::failure);
    report.error += std::string(report.error.empty() ? "" : "; ") + "restore failed: " + e.what();
    return;
  }
  record.step("done");
  report.restored = true;
  report.kept_as = kept;
  report.steps.push_back({"restore", ms_since(start),
                          "restored " + state.backup +
                              ", the failed "
                              "database kept as " +
                              kept});
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

std::string kept_name(const std::string& database, const std::string& timestamp) {
  std::string suffix = "_before_restore_" + timestamp;
  std::string base = database.substr(0, 63 - std::min<size_t>(63, suffix.size()));
  return base + suffix;
}

SafeMigrateReport restore_snapshot(db::Connection& maint, const std::string& db,
                                   const std::string& snapshot, bool terminate_sessions,
                                   const std::function<void(const std::string&)>& on_step) {
  core::validate_name(db, "database");
  SafeMigrateReport report;
  report.database = db;
  report.backup = snapshot;
  auto start = Clock::now();
  std::string kept = kept_name(db, util::compact_timestamp(std::chrono::system_clock::now()));
  swap_in(maint, db, snapshot, kept, terminate_sessions, on_step);
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
    std::string what = "a previous safe-migrate of " + db + " (pid " + prev->pid + ", started " +
                       prev->started_at + ") stopped during step " + util::quoted(prev->step) +
                       (prev->backup.empty() ? "" : "; its backup is snapshot " + prev->backup);
    if (prev->step == "restore") {
      report.previous = what + ": finishing its restore";
      util::log::warn(*report.previous);
      report.backup = prev->backup;
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

  // 1. backup
  record.begin();
  if (o.on_step) o.on_step("backup");
  auto t = Clock::now();
  auto stats = write_counters(maint, db);
  snapshot::SnapshotRequest sr;
  sr.source = db;
  sr.created_by = o.created_by;
  sr.conninfo = o.dry.migrate.target.conninfo;
  sr.strategy = o.dry.strategy;
  auto snap = snapshot::create_snapshot(maint, sr);
  report.backup = snap.id;
  record.backup(snap.id, stats);
  report.steps.push_back({"backup", ms_since(t), "snapshot " + snap.id + " (" + snap.method + ")"});
  util::log::info("backup: snapshot " + snap.id + " (" + snap.method + ")");

  // 2. dry run on a clone of the snapshot
  record.step("dry-run");
  if (o.on_step) o.on_step("dry-run");
  t = Clock::now();
  DryRunOptions dry = o.dry;
  dry.clone_from = snap.id;
  report.dry_run = dryrun::dry_run(maint, dry);
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
      out << "restored=true: " << r.database << " is back to backup " << r.backup
          << "; the failed database is kept as " << r.kept_as << "\n";
    } else {
      out << "restored=false";
      if (!r.not_restored_reason.empty()) out << ": " << util::printable(r.not_restored_reason);
      out << "\n";
      if (!r.restore_command.empty()) {
        out << "backup: " << r.backup << "; to restore it: " << r.restore_command << "\n";
      }
    }
  }
  if (!r.failed && r.exit_code == 0) {
    out << "migrated " << r.database << ": " << r.applied.size() << " migration(s); backup "
        << r.backup << "\n";
  }
  return out.str();
}

}  // namespace previewdb::dryrun
