// Bad input reaching `previewdb migrate` / `status` (issue 7 items 14, 16, 16b, 18; issue 8
// section 6): the real binary against the real server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

long long tables_named(const std::string& db, const std::string& name) {
  return count(db, "SELECT count(*) FROM pg_tables WHERE tablename = '" + name + "'");
}

// No stderr line may start a GitHub workflow command unless previewdb meant it.
void expect_no_injected_command(const std::string& text) {
  for (const auto& line : util::split(text, '\n')) {
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    EXPECT_NE(line.substr(first, 2), "::") << "line: " << line;
  }
}

}  // namespace

TEST(MigrateInput, MigrateDownWithoutStepsIsRefusedAndNothingIsApplied) {
  // migrate_cli puts --database-url first: 'down' after flags is still 'migrate down', which
  // needs --steps or --to. (`previewdb migrate down` itself: tests/integration/down.)
  auto db = fresh_db("input_down");
  Folder f;
  f.file("0001_a.sql", "CREATE TABLE a (id int);");
  auto r = migrate_cli(db, {"down", "--dir", f.path()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("'migrate down' needs --steps N or --to VERSION"));
  EXPECT_EQ(tables_named(db, "a"), 0) << "down must never migrate up";
  auto other = migrate_cli(db, {"sideways", "--dir", f.path()});
  EXPECT_EQ(other.code, 2);
  EXPECT_THAT(other.err, HasSubstr("unexpected argument \"sideways\" for 'previewdb migrate'"));
}

TEST(MigrateInput, UnknownFlagGetsDidYouMean) {
  auto db = fresh_db("input_flag");
  auto r = migrate_cli(db, {"--dry-rnu"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown option \"--dry-rnu\""));
  EXPECT_THAT(r.err, HasSubstr("did you mean --dry-run?"));
}

TEST(MigrateInput, EmptyLockTimeoutIsAUsageError) {
  auto db = fresh_db("input_timeout");
  Folder f;
  f.file("0001_a.sql", "CREATE TABLE a (id int);");
  auto r = migrate_cli(db, {"--dir", f.path(), "--lock-timeout="});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("empty lock_timeout (from --lock-timeout)"));
  EXPECT_EQ(tables_named(db, "a"), 0);
}

TEST(MigrateInput, NulByteIsRefusedNamingFileAndOffsetAndNothingIsApplied) {
  auto db = fresh_db("input_nul");
  Folder f;
  f.file("0001_a.sql", "CREATE TABLE a (id int);")
      .file("0002_b.sql", std::string("CREATE TABLE b (id int);") + '\0' + "DROP TABLE a;");
  auto r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("0002_b.sql\" contains a NUL byte at byte offset 24"));
  EXPECT_EQ(tables_named(db, "a"), 0);
  EXPECT_EQ(tables_named(db, "b"), 0);
}

TEST(MigrateInput, NewlineInAFileNameCannotInjectAWorkflowCommand) {
  auto db = fresh_db("input_newline");
  Folder f;
  f.file("0001_a\n::error::pwned.sql", "CREATE TABLE a (id int);");
  auto r = migrate_cli(db, {"--dir", f.path(), "-v"});
  EXPECT_EQ(r.code, 0) << r.err;
  expect_no_injected_command(r.err);
  auto st = cli("status", db, {"--dir", f.path()});
  EXPECT_EQ(st.code, 0) << st.err;
  expect_no_injected_command(st.out);
}

TEST(MigrateInput, ServerEndingTheSessionNamesTheOperationNotTheFile) {
  auto db = fresh_db("input_crash");
  Folder f;
  f.file("0001_a.sql", "CREATE TABLE a (id int);")
      .file("0002_kill.sql", "SELECT pg_terminate_backend(pg_backend_pid());");
  auto r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("lost the connection to the server while applying migration "
                               "\"0002_kill\""));
  EXPECT_THAT(r.err, Not(HasSubstr("fix the file")));
  EXPECT_EQ(tables_named(db, "a"), 1);
}

TEST(MigrateInput, StatusCountsAMissingMigrationOnce) {
  auto db = fresh_db("input_missing");
  Folder f;
  f.file("20240101000000_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\n")
      .file("20240102000000_b.sql", "-- migrate:up\nCREATE TABLE b (id int);\n-- migrate:down\n");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  std::filesystem::remove(std::filesystem::path(f.path()) / "20240102000000_b.sql");
  auto r = cli("status", db, {"--dir", f.path(), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["counts"]["missing"], 1) << r.out;
}

TEST(MigrateInput, CommandReportsWhatTheToolsHistoryGained) {
  auto db = fresh_db("input_command_applied");
  Folder f;
  f.file("20240101000000_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\n");
  // A stand-in for `dbmate up`: applies the file and records it as dbmate does.
  std::string command =
      "psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE TABLE a (id int)' -c 'CREATE TABLE IF NOT "
      "EXISTS schema_migrations (version varchar(128) PRIMARY KEY)' -c \"INSERT INTO "
      "schema_migrations VALUES ('20240101000000')\"";
  auto r = migrate_cli(db, {"--dir", f.path(), "--command", command, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["applied_count"], 1) << r.out;
  EXPECT_EQ(j["applied_known"], true);
  // Without a folder to compare with, the count is unknown, not 0.
  auto unknown = migrate_cli(db, {"--command", "true", "--json"});
  ASSERT_EQ(unknown.code, 0) << unknown.err;
  EXPECT_EQ(nlohmann::json::parse(unknown.out)["applied_known"], false);
}
