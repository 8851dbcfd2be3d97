// The dry run's lock sampling for statements that cannot run in a transaction (issue 10): the
// strongest mode seen per table, held from the first sample to the last.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dryrun/dryrun.hpp"

using namespace previewdb::dryrun;

TEST(DryRunLockSamples, StrongestModePerTableInFirstSeenOrder) {
  std::vector<LockSample> s = {{0, "public.b", "AccessShareLock"},
                               {5, "public.a", "ShareUpdateExclusiveLock"},
                               {5, "public.b", "AccessShareLock"},
                               {10, "public.a", "AccessShareLock"},
                               {15, "public.a", "ShareUpdateExclusiveLock"}};
  auto locks = aggregate_lock_samples(s, 5, 7);
  ASSERT_EQ(locks.size(), 2u);
  EXPECT_EQ(locks[0].table, "public.b");
  EXPECT_EQ(locks[0].mode, "AccessShareLock");
  EXPECT_EQ(locks[0].held_ms, 10);  // seen at 0 and 5, plus one interval
  EXPECT_EQ(locks[1].table, "public.a");
  EXPECT_EQ(locks[1].mode, "ShareUpdateExclusiveLock");
  EXPECT_EQ(locks[1].held_ms, 15);  // 5..15, plus one interval
  EXPECT_EQ(locks[1].statement_line, 7);
  EXPECT_TRUE(locks[1].sampled);
}

TEST(DryRunLockSamples, ASingleSampleCountsOneInterval) {
  auto locks = aggregate_lock_samples({{42, "public.t", "AccessExclusiveLock"}}, 5, 1);
  ASSERT_EQ(locks.size(), 1u);
  EXPECT_EQ(locks[0].held_ms, 5);
}

TEST(DryRunLockSamples, NothingSeenNothingReported) {
  EXPECT_TRUE(aggregate_lock_samples({}, 5, 1).empty());
}

TEST(DryRunLockSamples, RanksFollowPostgresConflictOrder) {
  EXPECT_LT(lock_rank("AccessShareLock"), lock_rank("RowExclusiveLock"));
  EXPECT_LT(lock_rank("ShareUpdateExclusiveLock"), lock_rank("ShareLock"));
  EXPECT_LT(lock_rank("ExclusiveLock"), lock_rank("AccessExclusiveLock"));
  EXPECT_EQ(lock_rank("SIReadLock"), -1);
}
