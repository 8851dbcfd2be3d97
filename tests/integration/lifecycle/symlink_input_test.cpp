// Symlinked inputs (issue 7 item 15). A found previewdb.json belongs to the repository: a symlink
// may not lead out of it (a file named with --config / PREVIEWDB_CONFIG may be anywhere).
// GITHUB_EVENT_PATH lives outside the repository on GitHub's runners ($RUNNER_TEMP), so there the
// protection is "a regular file, bounded": a link to a device or a FIFO is refused at once, a link
// to a regular file is read like the file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "harness/git_repo.hpp"
#include "harness/harness.hpp"
#include "util/files.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

test::Env unreachable() {
  // Nothing here may get as far as connecting: port 1 refuses at once (exit 3).
  return {{"DATABASE_URL", "postgresql://nobody@127.0.0.1:1/postgres"}};
}

}  // namespace

TEST(SymlinkInput, FoundConfigLinkingOutOfTheRepositoryIsRefused) {
  test::GitRepos repos;
  fs::path outside = repos.root() / "elsewhere.json";
  util::write_file_atomic(outside, R"({"source": "dev"})");
  fs::create_symlink(outside, repos.work() / "previewdb.json");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"list"}, {"spawn", "x"}, {"migrate"}, {"status"}, {"snapshot", "list"}}) {
    auto r = run_cli(args, unreachable(), repos.work().string());
    EXPECT_EQ(r.code, 2) << args[0] << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("\"previewdb.json\" is a symbolic link to")) << r.err;
    EXPECT_THAT(r.err, HasSubstr("outside")) << r.err;
    EXPECT_THAT(r.err, HasSubstr("--config PATH")) << r.err;
  }
  // ci from a subdirectory finds the root's previewdb.json: the same rule.
  fs::create_directories(repos.work() / "app");
  auto r = run_cli({"ci", "--provider", "generic", "--pr", "3", "--dry-run"}, unreachable(),
                   (repos.work() / "app").string());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is a symbolic link to")) << r.err;
}

TEST(SymlinkInput, ConfigLinkToSecretFileNeverReadOutOfTheRepository) {
  // The vector: a pull request commits previewdb.json -> /etc/passwd (or a runner's credentials).
  test::GitRepos repos;
  fs::create_symlink("/etc/passwd", repos.work() / "previewdb.json");
  auto r = run_cli({"list"}, unreachable(), repos.work().string());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is a symbolic link to \"/etc/passwd\"")) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("parse"))) << r.err;  // never opened
}

TEST(SymlinkInput, ConfigLinkInsideTheRepositoryOrNamedExplicitlyIsRead) {
  test::GitRepos repos;
  fs::create_directories(repos.work() / "config");
  // An unknown protect value would be harmless; a bad source name proves the file was read.
  util::write_file_atomic(repos.work() / "config" / "previewdb.json", R"({"source": "-bad"})");
  fs::create_symlink("config/previewdb.json", repos.work() / "previewdb.json");
  auto r = run_cli({"spawn", "x"}, unreachable(), repos.work().string());
  EXPECT_THAT(r.err, Not(HasSubstr("symbolic link"))) << r.err;
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("-bad")) << r.err;

  // Named on purpose: anywhere, also through a link.
  fs::path outside = repos.root() / "elsewhere.json";
  util::write_file_atomic(outside, R"({"source": "-bad2"})");
  fs::path link = repos.root() / "link.json";
  fs::create_symlink(outside, link);
  fs::remove(repos.work() / "previewdb.json");
  for (const auto& [args, env] : std::vector<std::pair<std::vector<std::string>, test::Env>>{
           {{"spawn", "x", "--config", link.string()}, {}},
           {{"spawn", "x"}, {{"PREVIEWDB_CONFIG", link.string()}}}}) {
    test::Env e = unreachable();
    for (auto& [k, v] : env) e[k] = v;
    auto r2 = run_cli(args, e, repos.work().string());
    EXPECT_EQ(r2.code, 2) << r2.err;
    EXPECT_THAT(r2.err, HasSubstr("-bad2")) << r2.err;
    EXPECT_THAT(r2.err, Not(HasSubstr("symbolic link"))) << r2.err;
  }
}

TEST(SymlinkInput, EventPathLinksAreBoundedRegularFilesOnly) {
  util::TempDir dir("previewdb-event-");
  fs::path fifo = dir.path() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::path to_fifo = dir.path() / "to_fifo.json", to_zero = dir.path() / "to_zero.json";
  fs::create_symlink(fifo, to_fifo);
  fs::create_symlink("/dev/zero", to_zero);
  for (const fs::path& event : {to_fifo, to_zero}) {
    // Before: through a link the FIFO hung for ever and /dev/zero ate memory.
    auto r = run_cli({"ci", "--provider", "github", "--dry-run"},
                     {{"GITHUB_ACTIONS", "true"},
                      {"GITHUB_EVENT_NAME", "pull_request"},
                      {"GITHUB_EVENT_PATH", event.string()}});
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr("not a regular file")) << event;
  }
  // A link to a regular file anywhere (the runner's $RUNNER_TEMP is outside the repository) is
  // read like the file: here a payload that is not an object, reported as such.
  fs::path real = dir.path() / "real.json";
  util::write_file_atomic(real, "[1]");
  fs::path link = dir.path() / "link.json";
  fs::create_symlink(real, link);
  auto r =
      run_cli({"ci", "--provider", "github", "--dry-run"}, {{"GITHUB_ACTIONS", "true"},
                                                            {"GITHUB_EVENT_NAME", "pull_request"},
                                                            {"GITHUB_EVENT_PATH", link.string()}});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is not a JSON object")) << r.err;
}
