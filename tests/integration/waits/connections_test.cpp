// Issue 7 item 8: with max_connections=5, 8 concurrent runs for one name all succeed: "too many
// clients" is retried with backoff, and a run that only waits for the name lock gives its
// connection slot back meanwhile.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <thread>

#include "integration/waits/waits_helpers.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

TEST(Connections, EightConcurrentSpawnsOnAServerWithFiveSlots) {
  test::PgServer small({.max_connections = 5});
  test::Env env = {{"DATABASE_URL", small.url("postgres")}, {"PREVIEWDB_USER", "alice"}};
  small.exec("dev", "CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 1000) g");
  ASSERT_EQ(run_cli({"snapshot"}, env).code, 0);

  std::vector<test::CliResult> results(8);
  std::vector<std::thread> runs;
  for (size_t i = 0; i < results.size(); ++i) {
    runs.emplace_back([&, i] {
      results[i] = run_cli({"spawn", "crowd", "--reuse", "--json"}, [&] {
        auto e = env;
        e["PREVIEWDB_LOCK_TIMEOUT"] = "2m";
        return e;
      }());
    });
  }
  for (auto& t : runs) t.join();
  int created = 0;
  for (const auto& r : results) {
    EXPECT_EQ(r.code, 0) << r.err;
    if (r.out.find("\"created\": true") != std::string::npos) ++created;
  }
  EXPECT_EQ(created, 1);
  EXPECT_TRUE(small.database_exists("dev_alice_crowd"));
  EXPECT_EQ(small.connect("dev_alice_crowd").exec("SELECT count(*) FROM items").get_int(0, 0),
            1000);
}

}  // namespace
