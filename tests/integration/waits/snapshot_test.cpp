// Issue 7 item 9 (snapshot --to is all or nothing, its dump private, its children die with it)
// and issue 8 section 6 (a busy source: name the sessions, --wait-idle, --terminate-sessions).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "integration/waits/waits_helpers.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

using namespace previewdb;
using namespace previewdb::test::waits;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

class Snapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev", "CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 100) g");
  }
  static long long count(const std::string& like) {
    return server()
        .connect()
        .exec("SELECT count(*) FROM pg_database WHERE datname LIKE $1", {like})
        .get_int(0, 0);
  }
};

TEST_F(Snapshot, FailedArchiveWriteKeepsNoSnapshot) {
  util::TempDir tmp("previewdb-waits-store-");
  std::ofstream(tmp.path() / "not-a-dir") << "x";
  std::string store = "file://" + (tmp.path() / "not-a-dir" / "store").string();
  auto r = run_cli({"snapshot", "--to", store}, env({{"TMPDIR", tmp.path().string()}}));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot create snapshot store file://"));
  EXPECT_EQ(count("snap_%"), 0) << "a snapshot without its archive was kept";
  EXPECT_EQ(count("previewdb_tmp_%"), 0);
  for (const auto& e : fs::recursive_directory_iterator(tmp.path())) {
    EXPECT_THAT(e.path().string(), Not(HasSubstr(".partial")));
    EXPECT_THAT(e.path().filename().string(), Not(HasSubstr("previewdb-dump-")));
  }
  // And the next run, with a good store, works and leaves nothing in TMPDIR.
  auto ok = run_cli({"snapshot", "--to", "file://" + (tmp.path() / "store").string()},
                    env({{"TMPDIR", tmp.path().string()}}));
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(count("snap_%"), 1);
  EXPECT_TRUE(fs::exists(tmp.path() / "store" / (util::trim(ok.out) + ".dump")));
  for (const auto& e : fs::directory_iterator(tmp.path())) {
    EXPECT_THAT(e.path().filename().string(), Not(HasSubstr("previewdb-dump-")));
  }
}

TEST_F(Snapshot, LeftoverDumpsOfKilledRunsAreRemovedAndNewOnesArePrivate) {
  util::TempDir tmp("previewdb-waits-tmp-");
  pid_t dead = ::fork();
  if (dead == 0) _exit(0);
  ::waitpid(dead, nullptr, 0);
  fs::path leftover = tmp.path() / ("previewdb-dump-" + std::to_string(dead) + "-abcdef");
  fs::create_directories(leftover);
  std::ofstream(leftover / "previewdb_tmp_x.dump") << "a copy of dev";
  auto r = run_cli({"snapshot", "--to", "file://" + (tmp.path() / "store").string()},
                   env({{"TMPDIR", tmp.path().string()}}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(leftover));

  auto dir = util::private_temp_dir("previewdb-dump-");
  struct stat st {};
  ASSERT_EQ(::stat(dir->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// The pids of processes whose parent is `parent` and whose name is `comm`.
std::vector<int> children_named(int parent, const std::string& comm) {
  std::vector<int> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    auto pid = util::parse_uint(e.path().filename().string());
    if (!pid) continue;
    auto stat = util::read_file_if_exists(e.path() / "stat");
    if (!stat) continue;
    auto open = stat->find('('), close = stat->rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    auto fields = util::split(stat->substr(close + 2), ' ');
    if (stat->substr(open + 1, close - open - 1) == comm && fields.size() > 1 &&
        fields[1] == std::to_string(parent)) {
      out.push_back(static_cast<int>(*pid));
    }
  }
  return out;
}

bool running(int pid) {
  auto stat = util::read_file_if_exists("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  auto close = stat->rfind(')');
  return close != std::string::npos && stat->substr(close + 2, 1) != "Z";
}

TEST_F(Snapshot, KilledDuringSnapshotToLeavesNoPgDumpRunning) {
  // A session in dev holding a lock on items: the snapshot copies dev online, and pg_dump waits
  // for that lock.
  auto blocker = server().connect("dev");
  blocker.exec("BEGIN");
  blocker.exec("LOCK TABLE items IN ACCESS EXCLUSIVE MODE");
  util::TempDir tmp("previewdb-waits-tmp-");
  int pid = test::start_cli({"snapshot", "--to", "file://" + (tmp.path() / "store").string()},
                            env({{"TMPDIR", tmp.path().string()}}));
  std::vector<int> dumps;
  ASSERT_TRUE(eventually([&] { return !(dumps = children_named(pid, "pg_dump")).empty(); }));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  EXPECT_TRUE(eventually([&] { return !running(dumps.front()); }, std::chrono::seconds(5)))
      << "pg_dump kept running after previewdb was killed";
  blocker.exec("ROLLBACK");
  // Nothing anyone else can read was left behind.
  for (const auto& e : fs::recursive_directory_iterator(tmp.path())) {
    struct stat st {};
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    if (S_ISREG(st.st_mode)) {
      EXPECT_EQ(st.st_mode & 0077, 0u) << e.path();
    }
  }
}

TEST_F(Snapshot, BusySourceNamesItsSessionsAndOffersToWaitOrEndThem) {
  auto session = server().connect("dev");  // application "previewdb-test"
  auto plain = run_cli({"snapshot", "--json"}, env());
  EXPECT_EQ(plain.code, 0) << plain.err;
  EXPECT_THAT(plain.err,
              HasSubstr("\"dev\" is in use by pid " + std::to_string(session.backend_pid()) +
                        " (user previewdb, application \"previewdb-test\", client "
                        "127.0.0.1)"));
  EXPECT_THAT(plain.err,
              HasSubstr("--wait-idle 30s waits for them, --terminate-sessions ends them"));
  EXPECT_THAT(plain.out, HasSubstr("pg_dump | pg_restore"));

  // --wait-idle: the session ends after a second; the fast template copy follows.
  std::thread leave([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    session = server().connect("postgres");
  });
  auto waited = run_cli({"snapshot", "--wait-idle", "20s", "--json"}, env());
  leave.join();
  EXPECT_EQ(waited.code, 0) << waited.err;
  EXPECT_THAT(waited.err, HasSubstr("waiting up to 20s (--wait-idle) for the sessions on \"dev\""));
  EXPECT_THAT(waited.out, HasSubstr("template ("));

  // --terminate-sessions ends them.
  auto other = server().connect("dev");
  int victim = other.backend_pid();
  auto ended = run_cli({"snapshot", "--terminate-sessions", "--json"}, env());
  EXPECT_EQ(ended.code, 0) << ended.err;
  EXPECT_THAT(ended.err, HasSubstr("ending the sessions on \"dev\" (--terminate-sessions): pid " +
                                   std::to_string(victim)));
  EXPECT_THAT(ended.out, HasSubstr("template ("));
  EXPECT_FALSE(backend_alive(victim));
}

}  // namespace
