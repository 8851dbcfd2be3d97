// Workflow-command and newline injection through the server's data (issue 7 item 12): database
// names, database comments and a recorded branch carrying "\n::error::pwned" never start a line
// that list, snapshot list, cleanup or spawn print (stdout or stderr), under GitHub Actions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness/harness.hpp"
#include "util/strings.hpp"

using namespace previewdb;
using test::run_cli;

namespace {

const std::string k_evil = "x\n::error::pwned";

void expect_no_injected_line(const std::string& text, const std::string& where) {
  for (const auto& line : util::split(text, '\n')) {
    auto first = line.find_first_not_of(" \t|");
    if (first == std::string::npos) continue;
    EXPECT_NE(line.substr(first, 14), "::error::pwned") << where << ": " << line;
  }
}

class Injection : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev", "CREATE TABLE items(id int primary key);");
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static test::Env env() {
    return {
        {"DATABASE_URL", server().url()}, {"PREVIEWDB_USER", "alice"}, {"GITHUB_ACTIONS", "true"}};
  }
  static test::CliResult run_clean(const std::vector<std::string>& args, int expected_code) {
    auto r = run_cli(args, env());
    EXPECT_EQ(r.code, expected_code) << args[0] << "\n" << r.all();
    expect_no_injected_line(r.out, args[0] + " stdout");
    expect_no_injected_line(r.err, args[0] + " stderr");
    return r;
  }
};

}  // namespace

TEST_F(Injection, DatabaseNamesCommentsAndBranchesInEveryListing) {
  auto conn = server().connect();
  conn.exec("CREATE DATABASE " + conn.quote_ident(k_evil));
  conn.exec("COMMENT ON DATABASE dev IS " + conn.quote_literal(k_evil));
  ASSERT_EQ(run_cli({"snapshot"}, env()).code, 0);
  // A preview whose recorded branch carries the payload (ci records the event's head ref).
  run_clean({"spawn", "--pr", "9", "--branch", "feature" + std::string("\n::error::pwned")}, 0);
  server().exec("postgres", "COMMENT ON DATABASE pr_9 IS " + conn.quote_literal(k_evil));
  EXPECT_THAT(run_clean({"list"}, 0).out, ::testing::HasSubstr("pwned"));  // shown, neutralised
  run_clean({"snapshot", "list"}, 0);
  run_clean({"spawn", "--pr", "9", "--reuse"}, 0);
  // cleanup names what it skips (an unmanaged database) and what it would drop.
  run_clean({"cleanup", "--older-than", "0s", "--dry-run"}, 0);
  EXPECT_THAT(run_clean({"cleanup", "--pattern", "^x", "--dry-run"}, 0).err,
              ::testing::HasSubstr("pwned"));
  run_clean({"cleanup", k_evil, "--yes"}, 2);  // a name with a control character: usage
  run_clean({"cleanup", "--pattern", "^x", "--yes", "--include-unmanaged"}, 0);
  EXPECT_FALSE(server().database_exists(k_evil));
}
