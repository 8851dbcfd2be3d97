// Issue 8 §5: a run that fails after the decision still reports (outputs, summary, JSON) with
// CI hints, and no output ever shows the password. Issue 7 #17: output files that cannot be
// written are found before any database is created.
#include "ci_flow.hpp"

using namespace previewdb;
using namespace previewdb::test::ciflow;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class CiFailure : public CiFlow {
 protected:
  void add_broken_migration() {
    repos.commit_file("migrations/schema/0003_broken.sql",
                      "ALTER TABLE users ADD COLUMN age int;\nALTER TABLE nosuchtable ADD COLUMN "
                      "x int;\n",
                      "broken");
  }
};

}  // namespace

TEST_F(CiFailure, FailingMigrationStillProducesTheOutputs) {
  prepare_dev();
  add_broken_migration();
  auto g = github(pr_event(51));
  EXPECT_EQ(g.r.code, 7) << g.r.all();
  auto o = g.outputs();
  EXPECT_EQ(o["preview"], "true");
  EXPECT_EQ(o["reason"], "migrations-changed");
  EXPECT_EQ(o["database-name"], "pr_51");
  EXPECT_EQ(o["exit-code"], "7");
  EXPECT_THAT(o["error"], HasSubstr("nosuchtable"));
  EXPECT_THAT(g.summary, HasSubstr("failed"));
  EXPECT_THAT(g.summary, HasSubstr("0003_broken.sql:2"));
  EXPECT_THAT(g.r.err, HasSubstr("hint: fix the migration in the branch and push"));
  EXPECT_THAT(g.r.err, Not(HasSubstr("previewdb migrate'")));
  expect_clean(g);

  auto j = github(pr_event(51), {"--json"});
  EXPECT_EQ(j.r.code, 7) << j.r.all();
  auto doc = nlohmann::json::parse(j.r.out);
  EXPECT_THAT(doc["error"].get<std::string>(), HasSubstr("nosuchtable"));
  EXPECT_EQ(doc["exit_code"], 7);
  EXPECT_EQ(doc["database-name"], "pr_51");
  expect_clean(j);
}

TEST_F(CiFailure, PasswordNeverUnmaskedOnAnyPath) {
  prepare_dev();
  // Success, with the URL exported for later steps.
  auto ok = github(pr_event(52), {"--export-env"});
  ASSERT_EQ(ok.r.code, 0) << ok.r.all();
  expect_clean(ok);
  EXPECT_THAT(ok.r.err, HasSubstr("::add-mask::"));
  // Failure.
  add_broken_migration();
  auto bad = github(pr_event(52));
  EXPECT_EQ(bad.r.code, 7);
  expect_clean(bad);
  // No preview: the shared database is reported without its password.
  git(repos.work(), {"checkout", "-q", "main"});
  auto none = github(pr_event(53));
  ASSERT_EQ(none.r.code, 0) << none.r.all();
  EXPECT_EQ(none.outputs()["preview"], "false");
  expect_clean(none);
  // A plan.
  git(repos.work(), {"checkout", "-q", "feature"});
  auto plan = github(pr_event(54), {"--dry-run", "--json"});
  ASSERT_EQ(plan.r.code, 0) << plan.r.all();
  expect_clean(plan);
}

TEST_F(CiFailure, UnwritableOutputsAreFoundBeforeAnyDatabaseIsCreated) {
  prepare_dev();
  fs::path dir = files.path() / "a-directory";
  fs::create_directories(dir);

  auto env_file = github(pr_event(55), {"--env-file", dir.string()});
  EXPECT_EQ(env_file.r.code, 2) << env_file.r.all();
  EXPECT_THAT(env_file.r.err, HasSubstr("--env-file"));
  EXPECT_THAT(env_file.r.err, HasSubstr(dir.string()));
  EXPECT_FALSE(server().database_exists("pr_55"));

  auto output = github(pr_event(55), {}, {{"GITHUB_OUTPUT", dir.string()}});
  EXPECT_EQ(output.r.code, 2) << output.r.all();
  EXPECT_THAT(output.r.err, HasSubstr("GITHUB_OUTPUT"));
  EXPECT_FALSE(server().database_exists("pr_55"));

  auto genv = github(pr_event(55), {"--export-env"},
                     {{"GITHUB_ENV", (files.path() / "missing/dir/env").string()}});
  EXPECT_EQ(genv.r.code, 2) << genv.r.all();
  EXPECT_THAT(genv.r.err, HasSubstr("GITHUB_ENV"));
  EXPECT_FALSE(server().database_exists("pr_55"));
}
