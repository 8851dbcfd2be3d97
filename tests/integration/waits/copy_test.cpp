// Issue 7 item 4: COPY ... FROM STDIN / TO STDOUT in a migration used to spin at 100% CPU for
// ever (holding the migration lock); it is refused before anything is applied, naming file and
// line. Each run is bounded by timeout(1) so that the old behaviour fails instead of hanging.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "integration/waits/waits_helpers.hpp"
#include "util/files.hpp"
#include "util/subprocess.hpp"

using namespace previewdb;
using namespace previewdb::test::waits;
using ::testing::HasSubstr;

namespace {

util::ProcessResult migrate_bounded(const std::string& db, const std::string& dir,
                                    std::vector<std::string> extra = {}) {
  util::ProcessSpec spec;
  spec.argv = {"timeout",     "-s",      "KILL",           "60",
               PREVIEWDB_BIN, "migrate", "--database-url", server().url_without_password(db),
               "--dir",       dir};
  spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
  spec.env = {{"PGPASSWORD", server().password()}, {"DATABASE_URL", std::nullopt}};
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  return util::run_process(spec);
}

std::string fresh(const std::string& name) {
  auto conn = server().connect();
  conn.exec("DROP DATABASE IF EXISTS " + conn.quote_ident(name) + " WITH (FORCE)");
  conn.exec("CREATE DATABASE " + conn.quote_ident(name));
  return name;
}

TEST(MigrateCopy, CopyFromStdinAndToStdoutAreRefusedWithFileAndLine) {
  for (const std::string copy : {"COPY t FROM STDIN;", "COPY t TO STDOUT;",
                                 "COPY (SELECT 1) TO STDOUT WITH (FORMAT csv);"}) {
    util::TempDir dir("previewdb-waits-copy-");
    std::ofstream(dir.path() / "1_init.sql") << "CREATE TABLE t (id int);\n";
    std::ofstream(dir.path() / "2_load.sql") << "INSERT INTO t VALUES (1);\n\n" << copy << "\n";
    auto db = fresh("waits_copy");
    auto start = std::chrono::steady_clock::now();
    auto r = migrate_bounded(db, dir.path().string());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30)) << copy;
    EXPECT_EQ(r.exit_code, 7) << copy << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("2_load.sql:3"));
    EXPECT_THAT(r.err, HasSubstr("uses COPY with STDIN/STDOUT"));
    EXPECT_THAT(r.err, HasSubstr("nothing was applied"));
    // Refused before anything ran: not even 1_init.
    EXPECT_EQ(server().connect(db).exec("SELECT to_regclass('t') IS NULL").get(0, 0), "t");
  }
}

TEST(MigrateCopy, CopyFromAServerFileIsStillAllowed) {
  util::TempDir dir("previewdb-waits-copy-");
  std::ofstream(dir.path() / "1_init.sql")
      << "CREATE TABLE t (id int);\nCOPY t FROM PROGRAM 'echo 5';\n";
  auto db = fresh("waits_copy_program");
  auto r = migrate_bounded(db, dir.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server().connect(db).exec("SELECT sum(id) FROM t").get_int(0, 0), 5);
}

}  // namespace
