// Issue 8 §3: detection follows the configured folder; runs from a subdirectory; the base branch
// of a `master` repository; Issue 7 #3: an untrusted head's previewdb.json is never read.
#include "ci_flow.hpp"

using namespace previewdb;
using namespace previewdb::test::ciflow;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class CiPaths : public CiFlow {};

}  // namespace

TEST_F(CiPaths, ConfiguredFolderIsTheDetectionPath) {
  // main keeps its migrations in db/migrations; feature (from there) adds one.
  git(repos.work(), {"checkout", "-q", "main"});
  fs::create_directories(repos.work() / "db");
  git(repos.work(), {"mv", "migrations/schema", "db/migrations"});
  git(repos.work(), {"commit", "-q", "-m", "move"});
  repos.push("main");
  git(repos.work(), {"branch", "-f", "feature"});
  git(repos.work(), {"checkout", "-q", "feature"});
  repos.commit_file("db/migrations/0002_add_email.sql",
                    "ALTER TABLE users ADD COLUMN email text;\n", "email");
  prepare_dev({"--dir", "db/migrations"});

  auto g = github(pr_event(41), {"--dry-run"}, {{"PREVIEWDB_MIGRATIONS_DIR", "db/migrations"}});
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["reason"], "migrations-changed");  // was no-changes
  EXPECT_EQ(g.outputs()["preview"], "true");

  auto typo = github(pr_event(41), {"--dir", "db/migratoins"});
  EXPECT_EQ(typo.r.code, 2) << typo.r.all();
  EXPECT_THAT(typo.r.err, HasSubstr("\"db/migratoins\""));
  EXPECT_FALSE(server().database_exists("pr_41"));
}

TEST_F(CiPaths, RunFromASubdirectoryResolvesAgainstTheRoot) {
  prepare_dev();
  repos.commit_file("web/package.json", "{}\n", "web app");
  auto g = github(pr_event(42), {"--dir", "migrations/schema"}, {}, "pull_request",
                  repos.work() / "web");
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["migrations-applied"], "1");
  EXPECT_FALSE(fs::exists(repos.work() / "web/.previewdb"));
}

TEST_F(CiPaths, MasterRepositoryFindsItsBaseBranch) {
  // A repository whose default branch is master, cloned as CI does.
  fs::path root = files.path() / "m";
  fs::create_directories(root);
  test::git(root, {"init", "-q", "--bare", "-b", "master", "origin.git"});
  test::git(root, {"clone", "-q", (root / "origin.git").string(), "work"});
  fs::path work = root / "work";
  test::git(work, {"symbolic-ref", "HEAD", "refs/heads/master"});
  fs::create_directories(work / "migrations/schema");
  util::write_file_atomic(work / "migrations/schema/0001_init.sql",
                          "CREATE TABLE users (id bigserial PRIMARY KEY);\n");
  test::git(work, {"add", "."});
  test::git(work, {"commit", "-q", "-m", "init"});
  test::git(work, {"push", "-q", "origin", "master"});
  // A fresh clone has origin/HEAD -> origin/master (actions/checkout does not; the event says).
  test::git(root, {"clone", "-q", (root / "origin.git").string(), "clone"});
  fs::path clone = root / "clone";
  test::git(clone, {"checkout", "-q", "-b", "topic"});
  util::write_file_atomic(clone / "migrations/schema/0002_x.sql",
                          "ALTER TABLE users ADD COLUMN x int;\n");
  test::git(clone, {"add", "."});
  test::git(clone, {"commit", "-q", "-m", "x"});

  auto generic = cli({"ci", "--provider", "generic", "--pr", "43", "--dry-run"}, {}, clone);
  ASSERT_EQ(generic.code, 0) << generic.all();
  EXPECT_THAT(generic.out, HasSubstr("reason=migrations-changed"));
  EXPECT_THAT(generic.err, HasSubstr("base branch \"master\""));

  // An event that names no PR base but the repository's default branch.
  test::git(clone, {"remote", "set-head", "origin", "-d"});
  nlohmann::json push = {{"ref", "refs/heads/master"},
                         {"repository", {{"full_name", "o/m"}, {"default_branch", "master"}}}};
  auto g = github(write_event(push), {"--pr", "43", "--dry-run"}, {}, "push", clone);
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["reason"], "migrations-changed");

  // Nothing says: main is tried, and the hint names --base-ref first.
  auto none = cli({"ci", "--provider", "generic", "--pr", "43"}, {}, clone);
  EXPECT_EQ(none.code, 2) << none.all();
  EXPECT_THAT(none.err, HasSubstr("hint: pass --base-ref"));
}

TEST_F(CiPaths, PullRequestTargetNeverReadsTheHeadsPreviewdbJson) {
  prepare_dev();
  fs::path marker = files.path() / "pwned";
  repos.commit_file(
      "previewdb.json",
      nlohmann::json{{"migrate_command", "touch " + marker.string()}, {"source", "postgres"}}
          .dump(),
      "hostile config");
  auto g = github(pr_event(44, "main", "synchronize", true), {}, {}, "pull_request_target");
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_EQ(g.outputs()["migrations-applied"], "1");  // previewdb's engine, not the command
  EXPECT_THAT(g.outputs()["snapshot"], HasSubstr("snap_dev_"));

  // A same-repository pull_request reads the checkout's file as before.
  auto same = github(pr_event(45), {"--dry-run"});
  ASSERT_EQ(same.r.code, 0) << same.r.all();
  EXPECT_THAT(same.outputs()["database-name"], HasSubstr("pr_45"));
  EXPECT_THAT(same.r.err, Not(HasSubstr("is ignored")));
}

TEST_F(CiPaths, PullRequestTargetReadsTheBaseBranchsPreviewdbJson) {
  commit_on("main", "previewdb.json", R"({"label": "needs-db"})");
  git(repos.work(), {"checkout", "-q", "main"});
  git(repos.work(), {"branch", "-f", "feature"});
  git(repos.work(), {"checkout", "-q", "feature"});
  repos.commit_file("previewdb.json", R"({"label": "never"})", "the PR's own label");
  auto doc = nlohmann::json::parse(util::read_file(pr_event(46, "main", "labeled", true)));
  doc["pull_request"]["labels"] = nlohmann::json::array({{{"name", "needs-db"}}});
  fs::path ev = write_event(doc);

  auto target = github(ev, {"--dry-run"}, {}, "pull_request_target");
  ASSERT_EQ(target.r.code, 0) << target.r.all();
  EXPECT_EQ(target.outputs()["reason"], "label");  // the base's label, not the checkout's

  auto plain = github(ev, {"--dry-run"}, {}, "pull_request");  // a fork's head: the same rule
  ASSERT_EQ(plain.r.code, 0) << plain.r.all();
  EXPECT_EQ(plain.outputs()["reason"], "label");
}
