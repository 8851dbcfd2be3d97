// Issue 15, the warm pool: ready clones of the latest snapshot kept at the end of a spawn/ci run,
// handed out by rename, replaced when a newer snapshot appears, shown by list, skipped by every
// cleanup filter but --pool. Against a real PostgreSQL and the real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/lifecycle.hpp"
#include "core/pool.hpp"
#include "core/registry.hpp"
#include "db/advisory_lock.hpp"
#include "harness/harness.hpp"
#include "util/files.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

class Pool : public ::testing::Test {
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
  test::CliResult cli(const std::vector<std::string>& args, test::Env extra = {}) {
    auto e = env();
    for (auto& [k, v] : extra) e[k] = v;
    return run_cli(args, e, m_cwd.path().string());
  }
  std::string snapshot() {
    auto r = cli({"snapshot"});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  // Members as pg_database has them: name -> (oid, datallowconn).
  struct Member {
    long long oid;
    bool allow_connections;
  };
  std::map<std::string, Member> members() {
    auto r = server().connect().exec(
        "SELECT datname, oid, datallowconn FROM pg_database "
        "WHERE datname LIKE 'previewdb\\_pool\\_%' ORDER BY datname");
    std::map<std::string, Member> out;
    for (int i = 0; i < r.rows(); ++i) out[r.get(i, 0)] = {r.get_int(i, 1), r.get_bool(i, 2)};
    return out;
  }
  long long oid_of(const std::string& db) {
    auto r = server().connect().exec("SELECT oid FROM pg_database WHERE datname = $1", {db});
    return r.rows() ? r.get_int(0, 0) : -1;
  }
  nlohmann::json list_json() {
    auto r = cli({"list", "--json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }
  static nlohmann::json find(const nlohmann::json& list, const std::string& name) {
    for (const auto& d : list) {
      if (d["name"] == name) return d;
    }
    return nullptr;
  }
  long long count_items(const std::string& db) {
    return server().connect(db).exec("SELECT count(*) FROM items").get_int(0, 0);
  }
  util::TempDir m_cwd{"previewdb-pool-"};
};

TEST_F(Pool, TopUpCreatesNMembersOfTheLatestSnapshot) {
  std::string snap = snapshot();
  auto r = cli({"spawn", "first", "--pool", "2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["pooled"], false) << "the pool was empty: a clone";
  EXPECT_NE(j["strategy"], "pool");
  EXPECT_THAT(r.err, HasSubstr("to the warm pool of dev (2/2)"));

  auto m = members();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_TRUE(m.count("previewdb_pool_" + snap + "_1"));
  EXPECT_TRUE(m.count("previewdb_pool_" + snap + "_2"));
  for (auto& [name, member] : m) {
    EXPECT_FALSE(member.allow_connections) << name << ": nobody connects to a member";
  }
  auto list = list_json();
  for (auto& [name, member] : m) {
    auto d = find(list, name);
    ASSERT_FALSE(d.is_null()) << name;
    EXPECT_EQ(d["kind"], "pool");
    EXPECT_EQ(d["managed"], true);
    EXPECT_EQ(d["snapshot"], snap);
    EXPECT_EQ(d["group"], "Warm pool");
  }
  auto text = cli({"list"});
  EXPECT_THAT(text.out, HasSubstr("Warm pool (2)"));
  EXPECT_THAT(text.out, HasSubstr("(clone of " + snap + ")"));

  // Topped up already: the next run with the same size makes nothing.
  auto again = cli({"spawn", "second", "--pool", "2", "--json"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(members().size(), 2u);
}

TEST_F(Pool, SpawnTakesAMemberByRenameAndTheRunTopsUpAgain) {
  std::string snap = snapshot();
  ASSERT_EQ(cli({"spawn", "seed", "--pool", "2"}).code, 0);
  auto before = members();
  ASSERT_EQ(before.size(), 2u);
  std::set<long long> member_oids;
  for (auto& [n, m] : before) member_oids.insert(m.oid);

  auto r = cli({"spawn", "checkout", "--branch", "feature/x", "--pool", "2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["name"], "dev_alice_checkout");
  EXPECT_EQ(j["pooled"], true);
  EXPECT_EQ(j["created"], true);
  EXPECT_EQ(j["strategy"], "pool");
  EXPECT_EQ(j["snapshot"], snap);
  EXPECT_THAT(r.err, HasSubstr("from the warm pool"));
  // The very database a member was: renamed, not copied.
  EXPECT_TRUE(member_oids.count(oid_of("dev_alice_checkout")));
  EXPECT_EQ(count_items("dev_alice_checkout"), 100);
  // The printed URL connects (connections allowed again).
  auto url = j["url"].get<std::string>();
  EXPECT_EQ(
      db::Connection::open({.conninfo = url}).exec("SELECT count(*) FROM items").get_int(0, 0),
      100);

  // Its metadata is a spawn's: registry and comment.
  auto d = find(list_json(), "dev_alice_checkout");
  EXPECT_EQ(d["kind"], "personal");
  EXPECT_EQ(d["managed"], true);
  EXPECT_EQ(d["created_by"], "alice");
  EXPECT_EQ(d["branch"], "feature/x");
  EXPECT_EQ(d["snapshot"], snap);
  auto comment = server().connect().exec(
      "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
      {"dev_alice_checkout"});
  auto c = nlohmann::json::parse(comment.get(0, 0));
  EXPECT_EQ(c["kind"], "personal");
  EXPECT_EQ(c["created_by"], "alice");

  // The same run topped the pool up to 2 again.
  auto after = members();
  EXPECT_EQ(after.size(), 2u);
  // A cleanup of it is a plain cleanup.
  auto cleaned = cli({"cleanup", "checkout", "--yes"});
  EXPECT_EQ(cleaned.code, 0) << cleaned.err;
  EXPECT_EQ(members().size(), 2u);
}

TEST_F(Pool, APreviewTakesAMemberAndPoolZeroStillTakesButMakesNone) {
  snapshot();
  ASSERT_EQ(cli({"spawn", "seed", "--pool", "1"}).code, 0);
  ASSERT_EQ(members().size(), 1u);
  // The setting from the environment; --pool 0 (the default) keeps none afterwards.
  auto r = cli({"spawn", "--pr", "12", "--json"}, {{"GITHUB_REPOSITORY", "octo/shop"}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["pooled"], true);
  EXPECT_TRUE(members().empty());
  auto d = find(list_json(), "pr_12");
  EXPECT_EQ(d["kind"], "pr");
  EXPECT_EQ(d["pr_number"], 12);
  EXPECT_EQ(d["repository"], "octo/shop");

  auto env_sized = cli({"spawn", "other"}, {{"PREVIEWDB_POOL_SIZE", "1"}});
  ASSERT_EQ(env_sized.code, 0) << env_sized.err;
  EXPECT_EQ(members().size(), 1u);
}

TEST_F(Pool, AMemberBeingTakenIsNeverHandedOutTwice) {
  std::string snap = snapshot();
  ASSERT_EQ(cli({"spawn", "seed", "--pool", "2"}).code, 0);
  std::string first = "previewdb_pool_" + snap + "_1";
  std::string second = "previewdb_pool_" + snap + "_2";
  long long second_oid = members().at(second).oid;
  {
    // Another spawn is taking the first member: it holds that member's name lock (previewdb's
    // locks live in the registry's database).
    auto holder = server().connect(core::k_registry_database);
    db::AdvisoryLock taking(holder, core::spawn_lock_key(first), std::chrono::seconds(5), first);
    auto r = cli({"spawn", "one", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["pooled"], true);
    EXPECT_EQ(oid_of("dev_alice_one"), second_oid) << "the member nobody was taking";
    EXPECT_TRUE(server().database_exists(first));
    // Nothing else left to take: a clone.
    auto two = cli({"spawn", "two", "--json"});
    ASSERT_EQ(two.code, 0) << two.err;
    EXPECT_EQ(nlohmann::json::parse(two.out)["pooled"], false);
  }
  EXPECT_TRUE(server().database_exists(first));
}

TEST_F(Pool, ConcurrentSpawnsGetDifferentMembersOrFallBack) {
  snapshot();
  ASSERT_EQ(cli({"spawn", "seed", "--pool", "3"}).code, 0);
  std::set<long long> member_oids;
  for (auto& [n, m] : members()) member_oids.insert(m.oid);
  ASSERT_EQ(member_oids.size(), 3u);

  const int n = 4;  // more spawns than members: at least one clones
  std::vector<test::CliResult> results(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      results[i] = cli({"spawn", "c" + std::to_string(i), "--json"});
    });
  }
  for (auto& t : threads) t.join();
  std::set<long long> taken;
  int pooled = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(results[i].code, 0) << results[i].err;
    auto j = nlohmann::json::parse(results[i].out);
    long long oid = oid_of("dev_alice_c" + std::to_string(i));
    EXPECT_EQ(count_items("dev_alice_c" + std::to_string(i)), 100);
    if (j["pooled"] == true) {
      ++pooled;
      EXPECT_TRUE(member_oids.count(oid)) << "a pooled spawn is a former member";
      EXPECT_TRUE(taken.insert(oid).second) << "one member handed out twice";
    } else {
      EXPECT_FALSE(member_oids.count(oid));
    }
  }
  EXPECT_GE(pooled, 1);
  EXPECT_LE(pooled, 3);
  EXPECT_EQ(members().size(), static_cast<size_t>(3 - pooled));
  auto temps = server().connect().exec(
      "SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb_tmp_%'");
  EXPECT_EQ(temps.get_int(0, 0), 0);
}

TEST_F(Pool, ANewerSnapshotMakesMembersStaleThenTheyAreReplaced) {
  std::string old_snap = snapshot();
  ASSERT_EQ(cli({"spawn", "seed", "--pool", "2"}).code, 0);
  auto stale = members();
  ASSERT_EQ(stale.size(), 2u);
  server().exec("dev", "INSERT INTO items VALUES (1000, 'newer')");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a distinct snapshot name
  std::string new_snap = snapshot();
  ASSERT_NE(new_snap, old_snap);

  // Never handed out: a clone of the newer snapshot instead.
  auto r = cli({"spawn", "fresh", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["pooled"], false);
  EXPECT_EQ(j["snapshot"], new_snap);
  EXPECT_EQ(count_items("dev_alice_fresh"), 101);
  EXPECT_EQ(members().size(), 2u) << "without --pool nothing is replaced";

  // A run with --pool replaces them: the stale ones dropped, fresh ones cloned.
  auto topped = cli({"spawn", "again", "--pool", "1", "--json"});
  ASSERT_EQ(topped.code, 0) << topped.err;
  EXPECT_EQ(nlohmann::json::parse(topped.out)["pooled"], false);
  auto now = members();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now.begin()->first, "previewdb_pool_" + new_snap + "_1");
  for (auto& [name, m] : stale) EXPECT_FALSE(server().database_exists(name));
  EXPECT_THAT(topped.err, HasSubstr("dropped previewdb_pool_" + old_snap));

  // And the next spawn takes the fresh one, with the newer data.
  auto taken = cli({"spawn", "last", "--json"});
  ASSERT_EQ(taken.code, 0) << taken.err;
  EXPECT_EQ(nlohmann::json::parse(taken.out)["pooled"], true);
  EXPECT_EQ(count_items("dev_alice_last"), 101);
}

TEST_F(Pool, CleanupFiltersSkipMembersAndCleanupPoolDropsThem) {
  snapshot();
  ASSERT_EQ(cli({"spawn", "seed", "--pool", "2"}).code, 0);
  auto m = members();
  ASSERT_EQ(m.size(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));

  auto pattern = cli({"cleanup", "--pattern", ".", "--yes", "--json"});
  ASSERT_EQ(pattern.code, 0) << pattern.err;
  auto dropped = nlohmann::json::parse(pattern.out)["dropped"];
  EXPECT_EQ(dropped, nlohmann::json::array({"dev_alice_seed"}));
  auto older = cli({"cleanup", "--older-than", "1s", "--yes"});
  EXPECT_EQ(older.code, 0) << older.err;
  EXPECT_EQ(members().size(), 2u);

  // By name: refused, with the way to do it.
  auto by_name = cli({"cleanup", m.begin()->first, "--yes"});
  EXPECT_EQ(by_name.code, 6) << by_name.err;
  EXPECT_THAT(by_name.err, HasSubstr("a member of the warm pool; use 'previewdb cleanup --pool'"));
  EXPECT_EQ(members().size(), 2u);

  auto dry = cli({"cleanup", "--pool", "--dry-run", "--json"});
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_EQ(nlohmann::json::parse(dry.out)["would_drop"].size(), 2u);
  EXPECT_EQ(members().size(), 2u);

  auto refused = cli({"cleanup", "--pool"});
  EXPECT_EQ(refused.code, 6) << "no terminal, no --yes";
  EXPECT_EQ(members().size(), 2u);

  auto all = cli({"cleanup", "--pool", "--yes", "--json"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(nlohmann::json::parse(all.out)["dropped"].size(), 2u);
  EXPECT_TRUE(members().empty());
  for (const auto& d : list_json()) EXPECT_NE(d["kind"], "pool");
}

TEST_F(Pool, AMemberSomeoneIsConnectedToIsSkipped) {
  std::string snap = snapshot();
  ASSERT_EQ(cli({"spawn", "seed", "--pool", "1"}).code, 0);
  std::string member = "previewdb_pool_" + snap + "_1";
  // Only by hand: previewdb never allows connections to a member.
  server().exec("postgres", "ALTER DATABASE " + member + " ALLOW_CONNECTIONS true");
  auto session = server().connect(member);
  auto r = cli({"spawn", "busy", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["pooled"], false);
  EXPECT_THAT(r.err, HasSubstr("could not take " + member + " from the warm pool"));
  EXPECT_THAT(r.err, HasSubstr("being accessed by other users"));
  EXPECT_TRUE(server().database_exists(member));
  EXPECT_EQ(count_items("dev_alice_busy"), 100);
}

TEST_F(Pool, PoolNamesAreReservedAndTheSizeIsChecked) {
  snapshot();
  auto r = cli({"spawn", "--name", "previewdb_pool_mine"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("reserved for previewdb's warm pool"));
  EXPECT_FALSE(server().database_exists("previewdb_pool_mine"));

  auto bad = cli({"spawn", "x", "--pool", "lots"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("pool_size"));
  auto big = cli({"spawn", "x", "--pool", "500"});
  EXPECT_EQ(big.code, 2);
  EXPECT_FALSE(server().database_exists("dev_alice_x"));
}

TEST_F(Pool, ARegistryFromBeforeThePoolIsWidenedOnce) {
  snapshot();
  // The constraint as earlier versions created it.
  server().exec(core::k_registry_database,
                "ALTER TABLE registry.databases DROP CONSTRAINT databases_kind_check;"
                "ALTER TABLE registry.databases ADD CONSTRAINT databases_kind_check "
                "CHECK (kind IN ('pr', 'personal', 'snapshot'))");
  auto r = cli({"spawn", "seed", "--pool", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(members().size(), 1u);
  auto def = server()
                 .connect(core::k_registry_database)
                 .exec(
                     "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                     "WHERE conname = 'databases_kind_check'");
  EXPECT_THAT(def.get(0, 0), HasSubstr("'pool'"));
}

}  // namespace
