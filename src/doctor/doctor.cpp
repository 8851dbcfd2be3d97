#include "doctor/doctor.hpp"

#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "db/advisory_lock.hpp"
#include "db/dialect.hpp"
#include "db/interrupt.hpp"
#include "migrate/lock.hpp"
#include "migrate/migrate.hpp"
#include "snapshot/snapshot.hpp"
#include "storage/cockroach_url.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace previewdb::doctor {

namespace {

using Clock = std::chrono::steady_clock;

// The tiny migration: two schema changes in one file, which CockroachDB runs a statement at a
// time and PostgreSQL in one transaction.
const char* k_migration =
    "CREATE TABLE previewdb_doctor_migrated (id INT PRIMARY KEY);\n"
    "ALTER TABLE previewdb_doctor_migrated ADD COLUMN note TEXT;\n";

std::string describe(const db::Dialect& d) {
  std::string out = d.template_databases ? "clones from template databases"
                                         : "clones by BACKUP/RESTORE in an s3:// store";
  out += d.advisory_locks ? ", advisory migration lock" : ", lease-row migration lock";
  out +=
      d.transactional_ddl ? ", migrations in transactions" : ", migrations a statement at a time";
  if (!d.database_sizes) out += ", no database sizes";
  return out;
}

class Run {
 public:
  Run(db::Connection& maint, const Options& o, const core::Protection& protection,
      const std::function<void(const Step&)>& on_step)
      : m_maint(maint),
        m_options(o),
        m_protection(protection),
        m_on_step(on_step),
        m_source("previewdb_doctor_" + o.suffix),
        m_spawn("previewdb_doctor_" + o.suffix + "_spawn") {}

  Report go() {
    bool ok = step("server", [&] { return server(); });
    ok = ok && step("source", [&] { return source(); });
    ok = ok && step("lock", [&] { return lock(); });
    ok = ok && step("snapshot", [&] { return snapshot(); });
    ok = ok && step("spawn", [&] { return spawn(); });
    ok = ok && step("migrate", [&] { return migrate(); });
    for (const char* name : {"source", "lock", "snapshot", "spawn", "migrate"}) {
      bool seen = false;
      for (const auto& s : m_report.steps) seen = seen || s.name == name;
      if (!seen) emit({name, Status::skipped, "an earlier step failed", 0});
    }
    step("cleanup", [&] { return cleanup(); });
    return std::move(m_report);
  }

 private:
  // Runs one step; a failure (or SIGINT/SIGTERM, which cancels the running query) is reported,
  // never thrown, so that cleanup still runs.
  template <class F>
  bool step(const std::string& name, F&& fn) {
    auto start = Clock::now();
    Step s{name, Status::ok, "", 0};
    try {
      if (db::InterruptScope::received() && name != "cleanup") {
        throw Error(ExitCode::failure, "interrupted");
      }
      s.detail = fn();
    } catch (const Error& e) {
      s.status = Status::failed;
      s.detail = e.what();
      for (const auto& h : e.hints()) s.detail += " (hint: " + h + ")";
    } catch (const std::exception& e) {
      s.status = Status::failed;
      s.detail = e.what();
    }
    s.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    emit(std::move(s));
    return m_report.steps.back().status == Status::ok;
  }

  void emit(Step s) {
    m_report.steps.push_back(std::move(s));
    if (m_on_step) m_on_step(m_report.steps.back());
  }

  db::Connection open(const std::string& dbname) {
    return db::Connection::open(
        {.conninfo = m_options.conninfo, .dbname = dbname, .application_name = "previewdb doctor"});
  }

  std::string server() {
    auto info = db::classify_version(m_maint.exec("SELECT version()").get(0, 0));
    const auto& d = db::dialect_of(m_maint);
    m_report.dialect = d.name;
    m_report.server = std::string(d.name) + " " + info.version;
    if (!d.template_databases && !m_options.store_url) {
      throw usage_error(std::string(d.name) +
                            " snapshots are BACKUPs written by the cluster: doctor needs a store",
                        "pass --store s3://BUCKET/PREFIX (credentials: AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY, else the cluster's own with AUTH=implicit)");
    }
    return m_report.server + ": " + describe(d);
  }

  std::string source() {
    m_maint.exec(db::dialect_of(m_maint).create_empty_database(m_source));
    m_made_source = true;
    auto conn = open(m_source);
    conn.exec("CREATE TABLE previewdb_doctor_probe (id INT PRIMARY KEY, note TEXT)");
    conn.exec("INSERT INTO previewdb_doctor_probe VALUES (1, 'previewdb doctor')");
    return "created " + m_source + " with one table and one row";
  }

  std::string lock() {
    auto conn = open(m_source);
    migrate::LockOptions lo{.mode = migrate::LockMode::automatic,
                            .timeout = m_options.lock_timeout,
                            .conninfo = m_options.conninfo,
                            .dbname = m_source,
                            .database_label = "database " + util::quoted(m_source)};
    auto held = migrate::acquire_lock(conn, lo);
    std::string mode = held->mode() == migrate::LockMode::table ? "lease-row" : "advisory";
    // A second run must wait: try from another session for a moment.
    auto other = open(m_source);
    lo.timeout = std::chrono::milliseconds(300);
    bool excluded = false;
    try {
      migrate::acquire_lock(other, lo)->release();
    } catch (const Error& e) {
      if (e.code() != ExitCode::lock_timeout) throw;
      excluded = true;
    }
    held->release();
    if (!excluded) {
      throw Error(ExitCode::failure,
                  "the " + mode + " migration lock did not keep a second session out");
    }
    std::string out = "the " + mode + " migration lock keeps a second session out";
    // previewdb's own name locks (spawn, drop, ci of one name): session advisory locks, or lease
    // rows in the maintenance database where the dialect has none. Both sessions are like the
    // maintenance session (the rows live in its database).
    auto first_session = core::connect_like(m_maint, m_maint.database());
    auto second_session = core::connect_like(m_maint, m_maint.database());
    bool leases = db::AdvisoryLock::uses_leases(first_session);
    db::dialect_of(second_session);
    std::string key = "previewdb:doctor:" + m_options.suffix;
    bool first = db::AdvisoryLock::try_lock(first_session, key);
    bool second = db::AdvisoryLock::try_lock(second_session, key);
    if (second) db::AdvisoryLock::unlock(second_session, key);
    bool reacquired = false;
    if (first) {
      db::AdvisoryLock::unlock(first_session, key);
      reacquired = db::AdvisoryLock::try_lock(second_session, key);
      if (reacquired) db::AdvisoryLock::unlock(second_session, key);
    }
    std::string kind = leases ? "lease-row" : "advisory";
    if (!first) throw Error(ExitCode::failure, "could not take a free " + kind + " name lock");
    if (second) {
      if (leases) {
        throw Error(ExitCode::failure, "the lease-row name lock did not keep a second session out");
      }
      out +=
          "; warning: session advisory locks do not exclude here, so previewdb's name locks "
          "do not serialise two runs for one database name (run one previewdb per name at a "
          "time)";
      return out;
    }
    if (!reacquired) {
      throw Error(ExitCode::failure,
                  "the " + kind + " name lock was still held after it was released");
    }
    return out + "; the " + kind + " name lock keeps a second session out and is free again";
  }

  std::string snapshot() {
    snapshot::SnapshotRequest req;
    req.source = m_source;
    req.created_by = "previewdb-doctor";
    req.conninfo = m_options.conninfo;
    req.store_options = m_options.store_options;
    const auto& d = db::dialect_of(m_maint);
    if (!d.template_databases) req.store_url = m_options.store_url;
    auto result = snapshot::create_snapshot(m_maint, req);
    m_snapshot = result.id;
    if (d.template_databases) {
      m_snapshot_ref = result.id;
      return "snapshot " + result.id + " (" + result.method + ")";
    }
    m_snapshot_ref = *result.archive;
    // The backup must be listed in its collection before anything restores from it.
    auto listed = db::exec_redacted(
        m_maint, db::cockroach::show_backups(storage_url_for(
                     db::cockroach::split_backup_reference(m_snapshot_ref).collection)));
    if (listed.rows() == 0) {
      throw Error(ExitCode::failure, "SHOW BACKUPS lists nothing in " + m_snapshot_ref);
    }
    return "BACKUP into " + m_snapshot_ref + " (" + std::to_string(listed.rows()) +
           " backup listed)";
  }

  std::string spawn() {
    core::SpawnRequest req;
    req.name = m_spawn;
    req.meta.kind = core::Kind::personal;
    req.meta.created_by = "previewdb-doctor";
    req.source = m_source;
    req.snapshot = m_snapshot_ref;
    req.conninfo = m_options.conninfo;
    req.store_options = m_options.store_options;
    auto result = core::spawn(m_maint, req, m_protection);
    m_made_spawn = true;
    auto conn = open(m_spawn);
    auto rows = conn.exec("SELECT count(*) FROM previewdb_doctor_probe").get_int(0, 0);
    if (rows != 1) {
      throw Error(ExitCode::failure, m_spawn + " has " + std::to_string(rows) +
                                         " rows in previewdb_doctor_probe, not the snapshot's 1");
    }
    return "created " + m_spawn + " from " + result.snapshot + " (" + result.strategy +
           "); its row is there";
  }

  std::string migrate() {
    util::TempDir dir("previewdb-doctor-");
    util::write_file_atomic(dir.path() / "0001_previewdb_doctor.sql", k_migration);
    migrate::MigrateOptions mo;
    mo.target = {.conninfo = m_options.conninfo, .dbname = m_spawn};
    mo.dir = dir.path();
    mo.format = "auto";
    mo.lock_timeout = m_options.lock_timeout;
    mo.applied_by = "previewdb-doctor";
    auto report = migrate::migrate(mo);
    if (report.applied.size() != 1) {
      throw Error(ExitCode::failure, "the migration was not applied (" +
                                         std::to_string(report.applied.size()) + " applied)");
    }
    auto conn = open(m_spawn);
    conn.exec("SELECT id, note FROM previewdb_doctor_migrated");
    return "applied 0001_previewdb_doctor (2 statements, " + report.runs.front().mode + ", " +
           report.lock_mode + " lock) and recorded it";
  }

  std::string cleanup() {
    std::vector<std::string> done, left;
    auto drop = [&](const std::string& name, bool include_unmanaged) {
      try {
        auto r = core::drop_database(m_maint, name, m_protection, include_unmanaged);
        if (r.outcome == core::DropOutcome::dropped) {
          done.push_back(name);
        } else if (r.outcome != core::DropOutcome::absent) {
          left.push_back(name + " (" + r.reason + ")");
        }
      } catch (const std::exception& e) {
        left.push_back(name + " (" + e.what() + ")");
      }
    };
    if (m_made_spawn) drop(m_spawn, false);
    if (!m_snapshot.empty() && db::dialect_of(m_maint).template_databases) drop(m_snapshot, false);
    // The source is the doctor's own (made above under a random name), never registered.
    if (m_made_source) drop(m_source, true);
    if (!left.empty()) {
      throw Error(ExitCode::failure, "could not drop " + util::join(left, ", "));
    }
    std::string out = done.empty() ? "nothing to drop" : "dropped " + util::join(done, ", ");
    if (!m_snapshot.empty() && !db::dialect_of(m_maint).template_databases) {
      out += "; the backup stays in " + m_snapshot_ref + " (remove it with your bucket's tools)";
    }
    return out;
  }

  std::string storage_url_for(const std::string& collection) {
    return storage::cockroach_storage_url(collection, "", m_options.store_options);
  }

  db::Connection& m_maint;
  const Options& m_options;
  const core::Protection& m_protection;
  const std::function<void(const Step&)>& m_on_step;
  std::string m_source, m_spawn;
  bool m_made_source = false, m_made_spawn = false;
  std::string m_snapshot;      // the snapshot's id
  std::string m_snapshot_ref;  // what spawn takes: the id, or the backup's s3:// collection
  Report m_report;
};

}  // namespace

std::string to_string(Status status) {
  switch (status) {
    case Status::ok:
      return "ok";
    case Status::failed:
      return "failed";
    case Status::skipped:
      return "skipped";
  }
  return "?";
}

bool Report::ok() const {
  for (const auto& s : steps) {
    if (s.status != Status::ok) return false;
  }
  return !steps.empty();
}

Report run(db::Connection& maintenance, const Options& options, const core::Protection& protection,
           const std::function<void(const Step&)>& on_step) {
  return Run(maintenance, options, protection, on_step).go();
}

std::string format_step(const Step& step) {
  std::string status = to_string(step.status);
  std::string name = step.name;
  status.resize(std::max<size_t>(status.size(), 8), ' ');
  name.resize(std::max<size_t>(name.size(), 9), ' ');
  std::string out = status + name + step.detail;
  if (step.status != Status::skipped) out += " (" + std::to_string(step.duration_ms) + " ms)";
  return out;
}

nlohmann::json to_json(const Report& report) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : report.steps) {
    steps.push_back({{"step", s.name},
                     {"status", to_string(s.status)},
                     {"detail", s.detail},
                     {"duration_ms", s.duration_ms}});
  }
  return {{"ok", report.ok()},
          {"server", report.server},
          {"dialect", report.dialect},
          {"steps", steps}};
}

}  // namespace previewdb::doctor
