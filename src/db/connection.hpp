// libpq, wrapped: RAII handles, parameterised queries, errors that carry SQLSTATE and the
// server's detail/hint, and the connection's target described without its password.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/error.hpp"

namespace previewdb::db {

// A failed query: the server's SQLSTATE, message, detail, hint and error position.
class QueryError : public Error {
 public:
  QueryError(const std::string& message, std::string sqlstate, std::string primary,
             std::string detail, std::string hint, int position, bool connection_lost = false)
      : Error(ExitCode::failure, message),
        m_sqlstate(std::move(sqlstate)),
        m_primary(std::move(primary)),
        m_detail(std::move(detail)),
        m_server_hint(std::move(hint)),
        m_position(position),
        m_connection_lost(connection_lost) {}
  const std::string& sqlstate() const { return m_sqlstate; }
  const std::string& primary() const { return m_primary; }  // the server's message alone
  const std::string& detail() const { return m_detail; }
  const std::string& server_hint() const { return m_server_hint; }
  int position() const { return m_position; }  // 1-based character offset, 0 when unknown
  // The server crashed, restarted or ended the session (see connection_lost below).
  bool connection_lost() const { return m_connection_lost; }

 private:
  std::string m_sqlstate, m_primary, m_detail, m_server_hint;
  int m_position;
  bool m_connection_lost;
};

// A failure that is the server's going away, not the statement's: the connection is no longer
// usable, or the SQLSTATE is a connection exception (class 08) or an administrator shutdown or
// termination (57P01, 57P02, 57P03).
bool connection_lost(PGconn* conn, const std::string& sqlstate);

// The one message for a lost connection (exit 3): names what was being done, never blames the
// input ("fix the file"), and says how to look at the state once the server is back.
Error lost_connection_error(const std::string& operation, const std::string& reason,
                            const std::string& check_hint);

// Runs fn; a QueryError because the server went away (on any connection fn uses) becomes
// lost_connection_error(operation, ...). Other errors pass through unchanged.
template <class F>
decltype(auto) naming_lost_connection(const std::string& operation, const std::string& check_hint,
                                      F&& fn) {
  try {
    return fn();
  } catch (const QueryError& e) {
    if (!e.connection_lost()) throw;
    throw lost_connection_error(operation, e.primary(), check_hint);
  }
}

using Params = std::vector<std::optional<std::string>>;

class Result {
 public:
  explicit Result(PGresult* r) : m_res(r, &PQclear) {}
  int rows() const { return PQntuples(m_res.get()); }
  int columns() const { return PQnfields(m_res.get()); }
  bool is_null(int row, int col) const { return PQgetisnull(m_res.get(), row, col); }
  std::string get(int row, int col) const { return PQgetvalue(m_res.get(), row, col); }
  std::optional<std::string> get_opt(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return get(row, col);
  }
  long long get_int(int row, int col) const;
  bool get_bool(int row, int col) const { return get(row, col) == "t"; }
  std::string command_tuples() const { return PQcmdTuples(m_res.get()); }
  PGresult* raw() const { return m_res.get(); }

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> m_res;
};

struct ConnectOptions {
  // A URL or key=value conninfo; empty means "libpq's environment" (PGHOST, PGUSER, ...).
  std::string conninfo;
  // Overrides the database in conninfo when set.
  std::string dbname;
  std::chrono::seconds connect_timeout{10};
  std::string application_name = "previewdb";
  // "too many clients" (SQLSTATE 53300) is retried with backoff for up to this long: a busy
  // server is a wait, not a failure. Zero: fail at once.
  std::chrono::milliseconds busy_retry{std::chrono::seconds(60)};
};

// Settings of a session that runs maintenance statements (CREATE/DROP/ALTER DATABASE).
struct SessionLimits {
  // PostgreSQL lock_timeout: the run's lock timeout. A statement that waits longer for a lock
  // fails with Error(lock_timeout) naming it.
  std::chrono::milliseconds lock_timeout{std::chrono::minutes(10)};
  // While a statement runs longer than this, say every time what it waits for and on whom.
  std::chrono::seconds report_every{10};
};

class Connection {
 public:
  // Connects; throws Error(connection) naming the redacted target and libpq's reason.
  static Connection open(const ConnectOptions& options);

  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;

  Result exec(const std::string& sql);
  Result exec(const std::string& sql, const Params& params);
  // Runs a query, returning nullopt instead of throwing when it fails with `sqlstate`.
  std::optional<Result> try_exec(const std::string& sql, const Params& params,
                                 std::string_view sqlstate);

  std::string quote_ident(std::string_view ident) const;
  std::string quote_literal(std::string_view value) const;

  std::string database() const { return PQdb(m_conn.get()); }
  int server_version() const { return PQserverVersion(m_conn.get()); }
  int backend_pid() const { return PQbackendPID(m_conn.get()); }
  // One server session: this connection and its backend (a re-opened connection is a new one).
  // The key of what previewdb remembers per session (dialect, registry check, lease table).
  using SessionKey = std::pair<const void*, int>;
  SessionKey session_key() const { return {m_conn.get(), backend_pid()}; }
  // The target without secrets, e.g. "postgresql://app@db.example.com:5432/dev".
  const std::string& description() const { return m_description; }
  // Asks the server to cancel the running query (safe to call from another thread).
  void cancel();
  // Makes this a maintenance session: lock_timeout as given, no statement_timeout (CREATE
  // DATABASE and restores take as long as they take), client_connection_check_interval (PG14+)
  // so a killed previewdb's statement stops on the server, and progress reports while a
  // statement waits.
  void set_limits(const SessionLimits& limits);
  // Closes the session to free its server slot while only waiting (reopen() connects again
  // with the same options and session limits). Only for a session that holds no locks.
  void close_while_waiting();
  const std::optional<SessionLimits>& limits() const { return m_limits; }
  void reopen();
  PGconn* raw() const { return m_conn.get(); }

 private:
  Connection(PGconn* c, std::string description)
      : m_conn(c, &PQfinish), m_description(std::move(description)) {}
  Result check(PGresult* r, const std::string& sql);
  // Waits for the result of a sent query, reporting (limits set) while it waits.
  PGresult* wait_result(const std::string& sql);
  void report_wait(const std::string& sql, std::chrono::seconds waited);

  std::unique_ptr<PGconn, decltype(&PQfinish)> m_conn;
  std::string m_description;
  ConnectOptions m_options;
  std::optional<SessionLimits> m_limits;
};

// Ends a COPY the server started (a COPY_IN result: aborted with an error; COPY_OUT: the data
// drained and discarded), so the connection does not wait for data previewdb never sends.
void end_copy(PGconn* conn, ExecStatusType status);

// A URL whose query holds parameters libpq does not know (Prisma's schema=, pgbouncer=,
// connection_limit=, ...: libpq rejects them), split into what libpq takes and the rest.
// schema=X becomes options=-c search_path=X (what Prisma means by it) unless options is set.
// Key=value strings and URLs without such parameters come back unchanged.
struct SplitConninfo {
  std::string libpq;                 // what to give libpq
  std::vector<std::string> foreign;  // "key=value" as written (still percent-encoded)
};
SplitConninfo split_foreign_params(const std::string& conninfo, bool map_schema = true);

// The parsed parts of a conninfo (URL or key=value), with libpq's environment defaults applied
// for what the conninfo leaves out. Throws Error(usage) when the conninfo does not parse.
struct ConnInfo {
  std::vector<std::pair<std::string, std::string>> options;  // keyword -> value, non-empty only
  std::optional<std::string> get(std::string_view key) const;
};
ConnInfo parse_conninfo(const std::string& conninfo);

// Checks a conninfo before anything prints it: refuses (Error(usage), never quoting the input)
// URLs over util::k_max_url_bytes, bad %-escapes, '@', '/' or '?' left unescaped in the password,
// ports outside 1-65535 (also PGPORT). Registers password, sslpassword and PGPASSWORD (as written,
// decoded and re-encoded) for scrubbing and returns them, so that callers can mask them in CI.
std::vector<std::string> register_conninfo_secrets(const std::string& conninfo);

// A postgresql:// URL for another database on the same server as conninfo. The password is kept
// only when include_password is set (and it came from the conninfo itself, not from .pgpass).
std::string url_for_database(const std::string& conninfo, const std::string& dbname,
                             bool include_password);

// libpq environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, ...)
// equivalent to conninfo with dbname: how child processes (pg_dump, pg_restore, psql, users'
// migrators) receive a connection, so that no password ever appears in a process's arguments.
// Variables for settings the conninfo leaves out are removed (nullopt) so that nothing leaks in
// from the parent's environment.
std::map<std::string, std::optional<std::string>> libpq_environment(const std::string& conninfo,
                                                                    const std::string& dbname);

// The conninfo shown in messages: the URL with its password masked; "(libpq environment: ...)"
// when it is empty.
std::string describe_target(const std::string& conninfo);

}  // namespace previewdb::db
