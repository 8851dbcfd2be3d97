// The command line itself: help generated from the command table, typos, bad flags, exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness/harness.hpp"

using previewdb::test::run_cli;
using ::testing::HasSubstr;

TEST(Cli, HelpListsEveryCommand) {
  auto r = run_cli({"help"});
  EXPECT_EQ(r.code, 0);
  for (const char* c :
       {"ci", "snapshot", "spawn", "list", "cleanup", "migrate", "status", "history", "local"}) {
    EXPECT_THAT(r.out, HasSubstr("\n  " + std::string(c) + " ")) << c;
  }
  EXPECT_EQ(run_cli({}).code, 2) << "no command is a usage error (after printing help)";
  EXPECT_THAT(run_cli({"version"}).out, HasSubstr("previewdb "));
}

TEST(Cli, UnknownCommandSuggestsTheClosestOne) {
  auto r = run_cli({"snapshto"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("previewdb: error: unknown command \"snapshto\""));
  EXPECT_THAT(r.err, HasSubstr("hint: did you mean 'previewdb snapshot'?"));
}

TEST(Cli, UnknownFlagIsAUsageErrorWithAHint) {
  auto r = run_cli({"spawn", "--frmo", "dev"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("frmo"));
  EXPECT_THAT(r.err, HasSubstr("hint: run 'previewdb spawn --help'"));
}

TEST(Cli, CommandHelpNeedsNoServerAndIgnoresABrokenConfig) {
  // --help must work even where the configuration cannot be read.
  auto r = run_cli({"spawn", "--help"}, {{"PREVIEWDB_CONFIG", "/nonexistent/previewdb.json"},
                                         {"DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/x"}});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--reuse"));
  auto broken = run_cli({"list"}, {{"PREVIEWDB_CONFIG", "/nonexistent/previewdb.json"}});
  EXPECT_EQ(broken.code, 2);
  EXPECT_THAT(broken.err, HasSubstr("cannot read \"/nonexistent/previewdb.json\""));
}

#include <pwd.h>
#include <unistd.h>

#include <filesystem>

#include "util/files.hpp"
#include "util/subprocess.hpp"

TEST(Cli, ARepositoryOwnedByAnotherUserGetsTheSafeDirectoryHint) {
  passwd* nobody = ::getpwnam("nobody");
  if (::geteuid() != 0 || !nobody)
    GTEST_SKIP() << previewdb::test::k_skip_root << "needs root and a 'nobody' user to chown";
  previewdb::util::TempDir dir;
  auto repo = dir.path() / "repo";
  std::filesystem::create_directories(repo);
  ASSERT_EQ(previewdb::util::run_process({.argv = {"git", "init", "-q", repo.string()}}).exit_code,
            0);
  ASSERT_EQ(previewdb::util::run_process(
                {.argv = {"chown", "-R", std::to_string(nobody->pw_uid), repo.string()}})
                .exit_code,
            0);
  auto r = run_cli({"ci", "--dry-run", "--provider", "generic", "--pr", "1"},
                   {{"HOME", dir.path().string()}}, repo.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot open the git repository"));
  EXPECT_THAT(r.err, HasSubstr("git config --global --add safe.directory " + repo.string() + "\n"));
}
