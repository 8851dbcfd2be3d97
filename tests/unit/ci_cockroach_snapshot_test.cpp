// `ci` on CockroachDB: which backup a preview is restored from ("the latest snapshot of dev" is
// the newest backup SHOW BACKUPS IN lists in the source's collection), or why it refuses.
// Rows in the shape of CockroachDB's documentation:
// https://www.cockroachlabs.com/docs/v23.1/show-backup, "View a list of the available full backup
// subdirectories" (/2022/04/13-202334.48, /2022/04/13-202413.70).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ci/cockroach_snapshot.hpp"
#include "snapshot/cockroach_backups.hpp"

using namespace previewdb;
using ::testing::HasSubstr;

namespace {
const std::vector<std::string> k_documented_rows = {"/2022/04/13-202334.48",
                                                    "/2022/04/13-202413.70"};
}  // namespace

TEST(CiCockroachSnapshot, NoStoreIsRefusedNamingWhatToSet) {
  auto plan = ci::plan_cockroach_snapshot(std::nullopt, "dev", std::nullopt, false);
  EXPECT_EQ(plan.step, ci::CockroachSnapshotStep::refuse);
  EXPECT_THAT(plan.message, HasSubstr("no snapshot store is configured"));
  ASSERT_FALSE(plan.hints.empty());
  EXPECT_THAT(plan.hints[0], HasSubstr("PREVIEWDB_SNAPSHOT_STORE"));
  EXPECT_THAT(plan.hints[0], HasSubstr("s3://BUCKET/PREFIX/dev"));
  auto file = ci::plan_cockroach_snapshot("file:///tmp/snaps", "dev", std::nullopt, false);
  EXPECT_EQ(file.step, ci::CockroachSnapshotStep::refuse);
  EXPECT_THAT(file.message, HasSubstr("not s3://"));
}

TEST(CiCockroachSnapshot, MaskingIsRefused) {
  auto plan = ci::plan_cockroach_snapshot("s3://b/p", "dev", "s3://b/p/dev/2022/04/13-202334.48",
                                          /*masking=*/true);
  EXPECT_EQ(plan.step, ci::CockroachSnapshotStep::refuse);
  EXPECT_THAT(plan.message, HasSubstr("cannot mask"));
}

TEST(CiCockroachSnapshot, TheNewestBackupOrTheFirstOne) {
  auto first = ci::plan_cockroach_snapshot("s3://b/p", "dev", std::nullopt, false);
  EXPECT_EQ(first.step, ci::CockroachSnapshotStep::take_first);
  auto backups = snapshot::cockroach_backups("s3://b/p/dev", k_documented_rows);
  auto newest = ci::plan_cockroach_snapshot("s3://b/p", "dev", backups.front().reference, false);
  EXPECT_EQ(newest.step, ci::CockroachSnapshotStep::restore_newest);
  EXPECT_EQ(newest.snapshot, "s3://b/p/dev/2022/04/13-202413.70");
}
