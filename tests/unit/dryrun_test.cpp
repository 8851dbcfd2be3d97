// The dry run's classification on plain observations (no server), safe-migrate's decisions, and
// the owning tools' lock keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dryrun/findings.hpp"
#include "dryrun/safe_migrate.hpp"
#include "migrate/lock.hpp"

using namespace previewdb;
using namespace previewdb::dryrun;
using ::testing::HasSubstr;

namespace {

TableState table(long long oid, std::string name, long long rows, long long file,
                 std::vector<std::string> columns) {
  return {oid, std::move(name), file, rows, std::move(columns)};
}

const Finding* find(const std::vector<Finding>& fs, const std::string& kind) {
  for (const auto& f : fs) {
    if (f.kind == kind) return &f;
  }
  return nullptr;
}

}  // namespace

TEST(DryRunClassify, DroppedTableAndColumnCarryTheirRowCounts) {
  MigrationObservation o;
  o.id = "0001";
  o.before = {table(1, "public.a", 10, 100, {"id", "x"}), table(2, "public.b", 5, 200, {"id"})};
  o.after = {table(1, "public.a", 10, 100, {"id"})};
  auto fs = classify(o);
  auto* t = find(fs, "table-dropped");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->table, "public.b");
  EXPECT_EQ(*t->rows, 5);
  EXPECT_EQ(t->severity, Severity::data_loss);
  auto* c = find(fs, "column-dropped");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->column, "x");
  EXPECT_EQ(*c->rows, 10);
}

TEST(DryRunClassify, DroppingFromAnEmptyTableIsAWarningNotDataLoss) {
  MigrationObservation o;
  o.before = {table(1, "public.a", 0, 100, {"id", "x"})};
  o.after = {table(1, "public.a", 0, 100, {"id"})};
  auto fs = classify(o);
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].severity, Severity::warning);
  EXPECT_FALSE(has_data_loss(fs));
}

TEST(DryRunClassify, DeletesTruncatesAndRewrites) {
  MigrationObservation o;
  o.before = {table(1, "public.del", 10, 100, {"id"}), table(2, "public.trunc", 7, 200, {"id"}),
              table(3, "public.rw", 3, 300, {"id"})};
  o.after = {table(1, "public.del", 6, 100, {"id"}), table(2, "public.trunc", 0, 201, {"id"}),
             table(3, "public.rw", 3, 301, {"id"})};
  o.deleted = {{1, 4}};
  auto fs = classify(o);
  ASSERT_NE(find(fs, "rows-deleted"), nullptr);
  EXPECT_EQ(*find(fs, "rows-deleted")->rows, 4);
  ASSERT_NE(find(fs, "table-truncated"), nullptr);
  EXPECT_EQ(*find(fs, "table-truncated")->rows, 7);
  ASSERT_NE(find(fs, "table-rewritten"), nullptr);
  EXPECT_EQ(find(fs, "table-rewritten")->table, "public.rw");
  EXPECT_EQ(find(fs, "table-rewritten")->severity, Severity::warning);
}

TEST(DryRunClassify, TypeChangesAreLossyOnlyWhenValuesChange) {
  MigrationObservation o;
  o.type_changes = {{"public.p", "amount", "numeric(10,2)", "integer", 38, 50},
                    {"public.q", "n", "integer", "bigint", 0, 9}};
  auto fs = classify(o);
  auto* lossy = find(fs, "lossy-type-change");
  ASSERT_NE(lossy, nullptr);
  EXPECT_EQ(*lossy->rows, 38);
  EXPECT_THAT(lossy->message, HasSubstr("38 rows of 50"));
  ASSERT_NE(find(fs, "type-change"), nullptr);
  EXPECT_EQ(find(fs, "type-change")->severity, Severity::info);
}

TEST(DryRunClassify, FailuresComeFirstWithTheFailingRows) {
  MigrationObservation o;
  o.id = "0006";
  o.before = {table(1, "public.a", 1, 1, {"id"})};
  o.after = {table(1, "public.a", 1, 1, {"id"})};
  o.locks = {{"public.a", "AccessExclusiveLock", 12, 3}, {"public.b", "RowExclusiveLock", 1, 1}};
  Failure f;
  f.line = 1;
  f.sqlstate = "23514";
  f.message = "check constraint \"c\" of relation \"a\" is violated by some row";
  f.table = "public.a";
  f.constraint = "c";
  f.failing_rows = 10;
  o.failure = f;
  auto fs = classify(o);
  ASSERT_GE(fs.size(), 4u);
  EXPECT_EQ(fs[0].severity, Severity::failure);
  EXPECT_EQ(*find(fs, "constraint-fails")->rows, 10);
  EXPECT_NE(find(fs, "migration-failed"), nullptr);
  // A lock that blocks writes is a warning; a ROW EXCLUSIVE is information.
  int warnings = 0;
  for (const auto& x : fs) warnings += x.kind == "lock" && x.severity == Severity::warning;
  EXPECT_EQ(warnings, 1);
}

TEST(DryRunClassify, FailOnLevels) {
  std::vector<Finding> warn = {{"lock", Severity::warning, "1", "t", "", {}, "m"}};
  std::vector<Finding> loss = {{"rows-deleted", Severity::data_loss, "1", "t", "", 3, "m"}};
  std::vector<Finding> fail = {{"migration-failed", Severity::failure, "1", "", "", {}, "m"}};
  EXPECT_FALSE(needs_review(warn, FailOn::data_loss));
  EXPECT_TRUE(needs_review(warn, FailOn::warning));
  EXPECT_TRUE(needs_review(loss, FailOn::data_loss));
  EXPECT_TRUE(needs_review(fail, FailOn::data_loss));
  EXPECT_FALSE(needs_review(loss, FailOn::never));
  EXPECT_EQ(parse_fail_on("data-loss"), FailOn::data_loss);
  EXPECT_THROW(parse_fail_on("sometimes"), Error);
}

TEST(SafeMigrate, ForeignWritesAreThoseOurMigrationsDoNotAccountFor) {
  std::map<std::string, long long> before = {{"public.a", 10}, {"public.b", 5}, {"public.c", 0}};
  std::map<std::string, long long> after = {
      {"public.a", 110}, {"public.b", 6}, {"public.c", 0}, {"public.new", 50}};
  std::map<std::string, long long> ours = {{"public.a", 100}};
  EXPECT_EQ(foreign_writes(before, after, ours), std::vector<std::string>{"public.b"});
  after["public.a"] = 111;
  EXPECT_EQ(foreign_writes(before, after, ours),
            (std::vector<std::string>{"public.a", "public.b"}));
}

TEST(SafeMigrate, KeptNameFitsInAnIdentifier) {
  EXPECT_EQ(kept_name("shop", "20261130_010203"), "shop_before_restore_20261130_010203");
  EXPECT_LE(kept_name(std::string(63, 'x'), "20261130_010203").size(), 63u);
}

// golang-migrate's key: CRC-32 of "<schema>\0<table>\0<database>" times 1486364155 mod 2^32
// (database/util.go GenerateAdvisoryLockId, called by database/postgres Lock()). The expected
// values are Python's zlib.crc32(b"public\x00schema_migrations\x00/dev") * 1486364155 % 2**32.
TEST(ToolLocks, GolangMigrateKeyMatchesItsGoCode) {
  EXPECT_EQ(migrate::golang_migrate_lock_key("/dev", "public"), 4237162901LL);
  EXPECT_EQ(migrate::golang_migrate_lock_key("dev", "public"), 3387268118LL);
  auto keys = migrate::tool_lock_keys(migrate::Format::golang_migrate, "dev", "public");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].key, 4237162901LL);
  EXPECT_EQ(keys[1].key, 3387268118LL);
}

TEST(ToolLocks, PrismaUsesItsConstantAndOtherToolsNone) {
  auto keys = migrate::tool_lock_keys(migrate::Format::prisma, "dev", "public");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].key, 72707369);
  EXPECT_TRUE(migrate::tool_lock_keys(migrate::Format::plain, "dev", "public").empty());
  EXPECT_TRUE(migrate::tool_lock_keys(migrate::Format::dbmate, "dev", "public").empty());
}
