// Configuration errors through the real binary: a bad or empty setting stops the command before
// anything connects, with exit 2 and a message naming the setting and where it came from.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness/harness.hpp"

using previewdb::test::run_cli;
using ::testing::HasSubstr;

namespace {

// A server nobody listens on: the command must fail on the setting, never reach a connection.
const char* k_unreachable = "postgresql://app@127.0.0.1:1/app";

}  // namespace

TEST(ConfigCli, EmptyLockTimeoutFlagIsAUsageError) {
  auto r = run_cli({"migrate", "--database-url", k_unreachable, "--lock-timeout="});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_THAT(r.err, HasSubstr("empty lock_timeout (from --lock-timeout)"));
  EXPECT_THAT(r.err, HasSubstr("hint: leave it out for the default (10m)"));
}

TEST(ConfigCli, BadDurationNamesTheEnvironmentVariable) {
  auto r = run_cli({"migrate", "--database-url", k_unreachable},
                   {{"PREVIEWDB_STATEMENT_TIMEOUT", "abc"}});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_THAT(r.err, HasSubstr("invalid statement_timeout \"abc\" (from "
                               "PREVIEWDB_STATEMENT_TIMEOUT): not a duration"));
}

TEST(ConfigCli, EmptyMigrationsDirIsAUsageError) {
  auto r = run_cli({"status", "--database-url", k_unreachable, "--dir="});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_THAT(r.err, HasSubstr("empty migrations_dir (from --dir)"));
}
