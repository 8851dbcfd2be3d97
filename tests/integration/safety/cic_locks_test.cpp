// The dry run's locks for statements that cannot run in a transaction (issue 10): sampled from a
// second session while CREATE INDEX CONCURRENTLY runs on the clone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test::safety;
using test::run_cli;
using ::testing::HasSubstr;

TEST(DryRunSampledLocks, CreateIndexConcurrentlyShowsShareUpdateExclusive) {
  server().reset();
  fresh_db("bigshop");
  // Big enough that building the index takes many sampling intervals.
  server().exec("bigshop",
                "CREATE TABLE big(id int PRIMARY KEY, val text);"
                "INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 300000) g;");
  util::TempDir tmp;
  auto dir = write_folder(tmp.path() / "migrations",
                          {{"0001_index.sql", "CREATE INDEX CONCURRENTLY big_val ON big(val);"}});
  auto r = run_cli({"dry-run", "bigshop", "--dir", dir.string(), "--json", "--fail-on", "never"},
                   env_for("bigshop"));
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["migrations"].size(), 1u) << j.dump(2);
  const auto& m = j["migrations"][0];
  EXPECT_FALSE(m["locks_measured"].get<bool>());
  EXPECT_TRUE(m["locks_sampled"].get<bool>());
  bool found = false;
  for (const auto& l : m["locks"]) {
    if (l["table"] == "public.big" && l["mode"] == "ShareUpdateExclusiveLock") {
      found = true;
      EXPECT_TRUE(l["sampled"].get<bool>());
      EXPECT_GT(l["held_ms"].get<long long>(), 0);
    }
  }
  EXPECT_TRUE(found) << m.dump(2);
  // The text report says the locks were sampled.
  auto text = run_cli({"dry-run", "bigshop", "--dir", dir.string(), "--fail-on", "never"},
                      env_for("bigshop"));
  ASSERT_EQ(text.code, 0) << text.all();
  EXPECT_THAT(text.out, HasSubstr("sampled"));
  EXPECT_TRUE(temporaries().empty());
}
