// Issue 8 §2: the base branch's own flow. A push to main with --refresh-source migrates dev,
// snapshots it and prunes old snapshots; without the flag a push stays a no-op.
#include "ci_flow.hpp"

#include <thread>

#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "db/advisory_lock.hpp"

using namespace previewdb;
using namespace previewdb::test::ciflow;
using ::testing::HasSubstr;

namespace {

class CiBaseBranch : public CiFlow {
 protected:
  int snapshots_of_dev() {
    return std::stoi(
        scalar("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'snap\\_dev\\_%'"));
  }
  bool dev_has_users() { return scalar("dev", "SELECT to_regclass('users') IS NOT NULL") == "t"; }
};

}  // namespace

TEST_F(CiBaseBranch, PushToMainRefreshesDevAndItsSnapshotAndPrunes) {
  // Two older snapshots of an empty dev.
  ASSERT_EQ(cli({"snapshot"}).code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_EQ(cli({"snapshot"}).code, 0);
  ASSERT_EQ(snapshots_of_dev(), 2);
  git(repos.work(), {"checkout", "-q", "main"});

  auto g = github(push_event("main"), {"--refresh-source", "--keep-snapshots", "2"}, {}, "push");
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto o = g.outputs();
  EXPECT_EQ(o["reason"], "base-branch");
  EXPECT_EQ(o["preview"], "false");
  EXPECT_EQ(o["database-name"], "dev");
  EXPECT_EQ(o["migrations-applied"], "1");
  EXPECT_THAT(o["snapshot"], HasSubstr("snap_dev_"));
  EXPECT_EQ(o["snapshots-pruned"], "1");
  EXPECT_TRUE(dev_has_users());
  EXPECT_EQ(snapshots_of_dev(), 2);
  EXPECT_TRUE(server().database_exists(o["snapshot"]));
  expect_clean(g);

  // The new snapshot is what the next preview is cloned from: it has main's schema.
  git(repos.work(), {"checkout", "-q", "feature"});
  auto pr = github(pr_event(31));
  ASSERT_EQ(pr.r.code, 0) << pr.r.all();
  EXPECT_EQ(pr.outputs()["snapshot"], o["snapshot"]);
  EXPECT_EQ(pr.outputs()["migrations-applied"], "1");  // only the PR's own
}

TEST_F(CiBaseBranch, PushWithoutTheFlagStaysANoOp) {
  git(repos.work(), {"checkout", "-q", "main"});
  auto g = github(push_event("main"), {}, {}, "push");
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["reason"], "no-changes");
  EXPECT_FALSE(dev_has_users());
  EXPECT_EQ(snapshots_of_dev(), 0);
}

TEST_F(CiBaseBranch, PushToAnotherBranchDoesNotRefresh) {
  git(repos.work(), {"checkout", "-q", "main"});
  auto g = github(push_event("feature"), {"--refresh-source"}, {}, "push");
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["reason"], "no-changes");
  EXPECT_FALSE(dev_has_users());
}

TEST_F(CiBaseBranch, RefusesAProtectedDatabaseOtherThanTheSource) {
  server().exec("postgres", "CREATE DATABASE prod");
  git(repos.work(), {"checkout", "-q", "main"});
  auto g = github(push_event("main"), {"--refresh-source", "--from", "prod"},
                  {{"PREVIEWDB_REFRESH_SOURCE", "true"}}, "push");
  EXPECT_EQ(g.r.code, 6) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("refusing to migrate \"prod\""));
  EXPECT_EQ(scalar("prod", "SELECT to_regclass('users') IS NOT NULL"), "f");
  // The failure is still reported.
  EXPECT_EQ(g.outputs()["exit-code"], "6");
  EXPECT_EQ(g.outputs()["reason"], "base-branch");
}

TEST_F(CiBaseBranch, EnvironmentTurnsItOnAndGenericCiNeedsOnlyTheFlag) {
  git(repos.work(), {"checkout", "-q", "main"});
  auto g = cli({"ci", "--provider", "generic"},
               {{"PREVIEWDB_REFRESH_SOURCE", "true"}, {"PREVIEWDB_KEEP_SNAPSHOTS", "1"}});
  ASSERT_EQ(g.code, 0) << g.all();
  EXPECT_THAT(g.out, HasSubstr("reason=base-branch"));
  EXPECT_TRUE(dev_has_users());
  EXPECT_EQ(snapshots_of_dev(), 1);
}

// A snapshot a spawn is cloning (it holds the snapshot's name lock) is never pruned.
TEST_F(CiBaseBranch, PruneSkipsASnapshotBeingClonedFrom) {
  ASSERT_EQ(cli({"snapshot"}).code, 0);
  std::string busy =
      scalar("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'snap\\_dev\\_%'");
  ASSERT_FALSE(busy.empty());
  // previewdb's locks live in its maintenance database, the registry's.
  auto holder = server().connect(core::k_registry_database);
  db::AdvisoryLock clone(holder, core::spawn_lock_key(busy), std::chrono::seconds(5), busy);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  git(repos.work(), {"checkout", "-q", "main"});

  auto g = github(push_event("main"), {"--refresh-source", "--keep-snapshots", "1"}, {}, "push");
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["snapshots-pruned"], "0");
  EXPECT_TRUE(server().database_exists(busy));
  EXPECT_THAT(g.r.err, HasSubstr("kept " + busy + ": a preview is being cloned from it"));
}

TEST_F(CiBaseBranch, NetlifyProductionRefreshesAndDeployPreviewsDoNot) {
  git(repos.work(), {"checkout", "-q", "main"});
  Env netlify = {{"NETLIFY", "true"},
                 {"CONTEXT", "branch-deploy"},
                 {"BRANCH", "main"},
                 {"PREVIEWDB_REFRESH_SOURCE", "true"}};
  auto branch = cli({"ci", "--json"}, netlify);
  ASSERT_EQ(branch.code, 0) << branch.all();
  EXPECT_EQ(nlohmann::json::parse(branch.out)["reason"], "no-changes");
  EXPECT_FALSE(dev_has_users());

  netlify["CONTEXT"] = "production";
  auto production = cli({"ci", "--json"}, netlify);
  ASSERT_EQ(production.code, 0) << production.all();
  auto j = nlohmann::json::parse(production.out);
  EXPECT_EQ(j["reason"], "base-branch");
  EXPECT_EQ(j["migrations-applied"], 1);
  EXPECT_TRUE(dev_has_users());
}

TEST_F(CiBaseBranch, DispatchRefreshesOnlyOnTheBaseBranch) {
  git(repos.work(), {"checkout", "-q", "main"});
  nlohmann::json dispatch = {
      {"ref", "refs/heads/feature"},
      {"repository", {{"full_name", "octo-org/shop"}, {"default_branch", "main"}}}};
  fs::path ev = write_event(dispatch);
  auto feature =
      github(ev, {"--refresh-source"}, {{"GITHUB_REF", "refs/heads/feature"}}, "workflow_dispatch");
  ASSERT_EQ(feature.r.code, 0) << feature.r.all();
  EXPECT_EQ(feature.outputs()["reason"], "no-changes");
  EXPECT_FALSE(dev_has_users());

  auto main =
      github(ev, {"--refresh-source"}, {{"GITHUB_REF", "refs/heads/main"}}, "workflow_dispatch");
  ASSERT_EQ(main.r.code, 0) << main.r.all();
  EXPECT_EQ(main.outputs()["reason"], "base-branch");
  EXPECT_TRUE(dev_has_users());
}
