#include <gtest/gtest.h>

#include "harness/http_replay.hpp"
#include "net/github.hpp"
#include "util/error.hpp"
#include "util/redact.hpp"

using namespace previewdb;

namespace {

net::GitHubOptions options(const test::ReplayServer& server,
                           std::string repo = "PyGithub/PyGithub") {
  net::GitHubOptions o;
  o.api_url = server.url();
  o.token = "ghp_unit_test_token_0123456789";
  o.repository = std::move(repo);
  o.retry = {.attempts = 3, .initial_backoff = std::chrono::milliseconds(10)};
  return o;
}

std::string error_text(const Error& e) {
  std::string s = e.what();
  for (const auto& h : e.hints()) s += "\nhint: " + h;
  return s;
}

}  // namespace

TEST(NetHttp, NextLink) {
  std::string recorded =
      "<https://api.github.com/repositories/364461870/issues?per_page=3&page=1>; rel=\"prev\", "
      "<https://api.github.com/repositories/364461870/issues?per_page=3&page=3>; rel=\"next\", "
      "<https://api.github.com/repositories/364461870/issues?per_page=3&page=5>; rel=\"last\", "
      "<https://api.github.com/repositories/364461870/issues?per_page=3&page=1>; rel=\"first\"";
  EXPECT_EQ(net::next_link(recorded).value_or(""),
            "https://api.github.com/repositories/364461870/issues?per_page=3&page=3");
  EXPECT_FALSE(
      net::next_link("<https://x/y?page=1>; rel=\"prev\", <https://x/y?page=1>; rel=\"first\""));
  EXPECT_FALSE(net::next_link(""));
  EXPECT_EQ(net::next_link("<https://x/a>; rel=next").value_or(""), "https://x/a");
}

TEST(NetHttp, Origin) {
  EXPECT_EQ(net::origin_of("https://API.github.com/repos/x?y"), "https://api.github.com");
  EXPECT_EQ(net::origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(net::origin_of("https://tok@h.example/x"), "https://h.example");
}

TEST(NetHttp, NetworkErrorIsRetriedThenReported) {
  int port;
  {
    test::ReplayServer closed({});
    port = std::stoi(closed.url().substr(closed.url().rfind(':') + 1));
  }  // nothing listens there any more
  net::HttpRequest req{.url = "http://user:s3cretpw@127.0.0.1:" + std::to_string(port) + "/x"};
  try {
    net::http_get(req, {.attempts = 2, .initial_backoff = std::chrono::milliseconds(1)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::connection);
    std::string msg = e.what();
    EXPECT_NE(msg.find("after 2 tries"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("s3cretpw"), std::string::npos) << msg;
  }
}

TEST(NetGitHub, Labels) {
  test::ReplayServer server(test::ReplayServer::load(test::github_fixture("pr-labels.json")));
  net::GitHubClient gh(options(server));
  EXPECT_EQ(gh.pr_labels(28), (std::vector<std::string>{"Bug", "Project management", "Question"}));
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer ghp_unit_test_token_0123456789");
  EXPECT_EQ(reqs[0].headers["accept"], "application/vnd.github+json");
  EXPECT_EQ(util::scrub("token ghp_unit_test_token_0123456789"), "token ***");
}

TEST(NetGitHub, FilesFollowEveryPage) {
  test::ReplayServer server(
      test::ReplayServer::load(test::github_fixture("pr-files-paginated.json")));
  net::GitHubClient gh(options(server));
  EXPECT_EQ(gh.pr_files(31),
            (std::vector<std::string>{"codegen/templates/GithubObject.py",
                                      "src/github/AuthenticatedUser.py",
                                      "src/github/Authorization.py", "src/github/Branch.py"}));
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].path, "/repositories/3544490/pulls/31/files?per_page=100&page=2");
  EXPECT_EQ(reqs[2].path, "/repositories/3544490/pulls/31/files?per_page=100&page=3");
}

TEST(NetGitHub, PullState) {
  test::ReplayServer server(test::ReplayServer::load(test::github_fixture("pr-state-closed.json")));
  net::GitHubClient gh(options(server));
  auto s = gh.pr_state(31);
  EXPECT_EQ(s.state, "closed");
  EXPECT_FALSE(s.open());
  EXPECT_TRUE(s.merged);
  EXPECT_EQ(s.head_ref, "master");
  EXPECT_EQ(s.base_ref, "topic/RewriteWithGeneratedCode");
}

TEST(NetGitHub, UnauthorizedNamesTheTokenAndIsNotRetried) {
  test::ReplayServer server(test::ReplayServer::load(test::github_fixture("unauthorized.json")));
  net::GitHubClient gh(options(server));
  try {
    gh.pr_labels(28);
    FAIL();
  } catch (const Error& e) {
    std::string text = error_text(e);
    EXPECT_NE(text.find("rejected the token"), std::string::npos) << text;
    EXPECT_NE(text.find("pull request #28 of PyGithub/PyGithub"), std::string::npos) << text;
    EXPECT_NE(text.find("HTTP 401 Bad credentials"), std::string::npos) << text;
    EXPECT_NE(text.find("GITHUB_TOKEN"), std::string::npos) << text;
    EXPECT_EQ(text.find("ghp_unit_test_token"), std::string::npos) << text;
  }
  EXPECT_EQ(server.requests().size(), 1u);  // 4xx: never retried
}

TEST(NetGitHub, NotFoundNamesRepositoryAndPr) {
  test::ReplayServer server(test::ReplayServer::load(test::github_fixture("not-found.json")));
  net::GitHubClient gh(options(server, "jacquev6/Xxx"));
  try {
    gh.pr_files(1);
    FAIL();
  } catch (const Error& e) {
    std::string text = error_text(e);
    EXPECT_NE(text.find("does not know pull request #1 of jacquev6/Xxx (HTTP 404 Not Found)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("GITHUB_REPOSITORY"), std::string::npos) << text;
  }
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(NetGitHub, ServerErrorsAreRetriedThenSucceed) {
  test::ReplayServer server(
      test::ReplayServer::load(test::github_fixture("server-error-then-labels.json")));
  net::GitHubClient gh(options(server));
  EXPECT_EQ(gh.pr_labels(28).size(), 3u);
  EXPECT_EQ(server.requests().size(), 3u);  // 500, 500, 200
}

TEST(NetGitHub, ServerErrorsBeyondTheRetriesFail) {
  test::ReplayServer server(
      test::ReplayServer::load(test::github_fixture("server-error-then-labels.json")));
  auto o = options(server);
  o.retry.attempts = 2;
  net::GitHubClient gh(o);
  try {
    gh.pr_labels(28);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 500 Server Error, after 2 tries"), std::string::npos)
        << e.what();
  }
}

TEST(NetGitHub, NextLinkToAnotherHostIsRefused) {
  test::Exchange page{"GET",
                      "/repos/o/r/pulls/1/files?per_page=100",
                      200,
                      {{"Link", "<https://evil.example/steal?page=2>; rel=\"next\""}},
                      "[{\"filename\":\"a.sql\"}]",
                      1};
  test::ReplayServer server({page});
  net::GitHubClient gh(options(server, "o/r"));
  try {
    gh.pr_files(1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to follow"), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(NetGitHub, BadRepositoryOrUrl) {
  EXPECT_THROW(net::GitHubClient({.repository = "not-a-repo"}), Error);
  EXPECT_THROW(net::GitHubClient({.repository = "o/r/../x"}), Error);
  EXPECT_THROW(net::GitHubClient({.api_url = "file:///etc", .repository = "o/r"}), Error);
}
