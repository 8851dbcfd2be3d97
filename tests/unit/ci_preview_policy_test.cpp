// The preview policy (src/ci/preview_policy): behind vs diverged, and when a preview is reset.
#include <gtest/gtest.h>

#include "ci/decision.hpp"
#include "ci/preview_policy.hpp"
#include "util/error.hpp"

using namespace previewdb;
using State = ci::MigrationFact::State;

namespace {

ci::MigrationFact fact(std::string id, State st, bool out_of_order = false,
                       std::string checksum = "") {
  return {std::move(id), st, out_of_order, std::move(checksum)};
}

}  // namespace

TEST(CiPreviewPolicy, EntriesNameMigrationsOfEveryLayout) {
  EXPECT_TRUE(ci::entry_is_migration("0003_orders.sql", "0003_orders"));  // plain/dbmate
  EXPECT_TRUE(ci::entry_is_migration("3_orders.up.sql", "3_orders"));     // golang
  EXPECT_TRUE(ci::entry_is_migration("20240101000000_orders", "20240101000000_orders"));  // prisma
  EXPECT_TRUE(ci::entry_is_migration("V3__orders.sql", "V3__orders"));                    // flyway
  EXPECT_FALSE(ci::entry_is_migration("3_orders.down.sql", "3_orders"));
  EXPECT_FALSE(ci::entry_is_migration("0003_orders_v2.sql", "0003_orders"));
}

TEST(CiPreviewPolicy, AppliedMigrationsOfTheBaseBranchMeanBehindNotDiverged) {
  ci::PreviewFacts f;
  f.migrations = {fact("0001_init", State::applied), fact("0004_pr", State::pending),
                  fact("0002_main", State::missing), fact("0003_main", State::missing)};
  f.base_entries = std::vector<std::string>{"0001_init.sql", "0002_main.sql", "0003_main.sql"};
  auto plan = ci::plan_preview(f);
  EXPECT_EQ(plan.step, ci::PreviewStep::migrate);
  EXPECT_EQ(plan.behind, (std::vector<std::string>{"0002_main", "0003_main"}));
  EXPECT_TRUE(plan.divergences.empty());
  ASSERT_FALSE(plan.hints.empty());
  EXPECT_NE(plan.hints[0].find("merge the base branch"), std::string::npos);
}

TEST(CiPreviewPolicy, OutOfOrderIsAppliedNotReset) {
  ci::PreviewFacts f;
  f.migrations = {fact("20240101_a", State::applied), fact("20240201_pr", State::pending, true),
                  fact("20240301_main", State::missing)};
  f.base_entries = std::vector<std::string>{"20240101_a", "20240301_main", "migration_lock.toml"};
  auto plan = ci::plan_preview(f);
  EXPECT_EQ(plan.step, ci::PreviewStep::migrate);
  EXPECT_EQ(plan.out_of_order, std::vector<std::string>{"20240201_pr"});
  EXPECT_EQ(plan.behind, std::vector<std::string>{"20240301_main"});
}

TEST(CiPreviewPolicy, MissingFromBothTreesOrChangedIsDivergence) {
  ci::PreviewFacts f;
  f.migrations = {fact("0001_init", State::changed, false, "abc"),
                  fact("0002_renamed", State::missing)};
  f.base_entries = std::vector<std::string>{"0001_init.sql"};
  auto plan = ci::plan_preview(f);
  EXPECT_EQ(plan.step, ci::PreviewStep::reset);
  ASSERT_EQ(plan.divergences.size(), 2u);
  EXPECT_EQ(plan.divergences[0].id, "0001_init");
  EXPECT_NE(plan.divergences[0].why.find("checksum"), std::string::npos);
  EXPECT_EQ(plan.divergences[1].id, "0002_renamed");
  EXPECT_NE(plan.divergences[1].why.find("neither the branch nor the base branch"),
            std::string::npos);
  EXPECT_NE(plan.message.find("0001_init"), std::string::npos);
  EXPECT_NE(plan.message.find("0002_renamed"), std::string::npos);
}

TEST(CiPreviewPolicy, TheSameCauseNeverResetsTwice) {
  ci::PreviewFacts f;
  f.migrations = {fact("0002_pr", State::changed, false, "sum1")};
  auto first = ci::plan_preview(f);
  EXPECT_EQ(first.step, ci::PreviewStep::reset);
  f.recorded_cause = first.cause;
  EXPECT_EQ(ci::plan_preview(f).step, ci::PreviewStep::refuse);
  // Another edit of the same file is another cause.
  f.migrations = {fact("0002_pr", State::changed, false, "sum2")};
  EXPECT_EQ(ci::plan_preview(f).step, ci::PreviewStep::reset);
  // Freshly cloned and still diverged: the snapshot carries it; a reset cannot help.
  f.recorded_cause.clear();
  f.created = true;
  EXPECT_EQ(ci::plan_preview(f).step, ci::PreviewStep::refuse);
}

TEST(CiPreviewPolicy, FailOnDivergenceRefuses) {
  ci::PreviewFacts f;
  f.migrations = {fact("0001", State::failed)};
  f.fail_on_divergence = true;
  auto plan = ci::plan_preview(f);
  EXPECT_EQ(plan.step, ci::PreviewStep::refuse);
  EXPECT_NE(plan.message.find("0001: failed"), std::string::npos);
}

TEST(CiPreviewPolicy, NothingNewIsAPlainMigrate) {
  ci::PreviewFacts f;
  f.migrations = {fact("0001", State::applied), fact("0002", State::applied)};
  auto plan = ci::plan_preview(f);
  EXPECT_EQ(plan.step, ci::PreviewStep::migrate);
  EXPECT_TRUE(plan.behind.empty());
  EXPECT_TRUE(plan.cause.empty());
}

TEST(CiPreviewPolicy, UnknownBaseHintsAtTheBaseNameFirstThenFullHistory) {
  ci::PreviewFacts f;
  f.migrations = {fact("0002_main", State::missing)};
  f.base_ref = "main";
  try {
    ci::plan_preview(f);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find("\"main\" is not in this clone"), std::string::npos)
        << e.what();
    ASSERT_EQ(e.hints().size(), 2u);
    // A wrong base name (a `master` repository) is ruled out first.
    EXPECT_EQ(e.hints()[0].rfind("pass --base-ref", 0), 0u) << e.hints()[0];
    EXPECT_NE(e.hints()[0].find("if it is not \"main\""), std::string::npos);
    EXPECT_NE(e.hints()[1].find("fetch-depth: 0"), std::string::npos);
  }
}

TEST(CiPreviewPolicy, AMigrationMissingFromTwoHistoryTablesCountsOnce) {
  ci::PreviewFacts f;
  f.migrations = {fact("20240101_a", State::applied), fact("20240201_pr", State::pending),
                  fact("20240301_main", State::missing), fact("20240301_main", State::missing)};
  f.base_entries = std::vector<std::string>{"20240101_a", "20240301_main"};
  auto plan = ci::plan_preview(f);
  EXPECT_EQ(plan.behind, std::vector<std::string>{"20240301_main"});
  EXPECT_EQ(plan.out_of_order, std::vector<std::string>{"20240201_pr"});
}

TEST(CiDecisionBaseBranch, RefreshOnlyWithoutAPullRequest) {
  ci::DecisionInput in;
  in.refresh_source = true;
  in.base_branch = "main";
  auto d = ci::decide(in);
  EXPECT_EQ(d.action, ci::Action::refresh_source);
  EXPECT_EQ(ci::to_string(d.reason), "base-branch");
  in.pr_number = 3;
  in.forced = true;
  EXPECT_EQ(ci::decide(in).action, ci::Action::preview);
}
