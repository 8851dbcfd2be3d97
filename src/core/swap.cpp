#include "core/swap.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "crypto/sha256.hpp"
#include "db/advisory_lock.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace previewdb::core {

namespace {

constexpr size_t k_max_identifier = 63;
constexpr size_t k_timestamp_size = 15;  // YYYYMMDD_HHMMSS

bool is_timestamp(std::string_view s) {
  if (s.size() != k_timestamp_size || s[8] != '_') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i != 8 && !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// A GUC name as SQL: each dotted part quoted ("app"."tenant" for a custom setting).
std::string setting_name_sql(const db::Connection& conn, const std::string& name) {
  std::vector<std::string> parts;
  for (const auto& p : util::split(name, '.')) parts.push_back(conn.quote_ident(p));
  return util::join(parts, ".");
}

// Elements of a flattened list setting: "\"$user\", public" -> {"$user", "public"}.
std::vector<std::string> split_list_value(const std::string& value) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (quoted) {
      if (c == '"' && i + 1 < value.size() && value[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = was_quoted = true;
    } else if (c == ',') {
      out.push_back(was_quoted ? cur : util::trim(cur));
      cur.clear();
      was_quoted = false;
    } else if (!(c == ' ' && cur.empty())) {
      cur += c;
    }
  }
  out.push_back(was_quoted ? cur : util::trim(cur));
  return out;
}

bool is_list_setting(const std::string& name) {
  static const char* k_lists[] = {"search_path",
                                  "datestyle",
                                  "temp_tablespaces",
                                  "session_preload_libraries",
                                  "local_preload_libraries",
                                  "shared_preload_libraries"};
  std::string n = util::to_lower(name);
  return std::any_of(std::begin(k_lists), std::end(k_lists), [&](const char* l) { return n == l; });
}

std::chrono::seconds name_lock_timeout(const db::Connection& conn) {
  if (!conn.limits()) return std::chrono::minutes(10);
  return std::max(std::chrono::seconds(1),
                  std::chrono::duration_cast<std::chrono::seconds>(conn.limits()->lock_timeout));
}

// The use key held exclusively for the swap: refused while a running build holds it shared.
class UseGuard {
 public:
  UseGuard(db::Connection& conn, std::string key) : m_conn(conn), m_key(std::move(key)) {
    m_held = db::AdvisoryLock::try_lock(m_conn, m_key);
  }
  ~UseGuard() {
    if (!m_held) return;
    try {
      db::AdvisoryLock::unlock(m_conn, m_key);
    } catch (...) {
      // The session ends soon; the server releases it then.
    }
  }
  UseGuard(const UseGuard&) = delete;
  UseGuard& operator=(const UseGuard&) = delete;
  bool held() const { return m_held; }

 private:
  db::Connection& m_conn;
  std::string m_key;
  bool m_held = false;
};

void rollback_quietly(db::Connection& conn) {
  try {
    conn.exec("ROLLBACK");
  } catch (const std::exception&) {
    // The session is gone: the server rolled back on its own.
  }
}

Error busy_error(const std::string& name, const std::vector<SessionInfo>& sessions) {
  return Error(ExitCode::refused,
               "cannot swap database " + util::quoted(name) + ": " +
                   std::to_string(sessions.size()) +
                   " session(s) connected: " + describe_sessions(sessions),
               {"a rename needs the database idle: stop those clients, or pass "
                "--terminate-sessions to close them"});
}

// Terminates the sessions on `name`, returning them; waits (up to 10 s) until they are gone.
std::vector<SessionInfo> terminate_sessions_on(db::Connection& conn, const std::string& name) {
  auto sessions = sessions_on(conn, name);
  for (const auto& s : sessions) {
    auto r = conn.exec("SELECT pg_terminate_backend($1::int)", {std::to_string(s.pid)});
    if (!r.get_bool(0, 0)) {
      util::log::warn("could not terminate session pid " + std::to_string(s.pid) + " on " + name);
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!sessions_on(conn, name).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return sessions;
}

}  // namespace

std::string before_restore_name(const std::string& name, const std::string& timestamp) {
  std::string suffix = std::string(k_before_restore_infix) + timestamp;
  if (name.size() + suffix.size() <= k_max_identifier) return name + suffix;
  std::string hash = crypto::sha256_hex(name).substr(0, 8);
  size_t keep = k_max_identifier - suffix.size() - hash.size() - 1;
  std::string head = name.substr(0, keep);
  // Never cut a multibyte UTF-8 character in half.
  while (!head.empty() && (static_cast<unsigned char>(head.back()) & 0xC0) == 0x80) head.pop_back();
  if (!head.empty() && (static_cast<unsigned char>(head.back()) & 0x80)) head.pop_back();
  return head + "_" + hash + suffix;
}

bool is_before_restore_name(const std::string& name) {
  std::string infix = k_before_restore_infix;
  if (name.size() < infix.size() + k_timestamp_size + 1) return false;
  std::string_view tail(name);
  tail.remove_prefix(name.size() - k_timestamp_size);
  if (!is_timestamp(tail)) return false;
  return name.compare(name.size() - k_timestamp_size - infix.size(), infix.size(), infix) == 0;
}

std::vector<SessionInfo> idle_or_sessions(db::Connection& conn, const std::string& database,
                                          std::chrono::milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  auto sessions = sessions_on(conn, database);
  // A client that just disconnected is listed until its server process has exited.
  while (!sessions.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    sessions = sessions_on(conn, database);
  }
  return sessions;
}

std::vector<SessionInfo> sessions_on(db::Connection& conn, const std::string& database) {
  auto r = conn.exec(
      "SELECT pid, coalesce(usename::text, ''), coalesce(application_name, ''), "
      "coalesce(host(client_addr), 'local') FROM pg_stat_activity "
      "WHERE datname = $1 AND pid <> pg_backend_pid() ORDER BY pid",
      {database});
  std::vector<SessionInfo> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({static_cast<int>(r.get_int(i, 0)), r.get(i, 1), r.get(i, 2), r.get(i, 3)});
  }
  return out;
}

std::string describe_sessions(const std::vector<SessionInfo>& sessions) {
  std::vector<std::string> parts;
  for (const auto& s : sessions) {
    parts.push_back("pid " + std::to_string(s.pid) + " (user " + util::printable(s.user) +
                    ", application " + util::quoted(util::printable(s.application)) + ", client " +
                    util::printable(s.client) + ")");
  }
  return util::join(parts, "; ");
}

std::optional<DatabaseProperties> read_properties(db::Connection& conn,
                                                  const std::string& database) {
  auto r = conn.exec(
      "SELECT d.oid, pg_get_userbyid(d.datdba), d.datdba, d.datacl IS NULL, d.datconnlimit, "
      "shobj_description(d.oid, 'pg_database'), pg_encoding_to_char(d.encoding), d.datcollate, "
      "d.datctype FROM pg_database d WHERE d.datname = $1",
      {database});
  if (r.rows() == 0) return std::nullopt;
  DatabaseProperties p;
  p.oid = r.get_int(0, 0);
  p.owner = r.get(0, 1);
  p.owner_oid = r.get_int(0, 2);
  p.default_acl = r.get_bool(0, 3);
  p.connection_limit = static_cast<int>(r.get_int(0, 4));
  p.comment = r.get_opt(0, 5);
  p.encoding = r.get(0, 6);
  p.collate = r.get(0, 7);
  p.ctype = r.get(0, 8);
  auto g = conn.exec(
      "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, "
      "a.privilege_type, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a "
      "WHERE d.oid = $1",
      {std::to_string(p.oid)});
  for (int i = 0; i < g.rows(); ++i) {
    p.grants.push_back({g.get_opt(i, 0), g.get(i, 1), g.get_bool(i, 2)});
  }
  auto s = conn.exec(
      "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, u.c "
      "FROM pg_db_role_setting s, unnest(s.setconfig) WITH ORDINALITY AS u(c, n) "
      "WHERE s.setdatabase = $1 ORDER BY s.setrole, u.n",
      {std::to_string(p.oid)});
  for (int i = 0; i < s.rows(); ++i) {
    std::string entry = s.get(i, 1);
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    p.settings.push_back({s.get_opt(i, 0), entry.substr(0, eq), entry.substr(eq + 1)});
  }
  return p;
}

std::string setting_value_sql(const db::Connection& conn, const std::string& name,
                              const std::string& value) {
  if (!is_list_setting(name)) return conn.quote_literal(value);
  std::vector<std::string> parts;
  for (const auto& e : split_list_value(value)) parts.push_back(conn.quote_literal(e));
  return util::join(parts, ", ");
}

void apply_properties(db::Connection& conn, const std::string& database,
                      const DatabaseProperties& props) {
  const std::string db = conn.quote_ident(database);
  conn.exec("ALTER DATABASE " + db + " OWNER TO " + conn.quote_ident(props.owner));
  if (!props.default_acl) {
    // From the defaults to exactly the original's list: nothing implicit left over.
    conn.exec("REVOKE ALL ON DATABASE " + db + " FROM PUBLIC");
    conn.exec("REVOKE ALL ON DATABASE " + db + " FROM " + conn.quote_ident(props.owner));
    for (const auto& g : props.grants) {
      std::string privilege = g.privilege == "TEMPORARY" ? "TEMPORARY" : g.privilege;
      if (privilege != "CONNECT" && privilege != "CREATE" && privilege != "TEMPORARY") continue;
      conn.exec("GRANT " + privilege + " ON DATABASE " + db + " TO " +
                (g.grantee ? conn.quote_ident(*g.grantee) : std::string("PUBLIC")) +
                (g.grantable ? " WITH GRANT OPTION" : ""));
    }
  }
  conn.exec("ALTER DATABASE " + db + " RESET ALL");
  for (const auto& s : props.settings) {
    // Per role: ALTER ROLE r IN DATABASE d SET (there is no ALTER DATABASE ... IN ROLE).
    conn.exec((s.role ? "ALTER ROLE " + conn.quote_ident(*s.role) + " IN DATABASE " + db
                      : "ALTER DATABASE " + db) +
              " SET " + setting_name_sql(conn, s.name) + " TO " +
              setting_value_sql(conn, s.name, s.value));
  }
  conn.exec("ALTER DATABASE " + db + " CONNECTION LIMIT " + std::to_string(props.connection_limit));
  conn.exec("COMMENT ON DATABASE " + db + " IS " +
            (props.comment ? conn.quote_literal(*props.comment) : std::string("NULL")));
}

SwapResult swap_database(db::Connection& conn, const SwapRequest& req) {
  db::AdvisoryLock name_lock(conn, spawn_lock_key(req.target), name_lock_timeout(conn),
                             "database " + util::quoted(req.target));
  auto all = list_databases(conn);
  if (req.protection && !req.allow_protected) {
    if (auto why = req.protection->reason(req.target, all)) {
      throw Error(ExitCode::refused,
                  "refusing to replace database " + util::quoted(req.target) +
                      ": it is protected (" + *why + ")",
                  {"pass --allow-protected to replace it anyway (the original is kept)"});
    }
  }
  auto original = read_properties(conn, req.target);
  if (!original) {
    throw Error(ExitCode::not_found, "no database " + util::quoted(req.target) + " to replace",
                {"check the name with 'previewdb list'"});
  }
  auto replacement = read_properties(conn, req.replacement);
  if (!replacement) {
    throw Error(ExitCode::not_found, "no database " + util::quoted(req.replacement) +
                                         " to swap in for " + util::quoted(req.target));
  }
  bool original_managed = std::any_of(all.begin(), all.end(), [&](const DatabaseInfo& d) {
    return d.name == req.target && d.managed();
  });
  UseGuard use(conn, use_lock_key(req.target));
  if (!use.held()) {
    std::string holder = db::AdvisoryLock::describe_holder(conn, use_lock_key(req.target));
    throw Error(ExitCode::refused,
                "refusing to replace database " + util::quoted(req.target) +
                    ": it is in use by a running build" + (holder.empty() ? "" : ": " + holder),
                {"run again when that build has finished (its hold ends with it)"});
  }

  SwapResult result;
  result.kept_owner = original->owner;
  result.kept_as = before_restore_name(req.target, req.timestamp);
  for (int n = 2; std::any_of(all.begin(), all.end(),
                              [&](const DatabaseInfo& d) { return d.name == result.kept_as; });
       ++n) {
    result.kept_as = before_restore_name(req.target, req.timestamp + "_" + std::to_string(n));
  }

  auto reg = Registry::open(conn);
  bool same_session = &reg.conn() == &conn;
  for (int attempt = 1;; ++attempt) {
    for (const auto* name : {&req.target, &req.replacement}) {
      auto sessions = idle_or_sessions(conn, *name, std::chrono::seconds(1));
      if (sessions.empty()) continue;
      if (!req.terminate_sessions) throw busy_error(*name, sessions);
      auto closed = terminate_sessions_on(conn, *name);
      result.terminated.insert(result.terminated.end(), closed.begin(), closed.end());
    }
    conn.exec("BEGIN");
    if (!same_session) reg.conn().exec("BEGIN");
    try {
      apply_properties(conn, req.replacement, *original);
      conn.exec("ALTER DATABASE " + conn.quote_ident(req.target) + " RENAME TO " +
                conn.quote_ident(result.kept_as));
      conn.exec("ALTER DATABASE " + conn.quote_ident(req.replacement) + " RENAME TO " +
                conn.quote_ident(req.target));
      // The registry follows the databases: the original's row (if any) goes, the kept original is
      // recorded when previewdb's role owns it, the replacement's build row becomes N's.
      reg.forget_oid(original->oid);
      if (original->owner_oid == reg.role_oid()) {
        Metadata kept;
        kept.kind = Kind::personal;
        kept.created_at = util::to_iso8601(std::chrono::system_clock::now());
        kept.created_by = req.created_by;
        kept.source = req.target;
        result.kept_managed = reg.record(result.kept_as, kept);
      }
      if (req.replacement_row) {
        // N stays previewdb's only if it was (and still has previewdb's role as owner).
        if (original_managed && original->owner_oid == reg.role_oid()) {
          reg.finished(*req.replacement_row, req.target);
        } else {
          reg.remove_row(*req.replacement_row);
        }
      }
      conn.exec("COMMIT");
      if (!same_session) reg.conn().exec("COMMIT");
      break;
    } catch (const db::QueryError& e) {
      rollback_quietly(conn);
      if (!same_session) rollback_quietly(reg.conn());
      // 55006: someone connected between the check and the rename.
      if (e.sqlstate() != "55006" || attempt >= 3) {
        if (e.sqlstate() == "55006") {
          auto now_on = sessions_on(conn, req.target);
          if (!now_on.empty()) throw busy_error(req.target, now_on);
        }
        throw Error(ExitCode::failure,
                    "cannot swap " + util::quoted(req.replacement) + " in for " +
                        util::quoted(req.target) + ": " + e.primary(),
                    {"nothing was changed: " + req.target + " is as it was"});
      }
      if (!req.terminate_sessions) {
        throw busy_error(req.target, sessions_on(conn, req.target));
      }
    } catch (...) {
      rollback_quietly(conn);
      if (!same_session) rollback_quietly(reg.conn());
      throw;
    }
  }
  return result;
}

}  // namespace previewdb::core
