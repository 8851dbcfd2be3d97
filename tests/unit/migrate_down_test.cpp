// The down parts the readers expose, and 'migrate down' planning (no server): which migrations,
// in which order, and the errors raised before anything runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "migrate/down.hpp"
#include "migrate/readers.hpp"
#include "migration_folder.hpp"
#include "util/error.hpp"
#include "util/files.hpp"

using namespace previewdb;
using namespace previewdb::migrate;
namespace fs = std::filesystem;

namespace {

using Folder = test::MigrationFolder;

// A status where the first `applied` migrations are applied, the rest pending.
StatusReport status_of(const MigrationSet& set, size_t applied) {
  StatusReport st;
  st.database = "db";
  for (size_t i = 0; i < set.migrations.size(); ++i) {
    MigrationStatus s;
    s.id = set.migrations[i].id;
    s.repeatable = set.migrations[i].repeatable;
    s.state = i < applied ? State::applied : State::pending;
    st.migrations.push_back(s);
  }
  return st;
}

std::vector<std::string> plan_ids(const MigrationSet& set, const StatusReport& st,
                                  std::optional<size_t> steps, std::optional<std::string> to) {
  std::vector<std::string> warnings, out;
  for (const Migration* m : plan_down(set, st, steps, to, warnings)) out.push_back(m->id);
  return out;
}

std::string plan_error(const MigrationSet& set, const StatusReport& st, std::optional<size_t> steps,
                       std::optional<std::string> to, ExitCode expected) {
  std::vector<std::string> warnings;
  try {
    plan_down(set, st, steps, to, warnings);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

void golang_folder(Folder& f) {
  f.file("1_a.up.sql", "CREATE TABLE a (id int);")
      .file("1_a.down.sql", "DROP TABLE a;")
      .file("2_b.up.sql", "CREATE TABLE b (id int);")
      .file("2_b.down.sql", "DROP TABLE b;")
      .file("10_c.up.sql", "CREATE TABLE c (id int);")
      .file("10_c.down.sql", "-- previewdb:no-transaction\nDROP INDEX CONCURRENTLY i;\n");
}

}  // namespace

TEST(MigrateDownReaders, GolangMigrateDownFiles) {
  Folder f;
  golang_folder(f);
  auto set = f.read();
  ASSERT_EQ(set.migrations.size(), 3u);
  ASSERT_TRUE(set.migrations[0].down);
  EXPECT_EQ(set.migrations[0].down->id, "1_a");
  EXPECT_EQ(set.migrations[0].down->display_path, (f.path() / "1_a.down.sql").string());
  EXPECT_EQ(set.migrations[0].down->statements[0].sql, "DROP TABLE a");
  EXPECT_EQ(set.migrations[2].down->mode, Mode::autocommit);
  // The up is unchanged.
  EXPECT_EQ(set.migrations[2].statements[0].sql, "CREATE TABLE c (id int)");
}

TEST(MigrateDownReaders, DbmateDownSectionWithItsOwnLinesAndOption) {
  Folder f;
  f.file("20240101000000_a.sql",
         "-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down transaction:false\n"
         "DROP INDEX CONCURRENTLY i;\nDROP TABLE a;\n")
      .file("20240102000000_b.sql", "-- migrate:up\nCREATE TABLE b (id int);\n")
      .file("20240103000000_c.sql",
            "-- migrate:down\nDROP TABLE c;\n-- migrate:up\nCREATE TABLE c (id int);\n");
  auto set = f.read();
  ASSERT_EQ(set.migrations.size(), 3u);
  const auto& a = set.migrations[0];
  ASSERT_TRUE(a.down);
  ASSERT_EQ(a.down->statements.size(), 2u);
  EXPECT_EQ(a.down->statements[0].line, 5);
  EXPECT_EQ(a.down->mode, Mode::autocommit);
  EXPECT_EQ(a.down->mode_reason, "dbmate option transaction:false");
  EXPECT_EQ(a.statements.size(), 1u);
  EXPECT_FALSE(set.migrations[1].down);
  // A down section before the up section ends at the up line.
  const auto& c = set.migrations[2];
  ASSERT_TRUE(c.down);
  ASSERT_EQ(c.down->statements.size(), 1u);
  EXPECT_EQ(c.down->statements[0].sql, "DROP TABLE c");
  EXPECT_EQ(c.statements[0].sql, "CREATE TABLE c (id int)");
}

TEST(MigrateDownReaders, FlywayUndoFilesMatchVersions) {
  Folder f;
  f.file("V1__first.sql", "CREATE TABLE ${t} (id int);")
      .file("U1__first.sql", "DROP TABLE ${t};")
      .file("V1.1__second.sql", "SELECT 1;")
      .file("U1_1__second_undo.sql", "SELECT 2;")
      .file("U7__orphan.sql", "SELECT 7;")
      .file("R__view.sql", "SELECT 3;");
  auto set = f.read("auto", {{"t", "things"}});
  ASSERT_EQ(set.migrations.size(), 3u);
  ASSERT_TRUE(set.migrations[0].down);
  EXPECT_EQ(set.migrations[0].down->statements[0].sql, "DROP TABLE things");
  EXPECT_EQ(set.migrations[0].down->script, "U1__first.sql");
  EXPECT_NE(set.migrations[0].down->flyway_checksum, 0);
  ASSERT_TRUE(set.migrations[1].down);
  EXPECT_EQ(set.migrations[1].down->name, "second undo");
  EXPECT_FALSE(set.migrations[2].down);  // repeatables have no undo
  bool orphan_warned = false;
  for (const auto& w : set.warnings) orphan_warned |= w.find("U7__orphan.sql") != std::string::npos;
  EXPECT_TRUE(orphan_warned);
  // A missing placeholder in an undo file does not stop 'migrate': only its down is unusable.
  Folder g;
  g.file("V1__first.sql", "SELECT 1;").file("U1__first.sql", "DROP TABLE ${nope};");
  auto set2 = g.read();
  EXPECT_FALSE(set2.migrations[0].down);
  EXPECT_NE(set2.migrations[0].down_error.find("no value for placeholder ${nope}"),
            std::string::npos);
}

TEST(MigrateDownReaders, PrismaRollbackSqlThenDownSql) {
  Folder f;
  f.file("migration_lock.toml", "provider = \"postgresql\"\n")
      .file("20240101000000_a/migration.sql", "CREATE TABLE a (id int);")
      .file("20240101000000_a/rollback.sql", "DROP TABLE a;")
      .file("20240102000000_b/migration.sql", "CREATE TABLE b (id int);")
      .file("20240102000000_b/down.sql", "DROP TABLE b;")
      .file("20240103000000_c/migration.sql", "CREATE TABLE c (id int);");
  auto set = f.read();
  ASSERT_EQ(set.migrations.size(), 3u);
  EXPECT_EQ(set.migrations[0].down->display_path,
            (f.path() / "20240101000000_a/rollback.sql").string());
  EXPECT_EQ(set.migrations[1].down->statements[0].sql, "DROP TABLE b");
  EXPECT_FALSE(set.migrations[2].down);
}

TEST(MigrateDownReaders, PlainCompanionsAndUnreadableDown) {
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int);")
      .file("1_a.down.sql", "DROP TABLE a;")
      .file("2_b.sql", "CREATE TABLE b (id int);")
      .file("2_b.rollback.sql", "DROP TABLE b;")
      .file("3_c.sql", "CREATE TABLE c (id int);")
      .file("3_c.down.sql", std::string("DROP TABLE c;\xff\n"));
  auto set = f.read();
  ASSERT_EQ(set.migrations.size(), 3u);
  EXPECT_TRUE(set.migrations[0].down) << set.migrations[0].down_error;
  EXPECT_EQ(set.migrations[1].down->statements[0].sql, "DROP TABLE b");
  EXPECT_FALSE(set.migrations[2].down);
  EXPECT_NE(set.migrations[2].down_error.find("is not valid UTF-8"), std::string::npos);
}

TEST(MigrateDownPlan, StepsAndToNewestFirst) {
  Folder f;
  golang_folder(f);
  auto set = f.read();
  auto st = status_of(set, 3);
  EXPECT_EQ(plan_ids(set, st, 1, std::nullopt), (std::vector<std::string>{"10_c"}));
  EXPECT_EQ(plan_ids(set, st, 3, std::nullopt), (std::vector<std::string>{"10_c", "2_b", "1_a"}));
  EXPECT_EQ(plan_ids(set, st, std::nullopt, "1"), (std::vector<std::string>{"10_c", "2_b"}));
  EXPECT_EQ(plan_ids(set, st, std::nullopt, "2_b"), (std::vector<std::string>{"10_c"}));
  EXPECT_EQ(plan_ids(set, st, std::nullopt, "0002"), (std::vector<std::string>{"10_c"}));
  EXPECT_EQ(plan_ids(set, st, std::nullopt, "10"), (std::vector<std::string>{}));
  EXPECT_EQ(plan_ids(set, st, std::nullopt, "0"), (std::vector<std::string>{"10_c", "2_b", "1_a"}));
  // Only what is applied.
  auto two = status_of(set, 2);
  EXPECT_EQ(plan_ids(set, two, 1, std::nullopt), (std::vector<std::string>{"2_b"}));
}

TEST(MigrateDownPlan, ErrorsBeforeAnythingRuns) {
  Folder f;
  golang_folder(f);
  auto set = f.read();
  auto st = status_of(set, 2);
  EXPECT_NE(plan_error(set, st, std::nullopt, std::nullopt, ExitCode::usage)
                .find("needs --steps N or --to VERSION"),
            std::string::npos);
  EXPECT_NE(
      plan_error(set, st, 3, std::nullopt, ExitCode::usage).find("only 2 migration(s) are applied"),
      std::string::npos);
  EXPECT_NE(plan_error(set, st, std::nullopt, "3_nope", ExitCode::usage)
                .find("--to \"3_nope\": no migration \"3_nope\""),
            std::string::npos);
  EXPECT_NE(plan_error(set, st, std::nullopt, "10", ExitCode::usage)
                .find("10_c is not applied (pending)"),
            std::string::npos);
  // A failed migration above the target.
  auto failed = status_of(set, 3);
  failed.migrations[2].state = State::failed;
  EXPECT_NE(plan_error(set, failed, std::nullopt, "0", ExitCode::refused)
                .find("migration \"10_c\" failed"),
            std::string::npos);
}

TEST(MigrateDownPlan, MissingDownNamesTheMigrationAndTheFile) {
  Folder f;
  f.file("1_a.up.sql", "CREATE TABLE a (id int);")
      .file("2_b.up.sql", "CREATE TABLE b (id int);")
      .file("2_b.down.sql", "DROP TABLE b;");
  auto set = f.read();
  auto st = status_of(set, 2);
  EXPECT_EQ(plan_ids(set, st, 1, std::nullopt), (std::vector<std::string>{"2_b"}));
  EXPECT_EQ(plan_error(set, st, 2, std::nullopt, ExitCode::usage),
            "migration \"1_a\" has no down migration (expected " +
                (f.path() / "1_a.down.sql").string() + "): nothing was undone");
}

TEST(MigrateDownPlan, FlywaySkipsRepeatablesAndTakesVPrefixedVersions) {
  Folder f;
  f.file("V1__a.sql", "SELECT 1;")
      .file("U1__a.sql", "SELECT 1;")
      .file("V2__b.sql", "SELECT 2;")
      .file("U2__b.sql", "SELECT 2;")
      .file("R__v.sql", "SELECT 3;");
  auto set = f.read();
  auto st = status_of(set, 3);
  EXPECT_EQ(plan_ids(set, st, std::nullopt, "V1"), (std::vector<std::string>{"V2__b"}));
  EXPECT_EQ(plan_ids(set, st, std::nullopt, "1.0"), (std::vector<std::string>{"V2__b"}));
  EXPECT_EQ(plan_ids(set, st, std::nullopt, "0"), (std::vector<std::string>{"V2__b", "V1__a"}));
  EXPECT_EQ(expected_down(Format::flyway, set.migrations[0]), (f.path() / "U1__a.sql").string());
}
