// Issue 8 §1: a PR behind its base branch is not a diverged one; divergence resets a preview once
// per cause. Real server, real git repositories, the real binary.
#include "ci_flow.hpp"

#include "harness/http_replay.hpp"

using namespace previewdb;
using namespace previewdb::test::ciflow;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class CiBehind : public CiFlow {};

const char* k_prisma_lock = "provider = \"postgresql\"\n";

}  // namespace

// main moved on by two migrations after the PR branched off, and dev's snapshot has them.
TEST_F(CiBehind, PrTwoMigrationsBehindMainGetsItsOwnMigrationOnTop) {
  commit_on("main", "migrations/schema/0003_orders.sql",
            "CREATE TABLE orders (id bigserial PRIMARY KEY);\n");
  commit_on("main", "migrations/schema/0004_items.sql",
            "CREATE TABLE items (id bigserial PRIMARY KEY);\n");
  prepare_dev();

  auto g = github(pr_event(21));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto o = g.outputs();
  EXPECT_EQ(o["preview"], "true");
  EXPECT_EQ(o["created"], "true");
  EXPECT_EQ(o["reset"], "false");
  EXPECT_EQ(o["migrations-applied"], "1");
  EXPECT_EQ(o["behind"], "2");
  EXPECT_EQ(o["behind-migrations"], "0003_orders\n0004_items");
  EXPECT_THAT(g.summary, HasSubstr("merge the base branch"));
  EXPECT_THAT(g.r.err, HasSubstr("behind the base branch"));
  EXPECT_EQ(scalar("pr_21",
                   "SELECT count(*) FROM information_schema.columns WHERE column_name = "
                   "'email'"),
            "1");

  // Nothing new: a no-op that keeps what reviewers put in the preview.
  server().exec("pr_21", "INSERT INTO users (name) VALUES ('reviewer')");
  auto again = github(pr_event(21), {"--json"});
  ASSERT_EQ(again.r.code, 0) << again.r.all();
  auto j = nlohmann::json::parse(again.r.out);
  EXPECT_EQ(j["reset"], false);
  EXPECT_EQ(j["created"], false);
  EXPECT_EQ(j["migrations-applied"], 0);
  EXPECT_EQ(j["behind"], 2);
  EXPECT_EQ(j["behind_migrations"], nlohmann::json::array({"0003_orders", "0004_items"}));
  EXPECT_EQ(scalar("pr_21", "SELECT count(*) FROM users"), "1");
}

// Prisma: the PR's migration sorts before one already on main (and in the snapshot).
TEST_F(CiBehind, PrismaMigrationSortingBeforeMainsNewestIsAppliedOutOfOrder) {
  commit_on("main", "prisma/migrations/migration_lock.toml", k_prisma_lock);
  commit_on("main", "prisma/migrations/20240101000000_init/migration.sql",
            "CREATE TABLE \"Post\" (id serial PRIMARY KEY);\n");
  git(repos.work(), {"checkout", "-q", "main"});
  git(repos.work(), {"branch", "-f", "feature"});
  git(repos.work(), {"checkout", "-q", "feature"});
  repos.commit_file("prisma/migrations/20240201000000_tags/migration.sql",
                    "CREATE TABLE \"Tag\" (id serial PRIMARY KEY);\n", "tags");
  git(repos.work(), {"push", "-q", "-f", "origin", "feature"});
  commit_on("main", "prisma/migrations/20240301000000_comments/migration.sql",
            "CREATE TABLE \"Comment\" (id serial PRIMARY KEY);\n");
  prepare_dev({"--dir", "prisma/migrations"});

  auto g = github(pr_event(22), {"--dir", "prisma/migrations"});
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto o = g.outputs();
  EXPECT_EQ(o["reason"], "migrations-changed");
  EXPECT_EQ(o["created"], "true");
  EXPECT_EQ(o["migrations-applied"], "1");
  EXPECT_EQ(o["behind-migrations"], "20240301000000_comments");
  EXPECT_THAT(g.r.err, HasSubstr("out of order"));
  // Prisma's table: one row per migration, as `prisma migrate` itself writes them.
  EXPECT_EQ(scalar("pr_22",
                   "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT "
                   "NULL"),
            "3");
  EXPECT_EQ(scalar("pr_22", "SELECT to_regclass('\"Tag\"') IS NOT NULL"), "t");
}

// A rebase edits the PR's own applied migration: reset once, then stable.
TEST_F(CiBehind, RebaseEditingAnAppliedMigrationResetsOnceThenStable) {
  prepare_dev();
  auto first = github(pr_event(23));
  ASSERT_EQ(first.r.code, 0) << first.r.all();
  EXPECT_EQ(first.outputs()["created"], "true");

  repos.commit_file("migrations/schema/0002_add_email.sql",
                    "ALTER TABLE users ADD COLUMN email text NOT NULL DEFAULT '';\n", "rebase");
  auto second = github(pr_event(23));
  ASSERT_EQ(second.r.code, 0) << second.r.all();
  EXPECT_EQ(second.outputs()["reset"], "true");
  EXPECT_EQ(second.outputs()["migrations-applied"], "1");
  EXPECT_THAT(second.r.err, HasSubstr("0002_add_email"));

  server().exec("pr_23", "INSERT INTO users (name) VALUES ('reviewer')");
  auto third = github(pr_event(23));
  ASSERT_EQ(third.r.code, 0) << third.r.all();
  EXPECT_EQ(third.outputs()["reset"], "false");
  EXPECT_EQ(third.outputs()["migrations-applied"], "0");
  EXPECT_EQ(scalar("pr_23", "SELECT count(*) FROM users"), "1");
}

// The PR edits a migration that is already in the snapshot: a reset cannot help, so the preview
// is never re-created for it again (the old code wiped it on every push).
TEST_F(CiBehind, ACauseTheSnapshotCarriesNeverResetsTwice) {
  prepare_dev();
  auto ok = github(pr_event(24));
  ASSERT_EQ(ok.r.code, 0) << ok.r.all();
  std::string oid = scalar("postgres", "SELECT oid FROM pg_database WHERE datname = 'pr_24'");

  repos.commit_file("migrations/schema/0001_init.sql",
                    "CREATE TABLE users (id bigserial PRIMARY KEY, name text);\n", "edit init");
  auto first = github(pr_event(24));
  EXPECT_EQ(first.r.code, 6) << first.r.all();
  EXPECT_EQ(first.outputs()["reset"], "true");  // once: maybe only the preview had it
  EXPECT_THAT(first.r.err, HasSubstr("0001_init"));
  EXPECT_THAT(first.r.err, HasSubstr("checksum"));
  std::string oid_after_reset =
      scalar("postgres", "SELECT oid FROM pg_database WHERE datname = 'pr_24'");
  EXPECT_NE(oid_after_reset, oid);

  auto second = github(pr_event(24));
  EXPECT_EQ(second.r.code, 6) << second.r.all();
  EXPECT_EQ(second.outputs()["reset"], "false");
  EXPECT_EQ(scalar("postgres", "SELECT oid FROM pg_database WHERE datname = 'pr_24'"),
            oid_after_reset);
}

// An applied migration in neither the branch nor the base branch is divergence, named.
TEST_F(CiBehind, MigrationInNeitherTreeIsDivergenceNamed) {
  prepare_dev();
  ASSERT_EQ(github(pr_event(25)).r.code, 0);
  git(repos.work(),
      {"mv", "migrations/schema/0002_add_email.sql", "migrations/schema/0002_email.sql"});
  git(repos.work(), {"commit", "-q", "-m", "rename"});
  auto g = github(pr_event(25), {"--on-divergence", "fail"});
  EXPECT_EQ(g.r.code, 6) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("0002_add_email"));
  EXPECT_THAT(g.r.err, HasSubstr("neither the branch nor the base branch"));
}

// A shallow clone: the base branch's migrations come from the GitHub contents API; without a
// token the run asks for fetch-depth: 0 instead of guessing.
TEST_F(CiBehind, ShallowCloneAsksTheContentsApiForTheBaseBranch) {
  commit_on("main", "migrations/schema/0003_orders.sql",
            "CREATE TABLE orders (id bigserial PRIMARY KEY);\n");
  prepare_dev();
  fs::path shallow = repos.shallow_clone("shallow", "feature");

  auto no_token = github(pr_event(26), {"--force"}, {}, "pull_request", shallow);
  EXPECT_EQ(no_token.r.code, 2) << no_token.r.all();
  EXPECT_THAT(no_token.r.err, HasSubstr("fetch-depth: 0"));

  auto exchanges = test::ReplayServer::load(fs::path(PREVIEWDB_SOURCE_DIR) /
                                            "tests/fixtures/github-api/contents-migrations.json");
  test::ReplayServer api(exchanges);
  auto g = github(pr_event(26), {"--force"},
                  {{"GITHUB_TOKEN", "ghs_test_token_0123456789"}, {"GITHUB_API_URL", api.url()}},
                  "pull_request", shallow);
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["behind-migrations"], "0003_orders");
  ASSERT_FALSE(api.requests().empty());
  EXPECT_EQ(api.requests().back().path, "/repos/octo-org/shop/contents/migrations/schema?ref=main");
  EXPECT_THAT(g.r.all(), Not(HasSubstr("ghs_test_token_0123456789")));
}

// golang-migrate keeps one row (the highest version): a PR's version below main's newest must
// still be applied (not taken as implied by that row), and the row keeps the highest version.
TEST_F(CiBehind, GolangMigrateVersionBelowMainsNewestIsApplied) {
  commit_on("main", "db/1_init.up.sql", "CREATE TABLE accounts (id bigserial PRIMARY KEY);\n");
  commit_on("main", "db/1_init.down.sql", "DROP TABLE accounts;\n");
  git(repos.work(), {"checkout", "-q", "main"});
  git(repos.work(), {"branch", "-f", "feature"});
  git(repos.work(), {"checkout", "-q", "feature"});
  repos.commit_file("db/2_pr.up.sql", "ALTER TABLE accounts ADD COLUMN pr int;\n", "pr");
  repos.commit_file("db/2_pr.down.sql", "ALTER TABLE accounts DROP COLUMN pr;\n", "pr down");
  commit_on("main", "db/3_main.up.sql", "ALTER TABLE accounts ADD COLUMN main int;\n");
  commit_on("main", "db/3_main.down.sql", "ALTER TABLE accounts DROP COLUMN main;\n");
  prepare_dev({"--dir", "db"});

  auto g = github(pr_event(27), {"--dir", "db"});
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["migrations-applied"], "1");
  EXPECT_EQ(g.outputs()["behind-migrations"], "3_main");
  EXPECT_EQ(scalar("pr_27",
                   "SELECT count(*) FROM information_schema.columns WHERE column_name = "
                   "'pr'"),
            "1");
  EXPECT_EQ(scalar("pr_27", "SELECT version::text || dirty::text FROM schema_migrations"),
            "3false");
}

// Zero setup (snapshot::ensure_first_snapshot): the first run on a server takes the snapshot.
TEST_F(CiBehind, FirstRunOnAServerWithoutASnapshotTakesOne) {
  git(repos.work(), {"checkout", "-q", "main"});
  ASSERT_EQ(cli({"migrate", "--database", "dev"}).code, 0);
  git(repos.work(), {"checkout", "-q", "feature"});
  auto g = github(pr_event(28));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("no snapshot of 'dev' yet: taking one"));
  EXPECT_THAT(g.outputs()["snapshot"], HasSubstr("snap_dev_"));
  EXPECT_EQ(g.outputs()["behind"], "0");
  EXPECT_EQ(g.outputs()["migrations-applied"], "1");
}
