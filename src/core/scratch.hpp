// A scratch database: an empty database (from template0) registered as a build, so that it is
// never mistaken for anything ready and a janitor drops it when its maker died, built and used
// under the build lock, and dropped when this object goes (also when the work in it failed).
#pragma once

#include <optional>
#include <string>

#include "core/registry.hpp"
#include "db/advisory_lock.hpp"
#include "db/connection.hpp"

namespace previewdb::core {

class ScratchDatabase {
 public:
  // Creates previewdb_tmp_<random> on maintenance's server; `purpose` is recorded as its
  // creator ("previewdb diff"). Throws Error when it cannot (nothing is left behind).
  ScratchDatabase(db::Connection& maintenance, const std::string& purpose);
  ~ScratchDatabase();  // drops it (logs instead of throwing)
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  const std::string& name() const { return m_name; }

 private:
  void cleanup();
  db::Connection& m_conn;
  Registry m_reg;
  std::string m_name;
  std::optional<db::AdvisoryLock> m_lock;
  long long m_row = 0;
  bool m_done = false;
};

}  // namespace previewdb::core
