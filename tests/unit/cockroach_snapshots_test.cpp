// CockroachDB snapshots as BACKUPs in a collection per source: reading SHOW BACKUPS IN's rows,
// snapshot references (a collection, or one backup of it), restoring one backup, pruning plans. No
// CockroachDB server can run here (docs/COCKROACHDB.md): the expected shapes are CockroachDB's
// documentation's, quoted with their URLs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "db/dialect.hpp"
#include "snapshot/cockroach_backups.hpp"
#include "util/time.hpp"

using namespace previewdb;
using ::testing::HasSubstr;

namespace {

// https://www.cockroachlabs.com/docs/v23.1/show-backup, "View a list of the available full backup
// subdirectories":
//   SHOW BACKUPS IN 'external://backup_s3';
//           path
//   -------------------------
//   /2022/04/13-202334.48
//   /2022/04/13-202413.70
//   (2 rows)
// "The path format is <year>/<month>/<day>-<timestamp>."
const std::vector<std::string> k_documented_rows = {"/2022/04/13-202334.48",
                                                    "/2022/04/13-202413.70"};

}  // namespace

TEST(CockroachBackupPaths, TheDocumentedPathFormatIsReadAsUtcTime) {
  auto t = db::cockroach::backup_path_time("/2022/04/13-202334.48");
  ASSERT_TRUE(t);
  EXPECT_EQ(util::to_iso8601(*t), "2022-04-13T20:23:34Z");
  // RESTORE's own examples write it without the leading slash ("2021/03/24-210532.53").
  auto bare = db::cockroach::backup_path_time("2021/03/24-210532.53");
  ASSERT_TRUE(bare);
  EXPECT_EQ(util::to_iso8601(*bare), "2021-03-24T21:05:32Z");
  for (const char* not_a_backup :
       {"", "/", "latest", "/2022/04/13", "/2022/13/01-000000.00", "/2022/04/13-256000.00",
        "/2022/04/13-202334.48/extra", "/x2022/04/13-202334.48"}) {
    EXPECT_FALSE(db::cockroach::backup_path_time(not_a_backup)) << not_a_backup;
  }
}

TEST(CockroachBackupPaths, RowsBecomeBackupsNewestFirst) {
  std::vector<std::string> rows = k_documented_rows;
  rows.push_back("not a path");
  auto backups = snapshot::cockroach_backups("s3://bucket/previewdb/dev/", rows);
  ASSERT_EQ(backups.size(), 2u) << "the row that is not a backup subdirectory is left out";
  EXPECT_EQ(backups[0].path, "/2022/04/13-202413.70");
  EXPECT_EQ(backups[0].reference, "s3://bucket/previewdb/dev/2022/04/13-202413.70");
  EXPECT_EQ(backups[0].created_at, "2022-04-13T20:24:13Z");
  EXPECT_EQ(backups[1].path, "/2022/04/13-202334.48");
  EXPECT_EQ(snapshot::cockroach_collection("s3://bucket/previewdb/", "dev"),
            "s3://bucket/previewdb/dev");
  EXPECT_TRUE(snapshot::cockroach_backups("s3://b/p/dev", {}).empty());
}

TEST(CockroachBackupPaths, PruneKeepsTheNewest) {
  auto backups = snapshot::cockroach_backups(
      "s3://b/p/dev", {"/2022/04/13-202334.48", "/2022/04/15-000000.00", "/2022/04/14-120000.00"});
  auto plan = snapshot::plan_backup_prune(backups, 1);
  ASSERT_EQ(plan.keep.size(), 1u);
  EXPECT_EQ(plan.keep[0].path, "/2022/04/15-000000.00");
  ASSERT_EQ(plan.drop.size(), 2u);
  EXPECT_EQ(plan.drop[0].path, "/2022/04/14-120000.00");
  EXPECT_EQ(plan.drop[1].path, "/2022/04/13-202334.48");
  EXPECT_TRUE(snapshot::plan_backup_prune(backups, 5).drop.empty());
}

TEST(CockroachBackupReferences, ACollectionOrOneBackupOfIt) {
  auto one =
      db::cockroach::split_backup_reference("s3://bucket/previewdb/dev/2022/04/13-202334.48");
  EXPECT_EQ(one.collection, "s3://bucket/previewdb/dev");
  EXPECT_EQ(one.subdir, "/2022/04/13-202334.48");
  auto latest = db::cockroach::split_backup_reference("s3://bucket/previewdb/dev/");
  EXPECT_EQ(latest.collection, "s3://bucket/previewdb/dev");
  EXPECT_EQ(latest.subdir, "") << "a collection: its newest backup";
  auto at_root = db::cockroach::split_backup_reference("s3://bucket/2022/04/13-202334.48");
  EXPECT_EQ(at_root.collection, "s3://bucket");
  EXPECT_EQ(at_root.subdir, "/2022/04/13-202334.48");
  auto bare = db::cockroach::split_backup_reference("s3://2022/04/13-202334.48");
  EXPECT_EQ(bare.collection, "s3://2022/04/13-202334.48") << "never cut into the bucket";
}

TEST(CockroachStatements, RestoreOneBackupOfACollection) {
  // https://www.cockroachlabs.com/docs/cockroachcloud/take-and-restore-customer-owned-backups,
  // "Restore data": "In cases when you need to restore a specific backup, add the backup
  // subdirectory to the RESTORE statement":
  //   RESTORE DATABASE bank FROM '2021/03/24-210532.53' IN
  //   'userfile://defaultdb.public.userfiles_$user/bank-backup';
  // with new_db_name as in https://www.cockroachlabs.com/docs/stable/restore, "Restore with
  // new_db_name". The subdirectory is passed as SHOW BACKUPS IN lists it (with its slash).
  EXPECT_EQ(db::cockroach::restore_database_from("bank", "/2021/03/24-210532.53",
                                                 "s3://acme/bank?AUTH=implicit", "new_bank"),
            "RESTORE DATABASE \"bank\" FROM '/2021/03/24-210532.53' IN "
            "'s3://acme/bank?AUTH=implicit' WITH new_db_name = 'new_bank'");
}
