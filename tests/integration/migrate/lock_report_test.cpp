// Issue 7 item 7 for the migration lock: while it waits, `migrate` says every 10 s what it waits
// for and on whom, in the words every other wait uses (util::WaitReport), in both lock modes.
#include <gtest/gtest.h>

#include <thread>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;

namespace {

TEST(MigrateLockReport, SaysEveryTenSecondsWhoHoldsTheLock) {
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int);");
  // Advisory mode: another session holds previewdb's key.
  auto adv = fresh_db("report_advisory");
  auto holder = server().connect(adv);
  holder.exec("SELECT pg_advisory_lock(" + std::to_string(0x707265766d696772LL) + ")");
  // Table mode: a live lease of another run.
  auto tab = fresh_db("report_table");
  server().exec(tab,
                "CREATE SCHEMA IF NOT EXISTS _previewdb; CREATE TABLE IF NOT EXISTS "
                "_previewdb.migration_lock (name text PRIMARY KEY, holder text NOT NULL, owner "
                "text NOT NULL, pid integer, application_name text, acquired_at timestamptz NOT "
                "NULL, expires_at timestamptz NOT NULL); INSERT INTO _previewdb.migration_lock "
                "VALUES ('migrate', 'other-token', 'ci-runner-7:4242', 4242, 'previewdb', now(), "
                "now() + interval '1 hour')");

  CliResult a, t;
  std::thread ta([&] { a = migrate_cli(adv, {"--dir", f.path(), "--lock-timeout", "12s"}); });
  std::thread tt([&] {
    t = migrate_cli(tab, {"--dir", f.path(), "--lock-mode", "table", "--lock-timeout", "12s"});
  });
  ta.join();
  tt.join();

  EXPECT_EQ(a.code, 8) << a.err;
  EXPECT_TRUE(contains(a.err,
                       "previewdb: waiting for the migration lock on database "
                       "\"report_advisory\" (held by pid " +
                           std::to_string(holder.backend_pid())))
      << a.err;
  EXPECT_TRUE(contains(a.err,
                       "s for the migration lock on "
                       "database \"report_advisory\" (held by pid " +
                           std::to_string(holder.backend_pid())))
      << a.err;

  // The polls back off to 2 s: the second line comes 10-12 s in.
  EXPECT_TRUE(contains(a.err, "previewdb: still waiting after 1")) << a.err;
  EXPECT_EQ(t.code, 8) << t.err;
  EXPECT_TRUE(contains(t.err, "previewdb: still waiting after 1")) << t.err;
  EXPECT_TRUE(contains(t.err,
                       "s for the migration lock on "
                       "database \"report_table\" (held by ci-runner-7:4242"))
      << t.err;
  EXPECT_EQ(count(adv, "SELECT count(*) FROM pg_tables WHERE tablename = 'a'"), 0);
  EXPECT_EQ(count(tab, "SELECT count(*) FROM pg_tables WHERE tablename = 'a'"), 0);
}

}  // namespace
