// The warm pool's pure parts: member names, and which members are fresh or stale.
#include <gtest/gtest.h>

#include "core/pool.hpp"

using namespace previewdb;

namespace {

core::DatabaseInfo info(const std::string& name, std::optional<core::Kind> kind,
                        const std::string& created_at = "", std::optional<std::string> source = {},
                        std::optional<std::string> snapshot = {}) {
  core::DatabaseInfo d;
  d.name = name;
  if (kind) {
    core::Metadata m;
    m.kind = *kind;
    m.created_at = created_at;
    m.source = source;
    m.snapshot = snapshot;
    d.meta = m;
  }
  return d;
}

}  // namespace

TEST(PoolNames, FitSixtyThreeBytesAndAreRecognised) {
  EXPECT_EQ(core::pool_member_name("snap_dev_20261121_120000", 1),
            "previewdb_pool_snap_dev_20261121_120000_1");
  std::string long_snap = "snap_" + std::string(40, 'a') + "_20261121_120000";
  auto name = core::pool_member_name(long_snap, 12);
  EXPECT_LE(name.size(), 63u);
  EXPECT_NE(name, core::pool_member_name(long_snap + "x", 12));
  EXPECT_TRUE(core::is_pool_name(name));
  EXPECT_FALSE(core::is_pool_name("pr_12"));
  EXPECT_FALSE(core::is_pool_name("previewdb_poo"));
}

TEST(PoolState, MembersOfTheLatestSnapshotAreFreshOthersStale) {
  using core::Kind;
  std::vector<core::DatabaseInfo> all = {
      info("snap_dev_1", Kind::snapshot, "2026-11-21T10:00:00Z", "dev"),
      info("snap_dev_2", Kind::snapshot, "2026-11-21T11:00:00Z", "dev"),
      info("snap_staging_1", Kind::snapshot, "2026-11-21T12:00:00Z", "staging"),
      info("previewdb_pool_snap_dev_2_1", Kind::pool, "", "dev", "snap_dev_2"),
      info("previewdb_pool_snap_dev_1_1", Kind::pool, "", "dev", "snap_dev_1"),
      info("previewdb_pool_snap_staging_1_1", Kind::pool, "", "staging", "snap_staging_1"),
      // Not members: unmanaged (someone's database under the prefix), or another kind.
      info("previewdb_pool_snap_dev_2_2", std::nullopt),
      info("pr_1", Kind::pr, "", std::nullopt, "snap_dev_2"),
  };
  auto dev = core::pool_state(all, "dev");
  EXPECT_EQ(dev.latest, "snap_dev_2");
  ASSERT_EQ(dev.fresh.size(), 1u);
  EXPECT_EQ(dev.fresh[0].name, "previewdb_pool_snap_dev_2_1");
  ASSERT_EQ(dev.stale.size(), 1u);
  EXPECT_EQ(dev.stale[0].name, "previewdb_pool_snap_dev_1_1");
  EXPECT_EQ(core::pool_members(all).size(), 3u);

  // A source whose snapshots are all gone: every member is stale.
  all.erase(all.begin(), all.begin() + 2);
  auto gone = core::pool_state(all, "dev");
  EXPECT_TRUE(gone.latest.empty());
  EXPECT_TRUE(gone.fresh.empty());
  EXPECT_EQ(gone.stale.size(), 2u);
}
