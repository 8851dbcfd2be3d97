// The registry's evidence against a real PostgreSQL: spawn and snapshot record each clone's
// duration (registry.clone_samples) and spawn chooses from it, --strategy overrides it, recording
// never fails a spawn; `list` shows cached sizes (registry.database_sizes) marked as estimates.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/registry.hpp"
#include "harness/harness.hpp"
#include "util/files.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class CloneEvidence : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev",
                  "CREATE TABLE items(id int primary key, name text);"
                  "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;");
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static test::Env env() {
    return {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_USER", "alice"}};
  }
  // Outside any git repository: nothing depends on the surrounding checkout.
  test::CliResult cli(const std::vector<std::string>& args) {
    return run_cli(args, env(), m_dir.path().string());
  }
  std::string snapshot() {
    auto r = cli({"snapshot"});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  nlohmann::json spawn(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"spawn", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = cli(args);
    EXPECT_EQ(r.code, 0) << r.err;
    m_last_err = r.err;
    return nlohmann::json::parse(r.out);
  }
  static db::Connection registry() { return server().connect(core::k_registry_database); }
  static long long samples(const std::string& strategy = "") {
    return registry()
        .exec("SELECT count(*) FROM registry.clone_samples WHERE $1 = '' OR strategy = $1",
              {strategy})
        .get_int(0, 0);
  }
  static nlohmann::json find(const nlohmann::json& list, const std::string& name) {
    for (const auto& d : list) {
      if (d["name"] == name) return d;
    }
    return nullptr;
  }
  util::TempDir m_dir;
  std::string m_last_err;
};

TEST_F(CloneEvidence, SnapshotAndSpawnRecordTheirClonesAndSpawnTriesTheOtherStrategy) {
  snapshot();
  // The snapshot's own clone (WAL_LOG: a small database, no evidence yet) is the first sample.
  EXPECT_EQ(samples(), 1);
  EXPECT_EQ(samples("WAL_LOG"), 1);
  auto first = spawn({"one"});
  // Only WAL_LOG has evidence at this size: FILE_COPY is tried.
  EXPECT_EQ(first["strategy"], "FILE_COPY");
  EXPECT_THAT(first["strategy_reason"].get<std::string>(), HasSubstr("trying FILE_COPY"));
  EXPECT_THAT(m_last_err, HasSubstr("clone strategy FILE_COPY: trying FILE_COPY"));
  EXPECT_EQ(samples(), 2);
  EXPECT_EQ(samples("FILE_COPY"), 1);
  // Both measured now: the faster one per byte at this size is chosen, and says why.
  auto second = spawn({"two"});
  EXPECT_THAT(second["strategy_reason"].get<std::string>(),
              HasSubstr("1 WAL_LOG and 1 FILE_COPY clones within 2x of this size"));
  EXPECT_EQ(samples(), 3);
  auto r = registry().exec(
      "SELECT bool_and(size_bytes > 0 AND seconds > 0 AND recorded_at <= now()) "
      "FROM registry.clone_samples");
  EXPECT_TRUE(r.get_bool(0, 0));
}

TEST_F(CloneEvidence, TheFasterStrategyOnRecordWinsAndStrategyOverridesIt) {
  std::string snap = snapshot();
  long long size = server().connect().exec("SELECT pg_database_size($1)", {snap}).get_int(0, 0);
  // This server's record (made up): FILE_COPY is ten times faster at this size.
  auto reg = registry();
  reg.exec("DELETE FROM registry.clone_samples");
  for (int i = 0; i < 3; ++i) {
    reg.exec(
        "INSERT INTO registry.clone_samples (strategy, size_bytes, seconds) VALUES "
        "('WAL_LOG', $1, 10), ('FILE_COPY', $1, 1)",
        {std::to_string(size)});
  }
  // Not a 10th clone (which would re-check the slower strategy).
  if (reg.exec("SELECT (max(id) + 1) % 10 = 0 FROM registry.clone_samples").get_bool(0, 0)) {
    reg.exec(
        "INSERT INTO registry.clone_samples (strategy, size_bytes, seconds) VALUES "
        "('FILE_COPY', $1, 1)",
        {std::to_string(size)});
  }
  long long before = samples();
  auto chosen = spawn({"auto"});
  EXPECT_EQ(chosen["strategy"], "FILE_COPY");
  EXPECT_THAT(chosen["strategy_reason"].get<std::string>(), HasSubstr("for WAL_LOG"));
  EXPECT_EQ(samples(), before + 1);

  auto forced = spawn({"forced", "--strategy", "wal_log"});
  EXPECT_EQ(forced["strategy"], "WAL_LOG");
  EXPECT_THAT(forced["strategy_reason"].get<std::string>(), HasSubstr("asked for"));
  // Recorded too: evidence is evidence.
  EXPECT_EQ(samples(), before + 2);
  EXPECT_EQ(registry()
                .exec("SELECT strategy FROM registry.clone_samples ORDER BY id DESC LIMIT 1")
                .get(0, 0),
            "WAL_LOG");
  // The environment's setting is an override as well.
  auto r = run_cli({"spawn", "env", "--json"},
                   {{"DATABASE_URL", server().url("postgres")},
                    {"PREVIEWDB_USER", "alice"},
                    {"PREVIEWDB_CLONE_STRATEGY", "wal_log"}},
                   m_dir.path().string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["strategy"], "WAL_LOG");
}

TEST_F(CloneEvidence, AFailureToRecordNeverFailsTheSpawn) {
  snapshot();
  // Every new sample is refused by the server.
  registry().exec(
      "ALTER TABLE registry.clone_samples ADD CONSTRAINT refuse CHECK (false) NOT VALID");
  auto r = cli({"spawn", "feature"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("could not record the clone's duration in previewdb_registry"));
  EXPECT_TRUE(server().database_exists("dev_alice_feature"));
  EXPECT_EQ(samples(), 1);  // the snapshot's
}

TEST_F(CloneEvidence, ARegistryWithoutTheNewTablesGetsThem) {
  snapshot();
  // As an earlier previewdb left it.
  registry().exec("DROP TABLE registry.clone_samples; DROP TABLE registry.database_sizes");
  auto r = cli({"spawn", "feature"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(samples(), 1);
  EXPECT_EQ(registry().exec("SELECT count(*) FROM registry.database_sizes").get_int(0, 0), 1);
}

TEST_F(CloneEvidence, ListShowsCachedSizesAsEstimatesAndMeasuresStaleOnes) {
  snapshot();
  spawn({"cached"});
  auto list = nlohmann::json::parse(cli({"list", "--json"}).out);
  auto d = find(list, "dev_alice_cached");
  ASSERT_FALSE(d.is_null());
  // Measured by spawn: an estimate now, with its time.
  EXPECT_GT(d["size_bytes"].get<long long>(), 0);
  EXPECT_EQ(d["size_estimated"], true);
  EXPECT_TRUE(d["size_as_of"].is_string());
  // An unmanaged database is measured by list itself.
  auto dev = find(list, "dev");
  EXPECT_EQ(dev["size_estimated"], false);
  EXPECT_TRUE(dev["size_as_of"].is_null());
  EXPECT_GT(dev["size_bytes"].get<long long>(), 0);

  auto text = cli({"list"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr(" ~"));
  EXPECT_THAT(text.out, HasSubstr("~ size measured earlier (at most"));

  // --exact-sizes: every size now, nothing estimated.
  auto exact = nlohmann::json::parse(cli({"list", "--json", "--exact-sizes"}).out);
  for (const auto& e : exact) {
    EXPECT_EQ(e["size_estimated"], false) << e["name"];
    EXPECT_TRUE(e["size_as_of"].is_null()) << e["name"];
  }
  EXPECT_THAT(cli({"list", "--exact-sizes"}).out, Not(HasSubstr("~ size measured")));

  // A cached size older than 10 minutes is measured again (and cached anew): the data grew.
  server().exec("dev_alice_cached",
                "CREATE TABLE big AS SELECT g, repeat('x', 500) AS pad "
                "FROM generate_series(1, 20000) g");
  auto reg = registry();
  reg.exec("UPDATE registry.database_sizes SET measured_at = now() - interval '1 hour'");
  long long cached = d["size_bytes"].get<long long>();
  auto refreshed = find(nlohmann::json::parse(cli({"list", "--json"}).out), "dev_alice_cached");
  EXPECT_EQ(refreshed["size_estimated"], false);
  EXPECT_GT(refreshed["size_bytes"].get<long long>(), cached + 5'000'000);
  EXPECT_EQ(reg.exec("SELECT count(*) FROM registry.database_sizes "
                     "WHERE measured_at > now() - interval '5 minutes'")
                .get_int(0, 0),
            reg.exec("SELECT count(*) FROM registry.database_sizes").get_int(0, 0));
  // A recent cached size is shown as it is, even though the data changed since.
  server().exec("dev_alice_cached", "DROP TABLE big");
  auto again = find(nlohmann::json::parse(cli({"list", "--json"}).out), "dev_alice_cached");
  EXPECT_EQ(again["size_estimated"], true);
  EXPECT_EQ(again["size_bytes"], refreshed["size_bytes"]);

  // None cached (made by an earlier previewdb): measured, then cached.
  reg.exec("DELETE FROM registry.database_sizes");
  auto missing = find(nlohmann::json::parse(cli({"list", "--json"}).out), "dev_alice_cached");
  EXPECT_EQ(missing["size_estimated"], false);
  EXPECT_GT(missing["size_bytes"].get<long long>(), 0);
  EXPECT_GE(reg.exec("SELECT count(*) FROM registry.database_sizes").get_int(0, 0), 2)
      << "the preview and the snapshot";

  // A dropped database's cached size goes with it.
  ASSERT_EQ(cli({"cleanup", "cached", "--yes"}).code, 0);
  EXPECT_EQ(reg.exec("SELECT count(*) FROM registry.database_sizes s "
                     "WHERE NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.oid = s.oid)")
                .get_int(0, 0),
            0);
}

}  // namespace
