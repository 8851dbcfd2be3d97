// The clone strategy chosen from recorded clones (core/clone_policy) and which cached sizes `list`
// measures again (core::sizes_to_measure): plain values in, a choice out, no server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/catalog.hpp"
#include "core/clone_policy.hpp"

using namespace previewdb;
using core::CloneSample;
using core::CloneStrategy;
using ::testing::HasSubstr;

namespace {

const long long MB = 1024LL * 1024;
const long long GB = 1024 * MB;

CloneSample wal(long long size, double seconds) {
  return {.strategy = CloneStrategy::wal_log, .size_bytes = size, .seconds = seconds};
}
CloneSample file(long long size, double seconds) {
  return {.strategy = CloneStrategy::file_copy, .size_bytes = size, .seconds = seconds};
}

}  // namespace

TEST(ClonePolicy, WithoutSamplesTheDefaultFollowsSizeAndMaxWalSize) {
  core::ServerHints hints;  // max_wal_size 1 GB
  auto small = core::choose_clone_strategy({}, 30 * MB, 1, hints);
  EXPECT_EQ(small.strategy, CloneStrategy::wal_log);
  EXPECT_FALSE(small.explored);
  EXPECT_THAT(small.reason, HasSubstr("no clone of a similar size"));
  EXPECT_EQ(core::choose_clone_strategy({}, 1 * GB, 1, hints).strategy, CloneStrategy::file_copy);
  // A small max_wal_size moves the threshold down: WAL_LOG would force checkpoints mid-copy.
  hints.max_wal_size_bytes = 256 * MB;
  EXPECT_EQ(core::choose_clone_strategy({}, 200 * MB, 1, hints).strategy, CloneStrategy::file_copy);
}

TEST(ClonePolicy, SamplesFarFromTheSizeDoNotCount) {
  // 30 MB and 3 GB samples say nothing about 300 MB.
  std::vector<CloneSample> samples = {wal(30 * MB, 0.1), file(30 * MB, 1.0), wal(3 * GB, 30),
                                      file(3 * GB, 12)};
  auto c = core::choose_clone_strategy(samples, 300 * MB, 5, {});
  EXPECT_EQ(c.strategy, CloneStrategy::wal_log);  // the default below 512 MB
  EXPECT_THAT(c.reason, HasSubstr("no clone of a similar size"));
  EXPECT_TRUE(core::sample_is_near(wal(150 * MB, 1), 300 * MB));
  EXPECT_TRUE(core::sample_is_near(wal(600 * MB, 1), 300 * MB));
  EXPECT_FALSE(core::sample_is_near(wal(149 * MB, 1), 300 * MB));
  EXPECT_FALSE(core::sample_is_near(wal(601 * MB, 1), 300 * MB));
}

TEST(ClonePolicy, TheOtherStrategyIsTriedWhenOnlyOneHasEvidence) {
  auto c = core::choose_clone_strategy({wal(300 * MB, 2.0)}, 300 * MB, 2, {});
  EXPECT_EQ(c.strategy, CloneStrategy::file_copy);
  EXPECT_TRUE(c.explored);
  EXPECT_THAT(c.reason, HasSubstr("trying FILE_COPY"));
  auto d = core::choose_clone_strategy({file(1 * GB, 4.0)}, 1 * GB, 2, {});
  EXPECT_EQ(d.strategy, CloneStrategy::wal_log);
  EXPECT_TRUE(d.explored);
}

TEST(ClonePolicy, TheFasterStrategyAtThisSizeWinsWhateverTheDefaultSays) {
  // This server: FILE_COPY faster at 300 MB (the default would say WAL_LOG).
  std::vector<CloneSample> samples = {wal(300 * MB, 2.6), file(300 * MB, 1.4), wal(280 * MB, 2.4),
                                      file(320 * MB, 1.5)};
  auto c = core::choose_clone_strategy(samples, 300 * MB, 5, {});
  EXPECT_EQ(c.strategy, CloneStrategy::file_copy);
  EXPECT_FALSE(c.explored);
  EXPECT_THAT(c.reason, HasSubstr("2 WAL_LOG and 2 FILE_COPY clones within 2x"));
  // ...and WAL_LOG faster at 1 GB (the default would say FILE_COPY).
  std::vector<CloneSample> big = {wal(1 * GB, 3.0), file(1 * GB, 5.0)};
  EXPECT_EQ(core::choose_clone_strategy(big, 1 * GB, 3, {}).strategy, CloneStrategy::wal_log);
}

TEST(ClonePolicy, EveryTenthCloneReChecksTheSlowerStrategy) {
  std::vector<CloneSample> samples = {wal(300 * MB, 1.0), file(300 * MB, 2.0)};
  int explored = 0;
  for (long long n = 1; n <= 30; ++n) {
    auto c = core::choose_clone_strategy(samples, 300 * MB, n, {});
    if (c.explored) {
      ++explored;
      EXPECT_EQ(c.strategy, CloneStrategy::file_copy) << n;
      EXPECT_EQ(n % 10, 0) << n;
      EXPECT_THAT(c.reason, HasSubstr("again"));
    } else {
      EXPECT_EQ(c.strategy, CloneStrategy::wal_log) << n;
    }
  }
  EXPECT_EQ(explored, 3);
}

TEST(ClonePolicy, EstimatesScalePerByteAndUseTheNearestMedian) {
  // Per byte: 1 s per 100 MB, so 200 MB is expected at 2 s.
  auto e = core::expected_seconds({wal(100 * MB, 1.0)}, CloneStrategy::wal_log, 200 * MB);
  ASSERT_TRUE(e);
  EXPECT_DOUBLE_EQ(*e, 2.0);
  EXPECT_FALSE(core::expected_seconds({wal(100 * MB, 1.0)}, CloneStrategy::file_copy, 100 * MB));
  // One outlier among the nearest does not decide (median).
  std::vector<CloneSample> noisy = {wal(100 * MB, 1.0), wal(100 * MB, 1.1), wal(100 * MB, 9.0)};
  EXPECT_DOUBLE_EQ(*core::expected_seconds(noisy, CloneStrategy::wal_log, 100 * MB), 1.1);
  // The 5 nearest only: the far (but within 2x) slow ones are left out.
  std::vector<CloneSample> many = {wal(100 * MB, 1.0), wal(101 * MB, 1.0), wal(99 * MB, 1.0),
                                   wal(102 * MB, 1.0), wal(98 * MB, 1.0),  wal(190 * MB, 19),
                                   wal(190 * MB, 19),  wal(190 * MB, 19)};
  EXPECT_NEAR(*core::expected_seconds(many, CloneStrategy::wal_log, 100 * MB), 1.0, 0.05);
  // Nonsense rows (no size, negative time) are ignored.
  EXPECT_FALSE(
      core::expected_seconds({wal(0, 1), wal(100 * MB, -1)}, CloneStrategy::wal_log, 100 * MB));
}

TEST(ClonePolicy, Keywords) {
  EXPECT_EQ(core::strategy_keyword(CloneStrategy::wal_log), "WAL_LOG");
  EXPECT_EQ(core::strategy_keyword(CloneStrategy::file_copy), "FILE_COPY");
  EXPECT_EQ(core::strategy_from_keyword("FILE_COPY"), CloneStrategy::file_copy);
  EXPECT_FALSE(core::strategy_from_keyword("auto"));
  EXPECT_FALSE(core::strategy_from_keyword("file_copy"));
}

TEST(CachedSizes, MissingAlwaysThenTheOldestStaleWithinTheBudget) {
  using std::chrono::seconds;
  std::vector<core::CachedSize> cached = {
      {.oid = 1, .age = seconds(30)},    {.oid = 2, .age = std::nullopt},
      {.oid = 3, .age = seconds(3600)},  {.oid = 4, .age = seconds(700)},
      {.oid = 5, .age = seconds(90000)}, {.oid = 6, .age = std::nullopt},
  };
  EXPECT_EQ(core::sizes_to_measure(cached, seconds(600), 2), (std::vector<long long>{2, 6, 5, 3}));
  EXPECT_EQ(core::sizes_to_measure(cached, seconds(600), 100),
            (std::vector<long long>{2, 6, 5, 3, 4}));
  EXPECT_EQ(core::sizes_to_measure(cached, seconds(600), 0), (std::vector<long long>{2, 6}));
  EXPECT_TRUE(core::sizes_to_measure({{.oid = 1, .age = seconds(5)}}, seconds(600), 10).empty());
}
