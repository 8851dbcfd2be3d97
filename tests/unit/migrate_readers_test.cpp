#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "crypto/sha256.hpp"
#include "migrate/migrate.hpp"
#include "migrate/readers.hpp"
#include "migration_folder.hpp"
#include "util/error.hpp"
#include "util/files.hpp"

using namespace previewdb;
using namespace previewdb::migrate;
namespace fs = std::filesystem;

namespace {

using Folder = test::MigrationFolder;

std::vector<std::string> ids(const MigrationSet& set) {
  std::vector<std::string> out;
  for (const auto& m : set.migrations) out.push_back(m.id);
  return out;
}

std::string error_of(const Folder& f, const std::string& format = "auto",
                     ExitCode expected = ExitCode::usage) {
  try {
    f.read(format);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expected);
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

}  // namespace

TEST(MigrateReaders, PrismaOrdersByDirectoryNameAndKeepsSpaces) {
  Folder f;
  f.file("migration_lock.toml", "provider = \"postgresql\"\n")
      .file("20240102000000_second step/migration.sql", "SELECT 2;")
      .file("20240101000000_init/migration.sql", "SELECT 1;");
  auto set = f.read();
  EXPECT_EQ(set.format, Format::prisma);
  EXPECT_EQ(ids(set),
            (std::vector<std::string>{"20240101000000_init", "20240102000000_second step"}));
  EXPECT_EQ(set.migrations[0].checksum, crypto::sha256_hex("SELECT 1;"));
  EXPECT_EQ(set.migrations[1].name, "second step");
}

TEST(MigrateReaders, DrizzleFollowsTheJournalAndIgnoresOrphans) {
  Folder f;
  f.file("meta/_journal.json",
         R"({"version":"5","dialect":"pg","entries":[
             {"idx":0,"when":1000,"tag":"0001_b","breakpoints":true},
             {"idx":1,"when":2000,"tag":"0000_a","breakpoints":true}]})")
      .file("0000_a.sql",
            "CREATE TABLE a (id int);\n--> statement-breakpoint\nCREATE TABLE b (id int);")
      .file("0001_b.sql", "SELECT 1")
      .file("0002_orphan.sql", "DROP TABLE a;");
  auto set = f.read();
  EXPECT_EQ(set.format, Format::drizzle);
  EXPECT_EQ(ids(set), (std::vector<std::string>{"0001_b", "0000_a"}));
  EXPECT_EQ(set.migrations[1].statements.size(), 2u);
  EXPECT_EQ(set.migrations[1].statements[1].line, 3);
  EXPECT_EQ(set.migrations[0].created_millis, 1000);
  ASSERT_EQ(set.warnings.size(), 1u);
  EXPECT_NE(set.warnings[0].find("0002_orphan.sql is not in meta/_journal.json"),
            std::string::npos);
}

TEST(MigrateReaders, DrizzleJournalEntryWithoutItsFile) {
  Folder f;
  f.file("meta/_journal.json", R"({"entries":[{"idx":0,"when":1,"tag":"0000_gone"}]})");
  auto msg = error_of(f);
  EXPECT_NE(msg.find("lists \"0000_gone\" (entry 0) but"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0000_gone.sql\" does not exist"), std::string::npos) << msg;
}

TEST(MigrateReaders, Drizzle1Folders) {
  Folder f;
  f.file("20250102030405_add/migration.sql", "SELECT 2;")
      .file("20250101000000_init/migration.sql", "SELECT 1;")
      .file("20250101000000_init/snapshot.json", "{}");
  auto set = f.read();
  EXPECT_EQ(set.format, Format::drizzle1);
  EXPECT_EQ(ids(set), (std::vector<std::string>{"20250101000000_init", "20250102030405_add"}));
  EXPECT_EQ(set.migrations[0].created_millis, 1735689600000LL);
}

TEST(MigrateReaders, GolangMigrateNumericOrderAndDuplicates) {
  Folder f;
  f.file("10_ten.up.sql", "SELECT 10;")
      .file("10_ten.down.sql", "SELECT -10;")
      .file("2_two.up.sql", "SELECT 2;")
      .file("1_one.up.sql", "SELECT 1;");
  auto set = f.read();
  EXPECT_EQ(set.format, Format::golang_migrate);
  EXPECT_EQ(ids(set), (std::vector<std::string>{"1_one", "2_two", "10_ten"}));
  EXPECT_EQ(set.migrations[2].version, "10");
  EXPECT_EQ(set.migrations[2].down_files.size(), 1u);
  f.file("02_again.up.sql", "SELECT 2;");
  auto msg = error_of(f);
  EXPECT_NE(msg.find("duplicate migration version 2: "), std::string::npos) << msg;
}

TEST(MigrateReaders, DbmateSectionsAndTransactionOption) {
  Folder f;
  f.file("20240101000000_a.sql",
         "-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down\nDROP TABLE a;\n")
      .file(
          "20240102000000_b.sql",
          "-- a comment\n-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a (id);\n"
          "-- migrate:down\nDROP INDEX i;\n");
  auto set = f.read();
  EXPECT_EQ(set.format, Format::dbmate);
  ASSERT_EQ(set.migrations.size(), 2u);
  EXPECT_EQ(set.migrations[0].statements.size(), 1u);
  EXPECT_EQ(set.migrations[0].statements[0].line, 2);
  EXPECT_EQ(set.migrations[0].mode, Mode::transaction);
  EXPECT_EQ(set.migrations[1].version, "20240102000000");
  EXPECT_EQ(set.migrations[1].statements[0].line, 3);
  EXPECT_EQ(set.migrations[1].mode, Mode::autocommit);
  EXPECT_EQ(set.migrations[1].mode_reason, "dbmate option transaction:false");
}

TEST(MigrateReaders, FlywayVersionsPlaceholdersAndRepeatables) {
  Folder f;
  f.file("V1.10__later.sql", "SELECT 110;")
      .file("V1.9__earlier.sql", "CREATE TABLE ${schema}.t (id int);")
      .file("V1__first_one.sql", "SELECT 1;")
      .file("R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;");
  auto set = f.read("auto", {{"schema", "app"}});
  EXPECT_EQ(set.format, Format::flyway);
  EXPECT_EQ(ids(set), (std::vector<std::string>{"V1__first_one", "V1.9__earlier", "V1.10__later",
                                                "R__views"}));
  EXPECT_EQ(set.migrations[0].name, "first one");
  EXPECT_EQ(set.migrations[1].statements[0].sql, "CREATE TABLE app.t (id int)");
  EXPECT_TRUE(set.migrations[3].repeatable);
  try {
    f.read();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "no value for placeholder ${schema} in " +
                                         (f.path() / "V1.9__earlier.sql").string() + ":1");
  }
  f.file("V1.10.0__same.sql", "SELECT 1;");
  try {
    f.read("flyway", {{"schema", "app"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "duplicate migration version 1.10: \"" +
                                         (f.path() / "V1.10.0__same.sql").string() + "\" and \"" +
                                         (f.path() / "V1.10__later.sql").string() + "\"");
  }
}

TEST(MigrateReaders, PlainOrdersByLeadingNumberAndSkipsCompanions) {
  Folder f;
  f.file("10_ten.sql", "SELECT 10;")
      .file("9_nine.sql", "SELECT 9;")
      .file("9_nine.down.sql", "SELECT -9;")
      .file("rollback.sql", "SELECT 0;")
      .file("seed.sql", "SELECT 's';")
      .file("001_one.sql", "-- previewdb:no-transaction\nSELECT 1;");
  auto set = f.read();
  EXPECT_EQ(set.format, Format::plain);
  EXPECT_EQ(ids(set), (std::vector<std::string>{"001_one", "9_nine", "10_ten", "seed"}));
  EXPECT_EQ(set.migrations[1].down_files.size(), 1u);
  EXPECT_EQ(set.migrations[0].mode, Mode::autocommit);
}

TEST(MigrateReaders, BadFolders) {
  Folder empty;
  auto msg = error_of(empty);
  EXPECT_EQ(msg, "no migrations found in \"" + empty.path().string() + "\"");
  try {
    read_migrations({empty.path() / "nope", "auto", {}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "migrations folder \"" + (empty.path() / "nope").string() + "\" does not exist");
  }
  Folder f;
  f.file("1.sql", "SELECT 1;");
  msg = error_of(f, "prsma");
  EXPECT_EQ(msg, "unknown migration format \"prsma\"");
}

TEST(MigrateReaders, NonUtf8FileNamesTheLine) {
  Folder f;
  f.file("1_a.sql", "SELECT 1;\nSELECT '\xff';\n");
  auto msg = error_of(f);
  EXPECT_NE(msg.find("1_a.sql\" is not valid UTF-8 (line 2, byte 19)"), std::string::npos) << msg;
}

TEST(MigrateStatus, ComparesFolderAndHistory) {
  MigrationSet set;
  set.format = Format::plain;
  for (const char* id : {"1", "2", "3", "4"}) {
    Migration m;
    m.id = id;
    m.checksum = std::string("sum") + id;
    set.migrations.push_back(m);
  }
  AppliedSet applied;
  applied.by_id["1"] = Applied{.checksum = "sum1", .source = "t"};
  applied.by_id["3"] = Applied{.checksum = "sum3", .source = "t"};
  auto r = compare(set, applied);
  EXPECT_EQ(r.count(State::applied), 2u);
  EXPECT_TRUE(r.migrations[1].out_of_order);
  EXPECT_FALSE(r.migrations[3].out_of_order);
  EXPECT_TRUE(r.diverged());
  EXPECT_TRUE(r.needs_attention());

  applied.by_id.erase("3");
  r = compare(set, applied);
  EXPECT_FALSE(r.diverged());
  applied.by_id["1"].checksum = "other";
  r = compare(set, applied);
  EXPECT_EQ(r.migrations[0].state, State::changed);
  EXPECT_TRUE(r.diverged());
  applied.by_id["1"].checksum = "sum1";
  applied.by_id["2"] = Applied{.failed = true, .checksum = "sum2"};
  r = compare(set, applied);
  EXPECT_EQ(r.migrations[1].state, State::failed);
  EXPECT_TRUE(r.diverged());
  applied.by_id.erase("2");
  applied.missing.emplace_back("0", Applied{.source = "t"});
  r = compare(set, applied);
  EXPECT_EQ(r.count(State::missing), 1u);
  EXPECT_EQ(r.migrations.back().id, "0");
}

TEST(MigrateReaders, FlywayChecksumIsCrc32OfTheLinesWithoutBreaksOrBom) {
  // CRC-32("abc") = 0x352441C2 = 891568578: the same for every line-break style and with a BOM,
  // as Flyway's ChecksumCalculator reads the file line by line.
  Folder f;
  f.file("V1__plain.sql", "abc")
      .file("V2__crlf.sql", "a\r\nb\nc\n")
      .file("V3__bom.sql",
            "\xEF\xBB\xBF"
            "abc\r\n");
  auto set = f.read("flyway");
  ASSERT_EQ(set.migrations.size(), 3u);
  for (const auto& m : set.migrations) EXPECT_EQ(m.flyway_checksum, 891568578) << m.id;
}
