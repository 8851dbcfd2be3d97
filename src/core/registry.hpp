// The registry: what previewdb created on a server, recorded where only previewdb's role can
// write. It lives in a database of its own, previewdb_registry (created on first use by the role
// previewdb connects as, owned by it, CONNECT revoked from PUBLIC), so it is reachable when the
// postgres database is not, and SQL running as any other role (a pull request's migrations under
// --migrate-url, a user with CREATEDB) can neither read nor write it.
//
// A database is managed only when a row's oid, name and owner all match pg_database (oid, datname,
// datdba): a renamed, re-created or foreign-owned database is not. Comments grant nothing.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clone_policy.hpp"
#include "core/metadata.hpp"
#include "db/connection.hpp"

namespace previewdb::core {

inline constexpr const char* k_registry_database = "previewdb_registry";

class Registry {
 public:
  // Connects to the registry of maintenance's server as the same role, creating the database and
  // its table on first use. Throws Error(refused) when previewdb_registry exists but is owned by
  // another role (whoever made it could write anything in it).
  static Registry open(db::Connection& maintenance);

  // The registry's own connection (pg_database is visible from it: catalog queries run here).
  db::Connection& conn() { return *m_conn; }
  // The oid and name of previewdb's role (current_user).
  long long role_oid() const { return m_role_oid; }
  const std::string& role_name() const { return m_role_name; }
  // Whether that role has CREATEDB or SUPERUSER (read with the owner check; false: run
  // require_createdb for the error that names the grant).
  bool may_create_databases() const { return m_may_create; }

  // Removes rows whose database is gone. (Databases made before the registry are adopted once,
  // logged, when it is created: only those owned by previewdb's role that carry previewdb's own
  // well-formed comment.)
  void refresh();
  // refresh(), once per session: the catalog reads of one run prune once, not before every read
  // (a stale row never matches: the catalog joins on oid, name and owner).
  void refresh_once();

  // A database being built as `temp`, to be renamed `target` when complete. Registered before
  // CREATE DATABASE (oid unknown yet), so no database previewdb makes is ever unregistered; the
  // row says "building" until renamed, so nothing half-made ever counts as ready. Returns its id.
  long long begin_build(const std::string& temp, const std::string& target, const Metadata& meta);
  // After CREATE DATABASE temp: records its oid (and owner, from pg_database).
  void built(long long id, const std::string& temp);
  // Before each rename attempt (snapshots retry with _2, _3, ...).
  void retarget(long long id, const std::string& target);
  // After the rename: the row now names the finished database.
  void finished(long long id, const std::string& name);
  void remove_row(long long id);
  // Records an existing database owned by previewdb's role as ready (a restore's kept original,
  // which previewdb renamed and `cleanup` may drop). False when it is not owned by the role or
  // already recorded.
  bool record(const std::string& name, const Metadata& meta);
  // A warm pool member (kind pool, ready) renamed to `name` in the caller's open transaction on
  // conn(): its row becomes `meta`'s (kind, pull request, creator...). False when no such row.
  bool hand_out(long long oid, const std::string& name, const Metadata& meta);
  // After DROP DATABASE.
  void forget_oid(long long oid);
  // Adoption of a legacy preview by the first repository that claims it.
  void set_repository(long long oid, const std::string& repository);

  // Clone evidence (registry.clone_samples, the newest 1,000 clones of this server): the newest
  // samples within 2x of size_bytes, newest first; *next_number receives the sequence number the
  // next recorded clone gets.
  std::vector<CloneSample> clone_samples_near(long long size_bytes, long long* next_number);
  void record_clone_sample(const CloneSample& sample);

  // Cached database sizes (registry.database_sizes, by oid), so `list` need not walk every
  // database's directory. record_size measures `name` now.
  void record_size(const std::string& name);
  // Measures the databases with these oids now (those it may read) and caches the sizes.
  // Returns oid -> size.
  std::vector<std::pair<long long, long long>> measure_sizes(const std::vector<long long>& oids);

 private:
  // Owns a connection of its own, or borrows the caller's when that is already connected to the
  // registry's database (the maintenance connection is: one connection slot per run).
  explicit Registry(db::Connection conn)
      : m_owned(std::make_unique<db::Connection>(std::move(conn))), m_conn(m_owned.get()) {}
  explicit Registry(db::Connection* borrowed) : m_conn(borrowed) {}
  void adopt_legacy();
  // Checks the registry's owner, keeps PUBLIC out, creates the table on first use. Once per
  // session: a session that passed is remembered for the process's life (by connection and
  // backend, like db::dialect_of), so the many catalog reads of one run check once.
  Registry verified() &&;
  std::unique_ptr<db::Connection> m_owned;
  db::Connection* m_conn;
  long long m_role_oid = 0;
  std::string m_role_name;
  bool m_may_create = false;
};

// The same server and role as `conn`, another database (credentials taken from conn itself).
db::Connection connect_like(db::Connection& conn, const std::string& dbname);

}  // namespace previewdb::core
