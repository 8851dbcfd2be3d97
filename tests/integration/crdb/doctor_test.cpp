// Issue 16: `previewdb doctor` on the real PostgreSQL: every step passes and reports, text and
// --json; a step that fails skips the rest and cleanup still drops what the run made; SIGINT
// mid-run cleans up too. The same command is what a user points at a CockroachDB cluster.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "harness/folder.hpp"
#include "harness/harness.hpp"
#include "util/strings.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const test::PgServer& server() {
  return test::PgServer::shared();
}

test::Env env() {
  return {{"PGPASSWORD", server().password()}};
}

// What a doctor run left behind: its databases, and registry rows naming them.
std::vector<std::string> leftovers() {
  auto c = server().connect();
  auto r = c.exec(
      "SELECT datname FROM pg_database WHERE datname LIKE 'previewdb\\_doctor\\_%' "
      "OR datname LIKE 'snap\\_previewdb\\_doctor\\_%' ORDER BY 1");
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.get(i, 0));
  return out;
}

int wait_for(int pid, std::chrono::seconds limit = std::chrono::seconds(120)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 1200; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

TEST(Doctor, EveryStepPassesOnPostgresAndNothingIsLeft) {
  server().reset();
  test::Folder cwd;
  auto r =
      run_cli({"doctor", "--url", server().url_without_password("postgres")}, env(), cwd.path());
  ASSERT_EQ(r.code, 0) << r.all();
  for (const char* step :
       {"connect", "server", "source", "lock", "snapshot", "spawn", "migrate", "cleanup"}) {
    EXPECT_THAT(r.out, HasSubstr(std::string("ok      ") + step)) << r.out;
  }
  EXPECT_THAT(r.out, HasSubstr("PostgreSQL"));
  EXPECT_THAT(r.out, HasSubstr("advisory migration lock"));
  EXPECT_THAT(r.out, HasSubstr("all steps passed"));
  EXPECT_THAT(r.all(), Not(HasSubstr(server().password())));
  EXPECT_TRUE(leftovers().empty()) << util::join(leftovers(), ", ");
}

TEST(Doctor, JsonReportsEachStep) {
  server().reset();
  test::Folder cwd;
  auto e = env();
  e["DATABASE_URL"] = server().url("postgres");
  auto r = run_cli({"doctor", "--json"}, e, cwd.path());
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_THAT(j["server"].get<std::string>(), HasSubstr("PostgreSQL"));
  std::vector<std::string> names;
  for (const auto& s : j["steps"]) {
    names.push_back(s["step"]);
    EXPECT_EQ(s["status"], "ok") << s.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"connect", "server", "source", "lock", "snapshot",
                                             "spawn", "migrate", "cleanup"}));
  EXPECT_THAT(r.out, Not(HasSubstr(server().password())));
  EXPECT_TRUE(leftovers().empty());
}

TEST(Doctor, AFailedStepSkipsTheRestAndCleansUp) {
  server().reset();
  test::Folder cwd;
  auto pause = cwd.dir() / "pause";
  auto e = env();
  e["PREVIEWDB_TEST_PAUSE_AT"] = "snapshot";
  e["PREVIEWDB_TEST_PAUSE_FILE"] = pause.string();
  int pid = test::start_cli(
      {"doctor", "--url", server().url_without_password("postgres"), "--json"}, e, cwd.path());
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(pause); })) << "never paused";
  // Break the next step: the snapshot it would spawn from goes away.
  auto snaps = leftovers();
  std::string snapshot;
  for (const auto& n : snaps) {
    if (n.rfind("snap_", 0) == 0) snapshot = n;
  }
  ASSERT_FALSE(snapshot.empty()) << util::join(snaps, ", ");
  server().exec("postgres", "ALTER DATABASE \"" + snapshot + "\" IS_TEMPLATE false");
  server().exec("postgres", "DROP DATABASE \"" + snapshot + "\"");
  std::filesystem::remove(pause);
  EXPECT_EQ(wait_for(pid), 1);
  EXPECT_TRUE(leftovers().empty()) << util::join(leftovers(), ", ");
}

TEST(Doctor, SigintCleansUp) {
  server().reset();
  test::Folder cwd;
  auto pause = cwd.dir() / "pause";
  auto e = env();
  e["PREVIEWDB_TEST_PAUSE_AT"] = "spawn";
  e["PREVIEWDB_TEST_PAUSE_FILE"] = pause.string();
  int pid = test::start_cli({"doctor", "--url", server().url_without_password("postgres")}, e,
                            cwd.path());
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(pause); })) << "never paused";
  EXPECT_EQ(leftovers().size(), 3u) << util::join(leftovers(), ", ");  // source, snapshot, spawn
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_for(pid), 1);
  EXPECT_TRUE(leftovers().empty()) << util::join(leftovers(), ", ");
}

TEST(Doctor, CannotConnectIsExit3) {
  test::Folder cwd;
  auto r = run_cli({"doctor", "--url", "postgresql://nobody@127.0.0.1:1/postgres"}, {}, cwd.path());
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_THAT(r.out, HasSubstr("failed  connect"));
}

TEST(Doctor, RefusesAPasswordInTheFlag) {
  auto r = run_cli({"doctor", "--url", server().url("postgres")});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_THAT(r.all(), Not(HasSubstr(server().password())));
}

}  // namespace
