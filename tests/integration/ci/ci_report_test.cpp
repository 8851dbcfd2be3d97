// Issue 11, in CI: `previewdb ci --report lint[,diff] --pr-comment --fail-on LEVEL`. Against a real
// server, real git repositories and the replayed GitHub API (tests/fixtures/github-api/
// issue-comments-*.json, GitHub's documented shapes): the step summary's report, and each write
// of the one PR comment with its method, path, marker and body (created, updated in place,
// deleted when there is nothing to say), no API call on the no-op path, --fail-on.
#include <algorithm>

#include "ci_flow.hpp"
#include "harness/http_replay.hpp"

using namespace previewdb;
using namespace previewdb::test::ciflow;
using test::Env;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace {

constexpr const char* k_token = "ghp_report_test_token_0123456789abcdef";
constexpr const char* k_marker = "<!-- previewdb:report pr_12 -->";

class CiReport : public CiFlow {
 protected:
  // A migration with a finding no table size grades down: dropping a column breaks readers.
  void add_drop_column() {
    commit_on("feature", "migrations/schema/0003_drop_name.sql",
              "ALTER TABLE users DROP COLUMN name;\n");
  }
  Env api_env(const test::ReplayServer& api) {
    return {{"GITHUB_TOKEN", k_token}, {"GITHUB_API_URL", api.url()}};
  }
  // The writes (not the reads) the run sent.
  static std::vector<test::RecordedRequest> writes(const test::ReplayServer& api) {
    std::vector<test::RecordedRequest> out;
    for (auto& r : api.requests()) {
      if (r.method != "GET") out.push_back(r);
    }
    return out;
  }
  static std::string comment_body(const test::RecordedRequest& r) {
    return nlohmann::json::parse(r.body).at("body").get<std::string>();
  }
  void expect_no_token(const GhRun& g) {
    EXPECT_THAT(g.r.all() + g.output + g.summary, Not(HasSubstr(k_token)));
  }
};

TEST_F(CiReport, CommentIsCreatedThenUpdatedInPlace) {
  prepare_dev();
  add_drop_column();

  // First run: no comment of previewdb's yet (one by a person): created.
  test::ReplayServer first(
      test::ReplayServer::load(test::github_fixture("issue-comments-create.json")));
  auto g = github(pr_event(12), {"--report", "lint", "--pr-comment"}, api_env(first));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["preview"], "true");
  EXPECT_EQ(g.outputs()["migrations-applied"], "2");
  // The step summary: the run's table, then the report (without the hidden marker).
  EXPECT_THAT(g.summary, HasSubstr("| database | pr_12 |"));
  EXPECT_THAT(g.summary, HasSubstr("#### Lint: "));
  EXPECT_THAT(g.summary,
              HasSubstr("| warning | drop-column | migrations/schema/0003_drop_name.sql:1 |"));
  EXPECT_THAT(g.summary, Not(HasSubstr("<!--")));
  auto w = writes(first);
  ASSERT_EQ(w.size(), 1u) << g.r.all();
  EXPECT_EQ(w[0].method, "POST");
  EXPECT_EQ(w[0].path, "/repos/octo-org/shop/issues/12/comments");
  EXPECT_EQ(w[0].headers["authorization"], std::string("Bearer ") + k_token);
  std::string body = comment_body(w[0]);
  EXPECT_THAT(body, StartsWith(std::string(k_marker) + "\n"));
  EXPECT_THAT(body, HasSubstr("drop-column"));
  EXPECT_THAT(body, HasSubstr("migrations/schema/0003_drop_name.sql:1"));
  // The PR's own migrations only: 0001 is the base branch's.
  EXPECT_THAT(body, Not(HasSubstr("0001_init.sql")));
  EXPECT_EQ(first.requests().front().method, "GET");
  EXPECT_EQ(first.requests().front().path, "/repos/octo-org/shop/issues/12/comments?per_page=100");
  expect_no_token(g);
  expect_clean(g);

  // A later push: the comment (found on the second page by its marker, not the person's comment
  // that quotes it) is updated in place; nothing is created.
  commit_on("feature", "migrations/schema/0004_truncate.sql", "TRUNCATE users;\n");
  test::ReplayServer second(
      test::ReplayServer::load(test::github_fixture("issue-comments-existing.json")));
  g = github(pr_event(12), {"--report", "lint", "--pr-comment", "--json"}, api_env(second));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  w = writes(second);
  ASSERT_EQ(w.size(), 1u) << g.r.all();
  EXPECT_EQ(w[0].method, "PATCH");
  EXPECT_EQ(w[0].path, "/repos/octo-org/shop/issues/comments/1002");
  body = comment_body(w[0]);
  EXPECT_THAT(body, StartsWith(std::string(k_marker) + "\n"));
  EXPECT_THAT(body, HasSubstr("| error | truncate | migrations/schema/0004_truncate.sql:1 |"));
  EXPECT_THAT(body, HasSubstr("drop-column"));
  EXPECT_EQ(second.requests().size(), 3u);  // two pages of comments, one PATCH
  auto j = nlohmann::json::parse(g.r.out);
  EXPECT_EQ(j["report"]["comment"], "updated");
  EXPECT_GE(j["report"]["findings"].get<int>(), 2);  // and lock findings graded info
  expect_no_token(g);
}

TEST_F(CiReport, CommentIsDeletedWhenThereIsNothingToSay) {
  prepare_dev();
  // 0002 adds a nullable column: with the runner's lock_timeout set, lint has nothing to say.
  test::ReplayServer api(
      test::ReplayServer::load(test::github_fixture("issue-comments-existing.json")));
  Env e = api_env(api);
  e["PREVIEWDB_LOCK_WAIT_TIMEOUT"] = "5s";
  e["PREVIEWDB_REPORT"] = "lint";
  e["PREVIEWDB_PR_COMMENT"] = "true";
  auto g = github(pr_event(12), {}, e);
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_THAT(g.summary, HasSubstr("nothing to review (no lint findings in 1 migration)"));
  auto w = writes(api);
  ASSERT_EQ(w.size(), 1u) << g.r.all();
  EXPECT_EQ(w[0].method, "DELETE");
  EXPECT_EQ(w[0].path, "/repos/octo-org/shop/issues/comments/1002");
  EXPECT_TRUE(w[0].body.empty());
  expect_no_token(g);
}

TEST_F(CiReport, NoOpPathCallsTheApiOnlyToRemoveAnEarlierComment) {
  prepare_dev();
  // A branch that changes no migration.
  git(repos.work(), {"checkout", "-q", "-b", "docs", "main"});
  repos.commit_file("docs/notes.md", "notes\n", "docs");
  repos.push("docs");

  // No preview of this PR: nothing to remove, so not one request.
  test::ReplayServer silent({});
  auto g = github(pr_event(12), {"--report", "lint", "--pr-comment"}, api_env(silent));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["reason"], "no-changes");
  EXPECT_TRUE(silent.requests().empty())
      << silent.requests().front().method << " " << silent.requests().front().path;

  // The PR had a migration earlier (its preview and comment exist), then dropped it: the
  // comment goes.
  git(repos.work(), {"checkout", "-q", "feature"});
  test::ReplayServer create(
      test::ReplayServer::load(test::github_fixture("issue-comments-create.json")));
  g = github(pr_event(12), {"--report", "lint", "--pr-comment"}, api_env(create));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  ASSERT_EQ(writes(create).size(), 1u);
  git(repos.work(), {"checkout", "-q", "docs"});
  test::ReplayServer stale(
      test::ReplayServer::load(test::github_fixture("issue-comments-existing.json")));
  g = github(pr_event(12), {"--report", "lint", "--pr-comment", "--json"}, api_env(stale));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(nlohmann::json::parse(g.r.out)["report"]["comment"], "deleted");
  EXPECT_EQ(g.outputs()["reason"], "no-changes");
  auto w = writes(stale);
  ASSERT_EQ(w.size(), 1u) << g.r.all();
  EXPECT_EQ(w[0].method, "DELETE");
  EXPECT_EQ(w[0].path, "/repos/octo-org/shop/issues/comments/1002");
  expect_no_token(g);
}

TEST_F(CiReport, FailOnDecidesTheExitCodeAndTheCommentNeverDoes) {
  prepare_dev();
  add_drop_column();
  // Default: findings never fail the build.
  auto g = github(pr_event(12), {"--report", "lint"});
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_THAT(g.summary, HasSubstr("drop-column"));
  // A warning at --fail-on warning: exit 9, with every output written.
  g = github(pr_event(12), {"--report", "lint", "--fail-on", "warning"});
  EXPECT_EQ(g.r.code, 9) << g.r.all();
  EXPECT_EQ(g.outputs()["preview"], "true");
  EXPECT_THAT(g.summary, HasSubstr("drop-column"));
  EXPECT_THAT(g.r.err, HasSubstr("--fail-on level"));
  // Only warnings: --fail-on error passes (from the environment too).
  g = github(pr_event(12), {"--report", "lint"}, {{"PREVIEWDB_REPORT_FAIL_ON", "error"}});
  EXPECT_EQ(g.r.code, 0) << g.r.all();

  // The API failing (it refuses the token's write) is a warning, never a failed build.
  test::ReplayServer refusing(
      {{"GET", "/repos/octo-org/shop/issues/12/comments?per_page=100", 200, {}, "[]", 1},
       {"POST",
        "/repos/octo-org/shop/issues/12/comments",
        403,
        {},
        "{\"message\":\"Resource not accessible by integration\"}",
        1}});
  g = github(pr_event(12), {"--report", "lint", "--pr-comment"}, api_env(refusing));
  EXPECT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("could not update the pull request comment"));
  EXPECT_THAT(g.r.err, HasSubstr("pull-requests: write"));
  expect_no_token(g);
}

TEST_F(CiReport, BadReportSettingsAreUsageErrors) {
  auto g = github(pr_event(12), {"--report", "lint,coverage,diff"});
  EXPECT_EQ(g.r.code, 2) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("unknown report kind \"coverage\" (from --report)"));
  g = github(pr_event(12), {"--pr-comment"});
  EXPECT_EQ(g.r.code, 2) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("--pr-comment needs a report"));
  g = github(pr_event(12), {"--fail-on", "warning"});
  EXPECT_EQ(g.r.code, 2) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("no lint report is asked for"));
  g = github(pr_event(12), {"--report", "lint", "--fail-on", "sometimes"});
  EXPECT_EQ(g.r.code, 2) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("invalid fail-on \"sometimes\" (from --fail-on)"));
  EXPECT_FALSE(server().database_exists("pr_12")) << "refused before anything was made";
}

TEST_F(CiReport, DiffShowsWhatThePreviewChangedAgainstItsSnapshot) {
  prepare_dev();
  test::ReplayServer silent({});
  auto g = github(pr_event(12), {"--report", "diff"}, api_env(silent));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  // The feature branch adds users.email: the diff between the snapshot and pr_12 shows it.
  EXPECT_THAT(g.summary, HasSubstr("#### Schema diff"));
  EXPECT_THAT(g.summary, HasSubstr("email"));
  EXPECT_THAT(g.summary, Not(HasSubstr("nothing to review")));
  EXPECT_TRUE(silent.requests().empty()) << "no --pr-comment: no API call";
  // The snapshot was read in place and is closed to connections again.
  EXPECT_EQ(scalar("postgres",
                   "SELECT count(*) FROM pg_database WHERE datname LIKE 'snap\\_dev\\_%' "
                   "AND datallowconn"),
            "0");
  // Nobody but its owner could have come in meanwhile: PUBLIC has no CONNECT on it.
  EXPECT_EQ(scalar("postgres",
                   "SELECT count(*) FROM pg_database WHERE datname LIKE 'snap\\_dev\\_%' "
                   "AND has_database_privilege('public', oid, 'CONNECT')"),
            "0");
}

}  // namespace
