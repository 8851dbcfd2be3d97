// The warm pool through `previewdb ci` on real git repositories: a pull request's run takes a
// member for its preview and tops the pool up after its outputs; the base-branch refresh makes a
// new snapshot, and its own top-up replaces the members of the old one.
#include "integration/ci/ci_flow.hpp"

#include <set>
#include <thread>

using namespace previewdb;
using namespace previewdb::test::ciflow;
using ::testing::HasSubstr;

namespace {

class PoolCi : public CiFlow {
 protected:
  std::map<std::string, long long> members() {
    auto r = server().connect().exec(
        "SELECT datname, oid FROM pg_database WHERE datname LIKE 'previewdb\\_pool\\_%'");
    std::map<std::string, long long> out;
    for (int i = 0; i < r.rows(); ++i) out[r.get(i, 0)] = r.get_int(i, 1);
    return out;
  }
  long long oid_of(const std::string& db) {
    return std::stoll(
        scalar("postgres", "SELECT oid FROM pg_database WHERE datname = '" + db + "'"));
  }
};

}  // namespace

TEST_F(PoolCi, PreviewTakesAMemberAndTheBaseBranchRefreshReplacesTheStaleOnes) {
  prepare_dev();
  std::string first_snap =
      scalar("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'snap\\_dev\\_%'");

  // First PR run: the pool is empty, so a clone; the pool is filled after the outputs.
  auto a = github(pr_event(41), {"--pool", "2", "--json"});
  ASSERT_EQ(a.r.code, 0) << a.r.all();
  auto ja = nlohmann::json::parse(a.r.out);
  EXPECT_EQ(ja["pooled"], false);
  EXPECT_EQ(a.outputs()["database-name"], "pr_41");
  auto m = members();
  ASSERT_EQ(m.size(), 2u);
  for (auto& [name, oid] : m) EXPECT_THAT(name, HasSubstr(first_snap));
  // The outputs were written before the top-up: its log lines come after the result.
  EXPECT_THAT(a.r.err, HasSubstr("to the warm pool of dev (2/2)"));

  // The next PR's preview is a member, renamed, with the PR's migration applied on top.
  std::set<long long> oids;
  for (auto& [name, oid] : m) oids.insert(oid);
  auto b = github(pr_event(42), {"--json"}, {{"PREVIEWDB_POOL_SIZE", "2"}});
  ASSERT_EQ(b.r.code, 0) << b.r.all();
  auto jb = nlohmann::json::parse(b.r.out);
  EXPECT_EQ(jb["pooled"], true);
  EXPECT_EQ(jb["created"], true);
  EXPECT_EQ(jb["migrations-applied"], 1);
  EXPECT_EQ(jb["snapshot"], first_snap);
  EXPECT_TRUE(oids.count(oid_of("pr_42")));
  EXPECT_EQ(scalar("pr_42",
                   "SELECT count(*) FROM information_schema.columns "
                   "WHERE table_name = 'users' AND column_name = 'email'"),
            "1");
  EXPECT_EQ(b.outputs()["created"], "true");
  EXPECT_EQ(members().size(), 2u) << "topped up again at the end of the run";
  expect_clean(b);

  // The base branch: dev migrated, a new snapshot, and the members of the old one replaced.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  git(repos.work(), {"checkout", "-q", "main"});
  auto g = github(push_event("main"), {"--refresh-source", "--pool", "2"}, {}, "push");
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  std::string new_snap = g.outputs()["snapshot"];
  ASSERT_NE(new_snap, first_snap);
  auto now = members();
  ASSERT_EQ(now.size(), 2u);
  for (auto& [name, oid] : now) EXPECT_THAT(name, HasSubstr(new_snap));
  git(repos.work(), {"checkout", "-q", "feature"});

  // A dry run and a run that decides nothing never touch the pool.
  auto plan = github(pr_event(43), {"--pool", "3", "--dry-run"});
  ASSERT_EQ(plan.r.code, 0) << plan.r.all();
  EXPECT_EQ(members().size(), 2u);
}

TEST_F(PoolCi, ADivergenceResetClonesAndNeverTakesFromThePool) {
  prepare_dev();
  auto a = github(pr_event(51), {"--pool", "1"});
  ASSERT_EQ(a.r.code, 0) << a.r.all();
  ASSERT_EQ(members().size(), 1u);
  // An applied migration's file changes: the preview diverged and is re-created by a clone.
  commit_on("feature", "migrations/schema/0002_add_email.sql",
            "ALTER TABLE users ADD COLUMN email text; -- changed\n");
  auto b = github(pr_event(51), {"--json"});
  ASSERT_EQ(b.r.code, 0) << b.r.all();
  auto j = nlohmann::json::parse(b.r.out);
  EXPECT_EQ(j["reset"], true);
  EXPECT_EQ(j["pooled"], false);
  EXPECT_EQ(members().size(), 1u);
}
