// Several repositories on one server: the repository is recorded with each preview, another
// repository's preview is never reused, reset or dropped, --name-template keeps them apart, and
// cleanup --closed-prs asks GitHub about each preview's own repository.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "harness/git_repo.hpp"
#include "harness/harness.hpp"
#include "harness/http_replay.hpp"
#include "util/files.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class Repositories : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    test::git(repos.work(), {"checkout", "-q", "main"});
    auto m = run_cli({"migrate", "--database", "dev"}, env(), repos.work().string());
    ASSERT_EQ(m.code, 0) << m.all();
    ASSERT_EQ(run_cli({"snapshot"}, env(), repos.work().string()).code, 0);
    test::git(repos.work(), {"checkout", "-q", "feature"});
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static test::Env env(test::Env extra = {}) {
    test::Env e = {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_USER", "alice"}};
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
  test::CliResult ci(const std::string& repository, long long pr,
                     std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"ci",   "--provider",       "generic",
                                     "--pr", std::to_string(pr), "--force"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args, env({{"GITHUB_REPOSITORY", repository}}), repos.work().string());
  }
  static nlohmann::json find(const std::string& name) {
    auto r = run_cli({"list", "--json"}, env());
    for (const auto& d : nlohmann::json::parse(r.out)) {
      if (d["name"] == name) return d;
    }
    return nullptr;
  }
  test::GitRepos repos;
};

// A GitHub answer for GET /repos/<repo>/pulls/<n> in the shape of the recorded one.
test::Exchange pr_state(const std::string& repo, long long number, bool open) {
  auto x = test::ReplayServer::load(test::github_fixture("pr-state-closed.json")).at(0);
  auto body = nlohmann::json::parse(x.body);
  body["number"] = number;
  if (open) {
    body["state"] = "open";
    body["closed_at"] = nullptr;
    body["merged_at"] = nullptr;
  }
  x.path = "/repos/" + repo + "/pulls/" + std::to_string(number);
  x.body = body.dump();
  x.times = 10;
  return x;
}

}  // namespace

TEST_F(Repositories, TheSamePrNumberInTwoRepositories) {
  auto shop = ci("acme/shop", 4934);
  ASSERT_EQ(shop.code, 0) << shop.all();
  EXPECT_EQ(find("pr_4934")["repository"], "acme/shop");
  server().exec("pr_4934", "INSERT INTO users(name) VALUES ('reviewer data')");

  // Without a template the second repository's run is refused, and says how to fix it.
  auto blog = ci("other/blog", 4934);
  EXPECT_EQ(blog.code, 6) << blog.all();
  EXPECT_THAT(blog.err,
              HasSubstr("\"pr_4934\" is the preview of acme/shop #4934, not of other/blog"));
  EXPECT_THAT(blog.err, HasSubstr("--name-template 'pr_{repo}_{pr}'"));
  EXPECT_THAT(blog.err, HasSubstr("PREVIEWDB_NAME_TEMPLATE"));
  EXPECT_EQ(server().connect("pr_4934").exec("SELECT count(*) FROM users").get_int(0, 0), 1);

  // With one, both coexist.
  auto named = ci("other/blog", 4934, {"--name-template", "pr_{repo}_{pr}"});
  ASSERT_EQ(named.code, 0) << named.all();
  EXPECT_THAT(named.out, HasSubstr("database-name=pr_blog_4934"));
  EXPECT_EQ(find("pr_blog_4934")["repository"], "other/blog");
  EXPECT_TRUE(server().database_exists("pr_4934"));
  auto env_template = run_cli({"ci", "--provider", "generic", "--pr", "4934", "--force"},
                              env({{"GITHUB_REPOSITORY", "other/blog"},
                                   {"PREVIEWDB_NAME_TEMPLATE", "pr_{owner}_{repo}_{pr}"}}),
                              repos.work().string());
  ASSERT_EQ(env_template.code, 0) << env_template.all();
  EXPECT_TRUE(server().database_exists("pr_other_blog_4934"));

  // Cleanup acting for other/blog never drops acme/shop's preview.
  auto cleanup =
      run_cli({"cleanup", "--pr", "4934", "--yes"}, env({{"GITHUB_REPOSITORY", "other/blog"}}));
  EXPECT_EQ(cleanup.code, 6) << cleanup.all();
  EXPECT_THAT(cleanup.err, HasSubstr("the preview of another repository (acme/shop)"));
  EXPECT_TRUE(server().database_exists("pr_4934"));

  // --closed-prs asks about each preview's own repository only.
  test::ReplayServer api({pr_state("other/blog", 4934, false), pr_state("acme/shop", 4934, true)});
  auto closed = run_cli(
      {"cleanup", "--closed-prs", "--repo", "other/blog", "--dry-run", "--json"},
      env({{"GITHUB_TOKEN", "ghp_repositories_token_0123"}, {"GITHUB_API_URL", api.url()}}));
  ASSERT_EQ(closed.code, 0) << closed.all();
  auto out = nlohmann::json::parse(closed.out);
  EXPECT_EQ(out["would_drop"], nlohmann::json::array({"pr_blog_4934", "pr_other_blog_4934"}));
  for (const auto& r : api.requests()) EXPECT_EQ(r.path, "/repos/other/blog/pulls/4934");
  EXPECT_FALSE(api.requests().empty());
}

TEST_F(Repositories, AClosedPullRequestOfAnotherRepositoryDropsNothingOfThisOne) {
  ASSERT_EQ(ci("acme/shop", 12).code, 0);
  // other/blog's PR #12 closes: a pull_request event in the shape GitHub documents.
  nlohmann::json event = {
      {"action", "closed"},
      {"number", 12},
      {"repository", {{"full_name", "other/blog"}, {"default_branch", "main"}}},
      {"pull_request",
       {{"number", 12},
        {"state", "closed"},
        {"merged", false},
        {"labels", nlohmann::json::array()},
        {"head", {{"ref", "feature"}, {"sha", "0"}, {"repo", {{"full_name", "other/blog"}}}}},
        {"base", {{"ref", "main"}, {"sha", "0"}, {"repo", {{"full_name", "other/blog"}}}}}}}};
  util::TempDir dir;
  auto path = dir.path() / "closed.json";
  util::write_file_atomic(path, event.dump());
  auto r = run_cli({"ci"},
                   env({{"GITHUB_ACTIONS", "true"},
                        {"GITHUB_EVENT_NAME", "pull_request"},
                        {"GITHUB_EVENT_PATH", path.string()},
                        {"GITHUB_REPOSITORY", "other/blog"}}),
                   repos.work().string());
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_THAT(r.err,
              HasSubstr("did not drop pr_12: the preview of another repository (acme/shop)"));
  EXPECT_TRUE(server().database_exists("pr_12"));
}

TEST_F(Repositories, ALegacyPreviewIsAdoptedByTheFirstRepositoryThatClaimsIt) {
  // Outside any checkout (and without GITHUB_REPOSITORY): no repository recorded.
  ASSERT_EQ(
      run_cli({"spawn", "--pr", "77"}, env(), std::filesystem::temp_directory_path().string()).code,
      0);
  EXPECT_TRUE(find("pr_77")["repository"].is_null());
  auto shop = ci("acme/shop", 77);
  ASSERT_EQ(shop.code, 0) << shop.all();
  EXPECT_THAT(shop.err, HasSubstr("pr_77 had no repository recorded"));
  EXPECT_THAT(shop.err, HasSubstr("adopted into acme/shop"));
  EXPECT_EQ(find("pr_77")["repository"], "acme/shop");
  auto again = ci("acme/shop", 77);
  ASSERT_EQ(again.code, 0) << again.all();
  EXPECT_THAT(again.err, Not(HasSubstr("adopted")));
  EXPECT_EQ(ci("other/blog", 77).code, 6);
}

TEST_F(Repositories, BadNameTemplatesAreUsageErrors) {
  for (const char* bad : {"preview", "pr_{branch}_{pr}", "PR_{pr}"}) {
    auto r = ci("acme/shop", 5, {"--name-template", bad});
    EXPECT_EQ(r.code, 2) << bad << r.all();
    EXPECT_THAT(r.err, HasSubstr("--name-template")) << bad;
  }
  auto list = run_cli({"list", "--json"}, env());
  EXPECT_THAT(list.out, Not(HasSubstr("\"pr_5\"")));
}
