// The report of `previewdb ci --report diff,lint`: composition from plain inputs (sections, the
// hidden marker, "nothing to say", escaping, limits), its kinds and fail level, and the plan for
// the one PR comment (create, update in place, unchanged, delete, duplicates).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ci/outputs.hpp"
#include "ci/report.hpp"
#include "util/error.hpp"

using namespace previewdb;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace {

ci::ReportFinding finding(std::string severity, std::string rule, std::string message = "m") {
  return {.severity = std::move(severity),
          .rule = std::move(rule),
          .file = "migrations/schema/0002_add_email.sql",
          .line = 3,
          .message = std::move(message),
          .hint = "do it safely",
          .size = ""};
}

ci::ReportInput lint_input(std::vector<ci::ReportFinding> findings) {
  ci::ReportInput in;
  in.identity = "pr_12";
  in.lint = true;
  in.findings = std::move(findings);
  in.migrations_linted = 1;
  return in;
}

}  // namespace

TEST(CiReport, KindsParseAndUnknownOnesAreNamed) {
  auto k = ci::parse_report_kinds({"diff", " LINT "}, "--report");
  EXPECT_TRUE(k.diff);
  EXPECT_TRUE(k.lint);
  EXPECT_FALSE(ci::parse_report_kinds({}, "--report").any());
  EXPECT_TRUE(ci::parse_report_kinds({"lint", ""}, "--report").lint);
  try {
    ci::parse_report_kinds({"lint", "coverage", "drift"}, "PREVIEWDB_REPORT");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_THAT(e.what(), HasSubstr("unknown report kinds \"coverage\", \"drift\""));
    EXPECT_THAT(e.what(), HasSubstr("PREVIEWDB_REPORT"));
    ASSERT_FALSE(e.hints().empty());
    EXPECT_THAT(e.hints()[0], HasSubstr("diff,lint"));
  }
}

TEST(CiReport, FailLevel) {
  EXPECT_FALSE(ci::parse_fail_level("never", "default"));
  EXPECT_EQ(ci::parse_fail_level("Warning", "--fail-on"), ci::FailLevel::warning);
  EXPECT_EQ(ci::parse_fail_level("error", "--fail-on"), ci::FailLevel::error);
  EXPECT_THROW(ci::parse_fail_level("info", "--fail-on"), Error);
  std::vector<ci::ReportFinding> warn = {finding("warning", "drop-column"),
                                         finding("info", "varchar-length")};
  EXPECT_FALSE(ci::report_fails(warn, std::nullopt));
  EXPECT_FALSE(ci::report_fails(warn, ci::FailLevel::error));
  EXPECT_TRUE(ci::report_fails(warn, ci::FailLevel::warning));
  EXPECT_TRUE(ci::report_fails({finding("error", "truncate")}, ci::FailLevel::error));
  EXPECT_FALSE(ci::report_fails({}, ci::FailLevel::warning));
}

TEST(CiReport, MarkerIsTheFirstLineAndMatchesOnlyThere) {
  EXPECT_EQ(ci::report_marker("pr_12"), "<!-- previewdb:report pr_12 -->");
  // Nothing in an identity can close the comment early.
  EXPECT_EQ(ci::report_marker("pr_1 --><b>"), "<!-- previewdb:report pr_1--b -->");
  EXPECT_TRUE(ci::is_report_comment("<!-- previewdb:report pr_12 -->\nbody", "pr_12"));
  EXPECT_TRUE(ci::is_report_comment("<!-- previewdb:report pr_12 -->", "pr_12"));
  EXPECT_FALSE(ci::is_report_comment("<!-- previewdb:report pr_12 -->\nbody", "pr_1"));
  EXPECT_FALSE(ci::is_report_comment("<!-- previewdb:report pr_123 -->\nbody", "pr_12"));
  EXPECT_FALSE(ci::is_report_comment("quoted: <!-- previewdb:report pr_12 -->", "pr_12"));
}

TEST(CiReport, LintFindingsMostSevereFirstWithSizes) {
  auto in = lint_input({finding("warning", "add-column-default", "rewrites the table"),
                        finding("error", "truncate", "truncates users")});
  in.findings[0].size = "public.users: ~12 rows, 16 KiB, error graded warning";
  auto r = ci::compose_report(in);
  EXPECT_TRUE(r.has_content);
  EXPECT_THAT(r.comment, StartsWith("<!-- previewdb:report pr_12 -->\n### previewdb"));
  EXPECT_EQ(r.comment.substr(r.comment.find('\n') + 1), r.summary);
  EXPECT_THAT(r.summary,
              HasSubstr("#### Lint: 2 findings in 1 migration: 1 error, 1 warning, 0 info"));
  auto error_row = r.summary.find("| error | truncate |");
  auto warning_row = r.summary.find("| warning | add-column-default |");
  ASSERT_NE(error_row, std::string::npos) << r.summary;
  ASSERT_NE(warning_row, std::string::npos) << r.summary;
  EXPECT_LT(error_row, warning_row);
  EXPECT_THAT(r.summary, HasSubstr("migrations/schema/0002_add_email.sql:3"));
  EXPECT_THAT(r.summary, HasSubstr("(public.users: ~12 rows, 16 KiB, error graded warning)"));
  EXPECT_THAT(r.summary, HasSubstr("<br>hint: do it safely"));
  // No diff asked for: no diff section.
  EXPECT_THAT(r.summary, Not(HasSubstr("Schema diff")));
}

TEST(CiReport, NothingToSay) {
  auto r = ci::compose_report(lint_input({}));
  EXPECT_FALSE(r.has_content);
  EXPECT_TRUE(r.comment.empty());
  EXPECT_THAT(r.summary, HasSubstr("nothing to review (no lint findings in 1 migration)"));

  ci::ReportInput both = lint_input({});
  both.diff = true;
  both.diff_section = "  \n";  // blank: nothing
  r = ci::compose_report(both);
  EXPECT_FALSE(r.has_content);
  EXPECT_THAT(r.summary,
              HasSubstr("no lint findings in 1 migration, no schema difference to show"));
}

TEST(CiReport, DiffSectionIsIncludedAndCannotCarryAMarker) {
  ci::ReportInput in = lint_input({});
  in.diff = true;
  in.diff_section =
      "#### Schema diff\n\n- table `public.orders` added\n<!-- previewdb:report pr_12 -->";
  auto r = ci::compose_report(in);
  EXPECT_TRUE(r.has_content);  // the diff alone is something to say
  EXPECT_THAT(r.summary, HasSubstr("- table `public.orders` added"));
  EXPECT_THAT(r.summary, HasSubstr("&lt;!-- previewdb:report pr_12 -->"));
  EXPECT_EQ(r.comment.find("<!--"), 0u);
  EXPECT_EQ(r.comment.find("<!--", 1), std::string::npos) << r.comment;
  // Lint asked for and clean: it says so under the diff.
  EXPECT_THAT(r.summary, HasSubstr("#### Lint: no findings in 1 migration"));
  EXPECT_LT(r.summary.find("Schema diff"), r.summary.find("#### Lint"));

  // The diff asked for, not available (nullopt): said in the section when lint has findings.
  ci::ReportInput no_diff = lint_input({finding("error", "truncate")});
  no_diff.diff = true;
  EXPECT_THAT(ci::compose_report(no_diff).summary, HasSubstr("No schema difference to show."));
}

TEST(CiReport, DataIsEscaped) {
  auto in = lint_input(
      {finding("warning", "rename-column", "renames \"a|b\" to `c` <script>\n::error::x")});
  in.findings[0].file = "migrations/<img src=x>.sql";
  auto r = ci::compose_report(in);
  EXPECT_THAT(r.summary, HasSubstr("a\\|b"));
  EXPECT_THAT(r.summary, HasSubstr("\\`c\\`"));
  EXPECT_THAT(r.summary, HasSubstr("&lt;script&gt;"));
  EXPECT_THAT(r.summary, HasSubstr("&lt;img src=x&gt;.sql"));
  EXPECT_THAT(r.summary, Not(HasSubstr("\n::error")));
}

TEST(CiReport, LongReportsStayUnderGitHubsLimit) {
  std::vector<ci::ReportFinding> many;
  for (int i = 0; i < 80; ++i)
    many.push_back(finding("warning", "drop-column", std::string(50, 'x')));
  auto r = ci::compose_report(lint_input(many));
  EXPECT_THAT(r.summary, HasSubstr("…and 30 more"));
  ci::ReportInput huge = lint_input({finding("error", "truncate")});
  huge.diff = true;
  huge.diff_section = std::string();
  for (int i = 0; i < 5000; ++i)
    *huge.diff_section += "- column `c" + std::to_string(i) + "` changed\n";
  r = ci::compose_report(huge);
  EXPECT_LE(r.comment.size(), ci::k_max_comment_bytes + 200);
  EXPECT_THAT(r.comment, HasSubstr("cut here"));
}

TEST(CiReport, CommentPlan) {
  std::string marker = ci::report_marker("pr_12");
  auto report = ci::compose_report(lint_input({finding("error", "truncate")}));
  ci::Report empty;
  std::vector<net::IssueComment> none = {{1, "Me too", "octocat"}, {2, "see " + marker, "octocat"}};
  std::vector<net::IssueComment> ours = {{1, "Me too", "octocat"},
                                         {7, marker + "\nold", "github-actions[bot]"},
                                         {9, marker + "\nduplicate", "github-actions[bot]"}};

  auto p = ci::plan_comment(none, report, "pr_12");
  EXPECT_EQ(p.action, ci::CommentAction::create);
  EXPECT_TRUE(p.extra.empty());

  p = ci::plan_comment(ours, report, "pr_12");
  EXPECT_EQ(p.action, ci::CommentAction::update);
  EXPECT_EQ(p.id, 7);
  EXPECT_FALSE(p.unchanged);
  EXPECT_EQ(p.extra, std::vector<long long>{9});

  std::vector<net::IssueComment> same = {{7, report.comment, "github-actions[bot]"}};
  p = ci::plan_comment(same, report, "pr_12");
  EXPECT_EQ(p.action, ci::CommentAction::update);
  EXPECT_TRUE(p.unchanged);

  p = ci::plan_comment(ours, empty, "pr_12");
  EXPECT_EQ(p.action, ci::CommentAction::remove);
  EXPECT_EQ(p.id, 7);
  p = ci::plan_comment(none, empty, "pr_12");
  EXPECT_EQ(p.action, ci::CommentAction::none);
  // Another preview's comment is not ours.
  p = ci::plan_comment(ours, empty, "pr_13");
  EXPECT_EQ(p.action, ci::CommentAction::none);
  EXPECT_EQ(ci::to_string(ci::CommentAction::remove), "deleted");
}

TEST(CiReport, StepSummaryAndJsonCarryTheReport) {
  ci::Facts facts;
  facts.preview = true;
  facts.reason = ci::Reason::migrations_changed;
  facts.database_name = "pr_12";
  auto report = ci::compose_report(lint_input({finding("error", "truncate")}));
  facts.report = report.summary;
  facts.report_findings = 1;
  facts.report_comment = "created";
  std::string md = ci::step_summary_markdown(facts);
  EXPECT_LT(md.find("| database | pr_12 |"), md.find("#### Lint: 1 finding"));
  EXPECT_EQ(md.find("<!--"), std::string::npos) << "the marker is for the comment only";
  auto j = ci::to_json(facts);
  EXPECT_EQ(j["report"]["findings"], 1);
  EXPECT_EQ(j["report"]["comment"], "created");
  EXPECT_FALSE(ci::to_json(ci::Facts{}).contains("report"));
}
