// --command: the team's own migrator runs under previewdb's lock, pointed at the target.
#include <gtest/gtest.h>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;

TEST(MigrateCommand, RunsUnderTheLockWithTheTargetInItsEnvironment) {
  auto db = fresh_db("command_env");
  auto r = migrate_cli(
      db, {"--command",
           "psql -XAtc \"SELECT current_database() || ' locks=' || (SELECT count(*) FROM "
           "pg_locks WHERE locktype = 'advisory' AND granted)\" && "
           "psql \"$DIRECT_URL\" -XAtc 'SELECT 42' && test \"$DATABASE_URL\" = \"$DIRECT_URL\""});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "command_env locks=1\n42\n")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(MigrateCommand, PropagatesTheExitCode) {
  auto db = fresh_db("command_exit");
  auto r = migrate_cli(db, {"--command", "echo migrating; exit 3"});
  EXPECT_EQ(r.code, 3);
  EXPECT_TRUE(contains(r.err, "migrating\n")) << r.err;
  EXPECT_TRUE(contains(r.err, "previewdb: warning: the migration command exited with status 3"))
      << r.err;
}

TEST(MigrateCommand, DatabaseFlagPicksAnotherDatabaseOnTheSameServer) {
  fresh_db("command_other");
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int);");
  auto r = run_cli({"migrate", "--database-url", server().url_without_password("postgres"),
                    "--database", "command_other", "--dir", f.path()},
                   {{"PGPASSWORD", server().password()}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count("command_other", "SELECT count(*) FROM pg_tables WHERE tablename = 'a'"), 1);
  // DIRECT_URL is preferred over DATABASE_URL for migrations.
  fresh_db("command_direct");
  r = run_cli({"migrate", "--dir", f.path()}, {{"DATABASE_URL", server().url("postgres")},
                                               {"DIRECT_URL", server().url("command_direct")}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count("command_direct", "SELECT count(*) FROM pg_tables WHERE tablename = 'a'"), 1);
}
