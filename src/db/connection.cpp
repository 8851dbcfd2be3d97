#include "db/connection.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include "db/dialect.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/url.hpp"

namespace previewdb::db {

namespace {

std::string field(const PGresult* r, int code) {
  const char* v = PQresultErrorField(r, code);
  return v ? v : "";
}

void notice_to_log(void*, const PGresult* r) {
  std::string severity = field(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  std::string msg = field(r, PG_DIAG_MESSAGE_PRIMARY);
  if (severity == "WARNING")
    util::log::warn("server: " + msg);
  else
    util::log::debug("server " + util::to_lower(severity) + ": " + msg);
}

}  // namespace

long long Result::get_int(int row, int col) const {
  return is_null(row, col) ? 0 : std::atoll(PQgetvalue(m_res.get(), row, col));
}

std::optional<std::string> ConnInfo::get(std::string_view key) const {
  for (const auto& [k, v] : options) {
    if (k == key) return v;
  }
  return std::nullopt;
}

SplitConninfo split_foreign_params(const std::string& conninfo, bool map_schema) {
  SplitConninfo out{conninfo, {}};
  bool is_url = conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0;
  auto q = conninfo.find('?');
  if (!is_url || q == std::string::npos) return out;
  std::set<std::string> known;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> defaults(PQconndefaults(),
                                                                        &PQconninfoFree);
  for (auto* o = defaults.get(); defaults && o->keyword; ++o) known.insert(o->keyword);
  std::vector<std::string> kept;
  std::optional<std::string> schema;
  bool has_options = false;
  for (const auto& param : util::split(conninfo.substr(q + 1), '&')) {
    if (param.empty()) continue;
    std::string key = param.substr(0, param.find('='));
    if (known.count(key)) {
      kept.push_back(param);
      if (key == "options") has_options = true;
    } else {
      out.foreign.push_back(param);
      if (key == "schema" && param.find('=') != std::string::npos) {
        schema = param.substr(param.find('=') + 1);
      }
    }
  }
  // Prisma's schema= is the search path its migrations and queries run with.
  if (map_schema && schema && !schema->empty() && !has_options) {
    kept.push_back("options=-c%20search_path%3D" + *schema);
  }
  out.libpq = conninfo.substr(0, q) + (kept.empty() ? "" : "?" + util::join(kept, "&"));
  return out;
}

namespace {

// libpq's parse errors quote the offending token, which may be part of a password: keep the
// reason, drop what is quoted.
std::string without_quoted_text(std::string reason) {
  std::string out;
  bool inside = false;
  for (char c : util::trim(reason)) {
    if (c == '"') {
      if (!inside) out += "\"...\"";
      inside = !inside;
      continue;
    }
    if (!inside) out += c;
  }
  return out;
}

Error bad_conninfo(const std::string& why) {
  return usage_error("invalid connection string: " + why,
                     "use a URL such as postgresql://user@host:5432/dbname (the password "
                     "percent-encoded, or in PGPASSWORD / ~/.pgpass)");
}

void check_ports(const std::string& ports, const std::string& where) {
  for (const auto& port : util::split(ports, ',')) {
    if (port.empty() || util::is_valid_port(port)) continue;
    throw usage_error("invalid port " + util::quoted(port) + " in " + where +
                          ": a port is a number from 1 to 65535",
                      "fix the port in the URL, PGPORT or previewdb.json");
  }
}

// PQconninfoParse after previewdb's own checks; throws Error(usage) without quoting the input.
std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> parse_checked(
    const std::string& conninfo) {
  if (auto problem = util::url_problem(conninfo)) throw bad_conninfo(*problem);
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(
      PQconninfoParse(conninfo.c_str(), &err), &PQconninfoFree);
  if (!opts) {
    std::string reason = err ? without_quoted_text(err) : "out of memory";
    if (err) PQfreemem(err);
    throw bad_conninfo(reason);
  }
  for (auto* o = opts.get(); o->keyword; ++o) {
    if (std::strcmp(o->keyword, "port") == 0 && o->val) check_ports(o->val, "the connection URL");
  }
  return opts;
}

}  // namespace

std::vector<std::string> register_conninfo_secrets(const std::string& raw_conninfo) {
  std::vector<std::string> found;
  auto add = [&](const std::string& v) {
    if (v.empty()) return;
    for (const auto& form : {v, util::url_encode(v)}) {
      if (std::find(found.begin(), found.end(), form) == found.end()) found.push_back(form);
    }
  };
  if (!raw_conninfo.empty()) {
    if (auto problem = util::url_problem(raw_conninfo)) throw bad_conninfo(*problem);
    auto parts = util::split_url(raw_conninfo);
    // Another scheme (Prisma Accelerate's prisma://, ...) is not libpq's to parse; its password
    // is still a secret.
    if (!parts || parts->scheme == "postgresql" || parts->scheme == "postgres") {
      auto opts = parse_checked(split_foreign_params(raw_conninfo).libpq);
      for (auto* o = opts.get(); o->keyword; ++o) {
        if (!o->val) continue;
        if (std::strcmp(o->keyword, "password") == 0 || std::strcmp(o->keyword, "sslpassword") == 0)
          add(o->val);
      }
    }
    // Tokens in the query (prisma://...?api_key=...), and the password as written in the URL,
    // which may percent-encode differently than url_encode.
    if (parts) {
      for (const auto& param : util::split(parts->query, '&')) {
        auto eq = param.find('=');
        if (eq == std::string::npos || !util::is_secret_key(param.substr(0, eq))) continue;
        add(util::percent_decode(param.substr(eq + 1)));
        if (std::find(found.begin(), found.end(), param.substr(eq + 1)) == found.end())
          found.push_back(param.substr(eq + 1));
      }
    }
    if (parts && parts->password && !parts->password->empty()) {
      add(util::percent_decode(*parts->password));
      if (std::find(found.begin(), found.end(), *parts->password) == found.end())
        found.push_back(*parts->password);
    }
  }
  if (const char* pw = std::getenv("PGPASSWORD"); pw && *pw) add(pw);
  if (const char* port = std::getenv("PGPORT"); port && *port) check_ports(port, "PGPORT");
  for (const auto& s : found) util::register_secret(s);
  return found;
}

ConnInfo parse_conninfo(const std::string& raw_conninfo) {
  // Checked as written: splitting off Prisma's parameters could hide part of a password.
  if (auto problem = util::url_problem(raw_conninfo)) throw bad_conninfo(*problem);
  ConnInfo info;
  std::string conninfo = split_foreign_params(raw_conninfo).libpq;
  auto opts = parse_checked(conninfo);
  std::set<std::string> seen;
  for (auto* o = opts.get(); o->keyword; ++o) {
    if (o->val && *o->val) {
      info.options.emplace_back(o->keyword, o->val);
      seen.insert(o->keyword);
    }
  }
  // Fill in what libpq would take from the environment (PGHOST, PGPORT, PGUSER, PGSSLMODE...).
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> defaults(PQconndefaults(),
                                                                        &PQconninfoFree);
  for (auto* o = defaults.get(); defaults && o->keyword; ++o) {
    if (seen.count(o->keyword) || !o->envvar || !o->val) continue;
    if (std::strcmp(o->keyword, "password") == 0) continue;
    if (std::getenv(o->envvar)) info.options.emplace_back(o->keyword, o->val);
  }
  if (auto port = info.get("port")) check_ports(*port, "the connection settings (URL or PGPORT)");
  return info;
}

std::string url_for_database(const std::string& conninfo, const std::string& dbname,
                             bool include_password) {
  // The URL as the user wrote it (schema= stays schema=, re-appended below), not libpq's form.
  ConnInfo info = parse_conninfo(split_foreign_params(conninfo, /*map_schema=*/false).libpq);
  std::string user = info.get("user").value_or("");
  std::string password = include_password ? info.get("password").value_or("") : "";
  // A password that came from the environment rather than the conninfo is not ours to print.
  if (include_password && !conninfo.empty() && password.empty()) password = "";
  std::string host = info.get("host").value_or("");
  std::string port = info.get("port").value_or("");
  std::vector<std::string> query;
  std::string authority;
  if (!user.empty()) {
    authority = util::url_encode(user);
    if (!password.empty()) authority += ":" + util::url_encode(password);
    authority += "@";
  }
  bool host_in_query = host.find('/') != std::string::npos || host.find(',') != std::string::npos;
  if (!host.empty() && !host_in_query) {
    authority += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  }
  if (!port.empty() && !host_in_query) authority += ":" + port;
  if (host_in_query) query.push_back("host=" + util::url_encode(host));
  if (host_in_query && !port.empty()) query.push_back("port=" + util::url_encode(port));
  static const std::set<std::string> skip = {"user", "password", "host",
                                             "port", "dbname",   "hostaddr_unused"};
  for (const auto& [k, v] : info.options) {
    if (skip.count(k)) continue;
    query.push_back(k + "=" + util::url_encode(v));
  }
  // Parameters meant for the application (Prisma's schema=, pgbouncer=...) travel on with the URL.
  auto foreign = split_foreign_params(conninfo).foreign;
  query.insert(query.end(), foreign.begin(), foreign.end());
  std::string url = "postgresql://" + authority + "/" + util::url_encode(dbname);
  if (!query.empty()) url += "?" + util::join(query, "&");
  return url;
}

std::map<std::string, std::optional<std::string>> libpq_environment(const std::string& conninfo,
                                                                    const std::string& dbname) {
  std::map<std::string, std::optional<std::string>> env;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> defaults(PQconndefaults(),
                                                                        &PQconninfoFree);
  ConnInfo info = parse_conninfo(conninfo);
  for (auto* o = defaults.get(); defaults && o->keyword; ++o) {
    if (!o->envvar) continue;
    env[o->envvar] = std::nullopt;
  }
  // PGPASSWORD from the parent stays usable when the conninfo has no password of its own.
  if (const char* pw = std::getenv("PGPASSWORD")) env["PGPASSWORD"] = pw;
  if (const char* pf = std::getenv("PGPASSFILE")) env["PGPASSFILE"] = pf;
  for (auto* o = defaults.get(); defaults && o->keyword; ++o) {
    if (!o->envvar) continue;
    if (auto v = info.get(o->keyword)) env[o->envvar] = *v;
  }
  for (const auto& [key, value] : info.options) {
    // Settings without an environment variable of their own.
    if (key == "options") env["PGOPTIONS"] = value;
  }
  env["PGDATABASE"] = dbname;
  env["PGAPPNAME"] = "previewdb";
  return env;
}

std::string describe_target(const std::string& conninfo) {
  if (conninfo.empty()) {
    std::string host = std::getenv("PGHOST") ? std::getenv("PGHOST") : "(default socket)";
    std::string port = std::getenv("PGPORT") ? std::getenv("PGPORT") : "5432";
    return "the server from the libpq environment (PGHOST=" + host + ", PGPORT=" + port + ")";
  }
  return util::redact_url(conninfo);
}

Connection Connection::open(const ConnectOptions& options) {
  ConnectOptions o = options;
  o.conninfo = split_foreign_params(options.conninfo).libpq;
  std::string timeout = std::to_string(o.connect_timeout.count());
  std::vector<const char*> keys, values;
  if (!o.conninfo.empty()) {
    keys.push_back("dbname");
    values.push_back(o.conninfo.c_str());
  }
  if (!o.dbname.empty()) {
    keys.push_back("dbname");
    values.push_back(o.dbname.c_str());
  }
  keys.push_back("application_name");
  values.push_back(o.application_name.c_str());
  // Only when the conninfo does not set one: a user's own connect_timeout wins.
  if (o.conninfo.find("connect_timeout") == std::string::npos &&
      !std::getenv("PGCONNECT_TIMEOUT")) {
    keys.push_back("connect_timeout");
    values.push_back(timeout.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);

  // Refuses ambiguous URLs and bad ports (usage), and registers every secret before any message
  // below can show it.
  register_conninfo_secrets(o.conninfo);

  std::string target = describe_target(o.conninfo);
  if (!o.dbname.empty()) target += " (database " + util::quoted(o.dbname) + ")";
  // "too many clients" (53300): wait for a slot with backoff, within busy_retry.
  auto busy_deadline = std::chrono::steady_clock::now() + o.busy_retry;
  auto delay = std::chrono::milliseconds(100);
  bool announced = false;
  PGconn* raw = nullptr;
  for (;;) {
    raw = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
    if (!raw || PQstatus(raw) == CONNECTION_OK) break;
    std::string reason = PQerrorMessage(raw);
    bool busy = reason.find("too many clients") != std::string::npos ||
                reason.find("remaining connection slots are reserved") != std::string::npos;
    if (!busy || std::chrono::steady_clock::now() + delay > busy_deadline) break;
    if (!announced) {
      util::log::info(
          "the server at " + target +
          " has no free connection slot (too many clients); retrying for up to " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(o.busy_retry).count()) +
          "s");
      announced = true;
    }
    PQfinish(raw);
    raw = nullptr;
    // Jitter keeps a crowd of waiting runs from retrying in step.
    std::this_thread::sleep_for(delay + std::chrono::milliseconds(std::rand() % 100));
    delay = std::min(delay * 2, std::chrono::milliseconds(2000));
  }
  if (!raw) throw Error(ExitCode::connection, "cannot connect to " + target + ": out of memory");
  Connection conn(raw, target);
  conn.m_options = options;
  if (PQstatus(raw) != CONNECTION_OK) {
    std::string reason = util::trim(PQerrorMessage(raw));
    Error e(ExitCode::connection, "cannot connect to " + target + ": " + reason);
    if (reason.find("does not exist") != std::string::npos && !o.dbname.empty()) {
      e = Error(ExitCode::not_found, "cannot connect to " + target + ": " + reason);
      e.with_hint("run 'previewdb list' to see the databases on this server");
    } else {
      e.with_hint(
          "check --database-url, DATABASE_URL or the PG* variables, and that the server "
          "is running and reachable; with none of them set previewdb starts its own local "
          "server ('previewdb local status')");
    }
    throw e;
  }
  PQsetNoticeReceiver(raw, notice_to_log, nullptr);
  return conn;
}

void end_copy(PGconn* conn, ExecStatusType status) {
  if (status == PGRES_COPY_IN) {
    PQputCopyEnd(conn, "previewdb does not send COPY data (COPY FROM STDIN is not supported)");
  } else if (status == PGRES_COPY_OUT) {
    char* buf = nullptr;
    while (PQgetCopyData(conn, &buf, 0) > 0) {
      PQfreemem(buf);
      buf = nullptr;
    }
  }
}

Result Connection::check(PGresult* r, const std::string& sql) {
  Result res(r);
  auto status = PQresultStatus(r);
  if (r && (status == PGRES_COPY_IN || status == PGRES_COPY_OUT)) {
    // Nothing in previewdb speaks the COPY sub-protocol: end it and report, never wait.
    end_copy(m_conn.get(), status);
    while (PGresult* rest = PQgetResult(m_conn.get())) PQclear(rest);
    throw QueryError("COPY FROM STDIN / TO STDOUT is not supported", "0A000",
                     "COPY FROM STDIN / TO STDOUT is not supported", "", "", 0);
  }
  if (r &&
      (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY)) {
    return res;
  }
  std::string primary = r ? field(r, PG_DIAG_MESSAGE_PRIMARY) : "";
  if (primary.empty()) primary = util::trim(PQerrorMessage(m_conn.get()));
  std::string pos = r ? field(r, PG_DIAG_STATEMENT_POSITION) : "";
  std::string sqlstate = r ? field(r, PG_DIAG_SQLSTATE) : "";
  util::log::debug("query failed (" + sqlstate + "): " + sql.substr(0, 200));
  if (m_limits && sqlstate == "55P03") {
    std::string statement = util::trim(sql.substr(0, sql.find('\n')));
    if (statement.size() > 100) statement = statement.substr(0, 100) + "...";
    throw Error(
        ExitCode::lock_timeout,
        "timed out after " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(m_limits->lock_timeout).count()) +
            "s (lock timeout) waiting for a lock for: " + statement + ": " + primary,
        {"another session holds it (see the messages above); try again when it is done, "
         "or raise --lock-timeout"});
  }
  throw QueryError(primary, sqlstate, primary, r ? field(r, PG_DIAG_MESSAGE_DETAIL) : "",
                   r ? field(r, PG_DIAG_MESSAGE_HINT) : "",
                   pos.empty() ? 0 : std::atoi(pos.c_str()),
                   connection_lost(m_conn.get(), sqlstate));
}

bool connection_lost(PGconn* conn, const std::string& sqlstate) {
  return PQstatus(conn) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 || sqlstate == "57P01" ||
         sqlstate == "57P02" || sqlstate == "57P03";
}

Error lost_connection_error(const std::string& operation, const std::string& reason,
                            const std::string& check_hint) {
  Error e(ExitCode::connection,
          "lost the connection to the server while " + operation + ": " + reason);
  e.with_hint(
      "the server stopped, restarted or ended the session; this is not a fault in the input");
  if (!check_hint.empty()) e.with_hint(check_hint);
  return e;
}

Result Connection::exec(const std::string& sql) {
  if (!m_limits) return check(PQexec(m_conn.get(), sql.c_str()), sql);
  if (!PQsendQuery(m_conn.get(), sql.c_str())) return check(nullptr, sql);
  return check(wait_result(sql), sql);
}

Result Connection::exec(const std::string& sql, const Params& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (!m_limits) {
    return check(PQexecParams(m_conn.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                              values.data(), nullptr, nullptr, 0),
                 sql);
  }
  if (!PQsendQueryParams(m_conn.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                         values.data(), nullptr, nullptr, 0)) {
    return check(nullptr, sql);
  }
  return check(wait_result(sql), sql);
}

PGresult* Connection::wait_result(const std::string& sql) {
  PGconn* c = m_conn.get();
  auto start = std::chrono::steady_clock::now();
  auto next_report = start + m_limits->report_every;
  while (PQisBusy(c)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        next_report - std::chrono::steady_clock::now());
    if (PQsocket(c) < 0) break;  // no connection any more: PQgetResult reports it
    pollfd pfd{PQsocket(c), POLLIN, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(0, left.count())));
    if (rc < 0 && errno != EINTR) break;
    if (rc > 0 && !PQconsumeInput(c)) break;  // connection lost: PQgetResult reports it
    if (std::chrono::steady_clock::now() >= next_report) {
      report_wait(sql, std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::steady_clock::now() - start));
      next_report += m_limits->report_every;
    }
  }
  // As PQexec: the first error wins, else the last result; a COPY result ends the wait.
  PGresult* kept = nullptr;
  while (PGresult* r = PQgetResult(c)) {
    auto status = PQresultStatus(r);
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT) {
      PQclear(kept);
      return r;
    }
    if (kept && PQresultStatus(kept) == PGRES_FATAL_ERROR) {
      PQclear(r);
      continue;
    }
    PQclear(kept);
    kept = r;
  }
  return kept;
}

void Connection::report_wait(const std::string& sql, std::chrono::seconds waited) {
  std::string statement = util::trim(sql.substr(0, sql.find('\n')));
  if (statement.size() > 100) statement = statement.substr(0, 100) + "...";
  std::string message =
      "still waiting after " + std::to_string(waited.count()) + "s for: " + statement;
  try {
    // Our own session is busy: ask on a second, short-lived one.
    ConnectOptions o = m_options;
    o.application_name = "previewdb (wait report)";
    o.connect_timeout = std::chrono::seconds(5);
    o.busy_retry = std::chrono::milliseconds(0);
    auto side = Connection::open(o);
    auto r = side.exec(
        "SELECT coalesce(a.wait_event_type || ' ' || a.wait_event, 'running'), "
        "(SELECT string_agg(format('pid %s (user %s, application %s, client %s, %s)', b.pid, "
        "b.usename, coalesce(nullif(b.application_name, ''), '?'), "
        "coalesce(host(b.client_addr), 'local'), coalesce(b.state, '?')), '; ') "
        "FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid))) "
        "FROM pg_stat_activity a WHERE a.pid = $1",
        {std::to_string(backend_pid())});
    if (r.rows()) {
      message += " (server pid " + std::to_string(backend_pid()) + ", waiting on " + r.get(0, 0);
      message += r.is_null(0, 1) ? ")" : "; blocked by " + r.get(0, 1) + ")";
    }
  } catch (const std::exception& e) {
    message += " (cannot ask the server who blocks it: " + std::string(e.what()) + ")";
  }
  util::log::info(message);
}

void Connection::close_while_waiting() {
  m_conn.reset();
}

void Connection::reopen() {
  if (m_conn) return;
  Connection fresh = Connection::open(m_options);
  m_conn = std::move(fresh.m_conn);
  if (m_limits) set_limits(*m_limits);
}

void Connection::set_limits(const SessionLimits& limits) {
  for (const auto& sql :
       dialect_of(*this).session_settings(limits.lock_timeout, server_version())) {
    exec(sql);
  }
  m_limits = limits;
}

std::optional<Result> Connection::try_exec(const std::string& sql, const Params& params,
                                           std::string_view sqlstate) {
  try {
    return exec(sql, params);
  } catch (const QueryError& e) {
    if (e.sqlstate() == sqlstate) return std::nullopt;
    throw;
  }
}

std::string Connection::quote_ident(std::string_view ident) const {
  char* q = PQescapeIdentifier(m_conn.get(), ident.data(), ident.size());
  if (!q)
    throw Error(ExitCode::failure,
                "cannot quote identifier: " + util::trim(PQerrorMessage(m_conn.get())));
  std::string out = q;
  PQfreemem(q);
  return out;
}

std::string Connection::quote_literal(std::string_view value) const {
  char* q = PQescapeLiteral(m_conn.get(), value.data(), value.size());
  if (!q)
    throw Error(ExitCode::failure,
                "cannot quote literal: " + util::trim(PQerrorMessage(m_conn.get())));
  std::string out = q;
  PQfreemem(q);
  return out;
}

void Connection::cancel() {
  std::unique_ptr<PGcancel, decltype(&PQfreeCancel)> c(PQgetCancel(m_conn.get()), &PQfreeCancel);
  char buf[256];
  if (c) PQcancel(c.get(), buf, sizeof buf);
}

}  // namespace previewdb::db
