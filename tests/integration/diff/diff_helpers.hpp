// Shared by the diff and drift integration tests: fresh databases on the test's real server,
// running the real binary against that server, and reading its JSON.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/folder.hpp"
#include "harness/harness.hpp"
#include "util/files.hpp"

namespace previewdb::test::schema_it {

inline PgServer& server() {
  return PgServer::shared();
}

// Drops and re-creates a database, then runs sql in it.
inline std::string fresh_db(const std::string& name, const std::string& sql = "") {
  auto conn = server().connect();
  conn.exec("DROP DATABASE IF EXISTS " + conn.quote_ident(name) + " WITH (FORCE)");
  conn.exec("CREATE DATABASE " + conn.quote_ident(name));
  if (!sql.empty()) server().exec(name, sql);
  return name;
}

// previewdb <command> against the test server (the password in PGPASSWORD, never in argv).
inline CliResult cli(const std::string& command, std::vector<std::string> args,
                     const std::string& dbname = "postgres") {
  std::vector<std::string> all = {command, "--database-url", server().url_without_password(dbname)};
  all.insert(all.end(), args.begin(), args.end());
  return run_cli(all, {{"PGPASSWORD", server().password()}});
}

inline CliResult diff_cli(std::vector<std::string> args) {
  return cli("diff", std::move(args));
}

inline nlohmann::json diff_json(const std::string& from, const std::string& to) {
  auto r = diff_cli({from, to, "--json"});
  EXPECT_TRUE(r.code == 0 || r.code == 9) << r.all();
  return nlohmann::json::parse(r.out.empty() ? "{}" : r.out);
}

// The difference about (kind, name), or null.
inline nlohmann::json find_difference(const nlohmann::json& j, const std::string& kind,
                                      const std::string& name) {
  for (const auto& d : j["differences"]) {
    if (d["kind"] == kind && d["name"] == name) return d;
  }
  return nullptr;
}

inline std::vector<std::string> attribute_names(const nlohmann::json& d) {
  std::vector<std::string> out;
  for (const auto& a : d["attributes"]) out.push_back(a["name"]);
  return out;
}

// Databases named previewdb_tmp_* on the server (scratch databases left behind).
inline std::vector<std::string> temporaries() {
  auto r = server().connect().exec(
      "SELECT datname FROM pg_database WHERE datname LIKE 'previewdb\\_tmp\\_%' ORDER BY 1");
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.get(i, 0));
  return out;
}

inline std::filesystem::path history() {
  return fixtures_dir() / "diff" / "history";
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace previewdb::test::schema_it
