#include <gtest/gtest.h>

#include "git/changes.hpp"
#include "harness/git_repo.hpp"
#include "util/error.hpp"

using namespace previewdb;

namespace {

std::vector<std::string> paths_of(const git::Changes& c) {
  std::vector<std::string> out;
  for (const auto& f : c.files) out.push_back(f.path);
  return out;
}

}  // namespace

TEST(GitChanges, BranchAddingAMigration) {
  test::GitRepos repos;
  auto r = git::detect_changes({.repository = repos.work(), .base_ref = "main"});
  ASSERT_TRUE(r.ok()) << r.unavailable->message;
  ASSERT_EQ(r.changes->files.size(), 1u);
  EXPECT_EQ(r.changes->files[0], (git::ChangedFile{"migrations/schema/0002_add_email.sql", 'A'}));
  // The merge base is main's tip; README.md changed too but is outside the path.
  EXPECT_EQ(r.changes->merge_base,
            test::git(repos.work(), {"rev-parse", "origin/main"}).substr(0, 40));
}

TEST(GitChanges, MatchesGitDiffThreeDots) {
  test::GitRepos repos;
  // main moves on after the branch point: its own new migration must not count for the PR.
  test::git(repos.work(), {"checkout", "-q", "main"});
  repos.commit_file("migrations/schema/0003_on_main.sql", "SELECT 1;\n", "main moves");
  repos.push("main");
  test::git(repos.work(), {"checkout", "-q", "feature"});
  repos.commit_file("migrations/schema/0001_init.sql", "-- edited\n", "edit an applied migration");

  auto r = git::detect_changes({.repository = repos.work(), .base_ref = "main"});
  ASSERT_TRUE(r.ok());
  std::string expected = test::git(
      repos.work(), {"diff", "--name-only", "origin/main...HEAD", "--", "migrations/schema/"});
  std::string got;
  for (const auto& p : paths_of(*r.changes)) got += p + "\n";
  EXPECT_EQ(got, expected);
  EXPECT_EQ(r.changes->files.at(0).status, 'M');
  EXPECT_EQ(r.changes->files.at(1).status, 'A');
}

TEST(GitChanges, NoSchemaChange) {
  test::GitRepos repos;
  test::git(repos.work(), {"checkout", "-q", "-b", "docs-only", "main"});
  repos.commit_file("docs/x.md", "x\n", "docs");
  auto r = git::detect_changes({.repository = repos.work(), .base_ref = "main"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.changes->files.empty());
}

TEST(GitChanges, SeveralPathsWholeComponentsOnly) {
  test::GitRepos repos;
  repos.commit_file("migrations/schema_old/x.sql", "x\n", "lookalike directory");
  repos.commit_file("db/seeds/1.sql", "x\n", "seed");
  auto r = git::detect_changes({.repository = repos.work(),
                                .base_ref = "main",
                                .paths = {"./migrations/schema/", "db/seeds"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(paths_of(*r.changes),
            (std::vector<std::string>{"db/seeds/1.sql", "migrations/schema/0002_add_email.sql"}));
}

TEST(GitChanges, WorksFromASubdirectoryAndWithRefsHeadsPrefix) {
  test::GitRepos repos;
  auto r = git::detect_changes(
      {.repository = repos.work() / "migrations", .base_ref = "refs/heads/main"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.changes->files.size(), 1u);
}

TEST(GitChanges, ShallowCloneWithoutTheBaseIsAnExpectedOutcome) {
  test::GitRepos repos;
  auto shallow = repos.shallow_clone("shallow", "feature");
  auto r = git::detect_changes({.repository = shallow, .base_ref = "main"});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.unavailable->shallow);
  EXPECT_NE(r.unavailable->message.find("\"origin/main\" is not in this clone"), std::string::npos)
      << r.unavailable->message;
  std::string hints;
  for (const auto& h : r.unavailable->hints) hints += h + "\n";
  EXPECT_NE(hints.find("fetch-depth: 0"), std::string::npos);
  EXPECT_NE(hints.find("git fetch origin main"), std::string::npos);
}

TEST(GitChanges, ShallowBaseFetchedWithoutHistoryHasNoMergeBase) {
  test::GitRepos repos;
  auto shallow = repos.shallow_clone("shallow", "feature");
  test::git(shallow, {"fetch", "-q", "--depth", "1", "origin", "main:refs/remotes/origin/main"});
  auto r = git::detect_changes({.repository = shallow, .base_ref = "main"});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.unavailable->shallow);
  // After the advised fix (full history), detection works.
  test::git(shallow, {"fetch", "-q", "--unshallow", "origin", "main:refs/remotes/origin/main"});
  auto fixed = git::detect_changes({.repository = shallow, .base_ref = "main"});
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(paths_of(*fixed.changes),
            (std::vector<std::string>{"migrations/schema/0002_add_email.sql"}));
}

TEST(GitChanges, NotARepositoryIsAUsageError) {
  util::TempDir dir;
  try {
    git::detect_changes({.repository = dir.path()});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find("cannot open the git repository"), std::string::npos);
  }
}

TEST(GitChanges, UnderPaths) {
  EXPECT_TRUE(git::under_paths("migrations/schema/1.sql", {"migrations/schema/"}));
  EXPECT_TRUE(git::under_paths("migrations/schema/a/1.sql", {"./migrations/schema"}));
  EXPECT_FALSE(git::under_paths("migrations/schema_old/1.sql", {"migrations/schema"}));
  EXPECT_FALSE(git::under_paths("other/1.sql", {"migrations/schema"}));
  EXPECT_TRUE(git::under_paths("x", {"."}));
}
