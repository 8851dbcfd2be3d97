#include "db/lease_lock.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <thread>
#include <tuple>
#include <vector>

#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace previewdb::db::lease {

namespace {

std::string interval_of(std::chrono::seconds lease) {
  return std::to_string(std::max<long long>(1, lease.count())) + " seconds";
}

// "2026-11-30T07:21:46Z" from an epoch column (to_char's patterns differ between servers).
std::string iso_of(const std::string& epoch) {
  try {
    return util::to_iso8601(util::SystemTime(std::chrono::seconds(std::stoll(epoch))));
  } catch (const std::exception&) {
    return epoch;
  }
}

}  // namespace

std::string owner_id() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

void ensure_table(Connection& conn, const std::string& schema, const std::string& table) {
  for (const std::string& sql :
       {"CREATE SCHEMA IF NOT EXISTS " + schema,
        "CREATE TABLE IF NOT EXISTS " + schema + "." + table +
            " (name text PRIMARY KEY, holder text NOT NULL, owner text NOT NULL, pid integer, "
            "application_name text, acquired_at timestamptz NOT NULL, expires_at timestamptz NOT "
            "NULL)"}) {
    try {
      conn.exec(sql);
    } catch (const QueryError& e) {
      // Two runs creating it at once: the other one won, which is just as good. Which error
      // the loser gets depends on the moment: a unique violation in the catalogs (23505),
      // the table or schema already there (42P07, 42P06), or the table's row type already
      // made by the other transaction (42710, 'type "migration_lock" already exists').
      const auto& state = e.sqlstate();
      if (state != "23505" && state != "42P07" && state != "42P06" && state != "42710") throw;
    }
  }
}

bool try_take(Connection& conn, const std::string& table, const std::string& name,
              const std::string& token, const std::string& owner, std::chrono::seconds lease) {
  auto r = conn.exec(
      "INSERT INTO " + table +
          " AS l (name, holder, owner, pid, application_name, acquired_at, expires_at) VALUES "
          "($1, $2, $3, pg_backend_pid(), current_setting('application_name'), now(), "
          "now() + $4::interval) "
          "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, owner = EXCLUDED.owner, "
          "pid = EXCLUDED.pid, application_name = EXCLUDED.application_name, "
          "acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at "
          "WHERE l.expires_at < now() OR l.holder = EXCLUDED.holder RETURNING holder",
      {name, token, owner, interval_of(lease)});
  return r.rows() == 1;
}

bool renew(Connection& conn, const std::string& table, const std::string& name,
           const std::string& token, std::chrono::seconds lease) {
  auto r = conn.exec(
      "UPDATE " + table + " SET expires_at = now() + $3::interval WHERE name = $1 AND holder = $2",
      {name, token, interval_of(lease)});
  return r.command_tuples() == "1";
}

void give_back(Connection& conn, const std::string& table, const std::string& name,
               const std::string& token) {
  conn.exec("DELETE FROM " + table + " WHERE name = $1 AND holder = $2", {name, token});
}

namespace {

std::string describe_row(const Result& r, int row) {
  return r.get(row, 0) + " (server pid " + r.get(row, 1) + ", application_name " +
         util::quoted(r.get(row, 2)) + ", since " + iso_of(r.get(row, 3)) + ", lease until " +
         iso_of(r.get(row, 4)) + ")";
}

constexpr const char* k_row_columns =
    "SELECT owner, coalesce(pid::text, ''), coalesce(application_name, ''), "
    "floor(extract(epoch FROM acquired_at))::bigint::text, "
    "floor(extract(epoch FROM expires_at))::bigint::text FROM ";

}  // namespace

std::string holder(Connection& conn, const std::string& table, const std::string& name) {
  auto r = conn.exec(std::string(k_row_columns) + table + " WHERE name = $1", {name});
  if (r.rows() == 0) return "";
  return describe_row(r, 0);
}

// ---- name locks -----------------------------------------------------------------------------

namespace {

std::string name_table() {
  return std::string(k_name_lock_schema) + "." + k_name_lock_table;
}

const std::string& process_token() {
  static const std::string token = [] {
    std::random_device rd;
    std::uniform_int_distribution<unsigned long long> d;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", d(rd));
    return std::string(buf);
  }();
  return token;
}

std::string session_token(const Connection& conn) {
  return process_token() + "/" + std::to_string(reinterpret_cast<std::uintptr_t>(conn.raw()));
}

// What opens another session like conn (the heartbeat's): its libpq parameters, the password
// registered as a secret so it stays out of every message.
ConnectOptions options_like(const Connection& conn) {
  std::string conninfo;
  PQconninfoOption* opts = PQconninfo(conn.raw());
  for (auto* o = opts; o && o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string key = o->keyword;
    if (key == "application_name" || key == "fallback_application_name") continue;
    if (key == "password" || key == "sslpassword") util::register_secret(o->val);
    std::string value = "'";
    for (char c : std::string_view(o->val)) {
      if (c == '\\' || c == '\'') value += '\\';
      value += c;
    }
    conninfo += key + "=" + value + "' ";
  }
  if (opts) PQconninfoFree(opts);
  ConnectOptions out;
  out.conninfo = conninfo;
  out.application_name = "previewdb lease heartbeat";
  return out;
}

std::string row_name(const std::string& key, bool shared, const std::string& token) {
  return shared ? key + "\n" + token : key;
}

struct Held {
  int count = 0;
  std::string row;
  std::string token;
};

// The rows this process holds, and the thread that extends their leases.
class Leases {
 public:
  ~Leases() { stop(); }

  // true: already held by this session (count raised).
  bool add_ref(const std::string& token, const std::string& row) {
    std::lock_guard lock(m_mutex);
    auto it = m_held.find({token, row});
    if (it == m_held.end()) return false;
    ++it->second.count;
    return true;
  }

  void add(Connection& conn, const std::string& token, const std::string& row) {
    std::lock_guard lock(m_mutex);
    Held h;
    h.count = 1;
    h.row = row;
    h.token = token;
    m_held[{token, row}] = h;
    m_options.emplace(token, options_like(conn));
    if (!m_thread.joinable()) {
      m_thread = std::jthread([this](std::stop_token stop) { beat(stop); });
    }
  }

  // true: that was the last reference (the row is to be given back).
  bool release(const std::string& token, const std::string& row) {
    std::lock_guard lock(m_mutex);
    auto it = m_held.find({token, row});
    if (it == m_held.end()) return false;
    if (--it->second.count > 0) return false;
    m_held.erase(it);
    return true;
  }

  bool holds_any(const std::string& token) {
    std::lock_guard lock(m_mutex);
    for (const auto& [k, h] : m_held) {
      if (k.first == token) return true;
    }
    return false;
  }

  void stop() {
    if (m_thread.joinable()) {
      m_thread.request_stop();
      m_wake.notify_all();
      m_thread.join();
    }
  }

 private:
  void beat(std::stop_token stop) {
    // One session per server and database (by conninfo), whichever session took the rows.
    std::map<std::string, Connection> conns;
    while (!stop.stop_requested()) {
      {
        std::unique_lock lock(m_mutex);
        m_wake.wait_for(lock, stop, k_name_lease / 3, [] { return false; });
      }
      if (stop.stop_requested()) break;
      std::vector<std::pair<std::string, std::string>> rows;
      std::map<std::string, ConnectOptions> options;
      {
        std::lock_guard lock(m_mutex);
        for (const auto& [k, h] : m_held) rows.push_back(k);
        options = m_options;
      }
      for (const auto& [token, row] : rows) {
        const ConnectOptions& o = options.at(token);
        try {
          auto c = conns.find(o.conninfo);
          if (c == conns.end()) c = conns.emplace(o.conninfo, Connection::open(o)).first;
          if (!renew(c->second, name_table(), row, token, k_name_lease)) {
            // Given back meanwhile, or taken over after it expired.
            std::lock_guard lock(m_mutex);
            if (m_held.count({token, row})) {
              util::log::warn("lost the lease of previewdb's lock " +
                              util::quoted(util::printable(row.substr(0, row.find('\n')))) +
                              ": another run may work on the same name");
            }
          }
        } catch (const std::exception& e) {
          util::log::warn(std::string("could not extend a lock lease: ") + e.what());
          conns.erase(o.conninfo);
        }
      }
    }
  }

  std::mutex m_mutex;
  std::map<std::pair<std::string, std::string>, Held> m_held;
  std::map<std::string, ConnectOptions> m_options;
  std::condition_variable_any m_wake;
  std::jthread m_thread;
};

Leases& leases() {
  static Leases l;
  return l;
}

// The tables made on this session already (CREATE ... IF NOT EXISTS takes locks: once is enough).
std::mutex g_made_mutex;
std::map<Connection::SessionKey, bool>& made() {
  static std::map<Connection::SessionKey, bool> m;
  return m;
}

void ensure_name_table(Connection& conn) {
  auto key = conn.session_key();
  {
    std::lock_guard lock(g_made_mutex);
    if (made().count(key)) return;
  }
  ensure_table(conn, k_name_lock_schema, k_name_lock_table);
  std::lock_guard lock(g_made_mutex);
  made()[key] = true;
}

// A live row of the other kind: for an exclusive taker, any shared row of key; for a shared
// taker, the exclusive row of another session.
bool other_kind_live(Connection& conn, const std::string& key, bool shared,
                     const std::string& token) {
  if (shared) {
    return conn.exec("SELECT count(*) FROM " + name_table() +
                         " WHERE name = $1 AND holder <> $2 AND expires_at > now()",
                     {key, token})
               .get_int(0, 0) > 0;
  }
  std::string prefix = key + "\n";
  return conn.exec("SELECT count(*) FROM " + name_table() +
                       " WHERE left(name, length($1)) = $1 AND holder <> $2 AND expires_at > now()",
                   {prefix, token})
             .get_int(0, 0) > 0;
}

}  // namespace

bool try_lock_name(Connection& conn, const std::string& key, bool shared) {
  std::string token = session_token(conn);
  std::string row = row_name(key, shared, token);
  if (leases().add_ref(token, row)) return true;
  ensure_name_table(conn);
  if (!try_take(conn, name_table(), row, token, owner_id(), k_name_lease)) return false;
  if (other_kind_live(conn, key, shared, token)) {
    give_back(conn, name_table(), row, token);
    return false;
  }
  leases().add(conn, token, row);
  return true;
}

void unlock_name(Connection& conn, const std::string& key, bool shared) {
  std::string token = session_token(conn);
  std::string row = row_name(key, shared, token);
  if (!leases().release(token, row)) return;
  give_back(conn, name_table(), row, token);
}

std::string describe_name_holder(Connection& conn, const std::string& key) {
  ensure_name_table(conn);
  auto r = conn.exec(std::string(k_row_columns) + name_table() +
                         " WHERE (name = $1 OR left(name, length($2)) = $2) AND expires_at > now() "
                         "ORDER BY name = $1 DESC, acquired_at LIMIT 1",
                     {key, key + "\n"});
  if (r.rows() == 0) return "";
  return describe_row(r, 0);
}

bool holds_any_name(const Connection& conn) {
  return leases().holds_any(session_token(conn));
}

}  // namespace previewdb::db::lease
