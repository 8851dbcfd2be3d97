// Issue 8, the gaps found on the merged main: the dry run and the real run resolve the same
// target and preview name; the embedded server's .previewdb/ home is the repository root's from
// a subdirectory; --migrate-command reports an unknown count as "unknown" and a failing command
// as a failed migration (with the failure outputs); `spawn --pr` names and records the preview as
// ci does.
#include <algorithm>

#include "ci_flow.hpp"

using namespace previewdb;
using namespace previewdb::test::ciflow;
using test::Env;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class CiReview : public CiFlow {};

TEST_F(CiReview, DryRunAndRealRunResolveTheSameTargetAndName) {
  prepare_dev();
  Env tmpl = {{"PREVIEWDB_NAME_TEMPLATE", "pr_{repo}_{pr}"}};
  auto plan = github(pr_event(61), {"--dry-run"}, tmpl);
  ASSERT_EQ(plan.r.code, 0) << plan.r.all();
  EXPECT_FALSE(server().database_exists("shop_61")) << "a plan touches nothing";
  auto real = github(pr_event(61), {}, tmpl);
  ASSERT_EQ(real.r.code, 0) << real.r.all();
  auto p = plan.outputs(), r = real.outputs();
  EXPECT_EQ(p["database-name"], "pr_shop_61");
  EXPECT_EQ(r["database-name"], p["database-name"]);
  EXPECT_EQ(r["database-url"], p["database-url"]);
  EXPECT_THAT(r["database-url"], HasSubstr("/pr_shop_61"));
  EXPECT_TRUE(server().database_exists("pr_shop_61"));
  expect_clean(plan);
  expect_clean(real);
}

TEST_F(CiReview, EmbeddedServerHomeIsTheRepositoryRootFromASubdirectory) {
  // No DATABASE_URL: the embedded local server, as on a laptop or a self-hosted runner.
  repos.commit_file("web/package.json", "{}\n", "web app");
  fs::path web = repos.work() / "web";
  Env none = {{"PREVIEWDB_USER", "ci"}};
  auto r = run_cli({"ci", "--provider", "generic", "--pr", "44", "--force", "--json"}, none,
                   web.string());
  // Whatever happened, stop the server this test started.
  auto stop = [&] { run_cli({"local", "stop"}, none, repos.work().string()); };
  if (r.code != 0) stop();
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(fs::exists(repos.work() / ".previewdb")) << "the home is at the repository root";
  EXPECT_FALSE(fs::exists(web / ".previewdb")) << "no second server in the subdirectory";
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["database-name"], "pr_44");
  // The branch's two migrations, from the root's migrations/schema (not web/migrations/schema).
  EXPECT_EQ(j["migrations-applied"], 2) << r.out;
  // The URL names the preview, never the maintenance database, and carries no password.
  std::string url = j["database-url"].get<std::string>();
  EXPECT_THAT(url, HasSubstr("/pr_44"));
  EXPECT_THAT(url, Not(HasSubstr("/postgres")));
  EXPECT_THAT(url, Not(HasSubstr(":***@")));
  // A second run from the root finds the same server and the same preview.
  auto again = run_cli({"ci", "--provider", "generic", "--pr", "44", "--force", "--json"}, none,
                       repos.work().string());
  stop();
  ASSERT_EQ(again.code, 0) << again.all();
  auto j2 = nlohmann::json::parse(again.out);
  EXPECT_EQ(j2["created"], false) << again.out;
  EXPECT_EQ(j2["migrations-applied"], 0);
}

TEST_F(CiReview, MigrateCommandWithAnUnreadableHistorySaysUnknownNotZero) {
  prepare_dev();
  // previewdb's own folder format: the team's command keeps no history previewdb can read.
  auto g = github(pr_event(63), {"--migrate-command", "true"});
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["migrations-applied"], "unknown");
  EXPECT_THAT(g.summary, HasSubstr("| migrations applied | unknown |"));
  auto j = github(pr_event(63), {"--migrate-command", "true", "--json"});
  ASSERT_EQ(j.r.code, 0) << j.r.all();
  EXPECT_TRUE(nlohmann::json::parse(j.r.out)["migrations-applied"].is_null()) << j.r.out;
}

TEST_F(CiReview, FailingMigrateCommandIsAFailedMigrationWithTheOutputs) {
  prepare_dev();
  auto g = github(pr_event(64), {"--migrate-command", "echo boom >&2; exit 3"});
  EXPECT_EQ(g.r.code, 7) << g.r.all();
  auto o = g.outputs();
  EXPECT_EQ(o["preview"], "true");
  EXPECT_EQ(o["database-name"], "pr_64");
  EXPECT_EQ(o["exit-code"], "7");
  EXPECT_THAT(o["error"], HasSubstr("exit status 3"));
  EXPECT_THAT(g.summary, HasSubstr("The run failed"));
  EXPECT_THAT(g.r.err, HasSubstr("hint: fix the migration in the branch and push"));
  expect_clean(g);
}

TEST_F(CiReview, SpawnPrNamesAndRecordsThePreviewAsCiDoes) {
  prepare_dev();
  Env shop = {{"GITHUB_REPOSITORY", "octo-org/shop"},
              {"PREVIEWDB_NAME_TEMPLATE", "pr_{repo}_{pr}"},
              {"PREVIEWDB_USER", "alice"}};
  auto made = cli({"ci", "--provider", "generic", "--pr", "65", "--force"}, shop);
  ASSERT_EQ(made.code, 0) << made.all();
  EXPECT_THAT(made.out, HasSubstr("database-name=pr_shop_65"));
  // A person's spawn of the same pull request gets ci's preview, not a second pr_65.
  auto mine = cli({"spawn", "--pr", "65", "--reuse", "--json"}, shop);
  ASSERT_EQ(mine.code, 0) << mine.all();
  EXPECT_EQ(nlohmann::json::parse(mine.out)["name"], "pr_shop_65");
  EXPECT_EQ(nlohmann::json::parse(mine.out)["created"], false);
  EXPECT_FALSE(server().database_exists("pr_65"));
  // Another repository's pull request of the same number is never reused by spawn either.
  auto other = cli({"spawn", "--pr", "65", "--reuse", "--name-template", "pr_shop_{pr}"},
                   {{"GITHUB_REPOSITORY", "other/shop"}, {"PREVIEWDB_USER", "alice"}});
  EXPECT_EQ(other.code, 6) << other.all();
  EXPECT_THAT(other.err, HasSubstr("octo-org/shop"));
  // Without GITHUB_REPOSITORY, the checkout's origin is the repository (as in ci).
  auto plain = cli({"spawn", "--pr", "66"}, {{"PREVIEWDB_USER", "alice"}});
  ASSERT_EQ(plain.code, 0) << plain.all();
  auto ci_run =
      cli({"ci", "--provider", "generic", "--pr", "66", "--force"}, {{"PREVIEWDB_USER", "alice"}});
  ASSERT_EQ(ci_run.code, 0) << ci_run.all();
  EXPECT_THAT(ci_run.err, Not(HasSubstr("adopted"))) << "spawn recorded the same repository";
  EXPECT_THAT(ci_run.out, HasSubstr("created=false"));
  // A bad template is a usage error naming where it came from; --name wins over the template.
  auto bad = cli({"spawn", "--pr", "68"}, {{"PREVIEWDB_NAME_TEMPLATE", "preview"}});
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_THAT(bad.err, HasSubstr("PREVIEWDB_NAME_TEMPLATE"));
  auto named = cli({"spawn", "--pr", "68", "--name", "pr_68_demo"},
                   {{"PREVIEWDB_NAME_TEMPLATE", "preview"}, {"PREVIEWDB_USER", "alice"}});
  EXPECT_EQ(named.code, 0) << named.all();
}

TEST_F(CiReview, NoPreviewUrlNamesTheDatabaseTheBuildUses) {
  // A DATABASE_URL without a database: libpq connects to the user's name; the output says so
  // (it printed the URL with "***" in place of the password, and no database name, before).
  Env e = {{"DATABASE_URL", "postgresql://app:r8-secret@127.0.0.1:1"}};
  auto r = run_cli({"ci", "--provider", "generic", "--json"}, e, repos.work().string());
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["preview"], false);
  EXPECT_EQ(j["database-name"], "app");
  EXPECT_EQ(j["database-url"], "postgresql://app@127.0.0.1:1/app");
  EXPECT_THAT(r.all(), Not(HasSubstr("r8-secret")));
  EXPECT_THAT(r.all(), Not(HasSubstr("***")));
  // PGDATABASE, as libpq reads it.
  e["PGDATABASE"] = "shop";
  auto pg = run_cli({"ci", "--provider", "generic", "--json"}, e, repos.work().string());
  ASSERT_EQ(pg.code, 0) << pg.all();
  EXPECT_EQ(nlohmann::json::parse(pg.out)["database-url"], "postgresql://app@127.0.0.1:1/shop");
  // The embedded local server: the build works in the source (dev), never in postgres; nothing
  // is started for a run without a preview.
  auto local = run_cli({"ci", "--provider", "generic", "--json"}, {}, repos.work().string());
  ASSERT_EQ(local.code, 0) << local.all();
  EXPECT_EQ(nlohmann::json::parse(local.out)["database-name"], "dev");
  EXPECT_FALSE(fs::exists(repos.work() / ".previewdb"));
}

// Issue 8 §1 on a real Prisma history (../shared: documenso's migrations, as Prisma wrote them,
// in a monorepo's packages/prisma/migrations): the PR's migration sorts before two that main
// merged after the branch was made and the snapshot of dev carries. It is behind, not diverged:
// the PR's one migration is applied out of order and Prisma's table gets one row per migration.
TEST_F(CiReview, PrismaRealHistoryBehindMainAppliesThePrsMigrationOutOfOrder) {
  auto shared = test::shared_dir();
  if (!shared) GTEST_SKIP() << test::k_skip_shared << "../shared/corpora is not here";
  fs::path corpus = *shared / "corpora/prisma-documenso/packages/prisma/migrations";
  std::vector<std::string> all;
  for (const auto& e : fs::directory_iterator(corpus)) {
    if (e.is_directory()) all.push_back(e.path().filename().string());
  }
  std::sort(all.begin(), all.end());
  ASSERT_GE(all.size(), 10u);
  const std::string dir = "packages/prisma/migrations";
  auto add = [&](const std::string& name) {
    repos.commit_file(dir + "/" + name + "/migration.sql",
                      util::read_file(corpus / name / "migration.sql"), name);
  };
  git(repos.work(), {"checkout", "-q", "main"});
  repos.commit_file(dir + "/migration_lock.toml", util::read_file(corpus / "migration_lock.toml"),
                    "prisma lock");
  for (size_t i = 0; i < 7; ++i) add(all[i]);
  repos.push("main");
  git(repos.work(), {"branch", "-f", "feature"});
  git(repos.work(), {"checkout", "-q", "feature"});
  add(all[7]);  // the PR's migration (20230605164015_expire_password_reset_token)
  git(repos.work(), {"push", "-q", "-f", "origin", "feature"});
  git(repos.work(), {"checkout", "-q", "main"});
  add(all[8]);  // merged to main after the branch was made, sorting after the PR's one
  add(all[9]);
  repos.push("main");
  git(repos.work(), {"checkout", "-q", "feature"});
  prepare_dev({"--dir", dir});

  auto g = github(pr_event(67), {"--dir", dir});
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto o = g.outputs();
  EXPECT_EQ(o["reason"], "migrations-changed");
  EXPECT_EQ(o["reset"], "false");
  EXPECT_EQ(o["migrations-applied"], "1");
  EXPECT_EQ(o["behind"], "2");
  EXPECT_EQ(o["behind-migrations"], all[8] + "\n" + all[9]);
  EXPECT_THAT(g.r.err, HasSubstr("out of order"));
  EXPECT_THAT(g.summary, HasSubstr("merge the base branch"));
  EXPECT_EQ(scalar("pr_67",
                   "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL "
                   "AND rolled_back_at IS NULL"),
            "10");
  EXPECT_EQ(scalar("pr_67",
                   "SELECT count(*) FROM information_schema.columns WHERE column_name = "
                   "'expiry' AND table_name = 'PasswordResetToken'"),
            "1");
  // A second push with nothing new is a no-op: no reset, nothing applied.
  auto again = github(pr_event(67), {"--dir", dir});
  ASSERT_EQ(again.r.code, 0) << again.r.all();
  EXPECT_EQ(again.outputs()["reset"], "false");
  EXPECT_EQ(again.outputs()["created"], "false");
  EXPECT_EQ(again.outputs()["migrations-applied"], "0");
  EXPECT_EQ(again.outputs()["behind"], "2");
}

}  // namespace
