// Durable commits once per run (issue 15): every migration but the run's last commits without
// waiting for its WAL flush (synchronous_commit off for that transaction only); the last one, or
// a small write after a failure, waits and so makes every earlier commit durable. Each migration
// still commits together with its history rows.
#include <gtest/gtest.h>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;

namespace {

// A migration that records the synchronous_commit its own transaction ran with.
std::string recording(const std::string& table) {
  return "CREATE TABLE " + table + " AS SELECT current_setting('synchronous_commit') AS setting;\n";
}

// The test server runs with synchronous_commit = off (no fsync): the database gets PostgreSQL's
// default back, so that "as the session says" means on.
std::string durable_db(const std::string& name) {
  fresh_db(name);
  auto conn = server().connect();
  conn.exec("ALTER DATABASE " + conn.quote_ident(name) + " SET synchronous_commit = on");
  return name;
}

std::string setting_in(const std::string& db, const std::string& table) {
  auto conn = server().connect(db);
  return conn.exec("SELECT setting FROM " + table).get(0, 0);
}

}  // namespace

TEST(MigrateDurableCommit, OnlyTheLastMigrationOfARunWaitsForTheFlush) {
  auto db = durable_db("durable_last");
  Folder f;
  f.file("1_a.sql", recording("a"));
  f.file("2_b.sql", recording("b"));
  f.file("3_c.sql", recording("c"));
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(setting_in(db, "a"), "off");
  EXPECT_EQ(setting_in(db, "b"), "off");
  // The session's own setting (on by default): this commit flushes the two before it.
  EXPECT_EQ(setting_in(db, "c"), "on");
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM _previewdb.schema_migrations WHERE status = "
                  "'applied'"),
            3);
}

TEST(MigrateDurableCommit, ASingleMigrationCommitsAsTheSessionSays) {
  auto db = durable_db("durable_single");
  Folder f;
  f.file("1_a.sql", recording("a"));
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(setting_in(db, "a"), "on");
}

TEST(MigrateDurableCommit, AFailureKeepsWhatWasAppliedBeforeItWithItsHistory) {
  auto db = durable_db("durable_fail");
  Folder f;
  f.file("1_a.sql", recording("a"));
  f.file("2_b.sql", recording("b"));
  f.file("3_bad.sql", "CREATE TABLE c (id int);\nSELECT * FROM no_such_table;\n");
  f.file("4_d.sql", recording("d"));
  auto r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_TRUE(contains(r.err, "2 migration(s) before it were applied and recorded")) << r.err;
  EXPECT_FALSE(contains(r.err, "could not wait")) << r.err;
  EXPECT_EQ(setting_in(db, "a"), "off");
  EXPECT_EQ(setting_in(db, "b"), "off");
  // Each applied migration has its history row, the failed one has neither its table nor a row.
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM _previewdb.schema_migrations WHERE status = "
                  "'applied'"),
            2);
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename IN ('c', 'd')"), 0);
  // The next run applies the rest, its last commit waiting for the flush.
  f.file("3_bad.sql", "CREATE TABLE c (id int);\n");
  r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(setting_in(db, "d"), "on");
}

TEST(MigrateDurableCommit, DbmateHistoryRowsCommitWithTheirMigration) {
  auto db = durable_db("durable_dbmate");
  Folder f;
  f.file("20240101000001_a.sql",
         "-- migrate:up\n" + recording("a") + "-- migrate:down\nDROP TABLE a;\n");
  f.file("20240101000002_b.sql",
         "-- migrate:up\n" + recording("b") + "-- migrate:down\nDROP TABLE b;\n");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(setting_in(db, "a"), "off");
  EXPECT_EQ(setting_in(db, "b"), "on");
  EXPECT_EQ(count(db, "SELECT count(*) FROM public.schema_migrations"), 2);
  EXPECT_EQ(count(db, "SELECT count(*) FROM _previewdb.schema_migrations"), 2);
}
