// One migration run per database: concurrent runs apply every migration exactly once, and a run
// killed mid-migration leaves nothing partial behind and no lock held.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;
using namespace std::chrono_literals;

namespace {

int wait_exit(int pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Polls a condition; generous bounds, because tests never fail on time.
bool eventually(const std::function<bool()>& condition, std::chrono::seconds limit = 120s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

void write_counted_migrations(Folder& f, int n) {
  f.file("000_counter.sql", "CREATE TABLE applied (id text);");
  for (int i = 1; i <= n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "%03d_m.sql", i);
    f.file(name, "CREATE TABLE t" + std::to_string(i) +
                     " (id int);\nINSERT INTO applied VALUES ('" + std::to_string(i) +
                     "');\nSELECT pg_sleep(0.01);\n");
  }
}

void check_concurrent_runs(const std::string& db, const std::vector<std::string>& extra) {
  Folder f;
  write_counted_migrations(f, 20);
  // Threads running the CLI (not bare forks): a run that fails shows its stderr.
  std::vector<CliResult> results(8);
  std::vector<std::thread> runs;
  for (size_t i = 0; i < results.size(); ++i) {
    std::vector<std::string> args = {"migrate", "--database-url", server().url_without_password(db),
                                     "--dir", f.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    runs.emplace_back([&, i, args] {
      results[i] = run_cli(args, {{"PGPASSWORD", server().password()}});
    });
  }
  for (auto& t : runs) t.join();
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].code, 0) << "run " << i << ":\n" << results[i].err;
  }
  EXPECT_EQ(count(db, "SELECT count(*) FROM applied"), 20);
  EXPECT_EQ(count(db, "SELECT count(DISTINCT id) FROM applied"), 20);
  EXPECT_EQ(count(db, "SELECT count(*) FROM _previewdb.schema_migrations WHERE status = 'applied'"),
            21);
}

}  // namespace

TEST(MigrateConcurrency, EightRunsApplyEachMigrationOnce) {
  check_concurrent_runs(fresh_db("conc_advisory"), {});
}

TEST(MigrateConcurrency, EightRunsWithTheTableLease) {
  auto db = fresh_db("conc_table");
  check_concurrent_runs(db, {"--lock-mode", "table"});
  EXPECT_EQ(count(db, "SELECT count(*) FROM _previewdb.migration_lock"), 0) << "released";
}

TEST(MigrateConcurrency, KilledRunLeavesNothingPartialAndReleasesTheLock) {
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int);")
      .file("2_slow.sql",
            "CREATE TABLE slow (id int);\n"
            "SELECT pg_sleep(CASE WHEN current_setting('test.sleep', true) = 'on' THEN 600 ELSE 0 "
            "END);\n")
      .file("3_c.sql", "CREATE TABLE c (id int);");
  auto db = fresh_db("conc_kill");
  int pid =
      start_cli({"migrate", "--database-url", server().url_without_password(db), "--dir", f.path()},
                {{"PGOPTIONS", "-c test.sleep=on"}, {"PGPASSWORD", server().password()}});
  auto busy = [&] {
    return count(db,
                 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'previewdb' "
                 "AND query LIKE '%pg_sleep%' AND state = 'active'") == 1;
  };
  ASSERT_TRUE(eventually(busy)) << "the slow migration never started";
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);
  // The server notices the dead client (client_connection_check_interval) and rolls back.
  EXPECT_TRUE(eventually([&] {
    return count(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == 0;
  })) << "the lock was not released";
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'slow'"), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM _previewdb.schema_migrations"), 1);
  auto r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "applied 2 migrations")) << r.out;
  EXPECT_EQ(count(db, "SELECT count(*) FROM _previewdb.schema_migrations WHERE status = 'applied'"),
            3);
}

TEST(MigrateConcurrency, TableLeaseOfADeadHolderIsTakenOverOnlyOnceExpired) {
  // What a killed holder leaves in table mode: its lease row, live until it expires (60 s by
  // default). Planted here rather than waited for.
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int);");
  auto db = fresh_db("conc_lease");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path(), "--lock-mode", "table"}).code, 0);
  f.file("2_b.sql", "CREATE TABLE b (id int);");
  auto plant = [&](const std::string& expires) {
    server().exec(db,
                  "INSERT INTO _previewdb.migration_lock VALUES ('migrate', 'dead-token', "
                  "'ci-runner-7:4242', 4242, 'previewdb', now() - interval '5 minutes', " +
                      expires + ") ON CONFLICT (name) DO UPDATE SET expires_at = " + expires);
  };

  plant("now() + interval '1 hour'");
  auto waiting =
      migrate_cli(db, {"--dir", f.path(), "--lock-mode", "table", "--lock-timeout", "2s"});
  EXPECT_EQ(waiting.code, 8) << waiting.err;
  EXPECT_TRUE(contains(waiting.err, "ci-runner-7:4242")) << "names the holder: " << waiting.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0);

  plant("now() - interval '1 second'");
  auto taken = migrate_cli(db, {"--dir", f.path(), "--lock-mode", "table"});
  EXPECT_EQ(taken.code, 0) << taken.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 1);
  EXPECT_EQ(count(db, "SELECT count(*) FROM _previewdb.migration_lock"), 0) << "released";
}
