// --migrate-url: a pull request's migrations run as a separate login that previewdb lends just
// that preview to. Its SQL cannot change previewdb's role, drop another preview or reach the
// registry; the migration itself works (on tables cloned from the snapshot too).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/git_repo.hpp"
#include "harness/harness.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const std::string k_migrator_password = "migrator-pw-8812";

class MigrateRole : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("postgres", "DO $$ BEGIN CREATE ROLE pr_migrator LOGIN PASSWORD '" +
                                  k_migrator_password +
                                  "'; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    test::git(repos.work(), {"checkout", "-q", "main"});
    auto m = run_cli({"migrate", "--database", "dev"}, env(), repos.work().string());
    ASSERT_EQ(m.code, 0) << m.all();
    ASSERT_EQ(run_cli({"snapshot"}, env(), repos.work().string()).code, 0);
    test::git(repos.work(), {"checkout", "-q", "feature"});
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static std::string migrator_url(bool with_password) {
    return "postgresql://pr_migrator" + (with_password ? ":" + k_migrator_password : "") +
           "@127.0.0.1:" + std::to_string(server().port()) + "/postgres";
  }
  static test::Env env(test::Env extra = {}) {
    test::Env e = {{"DATABASE_URL", server().url("postgres")}};
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
  test::CliResult ci(long long pr) {
    return run_cli({"ci", "--provider", "generic", "--pr", std::to_string(pr), "--force"},
                   env({{"PREVIEWDB_MIGRATE_URL", migrator_url(true)}}), repos.work().string());
  }
  bool migrator_may_connect(const std::string& db) {
    return server()
        .connect()
        .exec("SELECT has_database_privilege('pr_migrator', $1, 'CONNECT')", {db})
        .get_bool(0, 0);
  }
  test::GitRepos repos;
};

}  // namespace

TEST_F(MigrateRole, TheMigrationRunsAsTheMigrationRoleOnThatPreviewOnly) {
  auto ok = ci(1);
  ASSERT_EQ(ok.code, 0) << ok.all();
  EXPECT_THAT(ok.out, HasSubstr("migrations-applied=1"));
  EXPECT_THAT(ok.err, HasSubstr("lending pr_1 to the migration role pr_migrator"));
  // The CI role here is the harness's superuser: warned about, not refused.
  EXPECT_THAT(ok.err, HasSubstr("previewdb connects as the superuser \"previewdb\""));
  EXPECT_THAT(ok.all(), Not(HasSubstr(k_migrator_password)));
  auto conn = server().connect("pr_1");
  EXPECT_EQ(conn.exec("SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' "
                      "AND column_name = 'email'")
                .get_int(0, 0),
            1);
  EXPECT_EQ(
      conn.exec("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'users'").get(0, 0),
      "pr_migrator");
  // Lent for the run only; it never owns the database.
  EXPECT_FALSE(migrator_may_connect("pr_1"));
  EXPECT_EQ(server()
                .connect()
                .exec("SELECT count(*) FROM pg_database WHERE datdba = "
                      "(SELECT oid FROM pg_roles WHERE rolname = 'pr_migrator')")
                .get_int(0, 0),
            0);
  EXPECT_FALSE(migrator_may_connect("previewdb_registry"));
  EXPECT_THROW(
      db::Connection::open({.conninfo = migrator_url(true), .dbname = "previewdb_registry"}),
      Error);

  // A second push reuses it: lent again, nothing left to apply.
  auto again = ci(1);
  ASSERT_EQ(again.code, 0) << again.all();
  EXPECT_THAT(again.out, HasSubstr("migrations-applied=0"));
}

TEST_F(MigrateRole, APullRequestsSqlCannotEscapeItsPreview) {
  ASSERT_EQ(ci(1).code, 0);
  repos.commit_file("migrations/schema/0003_evil.sql", "ALTER ROLE previewdb PASSWORD 'owned';\n",
                    "evil");
  auto role = ci(2);
  EXPECT_EQ(role.code, 7) << role.all();
  EXPECT_THAT(role.err, HasSubstr("0003_evil.sql"));
  // previewdb's password still works.
  EXPECT_NO_THROW(server().connect());

  test::git(repos.work(), {"reset", "-q", "--hard", "HEAD~1"});
  repos.commit_file("migrations/schema/0003_evil.sql", "DROP DATABASE pr_1;\n", "evil");
  auto drop = ci(3);
  EXPECT_NE(drop.code, 0) << drop.all();
  EXPECT_TRUE(server().database_exists("pr_1"));

  test::git(repos.work(), {"reset", "-q", "--hard", "HEAD~1"});
  repos.commit_file("migrations/schema/0003_evil.sql", "ALTER DATABASE pr_4 RENAME TO stolen;\n",
                    "evil");
  auto rename = ci(4);
  EXPECT_EQ(rename.code, 7) << rename.all();
  EXPECT_TRUE(server().database_exists("pr_4"));
  for (const char* db : {"pr_1", "pr_2", "pr_3", "pr_4"}) {
    EXPECT_FALSE(migrator_may_connect(db)) << db;
  }
}

TEST_F(MigrateRole, BadMigrationLoginsAreRefused) {
  auto in_flag = run_cli(
      {"ci", "--provider", "generic", "--pr", "5", "--force", "--migrate-url", migrator_url(true)},
      env(), repos.work().string());
  EXPECT_EQ(in_flag.code, 2) << in_flag.all();
  EXPECT_THAT(in_flag.err, HasSubstr("--migrate-url must not contain a password"));
  EXPECT_THAT(in_flag.all(), Not(HasSubstr(k_migrator_password)));

  auto self =
      run_cli({"ci", "--provider", "generic", "--pr", "5", "--force"},
              env({{"PREVIEWDB_MIGRATE_URL", server().url("postgres")}}), repos.work().string());
  EXPECT_EQ(self.code, 2) << self.all();
  EXPECT_THAT(self.err, HasSubstr("is the role previewdb connects as"));

  auto missing = run_cli(
      {"ci", "--provider", "generic", "--pr", "5", "--force"},
      env({{"PREVIEWDB_MIGRATE_URL",
            "postgresql://nobody@127.0.0.1:" + std::to_string(server().port()) + "/postgres"}}),
      repos.work().string());
  EXPECT_EQ(missing.code, 2) << missing.all();
  EXPECT_THAT(missing.err, HasSubstr("the migration role \"nobody\""));
  EXPECT_THAT(missing.err, HasSubstr("does not exist"));
}
