// Shared by the dry-run and safe-migrate tests: a populated database, migration folders written
// on the fly, full dumps to prove a database did not change, the temporary databases left over.
#pragma once

#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "harness/harness.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace previewdb::test::safety {

inline PgServer& server() {
  return PgServer::shared();
}

inline void fresh_db(const std::string& name) {
  auto conn = server().connect();
  conn.exec("DROP DATABASE IF EXISTS " + conn.quote_ident(name) + " WITH (FORCE)");
  conn.exec("CREATE DATABASE " + conn.quote_ident(name));
}

// The database the tests migrate: a few populated tables.
inline void make_shop(const std::string& db = "shop") {
  fresh_db(db);
  server().exec(db,
                "CREATE TABLE users(id int PRIMARY KEY, email text NOT NULL, legacy text);"
                "INSERT INTO users SELECT g, 'u' || g || '@x', 'old' || g "
                "FROM generate_series(1, 100) g;"
                "CREATE TABLE prices(id int PRIMARY KEY, amount numeric(10,2));"
                // 38 of 50 have a fraction (g % 4 <> 0) and change when cast to integer.
                "INSERT INTO prices SELECT g, g + (g % 4) * 0.25 FROM generate_series(1, 50) g;"
                "CREATE TABLE events(id int PRIMARY KEY, kind text);"
                "INSERT INTO events SELECT g, CASE WHEN g % 10 = 0 THEN 'debug' ELSE 'info' END "
                "FROM generate_series(1, 300) g;"
                "CREATE TABLE logs(id int PRIMARY KEY, line text);"
                "INSERT INTO logs SELECT g, 'line ' || g FROM generate_series(1, 40) g;"
                "CREATE TABLE products(id int PRIMARY KEY, price int);"
                // price <= 0 for g <= 10: 10 rows fail CHECK (price > 0).
                "INSERT INTO products SELECT g, g - 10 FROM generate_series(1, 60) g;");
}

// A plain migrations folder: name -> SQL.
inline std::filesystem::path write_folder(
    const std::filesystem::path& dir,
    const std::vector<std::pair<std::string, std::string>>& files) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, sql] : files) {
    std::ofstream(dir / name) << sql << "\n";
  }
  return dir;
}

inline Env env_for(const std::string& db, Env extra = {}) {
  Env e = {{"DATABASE_URL", server().url(db)}};
  for (auto& [k, v] : extra) e[k] = v;
  return e;
}

// A full dump (schema and data, no owners) without pg_dump 15.14+'s random \restrict lines.
inline std::string full_dump(const std::string& db) {
  util::ProcessSpec spec;
  spec.argv = {"pg_dump", "--no-owner", "-d", server().url_without_password(db)};
  spec.env["PGPASSWORD"] = server().password();
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  auto r = util::run_process(spec);
  EXPECT_TRUE(r.ok()) << r.err;
  std::string out;
  for (const auto& line : util::split(r.out, '\n')) {
    if (!line.starts_with("\\restrict") && !line.starts_with("\\unrestrict")) out += line + "\n";
  }
  return out;
}

// previewdb_tmp_* databases on the server (a clone left behind would show here).
inline std::vector<std::string> temporaries() {
  auto conn = server().connect();
  auto r = conn.exec(
      "SELECT datname FROM pg_database WHERE datname LIKE 'previewdb\\_tmp\\_%' ORDER BY 1");
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.get(i, 0));
  return out;
}

// Waits for a started CLI to end; its exit status, or 128+signal.
inline int wait_cli(int pid, std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Polls until pred() or the limit; returns pred()'s last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::seconds limit = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

}  // namespace previewdb::test::safety
