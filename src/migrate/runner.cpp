// Applying migrations: one round trip per transactional migration (BEGIN; its statements; the
// history rows; COMMIT as one simple query), statement by statement for those that cannot run in
// a transaction, all under the migration lock, with the applied set fetched once.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "db/dialect.hpp"
#include "migrate/down.hpp"
#include "migrate/migrate.hpp"
#include "migrate/readers.hpp"
#include "migrate/splitter.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::migrate {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::string pg_interval(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + "ms";
}

// Cancels the running query when the overall --timeout passes.
class Watchdog {
 public:
  Watchdog(db::Connection& conn, std::optional<std::chrono::milliseconds> timeout) {
    if (!timeout) return;
    m_deadline = Clock::now() + *timeout;
    m_thread = std::jthread([this, &conn](std::stop_token stop) {
      std::mutex mutex;
      std::unique_lock lock(mutex);
      if (m_wake.wait_until(lock, stop, m_deadline, [] { return false; })) return;
      // A cancel that arrives between two statements cancels nothing: repeat it until the run
      // stops (the runner also checks fired() before each migration).
      while (!stop.stop_requested()) {
        m_fired = true;
        conn.cancel();
        m_wake.wait_for(lock, stop, 1s, [] { return false; });
      }
    });
  }
  ~Watchdog() {
    if (m_thread.joinable()) {
      m_thread.request_stop();
      m_wake.notify_all();
    }
  }
  bool fired() const { return m_fired; }
  // What is left of the overall timeout (for the lock wait).
  std::optional<std::chrono::milliseconds> left() const {
    if (!m_thread.joinable()) return std::nullopt;
    return std::max(
        0ms, std::chrono::duration_cast<std::chrono::milliseconds>(m_deadline - Clock::now()));
  }

 private:
  Clock::time_point m_deadline;
  std::atomic<bool> m_fired{false};
  std::condition_variable_any m_wake;
  std::jthread m_thread;
};

// Workflow commands go to stderr like every log line (raw_err adds the line break).
void emit_command(std::string command) {
  if (!command.empty() && command.back() == '\n') command.pop_back();
  util::log::command(command);
}

// Counts UTF-8 characters (PostgreSQL error positions are in characters).
size_t char_count(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

struct ServerError {
  std::string sqlstate, primary, detail, hint;
  int position = 0;
};

ServerError from_result(PGresult* r, PGconn* conn) {
  auto field = [&](int code) {
    const char* v = r ? PQresultErrorField(r, code) : nullptr;
    return std::string(v ? v : "");
  };
  ServerError e{field(PG_DIAG_SQLSTATE), field(PG_DIAG_MESSAGE_PRIMARY),
                field(PG_DIAG_MESSAGE_DETAIL), field(PG_DIAG_MESSAGE_HINT), 0};
  if (e.primary.empty()) e.primary = util::trim(PQerrorMessage(conn));
  std::string pos = field(PG_DIAG_STATEMENT_POSITION);
  if (!pos.empty()) e.position = std::atoi(pos.c_str());
  return e;
}

// A server that crashed, restarted or ended the session mid-run: not the file's fault, so the
// message names what was being done and never says "fix the file".
using db::connection_lost;

Error lost_connection_error(const Migration& m, const std::string& database,
                            const std::string& reason) {
  return db::lost_connection_error(
      "applying migration " + util::quoted(m.id) + " (" + m.display_path + ") to database " +
          util::quoted(database),
      reason, "when the server is back, 'previewdb status' shows what was applied; run again");
}

ServerError from_query_error(const db::QueryError& q) {
  return {q.sqlstate(), q.primary(), q.detail(), q.server_hint(), q.position()};
}

class Runner {
 public:
  Runner(const MigrateOptions& options, db::Connection& conn, const MigrationSet& set,
         ToolHistory* tool, Watchdog& watchdog, MigrateReport& report)
      : m_options(options),
        m_conn(conn),
        m_set(set),
        m_tool(tool),
        m_watchdog(watchdog),
        m_report(report) {}

  // Runs up.down (migrate down): previous is the newest migration that stays applied.
  void undo(const Migration& up, const Migration* previous, const std::string& schema) {
    Undo ctx{&up, previous, schema};
    m_undo = &ctx;
    try {
      apply(*up.down);
    } catch (...) {
      m_undo = nullptr;
      throw;
    }
    m_undo = nullptr;
  }

  // Durable commits once per run instead of once per migration (issue 15). Each migration still
  // commits in one transaction with its history rows; with defer on, that commit does not wait
  // for its WAL to reach the disk (synchronous_commit off for that transaction only). A later
  // commit that waits flushes all WAL before it, so the run's last migration commits as the
  // session says (synchronous by default), and a run that fails half-way calls flush_deferred().
  // A server crash can lose only a suffix of the deferred migrations, each with its history rows.
  void defer_flush(bool on) { m_defer = on; }

  // Makes the deferred commits durable: one small synchronous write transaction (a no-op update
  // of the last deferred history row), whose flush covers every commit before it.
  void flush_deferred() noexcept {
    if (!m_unflushed) return;
    try {
      if (PQtransactionStatus(m_conn.raw()) == PQTRANS_IDLE) {
        m_conn.exec("UPDATE _previewdb.schema_migrations SET status = status WHERE id = $1",
                    {*m_unflushed});
        m_unflushed.reset();
        return;
      }
    } catch (const std::exception& e) {
      util::log::debug(std::string("flushing the deferred commits: ") + e.what());
    }
    util::log::warn(
        "could not wait for the migrations applied so far to reach the disk; the server writes "
        "them out within a second unless it crashes first");
  }

  void apply(const Migration& m) {
    auto start = Clock::now();
    util::log::debug(std::string(m_undo ? "undoing " : "applying ") + m.id + " (" +
                     std::to_string(m.statements.size()) + " statements" +
                     (m.mode_reason.empty() ? "" : "; " + m.mode_reason) + ")");
    if (m_watchdog.fired()) fail(m, -1, ServerError{"", "cancelled", "", "", 0}, false);
    if (m.mode == Mode::autocommit || m_statement_at_a_time)
      apply_autocommit(m);
    else
      apply_transaction(m);
    MigrationRun run{m.id,
                     m.display_path,
                     m.statements.size(),
                     m_statement_at_a_time ? k_statement_mode : mode_label(m.mode),
                     m_statement_at_a_time ? m_statement_reason : m.mode_reason,
                     ms_since(start)};
    util::log::info(std::string(m_undo ? "undid " : "applied ") + m.id + " (" +
                    std::to_string(run.statements) + " statement" +
                    (run.statements == 1 ? "" : "s") + ", " + std::to_string(run.duration_ms) +
                    " ms)");
    m_report.applied.push_back(m.id);
    m_report.runs.push_back(std::move(run));
  }

  // Every migration a statement at a time (MigrateOptions::statement_at_a_time, or a dialect
  // without transactional DDL), `reason` saying why.
  void statement_at_a_time(std::string reason) {
    m_statement_at_a_time = true;
    m_statement_reason = std::move(reason);
  }
  static constexpr const char* k_statement_mode = "statement at a time";

  static std::string mode_label(Mode mode) {
    switch (mode) {
      case Mode::transaction:
        return "transaction";
      case Mode::own_transaction:
        return "own transaction";
      case Mode::autocommit:
        return "no transaction";
    }
    return "";
  }

 private:
  // What migrate down is undoing.
  struct Undo {
    const Migration* up;
    const Migration* previous;
    std::string schema;
  };

  // Why m ran the way it did.
  const std::string& reason_of(const Migration& m) const {
    return m_statement_at_a_time ? m_statement_reason : m.mode_reason;
  }

  // previewdb's row describes the up migration, also while its down runs.
  const Migration& own_subject(const Migration& m) const { return m_undo ? *m_undo->up : m; }

  std::vector<std::string> record_sql(const Migration& m, const RecordInfo& info) {
    if (m_undo) {
      std::vector<std::string> sql = {info.success
                                          ? unrecord_own(m_conn, *m_undo->up)
                                          : record_own(m_conn, *m_undo->up, m_set.format, info)};
      for (auto& s : tool_undo_sql(m_conn, m_set.format, m_undo->schema, *m_undo->up,
                                   m_undo->previous, info)) {
        sql.push_back(std::move(s));
      }
      return sql;
    }
    std::vector<std::string> sql = {record_own(m_conn, m, m_set.format, info)};
    if (m_tool) {
      for (auto& s : m_tool->record(m_conn, m, info)) sql.push_back(std::move(s));
    }
    return sql;
  }

  // The whole migration as one simple query; the failing statement is found from the error
  // position (or, without one, from how many statements had already completed).
  void apply_transaction(const Migration& m) {
    struct Piece {
      size_t chars;   // character offset in the query
      int statement;  // index into m.statements; -1 for previewdb's own SQL
    };
    std::vector<Piece> pieces;
    std::string text;
    size_t chars = 0;
    auto add = [&](const std::string& sql, int statement) {
      pieces.push_back({chars, statement});
      text += sql;
      text += "\n;\n";
      chars += char_count(sql) + 3;
    };
    RecordInfo info{.applied_by = m_options.applied_by};
    size_t n = m.statements.size();
    bool own = m.mode == Mode::own_transaction;
    // Not the run's last commit: it need not wait for its WAL flush, the last one flushes it.
    bool deferred = m_defer && !own && !m_undo;
    if (!own) add("BEGIN", -1);
    if (deferred) add("SET LOCAL synchronous_commit = off", -1);
    for (size_t i = 0; i < n - (own ? 1 : 0); ++i) add(m.statements[i].sql, static_cast<int>(i));
    for (const auto& s : record_sql(m, info)) add(s, -1);
    if (own)
      add(m.statements[n - 1].sql, static_cast<int>(n - 1));
    else
      add("COMMIT", -1);

    PGconn* raw = m_conn.raw();
    if (!PQsendQuery(raw, text.c_str())) {
      fail(m, -1, ServerError{"", util::trim(PQerrorMessage(raw)), "", "", 0}, false);
    }
    std::optional<ServerError> error;
    size_t completed = 0;
    while (PGresult* r = PQgetResult(raw)) {
      std::unique_ptr<PGresult, decltype(&PQclear)> guard(r, &PQclear);
      auto status = PQresultStatus(r);
      if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT) {
        // Refused before running (copy_stdio); should one slip through, end it rather than
        // wait for data that never comes.
        db::end_copy(raw, status);
        if (!error) {
          error = ServerError{"", "COPY FROM STDIN / TO STDOUT is not supported in migrations", "",
                              "", 0};
        }
        continue;
      }
      if (status == PGRES_FATAL_ERROR) {
        if (!error) error = from_result(r, raw);
      } else if (!error) {
        ++completed;
      }
    }
    if (!error && PQstatus(raw) != CONNECTION_OK) {
      error = ServerError{"", util::trim(PQerrorMessage(raw)), "", "", 0};
    }
    if (!error) {
      m_unflushed = deferred ? std::optional(own_subject(m).id) : std::nullopt;
      return;
    }
    try {
      m_conn.exec("ROLLBACK");
    } catch (...) {
      // The connection is gone or not in a transaction: the server rolls back on its own.
    }
    int statement = -1;
    size_t at_char = 0;
    if (error->position > 0) {
      size_t pos = static_cast<size_t>(error->position - 1);
      for (const auto& p : pieces) {
        if (p.chars <= pos) {
          statement = p.statement;
          at_char = pos - p.chars;
        }
      }
    } else if (completed < pieces.size()) {
      statement = pieces[completed].statement;
    }
    fail(m, statement, *error, false, at_char);
  }

  void apply_autocommit(const Migration& m) {
    auto start = Clock::now();
    // The server's clock, to the microsecond: history sorts by it.
    std::string started_at =
        m_conn.exec("SELECT clock_timestamp()::timestamptz(6)::text").get(0, 0);
    // Recorded as failed first: if previewdb is killed half-way, status says so.
    RecordInfo pending{.success = false,
                       .duration_ms = 0,
                       .started_at = started_at,
                       .error = m_undo ? "interrupted: previewdb stopped while undoing it"
                                       : "interrupted: previewdb stopped while applying it",
                       .applied_by = m_options.applied_by};
    m_conn.exec(record_own(m_conn, own_subject(m), m_set.format, pending));
    m_unflushed.reset();  // that commit waited for the WAL flush, so did every earlier one
    if (m_undo) {
      for (const auto& s :
           tool_undo_before_autocommit(m_conn, m_set.format, m_undo->schema, m_undo->previous)) {
        m_conn.exec(s);
      }
    } else if (m_tool) {
      for (const auto& s : m_tool->before_autocommit(m_conn, m)) m_conn.exec(s);
    }
    for (size_t i = 0; i < m.statements.size(); ++i) {
      try {
        m_conn.exec(m.statements[i].sql);
      } catch (const db::QueryError& e) {
        if (PQtransactionStatus(m_conn.raw()) != PQTRANS_IDLE) {
          try {
            m_conn.exec("ROLLBACK");
          } catch (...) {
          }
        }
        auto err = from_query_error(e);
        record_failure(m, started_at, start, err.primary);
        fail(m, static_cast<int>(i), err, true, err.position > 0 ? err.position - 1 : 0);
      }
    }
    if (PQtransactionStatus(m_conn.raw()) != PQTRANS_IDLE) {
      try {
        m_conn.exec("ROLLBACK");
      } catch (...) {
      }
      ServerError err{"",
                      "the file ends inside a transaction block (BEGIN without COMMIT); "
                      "its last transaction was rolled back",
                      "", "", 0};
      record_failure(m, started_at, start, err.primary);
      fail(m, static_cast<int>(m.statements.size()) - 1, err, true);
    }
    RecordInfo done{.duration_ms = ms_since(start),
                    .started_at = started_at,
                    .applied_by = m_options.applied_by};
    std::string text = "BEGIN;\n";
    for (const auto& s : record_sql(m, done)) text += s + ";\n";
    m_conn.exec(text + "COMMIT");
  }

  void record_failure(const Migration& m, const std::string& started_at, Clock::time_point start,
                      const std::string& error) {
    try {
      RecordInfo failed{.success = false,
                        .duration_ms = ms_since(start),
                        .started_at = started_at,
                        .error = error,
                        .applied_by = m_options.applied_by};
      std::string text = "BEGIN;\n";
      for (const auto& s : record_sql(m, failed)) text += s + ";\n";
      m_conn.exec(text + "COMMIT");
    } catch (const std::exception& e) {
      util::log::warn("could not record " + m.id + " as failed: " + e.what());
    }
  }

  [[noreturn]] void fail(const Migration& m, int statement, const ServerError& err, bool partial,
                         size_t char_in_statement = 0) {
    if (m_watchdog.fired()) {
      Error e(ExitCode::migration_failed,
              "migrate timed out (--timeout) while applying " + util::quoted(m.display_path));
      e.with_hint(partial ? "it ran outside a transaction: the statements before the one that "
                            "was cancelled are applied; it is recorded as failed"
                          : "its transaction was rolled back: nothing of it was applied");
      e.with_hint("raise --timeout, or run it when the database is less busy");
      throw e;
    }
    if (connection_lost(m_conn.raw(), err.sqlstate)) {
      throw lost_connection_error(m, m_report.database, err.primary);
    }
    std::string where = m.display_path;
    int line = 0;
    if (statement >= 0 && static_cast<size_t>(statement) < m.statements.size()) {
      const Statement& st = m.statements[static_cast<size_t>(statement)];
      size_t byte = byte_offset_of_char(st.sql, char_in_statement + 1);
      line = st.line + (char_in_statement > 0 ? line_of_offset(st.sql, byte) - 1 : 0);
      where += ":" + std::to_string(line);
    }
    std::string message = std::string(m_undo ? "down migration of " : "migration ") +
                          util::quoted(m.id) + " failed at " + where + ": " + err.primary;
    if (!err.sqlstate.empty()) message += " (SQLSTATE " + err.sqlstate + ")";
    if (statement < 0 && !err.sqlstate.empty()) message += " while recording it in the history";
    if (!err.detail.empty()) message += "\n  detail: " + err.detail;
    if (!err.hint.empty()) message += "\n  hint from PostgreSQL: " + err.hint;
    Error e(ExitCode::migration_failed, message);
    if (m_undo) {
      undo_hints(e, m, line, partial);
    } else if (partial) {
      e.with_hint("it ran outside a transaction (" + reason_of(m) +
                  "): the statements before line " + std::to_string(line) +
                  " were applied and it is recorded as failed; 'previewdb status' shows it");
      e.with_hint("fix the file and the database, then run 'previewdb migrate' again to retry it");
    } else {
      e.with_hint("its transaction was rolled back: nothing of " + m.id +
                  " was applied or recorded; fix the file and run 'previewdb migrate' again");
    }
    if (!m_undo && !m_report.applied.empty()) {
      e.with_hint(std::to_string(m_report.applied.size()) +
                  " migration(s) before it were applied and recorded");
    }
    if (m_options.github_annotations) {
      end_group();
      std::string body =
          err.primary + (err.sqlstate.empty() ? "" : " (SQLSTATE " + err.sqlstate + ")");
      if (!err.detail.empty()) body += "\ndetail: " + err.detail;
      if (!err.hint.empty()) body += "\nhint: " + err.hint;
      emit_command(util::workflow::error_command(
          m.display_path, line, (m_undo ? "down migration of " : "migration ") + m.id + " failed",
          body));
    }
    throw e;
  }

  void undo_hints(Error& e, const Migration& m, int line, bool partial) const {
    if (partial) {
      e.with_hint("it ran outside a transaction (" + reason_of(m) +
                  "): the statements before line " + std::to_string(line) + " were run and " +
                  m.id + " is recorded as failed; 'previewdb status' shows it");
      e.with_hint("make the database consistent by hand, then 'previewdb resolve --rolled-back " +
                  m.id + "' or '--applied " + m.id + "'");
    } else {
      e.with_hint("its transaction was rolled back: " + m.id +
                  " is still applied and recorded; fix " + m.display_path +
                  " and run 'previewdb migrate down' again");
    }
    if (!m_report.applied.empty()) {
      e.with_hint(std::to_string(m_report.applied.size()) +
                  " migration(s) after it were undone and their history updated");
    }
  }

 public:
  void begin_group(const std::string& title) {
    if (!m_options.github_annotations) return;
    emit_command(util::workflow::group_command(title));
    m_group_open = true;
  }
  void end_group() {
    if (!m_group_open) return;
    emit_command(util::workflow::endgroup_command());
    m_group_open = false;
  }

 private:
  const MigrateOptions& m_options;
  db::Connection& m_conn;
  const MigrationSet& m_set;
  ToolHistory* m_tool;
  Watchdog& m_watchdog;
  MigrateReport& m_report;
  bool m_group_open = false;
  const Undo* m_undo = nullptr;
  bool m_defer = false;
  std::optional<std::string> m_unflushed;  // id of the last commit not yet known to be flushed
  bool m_statement_at_a_time = false;
  std::string m_statement_reason;
};

// Only PostgreSQL has the per-transaction synchronous_commit setting (CockroachDB announces
// itself with a crdb_version parameter).
bool can_defer_flush(db::Connection& conn) {
  return PQparameterStatus(conn.raw(), "crdb_version") == nullptr;
}

void configure_session(db::Connection& conn, const MigrateOptions& o) {
  if (o.statement_timeout) {
    conn.exec("SET statement_timeout = " + conn.quote_literal(pg_interval(*o.statement_timeout)));
  }
  if (o.lock_wait_timeout) {
    conn.exec("SET lock_timeout = " + conn.quote_literal(pg_interval(*o.lock_wait_timeout)));
  }
  // A killed previewdb is noticed during a long statement, so its lock and transaction go away
  // without waiting for the statement to finish.
  if (conn.server_version() >= 140000) conn.exec("SET client_connection_check_interval = '1s'");
}

LockMode resolve_lock_mode(const MigrateOptions& o, MigrateReport& report) {
  if (o.lock_mode != LockMode::automatic) return o.lock_mode;
  if (looks_like_pooler(o.target.conninfo)) {
    std::string w =
        "the database URL looks like a connection pooler (PgBouncer in transaction mode?): using "
        "a lock row with a lease instead of an advisory lock; set DIRECT_URL to the database's "
        "direct address for migrations";
    util::log::warn(w);
    report.warnings.push_back(w);
    return LockMode::table;
  }
  return LockMode::advisory;
}

// libpq environment variables for a child process, from the target's conninfo.
std::map<std::string, std::optional<std::string>> child_env(const Target& target,
                                                            const std::string& dbname) {
  static const std::pair<const char*, const char*> vars[] = {
      {"host", "PGHOST"},
      {"hostaddr", "PGHOSTADDR"},
      {"port", "PGPORT"},
      {"user", "PGUSER"},
      {"password", "PGPASSWORD"},
      {"sslmode", "PGSSLMODE"},
      {"sslrootcert", "PGSSLROOTCERT"},
      {"sslcert", "PGSSLCERT"},
      {"sslkey", "PGSSLKEY"},
      {"options", "PGOPTIONS"},
      {"connect_timeout", "PGCONNECT_TIMEOUT"}};
  std::map<std::string, std::optional<std::string>> env;
  auto info = db::parse_conninfo(target.conninfo);
  for (const auto& [key, var] : vars) {
    if (auto v = info.get(key)) env[var] = *v;
  }
  env["PGDATABASE"] = dbname;
  env["PGAPPNAME"] = std::nullopt;
  std::string url = db::url_for_database(target.conninfo, dbname, /*include_password=*/true);
  env["DATABASE_URL"] = url;
  env["DIRECT_URL"] = url;
  return env;
}

// CockroachDB runs schema changes asynchronously and limits them in explicit transactions
// ("Online Schema Changes"): each statement on its own, the history after it returned. Why, or
// nullopt for the usual one transaction per migration.
std::optional<std::string> statement_at_a_time_reason(const MigrateOptions& o,
                                                      db::Connection& conn) {
  if (o.statement_at_a_time) return "statement at a time was asked for";
  if (const auto& dialect = db::dialect_of(conn); !dialect.transactional_ddl) {
    return std::string(dialect.name) + " limits schema changes in explicit transactions";
  }
  return std::nullopt;
}

MigrateReport run_command(const MigrateOptions& o, db::Connection& conn, Watchdog& watchdog,
                          MigrateReport report) {
  LockOptions lo{
      .mode = resolve_lock_mode(o, report),
      .timeout = watchdog.left() ? std::min(o.lock_timeout, *watchdog.left()) : o.lock_timeout,
      .conninfo = o.target.conninfo,
      .dbname = o.target.dbname,
      .database_label = "database " + util::quoted(conn.database())};
  auto lock = acquire_lock(conn, lo);
  report.lock_mode = lock->mode() == LockMode::table ? "table" : "advisory";
  util::log::info("running " + util::quoted(o.command) + " under the migration lock on " +
                  lo.database_label);
  // What the team's migrator applied is read from its own history table, before and after.
  std::optional<MigrationSet> set;
  std::unique_ptr<ToolHistory> tool;
  std::optional<AppliedSet> before;
  try {
    set = read_migrations({o.dir, o.format, o.placeholders});
    std::string schema = conn.exec("SELECT coalesce(current_schema(), 'public')").get(0, 0);
    tool = make_tool_history(set->format, schema);
    if (tool) before = load_applied(conn, *set, tool.get());
  } catch (const Error& e) {
    util::log::debug(std::string("cannot tell what the command applies: ") + e.what());
  }
  util::ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", o.command};
  spec.env = child_env(o.target, conn.database());
  spec.stdout_to_stderr = true;
  auto result = util::run_process(spec);
  report.command_exit_code = result.signal ? 128 + result.signal : result.exit_code;
  report.applied_known = false;
  if (before) {
    try {
      auto after = load_applied(conn, *set, tool.get());
      for (const auto& m : set->migrations) {
        auto now = after.by_id.find(m.id);
        if (now == after.by_id.end() || now->second.failed) continue;
        auto then = before->by_id.find(m.id);
        if (then == before->by_id.end() || then->second.failed) report.applied.push_back(m.id);
      }
      report.format = std::string(format_name(set->format));
      report.applied_known = true;
    } catch (const Error& e) {
      util::log::debug(std::string("cannot tell what the command applied: ") + e.what());
    }
  }
  if (*report.command_exit_code != 0) {
    util::log::warn("the migration command exited with status " +
                    std::to_string(*report.command_exit_code));
  }
  return report;
}

}  // namespace

MigrateReport migrate(const MigrateOptions& o) {
  MigrateReport report;
  report.dry_run = o.dry_run;
  std::optional<MigrationSet> set;
  if (o.command.empty()) {
    set = read_migrations({o.dir, o.format, o.placeholders});
    report.format = std::string(format_name(set->format));
    for (const auto& w : set->warnings) {
      util::log::warn(w);
      report.warnings.push_back(w);
    }
  }
  auto conn = db::Connection::open({.conninfo = o.target.conninfo,
                                    .dbname = o.target.dbname,
                                    .busy_retry = o.target.busy_retry});
  report.database = conn.description();
  Watchdog watchdog(conn, o.timeout);
  configure_session(conn, o);
  if (!set) return run_command(o, conn, watchdog, std::move(report));

  std::string schema = conn.exec("SELECT coalesce(current_schema(), 'public')").get(0, 0);
  auto tool = make_tool_history(set->format, schema);
  auto per_statement = statement_at_a_time_reason(o, conn);
  HeldLocks locks;
  if (!o.dry_run) {
    LockOptions lo{
        .mode = resolve_lock_mode(o, report),
        .timeout = watchdog.left() ? std::min(o.lock_timeout, *watchdog.left()) : o.lock_timeout,
        .conninfo = o.target.conninfo,
        .dbname = o.target.dbname,
        .database_label = "database " + util::quoted(conn.database())};
    // The folder's own tool (its CLI run by hand, another deploy) takes its own lock, not ours:
    // hold that one too.
    locks = acquire_migration_locks(conn, lo, set->format, schema, [&] {
      return watchdog.left() ? std::optional(std::min(o.lock_timeout, *watchdog.left()))
                             : std::nullopt;
    }());
    report.lock_mode = locks.mode() == LockMode::table ? "table" : "advisory";
    report.tool_locks = locks.tool_keys;
    // Created under the lock: concurrent CREATE ... IF NOT EXISTS can still collide.
    create_own_table(conn);
    if (tool) tool->create(conn);
  }
  // The applied set, once: never one query per file.
  auto applied = load_applied(conn, *set, tool.get());
  StatusReport st = compare(*set, applied);
  for (const auto& w : applied.warnings) {
    util::log::warn(w);
    report.warnings.push_back(w);
  }

  std::vector<std::string> changed;
  for (const auto& s : st.migrations) {
    if (s.state == State::changed) changed.push_back(s.file);
  }
  if (!changed.empty()) {
    std::string list = util::join(changed, ", ");
    if (!o.allow_changed) {
      Error e(ExitCode::refused,
              std::to_string(changed.size()) +
                  " applied migration(s) changed since they were applied: " + list);
      e.with_hint(
          "restore the original files, or re-create the database; "
          "--allow-changed applies the pending migrations anyway");
      throw e;
    }
    std::string w =
        "applied migration(s) changed since they were applied (--allow-changed): " + list;
    util::log::warn(w);
    report.warnings.push_back(w);
  }
  std::vector<const Migration*> pending;
  std::vector<std::string> out_of_order;
  for (size_t i = 0; i < set->migrations.size(); ++i) {
    const auto& s = st.migrations[i];
    if (s.state == State::applied || s.state == State::changed) {
      ++report.skipped;
      continue;
    }
    if (o.only && !o.only->count(s.id)) continue;
    if (s.state == State::failed) {
      std::string w = "retrying " + s.id + ", which failed before" +
                      (s.error.empty() ? "" : " (" + s.error + ")");
      util::log::warn(w);
      report.warnings.push_back(w);
    }
    if (s.out_of_order) out_of_order.push_back(s.id);
    pending.push_back(&set->migrations[i]);
  }
  if (!out_of_order.empty()) {
    std::string list = util::join(out_of_order, ", ");
    if (o.strict_order) {
      Error e(ExitCode::refused, "pending migration(s) older than the newest applied one: " + list);
      e.with_hint(
          "rebase the migrations so that new ones sort last, or re-create the database; "
          "without --strict-order they are applied with a warning");
      throw e;
    }
    std::string w =
        "applying migration(s) older than the newest applied one (after a rebase?): " + list;
    util::log::warn(w);
    report.warnings.push_back(w);
  }
  for (const Migration* m : pending) {
    if (!m->syntax_error) continue;
    std::string where = m->display_path + ":" + std::to_string(m->syntax_error->line);
    if (conn.server_version() / 10000 > 15) {
      // Our parser knows PostgreSQL 15; a newer server may accept newer syntax.
      util::log::warn(where + ": " + m->syntax_error->message +
                      " (PostgreSQL 15 grammar); the server will decide");
      continue;
    }
    Error e(ExitCode::migration_failed, "migration " + util::quoted(m->id) +
                                            " has a syntax error at " + where + ": " +
                                            m->syntax_error->message);
    e.with_hint("nothing was applied; fix the file and run 'previewdb migrate' again");
    if (o.github_annotations) {
      emit_command(util::workflow::error_command(m->display_path, m->syntax_error->line,
                                                 "syntax error", m->syntax_error->message));
    }
    throw e;
  }
  // COPY FROM STDIN / TO STDOUT would wait for data no one sends (psql's \copy feeds it from the
  // client): refuse it before anything is applied.
  for (const Migration* m : pending) {
    for (const auto& stmt : m->statements) {
      if (!stmt.copy_stdio) continue;
      std::string where = m->display_path + ":" + std::to_string(stmt.line);
      std::string what =
          "COPY ... FROM STDIN / TO STDOUT needs a client to send or receive the "
          "data, which previewdb does not do";
      Error e(ExitCode::migration_failed, "migration " + util::quoted(m->id) +
                                              " uses COPY with STDIN/STDOUT at " + where + ": " +
                                              what);
      e.with_hint(
          "nothing was applied; load the data with INSERT ... VALUES or COPY ... FROM a file "
          "the server can read, or run that step with psql outside the migration");
      if (o.github_annotations) {
        emit_command(
            util::workflow::error_command(m->display_path, stmt.line, "COPY not supported", what));
      }
      throw e;
    }
  }

  if (o.dry_run) {
    for (const Migration* m : pending) {
      report.applied.push_back(m->id);
      report.runs.push_back({m->id, m->display_path, m->statements.size(),
                             per_statement ? Runner::k_statement_mode : Runner::mode_label(m->mode),
                             per_statement.value_or(m->mode_reason), 0});
    }
    return report;
  }
  if (pending.empty()) {
    util::log::info("nothing to apply: " + std::to_string(report.skipped) +
                    " migrations already applied to " + report.database);
    return report;
  }
  Runner runner(o, conn, *set, tool.get(), watchdog, report);
  if (per_statement) runner.statement_at_a_time(*per_statement);
  runner.begin_group("previewdb migrate: " + std::to_string(pending.size()) +
                     " pending migration(s) on " + report.database);
  bool defer = can_defer_flush(conn);
  for (size_t i = 0; i < pending.size(); ++i) {
    const Migration* m = pending[i];
    if (m->statements.empty()) {
      // An empty file is still a migration the tool would record.
      util::log::debug(m->id + " has no statements");
    }
    runner.defer_flush(defer && i + 1 < pending.size());
    try {
      try {
        runner.apply(*m);
      } catch (...) {
        // What was applied before the failure is reported as applied: make it durable first.
        runner.flush_deferred();
        throw;
      }
    } catch (const db::QueryError& e) {
      // Bookkeeping statements (history rows) fail the same way when the server goes away.
      if (connection_lost(conn.raw(), e.sqlstate())) {
        throw lost_connection_error(*m, report.database, e.primary());
      }
      throw;
    }
  }
  runner.end_group();
  return report;
}

}  // namespace previewdb::migrate

// ---- migrate down ----

namespace previewdb::migrate {

namespace {

// A down that cannot run as written is refused before anything is undone, as 'migrate' does for
// ups: a syntax error (on PostgreSQL 15 or older), COPY FROM STDIN / TO STDOUT.
void refuse_unrunnable_downs(const std::vector<const Migration*>& plan, db::Connection& conn,
                             bool annotations) {
  for (const Migration* up : plan) {
    const Migration& d = *up->down;
    if (d.syntax_error && conn.server_version() / 10000 <= 15) {
      std::string where = d.display_path + ":" + std::to_string(d.syntax_error->line);
      Error e(ExitCode::migration_failed, "down migration of " + util::quoted(up->id) +
                                              " has a syntax error at " + where + ": " +
                                              d.syntax_error->message);
      e.with_hint("nothing was undone; fix the file and run 'previewdb migrate down' again");
      if (annotations) {
        emit_command(util::workflow::error_command(d.display_path, d.syntax_error->line,
                                                   "syntax error", d.syntax_error->message));
      }
      throw e;
    }
    for (const auto& stmt : d.statements) {
      if (!stmt.copy_stdio) continue;
      Error e(ExitCode::migration_failed, "down migration of " + util::quoted(up->id) +
                                              " uses COPY with STDIN/STDOUT at " + d.display_path +
                                              ":" + std::to_string(stmt.line) +
                                              ": previewdb does not send or receive COPY data");
      e.with_hint("nothing was undone; use INSERT ... VALUES or COPY ... FROM a server file");
      throw e;
    }
  }
}

}  // namespace

DownReport migrate_down(const DownOptions& d) {
  const MigrateOptions& o = d.base;
  if (!d.steps && !d.to) {
    throw usage_error("'migrate down' needs --steps N or --to VERSION: nothing was undone",
                      "--steps 1 undoes the newest applied migration; --to 0 undoes all of them");
  }
  DownReport report;
  report.dry_run = o.dry_run;
  MigrationSet set = read_migrations({o.dir, o.format, o.placeholders});
  report.format = std::string(format_name(set.format));
  if (set.format == Format::drizzle || set.format == Format::drizzle1) {
    throw usage_error(
        "Drizzle migrations have no down parts (drizzle-kit writes none): nothing "
        "was undone",
        "write a new migration that reverses the change, or restore a backup "
        "('previewdb rollback')");
  }
  for (const auto& w : set.warnings) {
    util::log::warn(w);
    report.warnings.push_back(w);
  }
  auto conn = db::Connection::open({.conninfo = o.target.conninfo,
                                    .dbname = o.target.dbname,
                                    .busy_retry = o.target.busy_retry});
  report.database = conn.description();
  Watchdog watchdog(conn, o.timeout);
  configure_session(conn, o);
  std::string schema = conn.exec("SELECT coalesce(current_schema(), 'public')").get(0, 0);
  auto tool = make_tool_history(set.format, schema);
  MigrateReport inner;  // the runner's report: `applied` holds what was undone
  inner.database = report.database;
  HeldLocks locks;
  if (!o.dry_run) {
    LockOptions lo{
        .mode = resolve_lock_mode(o, inner),
        .timeout = watchdog.left() ? std::min(o.lock_timeout, *watchdog.left()) : o.lock_timeout,
        .conninfo = o.target.conninfo,
        .dbname = o.target.dbname,
        .database_label = "database " + util::quoted(conn.database())};
    locks = acquire_migration_locks(conn, lo, set.format, schema);
    report.lock_mode = locks.mode() == LockMode::table ? "table" : "advisory";
    create_own_table(conn);
    if (tool) tool->create(conn);
  }
  for (auto& w : inner.warnings) report.warnings.push_back(w);
  auto applied = load_applied(conn, set, tool.get());
  for (const auto& w : applied.warnings) {
    util::log::warn(w);
    report.warnings.push_back(w);
  }
  StatusReport st = compare(set, applied);
  std::vector<std::string> plan_warnings;
  auto plan = plan_down(set, st, d.steps, d.to, plan_warnings);
  for (const auto& w : plan_warnings) {
    util::log::warn(w);
    report.warnings.push_back(w);
  }
  refuse_unrunnable_downs(plan, conn, o.github_annotations);
  size_t applied_count = 0;
  for (const auto& s : st.migrations) {
    if ((s.state == State::applied || s.state == State::changed) && !s.repeatable) ++applied_count;
  }
  report.remaining = applied_count - plan.size();
  if (o.dry_run || plan.empty()) {
    for (const Migration* m : plan) {
      report.undone.push_back(m->id);
      report.runs.push_back({m->id, m->down->display_path, m->down->statements.size(),
                             Runner::mode_label(m->down->mode), m->down->mode_reason, 0});
    }
    if (plan.empty()) util::log::info("nothing to undo on " + report.database);
    return report;
  }
  // The newest migration that stays applied below each one undone (golang-migrate's version).
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < set.migrations.size(); ++i) index[set.migrations[i].id] = i;
  auto previous_of = [&](const Migration& m) -> const Migration* {
    for (size_t i = index[m.id]; i-- > 0;) {
      const auto& s = st.migrations[i];
      if ((s.state == State::applied || s.state == State::changed) && !s.repeatable) {
        return &set.migrations[i];
      }
    }
    return nullptr;
  };
  Runner runner(o, conn, set, tool.get(), watchdog, inner);
  if (auto reason = statement_at_a_time_reason(o, conn)) runner.statement_at_a_time(*reason);
  runner.begin_group("previewdb migrate down: " + std::to_string(plan.size()) +
                     " migration(s) on " + report.database);
  for (const Migration* m : plan) {
    try {
      runner.undo(*m, previous_of(*m), schema);
    } catch (const db::QueryError& e) {
      if (connection_lost(conn.raw(), e.sqlstate())) {
        throw lost_connection_error(*m->down, report.database, e.primary());
      }
      throw;
    }
  }
  runner.end_group();
  report.undone = inner.applied;
  report.runs = inner.runs;
  return report;
}

}  // namespace previewdb::migrate
