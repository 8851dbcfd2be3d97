// Shared by the migrate integration tests: fresh databases, running `previewdb migrate`,
// applying files with psql, schema dumps, and hand-written migration folders.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "harness/folder.hpp"
#include "harness/harness.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace previewdb::test::migrate {

inline PgServer& server() {
  return PgServer::shared();
}

// Drops and re-creates a database.
inline std::string fresh_db(const std::string& name) {
  auto conn = server().connect();
  conn.exec("DROP DATABASE IF EXISTS " + conn.quote_ident(name) + " WITH (FORCE)");
  conn.exec("CREATE DATABASE " + conn.quote_ident(name));
  return name;
}

inline CliResult cli(const std::string& command, const std::string& db,
                     std::vector<std::string> args, const Env& env = {}) {
  // The password travels in PGPASSWORD: previewdb refuses one in a flag (ps shows flags).
  std::vector<std::string> all = {command, "--database-url", server().url_without_password(db)};
  all.insert(all.end(), args.begin(), args.end());
  Env with_password = {{"PGPASSWORD", server().password()}};
  for (const auto& [k, v] : env) with_password[k] = v;
  return run_cli(all, with_password);
}

inline CliResult migrate_cli(const std::string& db, std::vector<std::string> args,
                             const Env& env = {}) {
  return cli("migrate", db, std::move(args), env);
}

inline std::map<std::string, std::optional<std::string>> pg_env(const std::string& db) {
  return {{"PGHOST", "127.0.0.1"}, {"PGPORT", std::to_string(server().port())},
          {"PGUSER", "previewdb"}, {"PGPASSWORD", server().password()},
          {"PGDATABASE", db},      {"PGAPPNAME", std::nullopt}};
}

// psql -f file, stopping at the first error (as a reference run of the tool's order).
inline util::ProcessResult psql_file(const std::string& db, const std::filesystem::path& file) {
  util::ProcessSpec spec;
  spec.argv = {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", file.string()};
  spec.env = pg_env(db);
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  return util::run_process(spec);
}

// pg_dump --schema-only without the history tables of previewdb and of the tools.
inline std::string schema_dump(const std::string& db) {
  util::ProcessSpec spec;
  spec.argv = {"pg_dump",
               "--schema-only",
               "--no-owner",
               "-N",
               "_previewdb",
               "-N",
               "drizzle",
               "-T",
               "public._prisma_migrations",
               "-T",
               "public.schema_migrations",
               "-T",
               "public.flyway_schema_history"};
  spec.env = pg_env(db);
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  auto r = util::run_process(spec);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // pg_dump 15.14+ brackets the dump with \restrict <random key> lines.
  std::string out;
  for (const auto& line : util::split(r.out, '\n')) {
    if (line.rfind("\\restrict ", 0) == 0 || line.rfind("\\unrestrict ", 0) == 0) continue;
    out += line + "\n";
  }
  return out;
}

// The first line where two texts differ, with a little context (short failure messages).
inline std::string first_difference(const std::string& a, const std::string& b) {
  auto la = util::split(a, '\n'), lb = util::split(b, '\n');
  for (size_t i = 0; i < std::max(la.size(), lb.size()); ++i) {
    std::string x = i < la.size() ? la[i] : "<end>", y = i < lb.size() ? lb[i] : "<end>";
    if (x != y)
      return "line " + std::to_string(i + 1) + ":\n  previewdb: " + x + "\n  psql:      " + y;
  }
  return "";
}

inline long long count(const std::string& db, const std::string& sql) {
  return server().connect(db).exec(sql).get_int(0, 0);
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace previewdb::test::migrate
