// `previewdb cleanup --closed-prs` against a real PostgreSQL, asking a local server that replays
// the recorded GitHub response for a pull request's state (tests/fixtures/github-api/).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "harness/harness.hpp"
#include "harness/http_replay.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const std::string k_token = "ghp_cleanup_token_0123456789";

// The recorded GET /repos/PyGithub/PyGithub/pulls/31 (closed and merged), served for `number`.
test::Exchange closed_pr(long long number) {
  auto x = test::ReplayServer::load(test::github_fixture("pr-state-closed.json")).at(0);
  auto body = nlohmann::json::parse(x.body);
  body["number"] = number;
  x.path = "/repos/PyGithub/PyGithub/pulls/" + std::to_string(number);
  x.body = body.dump();
  x.times = 100;
  return x;
}

// Only a closed pull request was recorded. An open one is derived from that real response by
// editing a copy the way GitHub reports an open PR: state "open", no closed_at/merged_at.
test::Exchange open_pr(long long number) {
  auto x = closed_pr(number);
  auto body = nlohmann::json::parse(x.body);
  body["state"] = "open";
  body["closed_at"] = nullptr;
  body["merged_at"] = nullptr;
  body["merge_commit_sha"] = nullptr;
  x.body = body.dump();
  return x;
}

class CleanupClosedPrs : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev", "CREATE TABLE items(id int primary key);");
    ASSERT_EQ(run_cli({"snapshot"}, env()).code, 0);
    // Made outside any checkout: a spawn records the repository of the checkout it runs in.
    for (const char* pr : {"31", "32", "35"}) {
      auto r =
          run_cli({"spawn", "--pr", pr}, env(), std::filesystem::temp_directory_path().string());
      ASSERT_EQ(r.code, 0) << r.err;
    }
    ASSERT_EQ(run_cli({"spawn", "feature"}, env()).code, 0);
    server().exec("postgres", "CREATE DATABASE pr_34");  // unmanaged: no metadata
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static test::Env env(test::Env extra = {}) {
    test::Env e = {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_USER", "alice"}};
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
  static test::Env github(const test::ReplayServer& api) {
    return env({{"GITHUB_TOKEN", k_token},
                {"GITHUB_REPOSITORY", "PyGithub/PyGithub"},
                {"GITHUB_API_URL", api.url()},
                {"PREVIEWDB_PROTECT", "pr_35"}});
  }
  static std::vector<std::string> paths(const test::ReplayServer& api) {
    std::vector<std::string> out;
    for (const auto& r : api.requests()) out.push_back(r.path);
    std::sort(out.begin(), out.end());
    return out;
  }
};

}  // namespace

TEST_F(CleanupClosedPrs, NeedsATokenAndARepository) {
  auto no_token = run_cli({"cleanup", "--closed-prs", "--dry-run"},
                          env({{"GITHUB_REPOSITORY", "PyGithub/PyGithub"}}));
  EXPECT_EQ(no_token.code, 2) << no_token.err;
  EXPECT_THAT(no_token.err, HasSubstr("--closed-prs needs GITHUB_TOKEN"));
  EXPECT_THAT(no_token.err, HasSubstr("hint: in a workflow"));

  auto no_repo =
      run_cli({"cleanup", "--closed-prs", "--dry-run"}, env({{"GITHUB_TOKEN", k_token}}));
  EXPECT_EQ(no_repo.code, 2) << no_repo.err;
  EXPECT_THAT(no_repo.err, HasSubstr("--closed-prs needs the GitHub repository"));
  EXPECT_THAT(no_repo.err, HasSubstr("hint: pass --repo owner/name or set GITHUB_REPOSITORY"));

  auto bad_repo = run_cli({"cleanup", "--closed-prs", "--repo", "nonsense", "--dry-run"},
                          env({{"GITHUB_TOKEN", k_token}}));
  EXPECT_EQ(bad_repo.code, 2) << bad_repo.err;
  EXPECT_THAT(bad_repo.err, HasSubstr("\"nonsense\" is not of the form owner/name"));
  EXPECT_THAT(no_token.all() + no_repo.all() + bad_repo.all(), Not(HasSubstr(k_token)));
}

TEST_F(CleanupClosedPrs, DropsThePreviewsOfClosedPullRequestsOnly) {
  test::ReplayServer api({closed_pr(31), open_pr(32), closed_pr(35)});

  auto dry = run_cli({"cleanup", "--closed-prs", "--dry-run", "--json"}, github(api));
  ASSERT_EQ(dry.code, 0) << dry.err;
  auto out = nlohmann::json::parse(dry.out);
  EXPECT_EQ(out["would_drop"], nlohmann::json::array({"pr_31"}));
  EXPECT_THAT(dry.err, HasSubstr("pr_31: pull request #31 is closed (merged)"));
  EXPECT_THAT(dry.err, HasSubstr("skipping pr_35: protected"));
  // One call per managed PR preview; never for the unmanaged pr_34 or a personal database.
  EXPECT_EQ(paths(api), (std::vector<std::string>{"/repos/PyGithub/PyGithub/pulls/31",
                                                  "/repos/PyGithub/PyGithub/pulls/32",
                                                  "/repos/PyGithub/PyGithub/pulls/35"}));
  for (const auto& r : api.requests()) {
    EXPECT_EQ(r.headers.at("authorization"), "Bearer " + k_token);
  }
  EXPECT_TRUE(server().database_exists("pr_31"));

  auto noterm = run_cli({"cleanup", "--closed-prs"}, github(api));
  EXPECT_EQ(noterm.code, 6) << noterm.err;
  EXPECT_THAT(noterm.err, HasSubstr("without confirmation"));

  // Combined with --older-than, both must hold: nothing is a week old, and GitHub is not asked.
  test::ReplayServer quiet({closed_pr(31), open_pr(32), closed_pr(35)});
  auto young = run_cli({"cleanup", "--closed-prs", "--older-than", "7d", "--yes"}, github(quiet));
  ASSERT_EQ(young.code, 0) << young.err;
  EXPECT_THAT(young.err, HasSubstr("nothing to drop"));
  EXPECT_TRUE(quiet.requests().empty());
  EXPECT_TRUE(server().database_exists("pr_31"));

  auto done = run_cli({"cleanup", "--closed-prs", "--yes"}, github(api));
  ASSERT_EQ(done.code, 0) << done.err;
  EXPECT_EQ(done.out, "pr_31\n");
  EXPECT_FALSE(server().database_exists("pr_31"));
  for (const char* kept : {"pr_32", "pr_34", "pr_35", "dev_alice_feature"}) {
    EXPECT_TRUE(server().database_exists(kept)) << kept;
  }
  EXPECT_THAT(dry.all() + noterm.all() + done.all(), Not(HasSubstr(k_token)));
}

TEST_F(CleanupClosedPrs, ApiErrorsEndTheRunBeforeAnythingIsDropped) {
  // The recorded 401 (bad credentials), answered for every preview's state.
  auto denied = test::ReplayServer::load(test::github_fixture("unauthorized.json")).at(0);
  std::vector<test::Exchange> answers;
  for (long long n : {31, 32, 35}) {
    answers.push_back(denied);
    answers.back().path = "/repos/PyGithub/PyGithub/pulls/" + std::to_string(n);
  }
  test::ReplayServer api(answers);
  auto r = run_cli({"cleanup", "--closed-prs", "--yes"}, github(api));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("the GitHub API rejected the token while reading the state of "
                               "pull request #"));
  EXPECT_THAT(r.err, HasSubstr("hint: check GITHUB_TOKEN"));
  EXPECT_THAT(r.all(), Not(HasSubstr(k_token)));
  for (const char* kept : {"pr_31", "pr_32", "pr_35"}) {
    EXPECT_TRUE(server().database_exists(kept)) << kept;
  }

  // The recorded 404: a repository the token cannot see.
  auto missing = test::ReplayServer::load(test::github_fixture("not-found.json")).at(0);
  answers.clear();
  for (long long n : {31, 32, 35}) {
    answers.push_back(missing);
    answers.back().path = "/repos/PyGithub/PyGithub/pulls/" + std::to_string(n);
  }
  test::ReplayServer gone(answers);
  auto r404 = run_cli({"cleanup", "--closed-prs", "--yes"}, github(gone));
  EXPECT_EQ(r404.code, 1) << r404.err;
  EXPECT_THAT(r404.err, HasSubstr("the GitHub API does not know pull request #"));
  EXPECT_TRUE(server().database_exists("pr_31"));
}
