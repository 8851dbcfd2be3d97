// A separate login for a pull request's migrations (--migrate-url): while it migrates a preview,
// the migration role may connect to that one database, create in it, and owns the objects in it;
// it never owns a database, cannot reach the registry (CONNECT is revoked from PUBLIC there), and
// holds these rights on one preview at a time. Without it, a PR's SQL runs with the rights of the
// role previewdb connects as, which owns every preview, every snapshot and the registry.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "db/advisory_lock.hpp"
#include "db/connection.hpp"

namespace previewdb::core {

struct MigrationRole {
  std::string name;
  long long oid = 0;
};

// Checks that `name` exists and is safe to lend previews to: not previewdb's own role, not a
// superuser, without CREATEROLE, and not a member of previewdb's role. Throws Error(usage) naming
// the role and what to change; `setting` names where the role came from in messages.
MigrationRole check_migration_role(db::Connection& maintenance, const std::string& name,
                                   const std::string& setting);

// While alive, `role` may migrate `database` (CONNECT, CREATE and TEMPORARY on it, and the owner
// of every object in it, which previewdb's role gives it from a connection with search_path
// pg_catalog). Serialised per role by an advisory lock: a role holds one preview at a time.
// The destructor takes the database rights back (the objects stay the role's: it can no longer
// connect to use them).
class PreviewLoan {
 public:
  PreviewLoan(db::Connection& maintenance, const std::string& database, const MigrationRole& role,
              std::chrono::seconds timeout);
  ~PreviewLoan();
  PreviewLoan(const PreviewLoan&) = delete;
  PreviewLoan& operator=(const PreviewLoan&) = delete;

 private:
  db::Connection& m_conn;
  std::string m_database;
  MigrationRole m_role;
  std::unique_ptr<db::AdvisoryLock> m_lock;
};

// A warning when previewdb's role is a superuser (whatever a PR's SQL does as it is unbounded),
// else nullopt.
std::optional<std::string> superuser_warning(db::Connection& maintenance);

}  // namespace previewdb::core
