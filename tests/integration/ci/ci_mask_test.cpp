// Issue 12, PII masking: the setting mask_rules applies to every snapshot previewdb takes, also
// the two `ci` takes itself: the base-branch refresh (--refresh-source) and the first snapshot a
// PR run takes on a server that has none. The preview cloned from it holds masked data only.
#include <fstream>

#include "ci_flow.hpp"

using namespace previewdb;
using namespace previewdb::test::ciflow;
using ::testing::HasSubstr;

namespace {

class CiMask : public CiFlow {
 protected:
  // dev migrated on main, with a personal value in it; back on feature.
  void populate_dev() {
    git(repos.work(), {"checkout", "-q", "main"});
    auto m = cli({"migrate", "--database", "dev"});
    ASSERT_EQ(m.code, 0) << m.all();
    server().exec("dev", "INSERT INTO users(name) VALUES ('Originalia Personname')");
    git(repos.work(), {"checkout", "-q", "feature"});
    rules = files.path() / "masking.json";
    std::ofstream(rules) << R"([{"table": "users", "column": "name", "function": "fake_name"}])";
  }
  Env mask_env() {
    return {{"PREVIEWDB_MASK_RULES", rules.string()}, {"PREVIEWDB_MASK_SALT", "ci-salt-42"}};
  }
  std::string name_in(const std::string& db) {
    server().connect().exec("ALTER DATABASE \"" + db + "\" ALLOW_CONNECTIONS true");
    return scalar(db, "SELECT name FROM users");
  }
  fs::path rules;
};

}  // namespace

TEST_F(CiMask, TheBaseBranchRefreshTakesAMaskedSnapshot) {
  populate_dev();
  git(repos.work(), {"checkout", "-q", "main"});
  auto g = github(push_event("main"), {"--refresh-source"}, mask_env(), "push");
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("masking: public.users.name fake_name: 1 rows changed"));
  // The salt appears once: in the runner's ::add-mask:: command, which hides it from the log.
  std::string all = g.r.all();
  auto masked = all.find("::add-mask::ci-salt-42\n");
  ASSERT_NE(masked, std::string::npos);
  all.erase(masked, 23);
  EXPECT_THAT(all, testing::Not(HasSubstr("ci-salt-42")));
  std::string snap = g.outputs()["snapshot"];
  ASSERT_THAT(snap, HasSubstr("snap_dev_"));
  EXPECT_NE(name_in(snap), "Originalia Personname");
  EXPECT_EQ(scalar("dev", "SELECT name FROM users"), "Originalia Personname");
  auto list = nlohmann::json::parse(cli({"snapshot", "list", "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(list[0]["masked"].get<bool>());
}

TEST_F(CiMask, TheFirstSnapshotOfAPullRequestRunIsMasked) {
  populate_dev();
  auto g = github(pr_event(41), {}, mask_env());
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("masking: public.users.name fake_name: 1 rows changed"));
  std::string preview = g.outputs()["database-name"];
  ASSERT_FALSE(preview.empty());
  EXPECT_NE(scalar(preview, "SELECT name FROM users"), "Originalia Personname");
  EXPECT_EQ(scalar(preview, "SELECT count(*) FROM users"), "1");
}

// Trust: under an untrusted head (a fork's pull request, pull_request_target) the rules file is
// read from the base branch, so a pull request that empties it still gets a masked snapshot.
TEST_F(CiMask, AnUntrustedHeadCannotEmptyTheBaseBranchsRules) {
  populate_dev();
  std::string base_rules = R"([{"table": "users", "column": "name", "function": "fake_name"}])";
  commit_on("main", "masking.json", base_rules);
  commit_on("main", "previewdb.json", R"({"mask_rules": "masking.json"})");
  repos.commit_file("masking.json", "[]", "the PR empties the rules");
  repos.commit_file("previewdb.json", R"({"mask_rules": "masking.json"})", "and names them");
  auto g = github(pr_event(42, "main", "synchronize", /*fork=*/true), {},
                  {{"PREVIEWDB_MASK_SALT", "ci-salt-42"}}, "pull_request_target");
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("masking: public.users.name fake_name: 1 rows changed"));
  std::string preview = g.outputs()["database-name"];
  ASSERT_FALSE(preview.empty());
  EXPECT_NE(scalar(preview, "SELECT name FROM users"), "Originalia Personname");
}
