// The GitHub client's issue-comment calls against the replayed API (documented response shapes,
// tests/fixtures/github-api/issue-comments-*.json): list with pagination, create, update, delete;
// the method, path and JSON body of each write.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/http_replay.hpp"
#include "net/github.hpp"
#include "util/error.hpp"

using namespace previewdb;
using ::testing::HasSubstr;

namespace {

net::GitHubOptions options(const test::ReplayServer& server) {
  net::GitHubOptions o;
  o.api_url = server.url();
  o.token = "ghp_comment_test_token_0123456789";
  o.repository = "octo-org/shop";
  o.retry = {.attempts = 3, .initial_backoff = std::chrono::milliseconds(10)};
  return o;
}

}  // namespace

TEST(NetGitHubComments, ListFollowsEveryPage) {
  test::ReplayServer server(
      test::ReplayServer::load(test::github_fixture("issue-comments-existing.json")));
  net::GitHubClient gh(options(server));
  auto comments = gh.pr_comments(12);
  ASSERT_EQ(comments.size(), 3u);
  EXPECT_EQ(comments[0].id, 1);
  EXPECT_EQ(comments[0].body, "Me too");
  EXPECT_EQ(comments[0].user, "octocat");
  EXPECT_EQ(comments[2].id, 1002);
  EXPECT_EQ(comments[2].user, "github-actions[bot]");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].path, "/repos/octo-org/shop/issues/12/comments?per_page=100");
  EXPECT_EQ(reqs[1].path, "/repositories/1296269/issues/12/comments?per_page=100&page=2");
}

TEST(NetGitHubComments, CreateUpdateDeleteSendMethodPathAndBody) {
  auto exchanges = test::ReplayServer::load(test::github_fixture("issue-comments-create.json"));
  auto existing = test::ReplayServer::load(test::github_fixture("issue-comments-existing.json"));
  exchanges.insert(exchanges.end(), existing.begin(), existing.end());
  // A second DELETE finds it gone: GitHub's documented 404.
  exchanges.push_back({"DELETE",
                       "/repos/octo-org/shop/issues/comments/1002",
                       404,
                       {},
                       "{\"message\":\"Not Found\",\"documentation_url\":\"https://"
                       "docs.github.com/rest/issues/comments#delete-an-issue-comment\"}",
                       1});
  test::ReplayServer server(exchanges);
  net::GitHubClient gh(options(server));

  std::string body = "<!-- previewdb:report pr_12 -->\n### report \"quoted\" ✓\n";
  auto made = gh.create_comment(12, body);
  EXPECT_EQ(made.id, 1001);
  auto updated = gh.update_comment(1002, body, 12);
  EXPECT_EQ(updated.id, 1002);
  EXPECT_TRUE(gh.delete_comment(1002, 12));
  EXPECT_FALSE(gh.delete_comment(1002, 12));  // already gone: not an error

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].path, "/repos/octo-org/shop/issues/12/comments");
  EXPECT_EQ(nlohmann::json::parse(reqs[0].body), nlohmann::json({{"body", body}}));
  EXPECT_EQ(reqs[0].headers["content-type"], "application/json");
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer ghp_comment_test_token_0123456789");
  EXPECT_EQ(reqs[1].method, "PATCH");
  EXPECT_EQ(reqs[1].path, "/repos/octo-org/shop/issues/comments/1002");
  EXPECT_EQ(nlohmann::json::parse(reqs[1].body), nlohmann::json({{"body", body}}));
  EXPECT_EQ(reqs[2].method, "DELETE");
  EXPECT_EQ(reqs[2].path, "/repos/octo-org/shop/issues/comments/1002");
  EXPECT_TRUE(reqs[2].body.empty());
}

TEST(NetGitHubComments, APostIsNeverRetried) {
  // A 502 after a POST may hide a comment that was made: trying again could post it twice.
  test::ReplayServer server({{"POST",
                              "/repos/octo-org/shop/issues/12/comments",
                              502,
                              {},
                              "{\"message\":\"Bad Gateway\"}",
                              3}});
  net::GitHubClient gh(options(server));
  try {
    gh.create_comment(12, "x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("failed to write a comment of pull request #12 of octo-org/shop"));
    EXPECT_THAT(e.what(), HasSubstr("after 1 try"));
  }
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(NetGitHubComments, AReadOnlyTokenIsExplained) {
  test::ReplayServer server({{"PATCH",
                              "/repos/octo-org/shop/issues/comments/5",
                              403,
                              {},
                              "{\"message\":\"Resource not accessible by integration\"}",
                              1}});
  net::GitHubClient gh(options(server));
  try {
    gh.update_comment(5, "x", 12);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("refused to write comment 5 of pull request #12"));
    EXPECT_THAT(e.what(), HasSubstr("Resource not accessible by integration"));
    ASSERT_FALSE(e.hints().empty());
    EXPECT_THAT(e.hints()[0], HasSubstr("pull-requests: write"));
    EXPECT_THAT(std::string(e.what()), ::testing::Not(HasSubstr("ghp_comment_test_token")));
  }
}
