// `previewdb hold NAME` (issue 14, the Netlify build plugin's hold from onPreBuild to onEnd): a
// separate process keeps core::hold_database's shared previewdb:use:<NAME> lock until its stdin
// closes or it is terminated; meanwhile cleanup keeps NAME, afterwards it drops it.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "harness/harness.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

class Hold : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev", "CREATE TABLE items(id int primary key);");
    ASSERT_EQ(run_cli({"snapshot"}, env()).code, 0);
    auto r =
        run_cli({"spawn", "--pr", "21"}, env(), std::filesystem::temp_directory_path().string());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  void TearDown() override {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
    }
    if (m_stdin >= 0) ::close(m_stdin);
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static test::Env env() { return {{"DATABASE_URL", server().url("postgres")}}; }

  // Starts `previewdb hold NAME` with its stdin on a pipe this test keeps the writing end of,
  // and waits until the hold's session is there.
  void start_hold(const std::string& name) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    int saved = ::dup(STDIN_FILENO);
    ::dup2(fds[0], STDIN_FILENO);  // the child inherits it as its stdin (dup2 clears CLOEXEC)
    m_pid = test::start_cli({"hold", name}, env());
    ::dup2(saved, STDIN_FILENO);
    ::close(saved);
    ::close(fds[0]);
    m_stdin = fds[1];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto held = server()
                      .connect("postgres")
                      .exec(
                          "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                          "WHERE l.locktype = 'advisory' AND l.mode = 'ShareLock' AND l.granted "
                          "AND a.application_name = $1",
                          {"previewdb hold (pid " + std::to_string(m_pid) + ")"})
                      .get_int(0, 0);
      if (held > 0) return;
      ASSERT_EQ(::waitpid(m_pid, nullptr, WNOHANG), 0) << "previewdb hold exited early";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "previewdb hold did not take the hold within 30 s";
  }
  int wait_exit() {
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    m_pid = -1;
    return status;
  }
  bool exists(const std::string& name) {
    return server()
               .connect("postgres")
               .exec("SELECT count(*) FROM pg_database WHERE datname = $1", {name})
               .get_int(0, 0) == 1;
  }

  int m_pid = -1;
  int m_stdin = -1;
};

TEST_F(Hold, CleanupKeepsAHeldPreviewAndDropsItOnceStdinCloses) {
  start_hold("pr_21");
  auto kept = run_cli({"cleanup", "pr_21", "--yes"}, env());
  EXPECT_EQ(kept.code, 6) << kept.all();
  EXPECT_THAT(kept.err, HasSubstr("kept pr_21"));
  EXPECT_THAT(kept.err, HasSubstr("previewdb hold (pid " + std::to_string(m_pid) + ")"));
  EXPECT_TRUE(exists("pr_21"));

  ::close(m_stdin);  // the build plugin's onEnd
  m_stdin = -1;
  int status = wait_exit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto dropped = run_cli({"cleanup", "pr_21", "--yes"}, env());
  EXPECT_EQ(dropped.code, 0) << dropped.all();
  EXPECT_FALSE(exists("pr_21"));
}

TEST_F(Hold, SigtermReleasesTheHold) {
  start_hold("pr_21");
  EXPECT_EQ(run_cli({"cleanup", "pr_21", "--yes"}, env()).code, 6);
  ::kill(m_pid, SIGTERM);
  wait_exit();
  auto dropped = run_cli({"cleanup", "pr_21", "--yes"}, env());
  EXPECT_EQ(dropped.code, 0) << dropped.all();
  EXPECT_FALSE(exists("pr_21"));
}

TEST_F(Hold, AMissingDatabaseIsNotFoundAndHoldsNothing) {
  auto r = run_cli({"hold", "pr_99"}, env());
  EXPECT_EQ(r.code, 4) << r.all();
  EXPECT_THAT(r.err, HasSubstr("database \"pr_99\" does not exist"));
  EXPECT_EQ(r.out, "");
  auto usage = run_cli({"hold"}, env());
  EXPECT_EQ(usage.code, 2) << usage.all();
  EXPECT_THAT(usage.err, HasSubstr("hold takes one database name"));
}

TEST_F(Hold, PrintsHoldingOnceHeld) {
  // stdin at its end (/dev/null): held, announced, released at once.
  int saved = ::dup(STDIN_FILENO);
  int null_fd = ::open("/dev/null", O_RDONLY);
  ::dup2(null_fd, STDIN_FILENO);
  auto r = run_cli({"hold", "pr_21"}, env());
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  ::close(null_fd);
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(r.out, "holding pr_21\n");
}

}  // namespace
