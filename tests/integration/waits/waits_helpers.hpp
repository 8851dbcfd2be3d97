// Shared by the "waits" integration tests (bounded waits, locking, nothing left running): the
// server's environment for the CLI, managed-looking databases, and waiting for server state.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "core/metadata.hpp"
#include "core/registry.hpp"
#include "harness/harness.hpp"
#include "util/time.hpp"

namespace previewdb::test::waits {

inline PgServer& server() {
  return PgServer::shared();
}

inline Env env(Env extra = {}) {
  Env e = {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_USER", "alice"}};
  for (auto& [k, v] : extra) e[k] = v;
  return e;
}

// A database that looks like previewdb's preview of pull request `pr`, created `age` ago.
inline void make_preview(const std::string& name, long long pr, std::chrono::seconds age) {
  core::Metadata m;
  m.kind = core::Kind::pr;
  m.pr_number = pr;
  m.created_by = "previewdb ci (github)";
  m.created_at = util::to_iso8601(std::chrono::system_clock::now() - age);
  auto conn = server().connect();
  conn.exec("DROP DATABASE IF EXISTS " + conn.quote_ident(name) + " WITH (FORCE)");
  // Made the way previewdb makes one: registered (only the registry makes it managed).
  auto reg = core::Registry::open(conn);
  long long row = reg.begin_build(name, name, m);
  conn.exec("CREATE DATABASE " + conn.quote_ident(name));
  reg.built(row, name);
  reg.finished(row, name);
  conn.exec("COMMENT ON DATABASE " + conn.quote_ident(name) + " IS " +
            conn.quote_literal(core::to_comment(m)));
}

// Polls `ok` every 100 ms for up to `limit`; true once it holds.
inline bool eventually(const std::function<bool()>& ok,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return ok();
}

// The server pid of a previewdb session (application_name "previewdb") waiting for a
// heavyweight lock, or 0.
inline int previewdb_backend_waiting_for_lock() {
  auto r = server().connect().exec(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'previewdb' "
      "AND wait_event_type = 'Lock' LIMIT 1");
  return r.rows() ? static_cast<int>(r.get_int(0, 0)) : 0;
}

inline bool backend_alive(int pid) {
  return server()
             .connect()
             .exec("SELECT 1 FROM pg_stat_activity WHERE pid = $1", {std::to_string(pid)})
             .rows() == 1;
}

}  // namespace previewdb::test::waits
