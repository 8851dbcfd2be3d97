// Dropping decides under the name lock, skips a database a running build holds, and a
// maintenance statement is bounded, reports while it waits, and dies with a killed previewdb.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "integration/waits/waits_helpers.hpp"
#include "util/files.hpp"

using namespace previewdb;
using namespace previewdb::test::waits;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

class Drop : public ::testing::Test {
 protected:
  void SetUp() override { server().reset(); }
};

// Issue 7 item 5: cleanup --older-than chose pr_8, then a ci run re-created pr_8 before cleanup
// got the name lock. The new pr_8 must survive.
TEST_F(Drop, OlderThanRechecksUnderTheNameLock) {
  make_preview("pr_8", 8, std::chrono::hours(24 * 10));
  // Stand in for the ci run: hold pr_8's name lock while cleanup decides.
  // previewdb's locks live in its maintenance database, the registry's.
  auto ci = server().connect(core::k_registry_database);
  ci.exec("SELECT pg_advisory_lock(hashtextextended($1, 0))", {core::spawn_lock_key("pr_8")});
  test::CliResult cleanup;
  std::thread t([&] { cleanup = run_cli({"cleanup", "--older-than", "7d", "--yes"}, env()); });
  // cleanup has listed the databases and now waits for the name lock.
  EXPECT_TRUE(eventually([] {
    return server()
               .connect()
               .exec("SELECT 1 FROM pg_stat_activity WHERE application_name = 'previewdb'")
               .rows() > 0;
  }));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  make_preview("pr_8", 8, std::chrono::seconds(0));  // re-created just now
  ci.exec("SELECT pg_advisory_unlock(hashtextextended($1, 0))", {core::spawn_lock_key("pr_8")});
  t.join();
  EXPECT_EQ(cleanup.code, 0) << cleanup.err;
  EXPECT_TRUE(server().database_exists("pr_8")) << cleanup.err;
  EXPECT_THAT(cleanup.err, HasSubstr("kept pr_8: it was re-created since it was selected"));
}

// Issue 7 item 6: a database held by a running build (ci -- CMD) is skipped, naming the holder.
TEST_F(Drop, HeldDatabaseIsSkippedAndTheHolderNamed) {
  make_preview("pr_9", 9, std::chrono::hours(24 * 10));
  {
    auto hold = core::hold_database(server().connect(core::k_registry_database), "pr_9",
                                    "previewdb ci -- npm test (pid 4242)", std::chrono::seconds(5));
    auto r = run_cli({"cleanup", "pr_9", "--yes"}, env());
    EXPECT_EQ(r.code, 6) << r.err;
    EXPECT_THAT(r.err, HasSubstr("kept pr_9: in use by a running build"));
    EXPECT_THAT(r.err, HasSubstr("previewdb ci -- npm test (pid 4242)"));
    EXPECT_TRUE(server().database_exists("pr_9"));
    auto daily = run_cli({"cleanup", "--older-than", "7d", "--yes", "--json"}, env());
    EXPECT_EQ(daily.code, 0) << daily.err;
    EXPECT_THAT(daily.out, HasSubstr("in use by a running build"));
    EXPECT_TRUE(server().database_exists("pr_9"));
  }
  // The build ended: now it goes.
  auto r = run_cli({"cleanup", "pr_9", "--yes"}, env());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(server().database_exists("pr_9"));
}

// Issue 7 item 6, end to end: while `ci -- CMD` runs, cleanup skips its preview.
TEST_F(Drop, CiBuildHoldsItsPreviewWhileTheCommandRuns) {
  server().exec("dev", "CREATE TABLE items (id int)");
  ASSERT_EQ(run_cli({"snapshot"}, env()).code, 0);
  util::TempDir repo("previewdb-waits-ci-");
  std::filesystem::create_directories(repo.path() / "migrations" / "schema");
  std::ofstream(repo.path() / "migrations" / "schema" / "1_a.sql") << "CREATE TABLE a (id int);\n";
  test::CliResult build;
  std::thread ci([&] {
    build = run_cli(
        {"ci", "--provider", "generic", "--pr", "31", "--force", "--", "sh", "-c", "sleep 6"},
        env(), repo.path().string());
  });
  EXPECT_TRUE(eventually([] {
    return server()
               .connect()
               .exec(
                   "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'previewdb ci -- "
                   "sh%'")
               .rows() == 1;
  }));
  auto r = run_cli({"cleanup", "pr_31", "--yes"}, env());
  ci.join();
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_THAT(r.err, HasSubstr("kept pr_31: in use by a running build"));
  EXPECT_THAT(r.err, HasSubstr("previewdb ci -- sh (pid "));
  EXPECT_EQ(build.code, 0) << build.err;
  EXPECT_TRUE(server().database_exists("pr_31"));
  auto after = run_cli({"cleanup", "pr_31", "--yes"}, env());
  EXPECT_EQ(after.code, 0) << after.err;
}

// A session that holds a lock on database pr_7 (as a long COMMENT or ALTER would): DROP
// DATABASE pr_7 waits for it.
class Blocker {
 public:
  explicit Blocker(const std::string& db) : m_conn(server().connect()) {
    m_conn.exec("BEGIN");
    m_conn.exec("COMMENT ON DATABASE " + m_conn.quote_ident(db) + " IS NULL");
  }
  ~Blocker() { release(); }
  void release() {
    if (m_open) m_conn.exec("ROLLBACK");
    m_open = false;
  }
  int pid() const { return m_conn.backend_pid(); }

 private:
  db::Connection m_conn;
  bool m_open = true;
};

// Issue 7 item 7: the run's lock timeout bounds a maintenance statement (exit 8), and the wait
// is reported every 10 s with the blocking session.
TEST_F(Drop, MaintenanceStatementReportsWhileWaitingAndTimesOut) {
  make_preview("pr_7", 7, std::chrono::hours(1));
  Blocker blocker("pr_7");
  auto start = std::chrono::steady_clock::now();
  auto r = run_cli({"cleanup", "pr_7", "--yes"}, env({{"PREVIEWDB_LOCK_TIMEOUT", "12s"}}));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.code, 8) << r.err;
  EXPECT_LT(took, std::chrono::seconds(40));
  EXPECT_THAT(r.err, HasSubstr("still waiting after 10s for: DROP DATABASE"));
  EXPECT_THAT(r.err, HasSubstr("blocked by pid " + std::to_string(blocker.pid())));
  EXPECT_THAT(r.err, HasSubstr("(lock timeout) waiting for a lock for: DROP DATABASE"));
  blocker.release();
  EXPECT_TRUE(server().database_exists("pr_7"));
}

// Issue 7 item 7: SIGKILL a previewdb blocked in DROP DATABASE: its backend goes away promptly
// (client_connection_check_interval), never drops the database later, and the next run works.
TEST_F(Drop, KilledPreviewdbStatementStopsOnTheServer) {
  make_preview("pr_7", 7, std::chrono::hours(1));
  Blocker blocker("pr_7");
  int pid = test::start_cli({"cleanup", "pr_7", "--yes"}, env());
  int backend = 0;
  ASSERT_TRUE(eventually([&] { return (backend = previewdb_backend_waiting_for_lock()) != 0; }));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(eventually([&] { return !backend_alive(backend); }, std::chrono::seconds(5)))
      << "the killed previewdb's DROP DATABASE still waits on the server";
  blocker.release();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(server().database_exists("pr_7"));
  auto r = run_cli({"cleanup", "pr_7", "--yes"}, env());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(server().database_exists("pr_7"));
}

}  // namespace
