// A backup run removes the temporaries (.NAME.partial-PID) of writers that were killed, and only
// those whose process is gone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "harness/harness.hpp"
#include "util/files.hpp"

using namespace previewdb;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

// The pid of a process that has exited and been reaped.
pid_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

TEST(PartialSweep, ABackupRunRemovesTheTemporariesOfKilledWriters) {
  auto& server = test::PgServer::shared();
  server.reset();
  server.exec("dev", "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000000) g");
  util::TempDir tmp;
  fs::path store = tmp.path() / "backups";
  test::Env env = {{"DATABASE_URL", server.url("postgres")}};

  // A backup killed mid-write leaves its temporary behind.
  int pid = test::start_cli({"backup", "dev", "--store", store.string()}, env);
  fs::path left;
  for (int i = 0; i < 400 && left.empty(); ++i) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(store, ec))
      if (e.path().filename().string().find(".partial-") != std::string::npos) left = e.path();
    if (left.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_FALSE(left.empty()) << "the backup finished before it could be killed";
  ASSERT_TRUE(fs::exists(left));

  // Another dead writer's, and a live one's (this test's own pid), planted by hand.
  fs::path dead =
      store / (".bak_dev_20260101_000000.dump.zst.partial-" + std::to_string(dead_pid()));
  fs::path live =
      store / (".bak_dev_20260101_000001.dump.zst.partial-" + std::to_string(::getpid()));
  util::write_file_atomic(dead, "x");
  util::write_file_atomic(live, "x");

  auto r = test::run_cli({"backup", "dev", "--store", store.string()}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(left));
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_THAT(r.err, HasSubstr("left behind by a previewdb that was killed"));
}

}  // namespace
