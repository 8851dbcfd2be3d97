// previewdb lint as users run it: the real binary on files and folders, graded by a real server's
// table sizes, JSON and GitHub annotations, exit codes, --pending and --schema-source with git.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/git_repo.hpp"
#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;

namespace {

CliResult lint_cli(std::vector<std::string> args, const Env& env = {},
                   const std::string& cwd = {}) {
  args.insert(args.begin(), "lint");
  return run_cli(args, env, cwd);
}

const char* k_migration =
    "SET lock_timeout = '5s';\n"
    "CREATE INDEX tiny_a ON tiny (a);\n"
    "\n"
    "CREATE INDEX mid_a ON mid (a);\n"
    "CREATE INDEX gone_a ON gone (a);\n";

}  // namespace

TEST(LintCli, GradesLockFindingsByTheRealTableSize) {
  auto db = fresh_db("lint_grade");
  server().exec(
      db,
      "CREATE TABLE tiny (a int); INSERT INTO tiny SELECT g FROM generate_series(1, 12) g;"
      "CREATE TABLE mid (a int, pad text);"
      "INSERT INTO mid SELECT g, repeat('x', 20) FROM generate_series(1, 20000) g;"
      "ANALYZE tiny; ANALYZE mid;");
  Folder f;
  f.file("m.sql", k_migration);
  auto file = f.path() + "/m.sql";
  auto r = cli("lint", db, {file, "--database", db, "--json"});
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["findings"].size(), 3u) << r.out;
  const auto& tiny = j["findings"][0];
  EXPECT_EQ(tiny["line"], 2);
  EXPECT_EQ(tiny["table"], "public.tiny");
  EXPECT_EQ(tiny["rows"], 12);
  EXPECT_EQ(tiny["severity"], "info");
  EXPECT_EQ(tiny["rule_severity"], "warning");
  EXPECT_GT(tiny["bytes"].get<long long>(), 0);
  const auto& mid = j["findings"][1];
  EXPECT_EQ(mid["line"], 4);
  EXPECT_EQ(mid["rows"], 20000);
  EXPECT_EQ(mid["severity"], "warning");
  // A table the database does not have keeps the rule's severity and no size.
  const auto& gone = j["findings"][2];
  EXPECT_EQ(gone["severity"], "warning");
  EXPECT_TRUE(gone["rows"].is_null());

  auto text = cli("lint", db, {file, "--database", db});
  EXPECT_TRUE(contains(text.out, file +
                                     ":2: info [index-not-concurrent] CREATE INDEX \"tiny_a\" on "
                                     "public.tiny without CONCURRENTLY blocks writes while it "
                                     "builds [public.tiny: ~12 rows, "))
      << text.out;
  EXPECT_TRUE(contains(text.out, ", warning graded info]")) << text.out;
}

TEST(LintCli, ExitCodesFollowFailOn) {
  Folder f;
  f.file("warn.sql", "CREATE TABLE t (a timestamp);\n")
      .file("err.sql", "SET lock_timeout = '1s';\nDELETE FROM t;\n")
      .file("clean.sql", "CREATE TABLE u (id bigint PRIMARY KEY, at timestamptz);\n");
  auto warn = f.path() + "/warn.sql", err = f.path() + "/err.sql", clean = f.path() + "/clean.sql";
  EXPECT_EQ(lint_cli({warn}).code, 0);
  EXPECT_EQ(lint_cli({warn, "--fail-on", "warning"}).code, 9);
  EXPECT_EQ(lint_cli({err}).code, 9);
  EXPECT_EQ(lint_cli({err, "--fail-on", "never"}).code, 0);
  EXPECT_EQ(lint_cli({err}, {{"PREVIEWDB_LINT_FAIL_ON", "never"}}).code, 0);
  auto ok = lint_cli({clean});
  EXPECT_EQ(ok.code, 0);
  EXPECT_EQ(ok.out, "no findings in 1 file\n");

  auto bad = lint_cli({warn, "--fail-on", "sometimes"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(contains(bad.err, "invalid fail-on \"sometimes\" (from --fail-on)")) << bad.err;
  EXPECT_TRUE(contains(bad.err, "hint: use error, warning or never")) << bad.err;
  auto missing = lint_cli({f.path() + "/nope.sql"});
  EXPECT_EQ(missing.code, 2) << missing.all();
  auto dir = lint_cli({f.path()});
  EXPECT_EQ(dir.code, 2);
  EXPECT_TRUE(contains(dir.err, "hint: lint a folder with --dir")) << dir.err;
}

TEST(LintCli, AnnotationsUnderGitHubActions) {
  Folder f;
  f.file("db/1.sql", "SET lock_timeout = '1s';\n\nTRUNCATE audit;\n");
  auto r = lint_cli({"db/1.sql"}, {{"GITHUB_ACTIONS", "true"}}, f.path());
  EXPECT_EQ(r.code, 9);
  EXPECT_TRUE(contains(r.err,
                       "::error file=db/1.sql,line=3,title=previewdb lint%3A truncate::TRUNCATE "
                       "public.audit deletes every row (hint: "))
      << r.err;
  EXPECT_TRUE(contains(r.out, "db/1.sql:3: error [truncate]")) << r.out;
  auto local = lint_cli({"db/1.sql"}, {}, f.path());
  EXPECT_FALSE(contains(local.err, "::error")) << local.err;
}

TEST(LintCli, ADbmateFolderLintsTheUpPartWithTheFilesLines) {
  Folder f;
  f.file("db/migrations/20240101000000_init.sql",
         "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n"
         "-- migrate:down\nDROP TABLE users;\n")
      .file("db/migrations/20240102000000_idx.sql",
            "-- migrate:up\nSET lock_timeout = '1s';\n\nCREATE INDEX users_email ON users "
            "(email);\n\n-- migrate:down\nDROP TABLE users;\n")
      .file("db/migrations/20240103000000_conc.sql",
            "-- migrate:up\nCREATE INDEX CONCURRENTLY users_id2 ON users (id);\n"
            "-- migrate:down\n");
  auto r = lint_cli({"--dir", "db/migrations", "--json"}, {}, f.path());
  ASSERT_EQ(r.code, 9) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["files"], 3);
  ASSERT_EQ(j["findings"].size(), 2u) << r.out;
  // A whole folder is its history: the table of the first migration had data by the second.
  EXPECT_EQ(j["findings"][0]["rule"], "index-not-concurrent");
  EXPECT_EQ(j["findings"][0]["file"], "db/migrations/20240102000000_idx.sql");
  EXPECT_EQ(j["findings"][0]["line"], 4);
  // dbmate wraps a migration in a transaction unless told transaction:false.
  EXPECT_EQ(j["findings"][1]["rule"], "concurrently-in-transaction");
  EXPECT_EQ(j["findings"][1]["line"], 2);
}

TEST(LintCli, PendingLintsWhatTheDatabaseHasNotApplied) {
  auto db = fresh_db("lint_pending");
  Folder f;
  f.file("0001_init.sql", "CREATE TABLE items (id bigint PRIMARY KEY, name text);\n")
      .file("0002_rename.sql", "ALTER TABLE items RENAME COLUMN name TO title;\n");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path(), "--format", "plain"}).code, 0);
  f.file("0003_new.sql",
         "CREATE TABLE tags (id bigint PRIMARY KEY, item bigint);\nCREATE INDEX ON tags (item);\n"
         "CREATE INDEX ON items (title);\n");
  auto r = cli("lint", db, {"--dir", f.path(), "--format", "plain", "--pending", "--json"});
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["files"], 1);
  ASSERT_EQ(j["findings"].size(), 1u) << r.out;
  EXPECT_EQ(j["findings"][0]["rule"], "index-not-concurrent");
  EXPECT_EQ(j["findings"][0]["line"], 3);
  EXPECT_EQ(j["findings"][0]["table"], "public.items");
  EXPECT_EQ(j["findings"][0]["severity"], "info");  // graded: the table is empty

  auto all = lint_cli({"--dir", f.path(), "--format", "plain", "--json"});
  EXPECT_EQ(nlohmann::json::parse(all.out)["files"], 3) << all.all();
}

TEST(LintCli, SchemaSourceChangedWithoutAMigrationFails) {
  GitRepos repos;
  git(repos.work(), {"checkout", "-q", "-b", "schema-only", "main"});
  repos.commit_file("prisma/schema.prisma", "model User { id Int @id }\n", "schema");
  auto r = lint_cli({"--dir", "migrations/schema", "--format", "plain", "--schema-source",
                     "prisma/schema.prisma"},
                    {}, repos.work().string());
  EXPECT_EQ(r.code, 9) << r.all();
  EXPECT_TRUE(contains(r.out,
                       "prisma/schema.prisma:0: error [schema-change-without-migration] "
                       "prisma/schema.prisma changed but no migration was added under "
                       "migrations/schema\n  hint: generate the migration"))
      << r.out;

  repos.commit_file("migrations/schema/0002_user.sql",
                    "CREATE TABLE \"User\" (id bigint PRIMARY KEY);\n", "migration");
  auto ok = lint_cli({"--dir", "migrations/schema", "--format", "plain", "--schema-source",
                      "prisma/schema.prisma"},
                     {}, repos.work().string());
  EXPECT_EQ(ok.code, 0) << ok.all();
  EXPECT_FALSE(contains(ok.out, "schema-change-without-migration")) << ok.out;
}

TEST(LintCli, SharedCorporaLintWithoutErrors) {
  auto shared = shared_dir();
  if (!shared) GTEST_SKIP() << k_skip_shared << "../shared is missing";
  for (const char* dir : {"corpora/prisma-documenso/packages/prisma/migrations",
                          "corpora/drizzle-dokploy/apps/dokploy/drizzle",
                          "corpora/golang-migrate-ente/server/migrations",
                          "corpora/dbmate-ftl/backend/controller/sql/schema"}) {
    auto r = lint_cli({"--dir", (*shared / dir).string(), "--json", "--fail-on", "never"});
    ASSERT_EQ(r.code, 0) << dir << "\n" << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_GT(j["files"].get<int>(), 40) << dir;
    EXPECT_GT(j["findings"].size(), 0u) << dir;
    for (const auto& f : j["findings"]) {
      EXPECT_NE(f["rule"], "syntax-error") << dir << ": " << f.dump();
    }
  }
}

TEST(LintCli, TheRunnersLockWaitTimeoutCountsAsSet) {
  Folder f;
  f.file("m.sql", "ALTER TABLE t ADD COLUMN c text;\n");
  auto without = lint_cli({f.path() + "/m.sql"});
  EXPECT_TRUE(contains(without.out, "[missing-lock-timeout]")) << without.out;
  auto with = lint_cli({f.path() + "/m.sql"}, {{"PREVIEWDB_LOCK_WAIT_TIMEOUT", "5s"}});
  EXPECT_EQ(with.out, "no findings in 1 file\n");
}
