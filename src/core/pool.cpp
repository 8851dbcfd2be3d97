#include "core/pool.hpp"

#include <algorithm>
#include <chrono>
#include <set>

#include "core/naming.hpp"
#include "crypto/sha256.hpp"
#include "db/advisory_lock.hpp"
#include "db/dialect.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace previewdb::core {

namespace {

// How long a top-up waits for the snapshot's name lock (a clone or a diff reading it) before it
// leaves the pool for the next run.
constexpr std::chrono::seconds k_snapshot_wait{60};

bool is_member(const DatabaseInfo& d) {
  return d.meta && d.meta->kind == Kind::pool && is_pool_name(d.name);
}

// Releases a lock taken with AdvisoryLock::try_lock when it goes.
class HeldLock {
 public:
  HeldLock(db::Connection& conn, std::string key) : m_conn(conn), m_key(std::move(key)) {}
  ~HeldLock() {
    try {
      db::AdvisoryLock::unlock(m_conn, m_key);
    } catch (...) {
      // The session ends soon; the server releases it then.
    }
  }
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;

 private:
  db::Connection& m_conn;
  std::string m_key;
};

void rollback(db::Connection& conn) {
  try {
    conn.exec("ROLLBACK");
  } catch (const std::exception&) {
    // The session is gone: the server rolled back on its own.
  }
}

// Drops a stale member unless a spawn is handing it out (its name lock is held): re-checked
// under that lock, so what is dropped is the member that was listed.
bool drop_stale_member(db::Connection& conn, Registry& reg, const DatabaseInfo& member) {
  std::string key = spawn_lock_key(member.name);
  if (!db::AdvisoryLock::try_lock(conn, key)) return false;
  HeldLock held(conn, key);
  auto now = find_database(conn, member.name);
  if (!now || now->oid != member.oid || !is_member(*now)) return false;
  conn.exec(db::dialect_of(conn).drop_database(member.name, /*if_exists=*/true));
  reg.forget_oid(member.oid);
  return true;
}

// Clones `snapshot` into a new member: built under a temporary name (registered, build lock
// held, dropped on failure) and renamed when complete, so a half-made member is never handed out.
std::string build_member(db::Connection& conn, Registry& reg, const TopUpRequest& req,
                         const std::string& snapshot, std::set<std::string>& taken_names) {
  std::string temp = temp_database_name();
  db::AdvisoryLock build_lock(conn, build_lock_key(temp), std::chrono::seconds(5), temp);
  Metadata meta;
  meta.kind = Kind::pool;
  meta.created_at = util::to_iso8601(std::chrono::system_clock::now());
  meta.created_by = req.created_by;
  meta.snapshot = snapshot;
  meta.source = req.source;
  int k = 1;
  auto next_name = [&] {
    while (taken_names.count(pool_member_name(snapshot, k))) ++k;
    return pool_member_name(snapshot, k);
  };
  long long row = reg.begin_build(temp, next_name(), meta);
  try {
    // A member's clone is evidence for the next choice like any other (core/clone_policy).
    auto plan = plan_clone(conn, req.strategy, snapshot);
    auto started = std::chrono::steady_clock::now();
    conn.exec("CREATE DATABASE " + conn.quote_ident(temp) + " TEMPLATE " +
              conn.quote_ident(snapshot) + plan.clause);
    record_clone(conn, plan,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    reg.built(row, temp);
    // Nobody connects to a member, so handing it out by rename never meets a session.
    conn.exec("ALTER DATABASE " + conn.quote_ident(temp) + " ALLOW_CONNECTIONS false");
    conn.exec("COMMENT ON DATABASE " + conn.quote_ident(temp) + " IS " +
              conn.quote_literal(to_comment(meta)));
    for (int attempt = 0;; ++attempt) {
      if (attempt > 20) throw Error(ExitCode::failure, "cannot name a pool member of " + snapshot);
      std::string name = next_name();
      taken_names.insert(name);
      reg.retarget(row, name);
      // Someone else's database may hold the name: the next k.
      if (conn.try_exec(
              "ALTER DATABASE " + conn.quote_ident(temp) + " RENAME TO " + conn.quote_ident(name),
              {}, "42P04")) {
        reg.finished(row, name);
        return name;
      }
    }
  } catch (...) {
    abandon_build(conn, reg, temp, row);
    throw;
  }
}

}  // namespace

bool is_pool_name(std::string_view name) {
  return name.substr(0, k_pool_prefix.size()) == k_pool_prefix;
}

std::string pool_member_name(const std::string& snapshot, int k) {
  std::string suffix = "_" + std::to_string(k);
  std::string base = snapshot;
  size_t room = k_max_name_bytes - k_pool_prefix.size() - suffix.size();
  if (base.size() > room)
    base = base.substr(0, room - 9) + "_" + crypto::sha256_hex(snapshot).substr(0, 8);
  return std::string(k_pool_prefix) + base + suffix;
}

std::string pool_topup_lock_key(const std::string& source) {
  return "previewdb:pool:" + source;
}

std::vector<DatabaseInfo> pool_members(const std::vector<DatabaseInfo>& all) {
  std::vector<DatabaseInfo> out;
  for (const auto& d : all) {
    if (is_member(d)) out.push_back(d);
  }
  return out;
}

PoolState pool_state(const std::vector<DatabaseInfo>& all, const std::string& source) {
  PoolState state;
  auto snaps = snapshots_of(all, source);
  if (!snaps.empty()) state.latest = snaps.front().name;
  for (const auto& d : pool_members(all)) {
    if (d.meta->source != source) continue;
    bool fresh = !state.latest.empty() && d.meta->snapshot == state.latest;
    (fresh ? state.fresh : state.stale).push_back(d);
  }
  return state;
}

TopUpResult top_up_pool(db::Connection& conn, const TopUpRequest& req) {
  TopUpResult result;
  validate_name(req.source, "source database");
  if (!db::dialect_of(conn).template_databases) {
    // CockroachDB: spawns restore a BACKUP; there is no template to keep ready clones of.
    throw Error(ExitCode::refused,
                std::string("the warm pool needs template databases, which ") +
                    db::dialect_of(conn).name + " does not have",
                {"leave --pool / pool_size at 0 on this server"});
  }
  std::string key = pool_topup_lock_key(req.source);
  if (!db::AdvisoryLock::try_lock(conn, key)) {
    result.busy = true;
    return result;
  }
  HeldLock topping_up(conn, key);
  auto all = list_databases(conn);
  auto state = pool_state(all, req.source);
  result.snapshot = state.latest;
  auto reg = Registry::open(conn);
  for (const auto& m : state.stale) {
    if (drop_stale_member(conn, reg, m)) {
      ++result.dropped;
      util::log::info("dropped " + m.name + " from the warm pool: " +
                      (state.latest.empty() ? "its source has no snapshot left"
                                            : "a clone of " + m.meta->snapshot.value_or("?") +
                                                  ", older than " + state.latest));
    }
  }
  result.fresh = state.fresh.size();
  if (state.latest.empty() || result.fresh >= req.size) return result;

  // A prune never drops the snapshot under these clones (it takes the same lock).
  db::AdvisoryLock snapshot_lock(conn, spawn_lock_key(state.latest), k_snapshot_wait,
                                 "snapshot " + util::quoted(state.latest));
  if (!find_database(conn, state.latest)) return result;
  std::set<std::string> names;
  for (const auto& d : all) names.insert(d.name);
  while (result.fresh < req.size) {
    std::string made = build_member(conn, reg, req, state.latest, names);
    ++result.created;
    ++result.fresh;
    util::log::info("added " + made + " to the warm pool of " + req.source + " (" +
                    std::to_string(result.fresh) + "/" + std::to_string(req.size) + ")");
  }
  return result;
}

std::optional<std::string> take_from_pool(db::Connection& conn, const std::string& source,
                                          const std::string& snapshot, const std::string& name,
                                          const Metadata& wanted) {
  return take_from_pool(conn, list_databases(conn), source, snapshot, name, wanted);
}

std::optional<std::string> take_from_pool(db::Connection& conn,
                                          const std::vector<DatabaseInfo>& all,
                                          const std::string& source, const std::string& snapshot,
                                          const std::string& name, const Metadata& wanted) {
  auto state = pool_state(all, source);
  // Only members of the latest snapshot, as it is now (not as the caller saw it).
  if (state.latest.empty() || state.latest != snapshot || state.fresh.empty()) {
    if (!state.stale.empty()) {
      util::log::debug("the warm pool of " + source + " holds only clones of older snapshots");
    }
    return std::nullopt;
  }
  auto reg = Registry::open(conn);
  Metadata meta = wanted;
  meta.created_at = util::to_iso8601(std::chrono::system_clock::now());
  meta.snapshot = snapshot;
  for (const auto& m : state.fresh) {
    std::string key = spawn_lock_key(m.name);
    // Another spawn is taking this one (or a cleanup dropping it): the next.
    if (!db::AdvisoryLock::try_lock(conn, key)) continue;
    HeldLock held(conn, key);
    auto now = find_database(conn, m.name);
    if (!now || now->oid != m.oid || !is_member(*now) || now->meta->snapshot != snapshot) continue;
    conn.exec("BEGIN");
    try {
      // Renames are transactional: either all of this happens or none of it.
      conn.exec("ALTER DATABASE " + conn.quote_ident(m.name) + " RENAME TO " +
                conn.quote_ident(name));
      conn.exec("ALTER DATABASE " + conn.quote_ident(name) + " ALLOW_CONNECTIONS true");
      conn.exec("COMMENT ON DATABASE " + conn.quote_ident(name) + " IS " +
                conn.quote_literal(to_comment(meta)));
      if (!reg.hand_out(m.oid, name, meta)) {
        rollback(conn);
        continue;
      }
      conn.exec("COMMIT");
      return m.name;
    } catch (const db::QueryError& e) {
      rollback(conn);
      if (e.connection_lost()) throw;
      // 55006: someone is connected to it (the server waited 5 s for them); 55P03: a lock on it
      // outlived the lock timeout. Either way the next member, then a clone.
      util::log::warn("could not take " + m.name + " from the warm pool: " + e.primary());
    } catch (...) {
      rollback(conn);
      throw;
    }
  }
  return std::nullopt;
}

}  // namespace previewdb::core
