// Issue 16: previewdb's own name locks (spawn, drop, ci, hold of one name; the registry's schema)
// as lease rows, the form they take on CockroachDB where session advisory locks are no-op stubs.
// Run on the real PostgreSQL with the lease form forced: in-process through db::lease, and for
// the built binary with PREVIEWDB_FORCE_LEASE_LOCKS=1 (docs/COCKROACHDB.md#locks).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "db/advisory_lock.hpp"
#include "db/dialect.hpp"
#include "db/lease_lock.hpp"
#include "harness/harness.hpp"
#include "util/error.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

test::PgServer& server() {
  return test::PgServer::shared();
}

test::Env env(test::Env extra = {}) {
  test::Env e = {{"DATABASE_URL", server().url("postgres")},
                 {"PREVIEWDB_USER", "alice"},
                 {"PREVIEWDB_FORCE_LEASE_LOCKS", "1"}};
  for (auto& [k, v] : extra) e[k] = v;
  return e;
}

// Outside any git repository: spawn --pr records the checkout's repository otherwise.
std::string outside() {
  return std::filesystem::temp_directory_path().string();
}

long long count(const std::string& db, const std::string& sql) {
  return server().connect(db).exec(sql).get_int(0, 0);
}

long long advisory_locks_held() {
  return count("postgres", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'");
}

const char* k_table =
    "CREATE SCHEMA IF NOT EXISTS _previewdb; CREATE TABLE IF NOT EXISTS "
    "_previewdb.name_lock (name text PRIMARY KEY, holder text NOT NULL, owner "
    "text NOT NULL, pid integer, application_name text, acquired_at timestamptz "
    "NOT NULL, expires_at timestamptz NOT NULL);";

// What a killed holder leaves: its row, live until the lease runs out (30 s); planted here with
// the expiry the test needs rather than waited for.
void plant(const std::string& db, const std::string& name, const std::string& expires) {
  server().exec(db, std::string(k_table) + "INSERT INTO _previewdb.name_lock VALUES ('" + name +
                        "', 'dead-token', 'ci-runner-7:4242', 4242, 'previewdb', now() - "
                        "interval '5 minutes', " +
                        expires + ") ON CONFLICT (name) DO UPDATE SET expires_at = " + expires);
}

class LeaseLocks : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev", "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)");
    auto snap = run_cli({"snapshot"}, env());
    ASSERT_EQ(snap.code, 0) << snap.err;
  }
};

TEST(LeaseRows, ExclusiveSharedAndReentrantLikeAdvisoryLocks) {
  {
    auto boot = server().connect("postgres");
    core::Registry::open(boot);
  }
  auto a = server().connect(core::k_registry_database);
  auto b = server().connect(core::k_registry_database);
  auto c = server().connect(core::k_registry_database);
  const std::string key = "previewdb:test:lease-unit";

  ASSERT_TRUE(db::lease::try_lock_name(a, key));
  EXPECT_TRUE(db::lease::try_lock_name(a, key)) << "re-entrant on one session, like PostgreSQL's";
  EXPECT_FALSE(db::lease::try_lock_name(b, key)) << "exclusive";
  EXPECT_FALSE(db::lease::try_lock_name(b, key, /*shared=*/true)) << "no sharing an exclusive";
  EXPECT_THAT(db::lease::describe_name_holder(b, key), HasSubstr("lease until"));
  EXPECT_TRUE(db::lease::holds_any_name(a));
  EXPECT_FALSE(db::lease::holds_any_name(b));
  db::lease::unlock_name(a, key);
  EXPECT_FALSE(db::lease::try_lock_name(b, key)) << "still held once";
  db::lease::unlock_name(a, key);
  EXPECT_FALSE(db::lease::holds_any_name(a));

  ASSERT_TRUE(db::lease::try_lock_name(b, key, true));
  ASSERT_TRUE(db::lease::try_lock_name(c, key, true)) << "shared holders share";
  EXPECT_FALSE(db::lease::try_lock_name(a, key)) << "no exclusive beside a shared holder";
  EXPECT_THAT(db::lease::describe_name_holder(a, key), HasSubstr("lease until"));
  db::lease::unlock_name(b, key, true);
  EXPECT_FALSE(db::lease::try_lock_name(a, key)) << "one shared holder left";
  db::lease::unlock_name(c, key, true);
  ASSERT_TRUE(db::lease::try_lock_name(a, key));
  db::lease::unlock_name(a, key);
  EXPECT_EQ(count(core::k_registry_database, "SELECT count(*) FROM _previewdb.name_lock"), 0)
      << "every row given back";
  EXPECT_EQ(advisory_locks_held(), 0);
}

TEST(LeaseRows, TheHeartbeatExtendsAHeldLease) {
  {
    auto boot = server().connect("postgres");
    core::Registry::open(boot);
  }
  auto a = server().connect(core::k_registry_database);
  const std::string key = "previewdb:test:heartbeat";
  ASSERT_TRUE(db::lease::try_lock_name(a, key));
  auto until = [&] {
    return server()
        .connect(core::k_registry_database)
        .exec("SELECT expires_at::text FROM _previewdb.name_lock WHERE name = $1", {key})
        .get(0, 0);
  };
  std::string first = until();
  // The heartbeat runs every third of the lease (10 s).
  std::this_thread::sleep_for(db::lease::k_name_lease / 3 + std::chrono::seconds(2));
  EXPECT_GT(until(), first) << "the lease was not extended";
  db::lease::unlock_name(a, key);
}

TEST_F(LeaseLocks, ASpawnWaitsForTheLeaseRowOfItsNameAndTimesOutNamingTheHolder) {
  plant(core::k_registry_database, "previewdb:spawn:pr_7", "now() + interval '1 hour'");
  auto waited = run_cli({"spawn", "--pr", "7"}, env({{"PREVIEWDB_LOCK_TIMEOUT", "2s"}}), outside());
  EXPECT_EQ(waited.code, 8) << waited.all();
  EXPECT_THAT(waited.err, HasSubstr("database \"pr_7\""));
  EXPECT_THAT(waited.err, HasSubstr("ci-runner-7:4242")) << "names the holder";
  EXPECT_FALSE(server().database_exists("pr_7"));

  // Without the forced lease form the row means nothing (PostgreSQL's advisory lock is free).
  auto advisory = run_cli(
      {"spawn", "--pr", "7"},
      env({{"PREVIEWDB_FORCE_LEASE_LOCKS", std::nullopt}, {"PREVIEWDB_LOCK_TIMEOUT", "2s"}}),
      outside());
  EXPECT_EQ(advisory.code, 0) << advisory.all();
}

TEST_F(LeaseLocks, AKilledHoldersLeaseRunsOutAndTheNextRunProceeds) {
  plant(core::k_registry_database, "previewdb:spawn:pr_8", "now() + interval '3 seconds'");
  auto start = std::chrono::steady_clock::now();
  auto r = run_cli({"spawn", "--pr", "8"}, env({{"PREVIEWDB_LOCK_TIMEOUT", "30s"}}), outside());
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_GE(took, std::chrono::seconds(2)) << "it waited for the lease";
  EXPECT_TRUE(server().database_exists("pr_8"));
  EXPECT_EQ(count(core::k_registry_database,
                  "SELECT count(*) FROM _previewdb.name_lock WHERE holder <> 'dead-token'"),
            0)
      << "its own rows given back";
}

TEST_F(LeaseLocks, TwoConcurrentSpawnsOfOneName) {
  test::CliResult a, b;
  std::thread ta([&] { a = run_cli({"spawn", "--pr", "9"}, env(), outside()); });
  std::thread tb([&] { b = run_cli({"spawn", "--pr", "9"}, env(), outside()); });
  ta.join();
  tb.join();
  // One makes it; the other waited for the name's row and then found it made (today's rule:
  // exit 5, "already exists").
  std::vector<int> codes = {a.code, b.code};
  std::sort(codes.begin(), codes.end());
  EXPECT_EQ(codes, (std::vector<int>{0, 5})) << a.all() << "\n---\n" << b.all();
  const auto& loser = a.code == 5 ? a : b;
  EXPECT_THAT(loser.err, HasSubstr("already exists"));
  EXPECT_EQ(count("pr_9", "SELECT count(*) FROM items"), 1);
  EXPECT_EQ(count(core::k_registry_database, "SELECT count(*) FROM _previewdb.name_lock"), 0);
  EXPECT_EQ(advisory_locks_held(), 0) << "no advisory lock taken in the lease form";
}

TEST_F(LeaseLocks, CleanupWaitsOutTheNameAndRefusesAHeldPreview) {
  ASSERT_EQ(run_cli({"spawn", "--pr", "10"}, env(), outside()).code, 0);
  // A shared use row of a running build (hold_database): cleanup refuses, naming it.
  plant(core::k_registry_database, "previewdb:use:pr_10\nsome-build-token",
        "now() + interval '1 hour'");
  auto kept = run_cli({"cleanup", "pr_10", "--yes"}, env());
  EXPECT_EQ(kept.code, 6) << kept.all();
  EXPECT_THAT(kept.err, HasSubstr("ci-runner-7:4242"));
  EXPECT_TRUE(server().database_exists("pr_10"));
  server().exec(core::k_registry_database, "DELETE FROM _previewdb.name_lock");
  auto dropped = run_cli({"cleanup", "pr_10", "--yes"}, env());
  EXPECT_EQ(dropped.code, 0) << dropped.all();
  EXPECT_FALSE(server().database_exists("pr_10"));
}

TEST_F(LeaseLocks, AKilledHoldsLeaseRunsOutWithinTheLease) {
  ASSERT_EQ(run_cli({"spawn", "--pr", "11"}, env(), outside()).code, 0);
  // `previewdb hold pr_11` keeps its shared use row until its stdin closes; killed instead.
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  int saved = ::dup(STDIN_FILENO);
  ::dup2(fds[0], STDIN_FILENO);
  int pid = test::start_cli({"hold", "pr_11"}, env());
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  ::close(fds[0]);
  auto rows = [] {
    return count(core::k_registry_database,
                 "SELECT count(*) FROM _previewdb.name_lock WHERE name LIKE 'previewdb:use:pr_11' "
                 "|| chr(10) || '%'");
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (rows() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(rows(), 1) << "the hold never wrote its row";
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(fds[1]);

  auto kept = run_cli({"cleanup", "pr_11", "--yes"}, env());
  EXPECT_EQ(kept.code, 6) << "the dead hold's lease is still live: " << kept.all();
  EXPECT_TRUE(server().database_exists("pr_11"));
  // Nobody extends it now: it runs out within the lease (30 s), and cleanup proceeds.
  auto start = std::chrono::steady_clock::now();
  test::CliResult dropped;
  while (std::chrono::steady_clock::now() - start <
         db::lease::k_name_lease + std::chrono::seconds(10)) {
    dropped = run_cli({"cleanup", "pr_11", "--yes"}, env());
    if (dropped.code == 0) break;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  EXPECT_EQ(dropped.code, 0) << dropped.all();
  EXPECT_FALSE(server().database_exists("pr_11"));
}

TEST(LeaseRegistry, TheRegistrySchemaIsMadeUnderTheLeaseLock) {
  server().reset();
  server().exec("postgres", std::string("DROP DATABASE IF EXISTS ") + core::k_registry_database);
  server().exec("postgres", std::string("CREATE DATABASE ") + core::k_registry_database);
  plant(core::k_registry_database, "previewdb:registry-schema", "now() + interval '1 hour'");
  auto waited = run_cli({"list"}, env({{"PREVIEWDB_LOCK_TIMEOUT", "2s"}}));
  EXPECT_EQ(waited.code, 8) << waited.all();
  EXPECT_THAT(waited.err, HasSubstr("the schema of previewdb_registry"));
  EXPECT_THAT(waited.err, HasSubstr("ci-runner-7:4242"));
  EXPECT_EQ(count(core::k_registry_database,
                  "SELECT count(*) FROM pg_tables WHERE schemaname = 'registry'"),
            0)
      << "nothing made while another run makes it";

  server().exec(core::k_registry_database, "DELETE FROM _previewdb.name_lock");
  test::CliResult a, b;
  std::thread ta([&] { a = run_cli({"list"}, env()); });
  std::thread tb([&] { b = run_cli({"list"}, env()); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.code, 0) << a.all();
  EXPECT_EQ(b.code, 0) << b.all();
  EXPECT_EQ(count(core::k_registry_database,
                  "SELECT count(*) FROM pg_tables WHERE schemaname = 'registry' AND "
                  "tablename = 'databases'"),
            1);
  EXPECT_EQ(count(core::k_registry_database, "SELECT count(*) FROM _previewdb.name_lock"), 0);
}

TEST(LeaseDoctor, DoctorChecksTheLeaseNameLock) {
  server().reset();
  auto r = run_cli({"doctor"}, env());
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("the lease-row name lock keeps a second session out"));
  EXPECT_THAT(r.out, HasSubstr("lease-row migration lock"));
}

}  // namespace
