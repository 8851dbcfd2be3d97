// Bounded waits without a server: COPY statements that need a client are recognised, private
// temporary directories, and leftovers of dead processes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "migrate/splitter.hpp"
#include "util/files.hpp"

using namespace previewdb;
namespace fs = std::filesystem;

TEST(WaitsSplitter, CopyThroughTheClientIsMarked) {
  auto r = migrate::split_statements(
      "COPY t FROM STDIN;\n"
      "copy t (a, b) to stdout with (format csv);\n"
      "COPY (SELECT 1) TO STDOUT;\n"
      "COPY t FROM '/srv/data.csv';\n"
      "COPY t TO PROGRAM 'cat > /dev/null';\n"
      "SELECT 'COPY t FROM STDIN';\n");
  ASSERT_EQ(r.statements.size(), 6u);
  EXPECT_TRUE(r.statements[0].copy_stdio);
  EXPECT_TRUE(r.statements[1].copy_stdio);
  EXPECT_TRUE(r.statements[2].copy_stdio);
  EXPECT_FALSE(r.statements[3].copy_stdio);
  EXPECT_FALSE(r.statements[4].copy_stdio);
  EXPECT_FALSE(r.statements[5].copy_stdio);
  EXPECT_EQ(r.statements[1].line, 2);
}

TEST(WaitsFiles, PrivateTempDirIsOwnerOnlyAndOrphansAreRemoved) {
  util::TempDir tmp("previewdb-waits-unit-");
  const char* old = std::getenv("TMPDIR");
  std::string saved = old ? old : "";
  ::setenv("TMPDIR", tmp.path().c_str(), 1);
  {
    auto mine = util::private_temp_dir("previewdb-unit-");
    struct stat st {};
    ASSERT_EQ(::stat(mine->path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(mine->path().filename().string().rfind(
                  "previewdb-unit-" + std::to_string(::getpid()) + "-", 0),
              0u);
    pid_t dead = ::fork();
    if (dead == 0) _exit(0);
    ::waitpid(dead, nullptr, 0);
    fs::path orphan = tmp.path() / ("previewdb-unit-" + std::to_string(dead) + "-xyz");
    fs::create_directories(orphan);
    std::ofstream(orphan / "dump") << "data";
    util::remove_orphaned_temp_dirs("previewdb-unit-");
    EXPECT_FALSE(fs::exists(orphan));
    EXPECT_TRUE(fs::exists(mine->path()));  // its process (us) still runs
  }
  if (old)
    ::setenv("TMPDIR", saved.c_str(), 1);
  else
    ::unsetenv("TMPDIR");
}
