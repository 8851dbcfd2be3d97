// Bad input and failing migrations: exit codes and the exact messages people act on.
#include <gtest/gtest.h>

#include <filesystem>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;

TEST(MigrateErrors, FailingMigrationNamesFileLineSqlstateAndDetail) {
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int PRIMARY KEY);")
      .file(
          "2_bad.sql",
          "CREATE TABLE b (id int);\nINSERT INTO a VALUES (1);\n\nINSERT INTO a\n  VALUES (1);\n");
  auto db = fresh_db("errors_failing");
  auto r = migrate_cli(db, {"--dir", f.path()}, {{"GITHUB_ACTIONS", "true"}});
  EXPECT_EQ(r.code, 7);
  EXPECT_TRUE(
      contains(r.err, "previewdb: error: migration \"2_bad\" failed at " + f.path() +
                          "/2_bad.sql:4: duplicate key value violates unique constraint "
                          "\"a_pkey\" (SQLSTATE 23505)\n  detail: Key (id)=(1) already exists."))
      << r.err;
  EXPECT_TRUE(contains(r.err,
                       "hint: its transaction was rolled back: nothing of 2_bad was applied "
                       "or recorded; fix the file and run 'previewdb migrate' again"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "::error file=" + f.path() +
                                  "/2_bad.sql,line=4,title=migration 2_bad failed::duplicate key"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "::group::previewdb migrate: 2 pending migration(s)")) << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM _previewdb.schema_migrations"), 1);
}

TEST(MigrateErrors, ErrorPositionInsideAMultiLineStatement) {
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int);\nSELECT id,\n  nope\nFROM a;\n");
  auto r = migrate_cli(fresh_db("errors_position"), {"--dir", f.path()});
  EXPECT_EQ(r.code, 7);
  EXPECT_TRUE(contains(r.err, "/1_a.sql:3: column \"nope\" does not exist (SQLSTATE 42703)"))
      << r.err;
}

TEST(MigrateErrors, SyntaxErrorIsReportedBeforeAnythingIsApplied) {
  Folder f;
  f.file("1_ok.sql", "CREATE TABLE ok (id int);")
      .file("2_typo.sql", "CREATE TABLE a (id int);\n\nCRATE TABLE b (id int);\n");
  auto db = fresh_db("errors_syntax");
  auto r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 7);
  EXPECT_TRUE(contains(r.err, "previewdb: error: migration \"2_typo\" has a syntax error at " +
                                  f.path() + "/2_typo.sql:3: syntax error at or near \"CRATE\""))
      << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'ok'"), 0);
}

TEST(MigrateErrors, BadFolders) {
  auto db = fresh_db("errors_folders");
  Folder empty;
  auto r = migrate_cli(db, {"--dir", empty.path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "previewdb: error: no migrations found in \"" + empty.path() + "\""))
      << r.err;
  r = migrate_cli(db, {"--dir", empty.path() + "/nope"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "migrations folder \"" + empty.path() + "/nope\" does not exist"))
      << r.err;

  Folder f;
  f.file("1_a.sql", "SELECT 1;");
  r = migrate_cli(db, {"--dir", f.path(), "--format", "prisme"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err,
                       "previewdb: error: unknown migration format \"prisme\"\n"
                       "hint: did you mean \"prisma\"?"))
      << r.err;

  Folder dup;
  dup.file("1_a.up.sql", "SELECT 1;").file("01_b.up.sql", "SELECT 1;");
  r = migrate_cli(db, {"--dir", dup.path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "duplicate migration version 1: \"" + dup.path() +
                                  "/01_b.up.sql\" and \"" + dup.path() + "/1_a.up.sql\""))
      << r.err;

  Folder journal;
  journal.file("meta/_journal.json", R"({"entries":[{"idx":0,"when":1,"tag":"0000_lost"}]})");
  r = migrate_cli(db, {"--dir", journal.path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "lists \"0000_lost\" (entry 0) but \"" + journal.path() +
                                  "/0000_lost.sql\" does not exist"))
      << r.err;

  Folder bytes;
  bytes.file("1_a.sql", "SELECT 'caf\xe9';\n");
  r = migrate_cli(db, {"--dir", bytes.path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(
      r.err, "migration \"" + bytes.path() + "/1_a.sql\" is not valid UTF-8 (line 1, byte 12)"))
      << r.err;

  Folder dangling;
  dangling.file("1_a.sql", "SELECT 1;");
  std::filesystem::create_symlink("/nonexistent/file.sql", dangling.path() + "/2_b.sql");
  r = migrate_cli(db, {"--dir", dangling.path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "cannot read migration \"" + dangling.path() + "/2_b.sql\""))
      << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_namespace WHERE nspname = '_previewdb'"), 0);
}

TEST(MigrateErrors, LockTimeoutNamesTheHolder) {
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int);");
  auto db = fresh_db("errors_lock");
  auto holder = server().connect(db);
  holder.exec("SELECT pg_advisory_lock(" + std::to_string(0x707265766d696772LL) + ")");
  auto r = migrate_cli(db, {"--dir", f.path(), "--lock-timeout", "1s"});
  EXPECT_EQ(r.code, 8);
  EXPECT_TRUE(contains(r.err,
                       "previewdb: error: timed out after 1s waiting for the migration lock "
                       "on database \"errors_lock\": held by pid " +
                           std::to_string(holder.backend_pid()) +
                           " (application_name \"previewdb-test\""))
      << r.err;
  EXPECT_TRUE(
      contains(r.err, "previewdb: waiting for the migration lock on database \"errors_lock\""))
      << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'a'"), 0);
}

TEST(MigrateErrors, NonTransactionalFailureIsRecordedAsFailed) {
  Folder f;
  f.file("1_t.sql", "CREATE TABLE t (a int);")
      .file("2_idx.sql", "CREATE TABLE t2 (a int);\nCREATE INDEX CONCURRENTLY i ON nope (a);\n");
  auto db = fresh_db("errors_autocommit");
  auto r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 7);
  EXPECT_TRUE(contains(r.err, "failed at " + f.path() +
                                  "/2_idx.sql:2: relation \"nope\" does not "
                                  "exist (SQLSTATE 42P01)"))
      << r.err;
  EXPECT_TRUE(contains(r.err,
                       "hint: it ran outside a transaction (CREATE INDEX CONCURRENTLY at line 2 "
                       "cannot run inside a transaction): the statements before line 2 were "
                       "applied and it is recorded as failed"))
      << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 't2'"), 1);
  r = cli("status", db, {"--dir", f.path(), "--exit-code"});
  EXPECT_EQ(r.code, 9);
  EXPECT_TRUE(contains(r.out, "failed    2_idx")) << r.out;
  EXPECT_TRUE(contains(r.out, "then run 'previewdb migrate' to retry it")) << r.out;
  EXPECT_TRUE(contains(r.out, "error: relation \"nope\" does not exist")) << r.out;
  // Fixed by hand and in the file: the retry completes.
  f.file("2_idx.sql",
         "CREATE TABLE IF NOT EXISTS t2 (a int);\nCREATE INDEX CONCURRENTLY i ON t2 (a);\n");
  r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "warning: retrying 2_idx, which failed before")) << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM _previewdb.schema_migrations WHERE status = 'applied'"),
            2);
}

TEST(MigrateErrors, StatementAndOverallTimeouts) {
  Folder f;
  f.file("1_slow.sql", "CREATE TABLE s (id int);\nSELECT pg_sleep(30);\n");
  auto db = fresh_db("errors_timeouts");
  auto r = migrate_cli(db, {"--dir", f.path(), "--statement-timeout", "1s"});
  EXPECT_EQ(r.code, 7);
  EXPECT_TRUE(contains(r.err,
                       "/1_slow.sql:2: canceling statement due to statement timeout "
                       "(SQLSTATE 57014)"))
      << r.err;
  r = migrate_cli(db, {"--dir", f.path(), "--timeout", "1"});
  EXPECT_EQ(r.code, 7);
  EXPECT_TRUE(contains(r.err, "previewdb: error: migrate timed out (--timeout) while applying \"" +
                                  f.path() +
                                  "/1_slow.sql\"\nhint: its transaction was rolled back"))
      << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 's'"), 0);
  r = migrate_cli(db, {"--dir", f.path(), "--timeout", "soon"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--timeout")) << r.err;
}
