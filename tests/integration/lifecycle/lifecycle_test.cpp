// The preview-database lifecycle against a real PostgreSQL: snapshot, spawn, list, cleanup.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "harness/harness.hpp"
#include "util/files.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class Lifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev",
                  "CREATE TABLE items(id int primary key, name text);"
                  "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;");
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static test::Env env(test::Env extra = {}) {
    test::Env e = {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_USER", "alice"}};
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
  static std::string snapshot() {
    auto r = run_cli({"snapshot"}, env());
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  static long long count_items(const std::string& db) {
    return server().connect(db).exec("SELECT count(*) FROM items").get_int(0, 0);
  }
  static nlohmann::json list_json() {
    auto r = run_cli({"list", "--json"}, env());
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }
  static nlohmann::json find(const nlohmann::json& list, const std::string& name) {
    for (const auto& d : list) {
      if (d["name"] == name) return d;
    }
    return nullptr;
  }
};

TEST_F(Lifecycle, SnapshotSpawnListCleanupRoundTripWithData) {
  std::string snap = snapshot();
  EXPECT_THAT(snap, ::testing::StartsWith("snap_dev_"));
  auto conn = server().connect();
  auto r =
      conn.exec("SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1", {snap});
  ASSERT_EQ(r.rows(), 1);
  EXPECT_TRUE(r.get_bool(0, 0)) << "a snapshot is a template";
  EXPECT_FALSE(r.get_bool(0, 1)) << "a snapshot is not connectable";

  // Changes to dev after the snapshot do not reach the clone: it is point-in-time.
  server().exec("dev", "INSERT INTO items VALUES (1000, 'after')");
  auto spawned = run_cli({"spawn", "checkout", "--branch", "feature/checkout"}, env());
  ASSERT_EQ(spawned.code, 0) << spawned.err;
  EXPECT_THAT(spawned.out, HasSubstr("/dev_alice_checkout"));
  EXPECT_EQ(count_items("dev_alice_checkout"), 100);
  // The printed URL connects.
  std::string url = spawned.out.substr(0, spawned.out.find('\n'));
  EXPECT_EQ(
      db::Connection::open({.conninfo = url}).exec("SELECT count(*) FROM items").get_int(0, 0),
      100);

  auto list = list_json();
  auto d = find(list, "dev_alice_checkout");
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["kind"], "personal");
  EXPECT_EQ(d["managed"], true);
  EXPECT_EQ(d["created_by"], "alice");
  EXPECT_EQ(d["branch"], "feature/checkout");
  EXPECT_EQ(d["snapshot"], snap);
  EXPECT_TRUE(d["pr_number"].is_null());
  EXPECT_GT(d["size_bytes"].get<long long>(), 0);
  for (const char* key : {"name", "kind", "managed", "created_at", "created_by", "pr_number",
                          "branch", "snapshot", "size_bytes"}) {
    EXPECT_TRUE(d.contains(key)) << key;
  }
  EXPECT_EQ(find(list, "dev")["managed"], false);
  EXPECT_EQ(find(list, snap)["kind"], "snapshot");

  auto text = run_cli({"list"}, env());
  EXPECT_EQ(text.code, 0);
  EXPECT_THAT(text.out, HasSubstr("Personal (1)"));
  EXPECT_THAT(text.out, HasSubstr("Snapshots (1)"));
  EXPECT_THAT(text.out, HasSubstr("Development (1)"));

  auto cleaned = run_cli({"cleanup", "checkout", "--yes"}, env());
  EXPECT_EQ(cleaned.code, 0) << cleaned.err;
  EXPECT_EQ(cleaned.out, "dev_alice_checkout\n");
  EXPECT_FALSE(server().database_exists("dev_alice_checkout"));
  EXPECT_TRUE(server().database_exists(snap)) << "cleanup never drops snapshots";
}

TEST_F(Lifecycle, SpawnPrMetadataAndReuseReplace) {
  snapshot();
  auto first = run_cli({"spawn", "--pr", "12", "--json"}, env());
  ASSERT_EQ(first.code, 0) << first.err;
  auto j = nlohmann::json::parse(first.out);
  EXPECT_EQ(j["name"], "pr_12");
  EXPECT_EQ(j["created"], true);
  server().exec("pr_12", "INSERT INTO items VALUES (5000, 'mine')");

  auto again = run_cli({"spawn", "--pr", "12"}, env());
  EXPECT_EQ(again.code, 5);
  EXPECT_THAT(again.err,
              HasSubstr("cannot create database \"pr_12\": database \"pr_12\" already exists"));
  EXPECT_THAT(again.err, HasSubstr("hint: run 'previewdb cleanup pr_12' or pass --reuse"));

  auto reused = run_cli({"spawn", "--pr", "12", "--reuse", "--json"}, env());
  ASSERT_EQ(reused.code, 0) << reused.err;
  EXPECT_EQ(nlohmann::json::parse(reused.out)["created"], false);
  EXPECT_EQ(count_items("pr_12"), 101) << "--reuse keeps the data";

  auto replaced = run_cli({"spawn", "--pr", "12", "--replace"}, env());
  ASSERT_EQ(replaced.code, 0) << replaced.err;
  EXPECT_EQ(count_items("pr_12"), 100) << "--replace re-creates from the snapshot";

  auto d = find(list_json(), "pr_12");
  EXPECT_EQ(d["kind"], "pr");
  EXPECT_EQ(d["pr_number"], 12);

  // --reuse of a database that belongs to someone else (another user's personal db) is refused.
  ASSERT_EQ(run_cli({"spawn", "shared", "--user", "bob"}, env()).code, 0);
  auto theirs = run_cli({"spawn", "--name", "dev_bob_shared", "--reuse"}, env());
  EXPECT_EQ(theirs.code, 6);
  EXPECT_THAT(theirs.err, HasSubstr("belongs to bob"));
}

TEST_F(Lifecycle, NoSnapshotIsAClearError) {
  auto r = run_cli({"spawn", "feature"}, env());
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("no snapshot of 'dev' found"));
  EXPECT_THAT(r.err, HasSubstr("hint: run 'previewdb snapshot"));
  EXPECT_FALSE(server().database_exists("dev_alice_feature"));
}

TEST_F(Lifecycle, SnapshotOfABusySourceCopiesOnline) {
  auto busy = server().connect("dev");  // an open session blocks CREATE DATABASE ... TEMPLATE dev
  auto r = run_cli({"snapshot"}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("copying it online with pg_dump | pg_restore"));
  std::string snap = r.out.substr(0, r.out.find('\n'));
  ASSERT_EQ(run_cli({"spawn", "busy"}, env()).code, 0);
  EXPECT_EQ(count_items("dev_alice_busy"), 100);
}

TEST_F(Lifecycle, SnapshotOfMissingSource) {
  auto r = run_cli({"snapshot", "nosuchdb"}, env());
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("cannot snapshot \"nosuchdb\": database does not exist"));
}

TEST_F(Lifecycle, SnapshotListPruneAndWarning) {
  std::vector<std::string> snaps;
  for (int i = 0; i < 6; ++i) {
    auto r = run_cli({"snapshot"}, env());
    ASSERT_EQ(r.code, 0) << r.err;
    snaps.push_back(r.out.substr(0, r.out.find('\n')));
    if (i == 5) {
      EXPECT_THAT(r.err, HasSubstr("6 snapshots of 'dev' exist"));
    }
  }
  auto list = run_cli({"snapshot", "list", "--json"}, env());
  ASSERT_EQ(list.code, 0);
  auto arr = nlohmann::json::parse(list.out);
  ASSERT_EQ(arr.size(), 6u);
  EXPECT_EQ(arr[0]["id"], snaps.back()) << "newest first";

  auto dry = run_cli({"snapshot", "prune", "--keep", "2", "--dry-run"}, env());
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_THAT(dry.err, HasSubstr("would drop"));
  EXPECT_EQ(nlohmann::json::parse(run_cli({"snapshot", "list", "--json"}, env()).out).size(), 6u);

  auto refused = run_cli({"snapshot", "prune", "--keep", "2"}, env());
  EXPECT_EQ(refused.code, 6) << "no terminal and no --yes";
  EXPECT_THAT(refused.err, HasSubstr("pass --yes"));

  auto pruned = run_cli({"snapshot", "prune", "--keep", "2", "--yes"}, env());
  EXPECT_EQ(pruned.code, 0) << pruned.err;
  auto left = nlohmann::json::parse(run_cli({"snapshot", "list", "--json"}, env()).out);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0]["id"], snaps[5]);
  EXPECT_EQ(left[1]["id"], snaps[4]);
  // spawn uses the newest.
  ASSERT_EQ(run_cli({"spawn", "x"}, env()).code, 0);
  EXPECT_EQ(find(list_json(), "dev_alice_x")["snapshot"], snaps[5]);
}

TEST_F(Lifecycle, FileStoreArchiveMovesBetweenDatabases) {
  util::TempDir store;
  auto r = run_cli({"snapshot", "--to", "file://" + store.path().string()}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  std::string snap = r.out.substr(0, r.out.find('\n'));
  EXPECT_TRUE(std::filesystem::exists(store.path() / (snap + ".dump")));
  EXPECT_TRUE(std::filesystem::exists(store.path() / (snap + ".json")));
  auto spawned =
      run_cli({"spawn", "fromfile", "--snapshot", "file://" + store.path().string()}, env());
  ASSERT_EQ(spawned.code, 0) << spawned.err;
  EXPECT_EQ(count_items("dev_alice_fromfile"), 100);
  auto bad = run_cli({"snapshot", "--to", "s3://bucket/x"}, env());
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("s3://bucket needs credentials"));
}

TEST_F(Lifecycle, InvalidNamesAreRejectedBeforeAnySql) {
  snapshot();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Upper", "uppercase letter 'U'"},
      {std::string(64 - 10, 'a'), "bytes long; PostgreSQL allows at most 63"},
      {"pr_1; drop database dev", "character ';'"},
      {"it's", "character '''"},
      {"quote\"d", "character '\"'"},
      {"caf\xc3\xa9", "non-ASCII character"},
      {"", "is empty"},
  };
  for (const auto& [feature, message] : cases) {
    auto r = run_cli({"spawn", feature}, env());
    EXPECT_EQ(r.code, 2) << feature;
    EXPECT_THAT(r.err, HasSubstr(message)) << feature;
    EXPECT_THAT(r.err, HasSubstr("lowercase letters a-z, digits 0-9")) << feature;
  }
  auto longname = run_cli({"spawn", "--name", std::string(64, 'a')}, env());
  EXPECT_EQ(longname.code, 2);
  EXPECT_THAT(longname.err, HasSubstr("is 64 bytes long"));
  auto injected = run_cli({"cleanup", "pr_1; drop database dev", "--yes"}, env());
  EXPECT_EQ(injected.code, 2);
  EXPECT_TRUE(server().database_exists("dev"));
  auto badpr = run_cli({"spawn", "--pr", "abc"}, env());
  EXPECT_EQ(badpr.code, 2);
  EXPECT_THAT(badpr.err, HasSubstr("invalid --pr \"abc\""));
  // Nothing half-made was left behind by any of these.
  auto all = server().connect().exec(
      "SELECT count(*) FROM pg_database WHERE datname NOT IN "
      "('postgres','template0','template1','dev','previewdb_registry') "
      "AND datname NOT LIKE 'snap_%'");
  EXPECT_EQ(all.get_int(0, 0), 0);
}

TEST_F(Lifecycle, ProtectedNamesByNameAndByPattern) {
  std::string snap = snapshot();
  server().exec("postgres", "CREATE DATABASE staging");
  for (const char* name : {"dev", "postgres", "prod"}) {
    auto r = run_cli({"spawn", "--name", name, "--replace"}, env());
    EXPECT_EQ(r.code, 6) << name;
    EXPECT_THAT(r.err, HasSubstr("it is protected")) << name;
  }
  auto named = run_cli({"cleanup", "dev", "--yes", "--include-unmanaged"}, env());
  EXPECT_EQ(named.code, 6);
  EXPECT_THAT(named.err, HasSubstr("skipping dev: protected"));
  EXPECT_TRUE(server().database_exists("dev"));

  ASSERT_EQ(run_cli({"spawn", "--pr", "3"}, env()).code, 0);
  auto pattern = run_cli(
      {"cleanup", "--pattern", ".*", "--yes", "--include-unmanaged", "--protect", "staging"},
      env());
  EXPECT_EQ(pattern.code, 0) << pattern.err;
  EXPECT_THAT(pattern.err, HasSubstr("skipping dev: protected"));
  EXPECT_THAT(pattern.err, HasSubstr("skipping postgres: protected"));
  EXPECT_THAT(pattern.err, HasSubstr("skipping staging: protected"));
  EXPECT_THAT(pattern.err, HasSubstr("skipping " + snap + ": a snapshot"));
  EXPECT_EQ(pattern.out, "pr_3\n");
  for (const char* name : {"dev", "postgres", "staging"}) {
    EXPECT_TRUE(server().database_exists(name)) << name;
  }
  EXPECT_TRUE(server().database_exists(snap));

  // Protection from the environment and the config file too.
  auto byenv = run_cli({"cleanup", "staging", "--include-unmanaged", "--yes"},
                       env({{"PREVIEWDB_PROTECT", "other,staging"}}));
  EXPECT_EQ(byenv.code, 6);
  EXPECT_TRUE(server().database_exists("staging"));
}

TEST_F(Lifecycle, UnmanagedAndForeignCommentsAreToleratedAndKept) {
  snapshot();
  auto conn = server().connect();
  conn.exec("CREATE DATABASE pr_99");  // looks like ours, is not
  conn.exec("CREATE DATABASE foreign_json");
  conn.exec("COMMENT ON DATABASE foreign_json IS '{\"tool\":\"other\",\"kind\":\"pr\"}'");
  conn.exec("CREATE DATABASE broken_json");
  conn.exec("COMMENT ON DATABASE broken_json IS '{not json'");
  conn.exec("CREATE DATABASE wrong_types");
  conn.exec(
      "COMMENT ON DATABASE wrong_types IS "
      "'{\"tool\":\"previewdb\",\"kind\":7,\"created_at\":[]}'");
  auto list = list_json();
  for (const char* name : {"pr_99", "foreign_json", "broken_json", "wrong_types"}) {
    EXPECT_EQ(find(list, name)["managed"], false) << name;
  }
  auto r = run_cli({"cleanup", "--pattern", ".*", "--yes"}, env());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("skipping pr_99: unmanaged"));
  for (const char* name : {"pr_99", "foreign_json", "broken_json", "wrong_types"}) {
    EXPECT_TRUE(server().database_exists(name)) << name;
  }
  auto reuse = run_cli({"spawn", "--pr", "99", "--reuse"}, env());
  EXPECT_EQ(reuse.code, 6);
  EXPECT_THAT(reuse.err, HasSubstr("is not managed by previewdb"));
  auto byname = run_cli({"cleanup", "--pr", "99", "--yes", "--include-unmanaged"}, env());
  EXPECT_EQ(byname.code, 0) << byname.err;
  EXPECT_FALSE(server().database_exists("pr_99"));
}

TEST_F(Lifecycle, CleanupByAgeDryRunAndConfirmation) {
  snapshot();
  ASSERT_EQ(run_cli({"spawn", "old"}, env()).code, 0);
  ASSERT_EQ(run_cli({"spawn", "new"}, env()).code, 0);
  // Age the first one (created in 2020).
  auto conn = server().connect();
  auto comment = conn.exec(
                         "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                         "WHERE datname = 'dev_alice_old'")
                     .get(0, 0);
  auto j = nlohmann::json::parse(comment);
  j["created_at"] = "2020-01-01T00:00:00Z";
  conn.exec("COMMENT ON DATABASE dev_alice_old IS " + conn.quote_literal(j.dump()));
  // The age that counts is the registry's (a comment grants nothing).
  server().exec("previewdb_registry",
                "UPDATE registry.databases SET created_at = '2020-01-01T00:00:00Z' "
                "WHERE name = 'dev_alice_old'");

  auto dry = run_cli({"cleanup", "--older-than", "7d", "--dry-run", "--json"}, env());
  ASSERT_EQ(dry.code, 0) << dry.err;
  auto out = nlohmann::json::parse(dry.out);
  EXPECT_EQ(out["would_drop"], nlohmann::json::array({"dev_alice_old"}));
  EXPECT_TRUE(server().database_exists("dev_alice_old"));

  auto noterm = run_cli({"cleanup", "--older-than", "7"}, env());
  EXPECT_EQ(noterm.code, 6);
  EXPECT_THAT(noterm.err, HasSubstr("refusing to drop 1 database(s) without confirmation"));
  EXPECT_TRUE(server().database_exists("dev_alice_old"));

  for (const char* bad : {"7x", "abc", "-3"}) {
    auto r = run_cli({"cleanup", "--older-than", bad}, env());
    EXPECT_EQ(r.code, 2) << bad;
    EXPECT_THAT(r.err, HasSubstr("for --older-than"));
  }
  auto badre = run_cli({"cleanup", "--pattern", "(", "--dry-run"}, env());
  EXPECT_EQ(badre.code, 2);
  EXPECT_THAT(badre.err, HasSubstr("invalid --pattern"));

  auto done = run_cli({"cleanup", "--older-than", "12h", "--yes"}, env());
  EXPECT_EQ(done.code, 0) << done.err;
  EXPECT_EQ(done.out, "dev_alice_old\n");
  EXPECT_TRUE(server().database_exists("dev_alice_new"));

  auto missing = run_cli({"cleanup", "nosuch", "--yes"}, env());
  EXPECT_EQ(missing.code, 4);
  auto nothing = run_cli({"cleanup"}, env());
  EXPECT_EQ(nothing.code, 2);
  EXPECT_THAT(nothing.err, HasSubstr("cleanup needs something to select"));
}

TEST_F(Lifecycle, UpdateEnvAndRestoreEnv) {
  snapshot();
  util::TempDir dir;
  auto envfile = dir.path() / ".env";
  util::write_file_atomic(envfile, "# app\nDATABASE_URL=postgresql://orig/app\nOTHER=1\n");
  auto r = run_cli({"spawn", "envtest", "--update-env", envfile.string()}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  std::string text = util::read_file(envfile);
  EXPECT_THAT(text, HasSubstr("DATABASE_URL=" + r.out.substr(0, r.out.find('\n'))));
  EXPECT_THAT(text, HasSubstr("PREVIEWDB_PREVIOUS_DATABASE_URL=postgresql://orig/app"));
  EXPECT_THAT(text, HasSubstr("OTHER=1"));
  auto c = run_cli({"cleanup", "envtest", "--yes", "--restore-env", envfile.string()}, env());
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(util::read_file(envfile), "# app\nDATABASE_URL=postgresql://orig/app\nOTHER=1\n");
}

TEST_F(Lifecycle, ConcurrentSpawnsOfOneName) {
  snapshot();
  auto run_many = [](const std::vector<std::string>& args) {
    std::vector<std::thread> threads;
    std::vector<test::CliResult> results(8);
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] { results[i] = run_cli(args, env()); });
    }
    for (auto& t : threads) t.join();
    return results;
  };
  auto plain = run_many({"spawn", "--pr", "7"});
  int ok = 0, exists = 0;
  for (const auto& r : plain) {
    if (r.code == 0)
      ++ok;
    else if (r.code == 5)
      ++exists;
    else
      ADD_FAILURE() << r.code << " " << r.err;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(exists, 7);
  EXPECT_EQ(count_items("pr_7"), 100);

  auto reuse = run_many({"spawn", "--pr", "8", "--reuse", "--json"});
  int created = 0;
  for (const auto& r : reuse) {
    ASSERT_EQ(r.code, 0) << r.err;
    if (nlohmann::json::parse(r.out)["created"] == true) ++created;
  }
  EXPECT_EQ(created, 1);
  auto temps = server().connect().exec(
      "SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb_tmp_%'");
  EXPECT_EQ(temps.get_int(0, 0), 0);
}

TEST_F(Lifecycle, KilledSpawnLeavesNothingThatLooksReady) {
  // A snapshot large enough that cloning it takes a moment.
  server().exec("dev",
                "CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad "
                "FROM generate_series(1, 400000) g");
  snapshot();
  auto conn = server().connect();
  int pid = test::start_cli({"spawn", "--pr", "42", "--strategy", "wal_log"}, env());
  // Kill it while the server is copying into the temporary database.
  bool seen = false;
  std::string backend;  // the killed spawn's server process, which holds its build lock
  for (int i = 0; i < 2000 && !seen; ++i) {
    auto r = conn.exec(
        "SELECT pid FROM pg_stat_activity WHERE query LIKE "
        "'CREATE DATABASE \"previewdb_tmp_%'");
    seen = r.rows() > 0;
    if (seen) backend = r.get(0, 0);
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(seen) << "did not catch the spawn mid-copy";
  EXPECT_FALSE(server().database_exists("pr_42")) << "a killed spawn must not leave pr_42";

  // Wait for the orphaned backend to finish its copy and exit: it notices the dead client only
  // then, and until it exits it holds the build lock, so a janitor rightly leaves its database
  // alone. Then the next run cleans up.
  for (int i = 0; i < 1500 && !backend.empty(); ++i) {
    auto r = conn.exec("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", {backend});
    if (r.get_int(0, 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto next = run_cli({"spawn", "--pr", "42"}, env());
  EXPECT_EQ(next.code, 0) << next.err;
  EXPECT_EQ(count_items("pr_42"), 100);
  auto temps = conn.exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb_tmp_%'");
  EXPECT_EQ(temps.get_int(0, 0), 0) << "the next run removes what the killed one left";
}

TEST_F(Lifecycle, UnreachableServerSaysWhatToCheck) {
  auto r = run_cli({"list"}, {{"DATABASE_URL", "postgresql://app:topsecret@127.0.0.1:1/db"}});
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("cannot connect to postgresql://app:***@127.0.0.1:1/db"));
  EXPECT_THAT(r.err, HasSubstr("hint: check --database-url, DATABASE_URL"));
  EXPECT_THAT(r.all(), Not(HasSubstr("topsecret")));
  auto wrongpw =
      run_cli({"list"}, {{"DATABASE_URL", "postgresql://previewdb:wrongpassword@127.0.0.1:" +
                                              std::to_string(server().port()) + "/postgres"}});
  EXPECT_EQ(wrongpw.code, 3);
  EXPECT_THAT(wrongpw.err, HasSubstr("password authentication failed"));
  EXPECT_THAT(wrongpw.all(), Not(HasSubstr("wrongpassword")));
  auto flagpw = run_cli({"list", "--database-url", server().url("postgres")}, {});
  EXPECT_EQ(flagpw.code, 2);
  EXPECT_THAT(flagpw.err, HasSubstr("--database-url must not contain a password"));
  EXPECT_THAT(flagpw.err, HasSubstr("hint: put the URL in DATABASE_URL instead"));
  EXPECT_THAT(flagpw.all(), Not(HasSubstr(server().password())));
  auto flag_env_pw = run_cli({"list", "--database-url", server().url_without_password("postgres")},
                             {{"PGPASSWORD", server().password()}});
  EXPECT_EQ(flag_env_pw.code, 0) << flag_env_pw.err;
  auto garbage = run_cli({"list", "--database-url", "postgresql://[bad"}, {});
  EXPECT_EQ(garbage.code, 2);
  EXPECT_THAT(garbage.err, HasSubstr("invalid connection string"));
}

TEST_F(Lifecycle, PasswordNeverInLogs) {
  snapshot();
  auto r = run_cli({"spawn", "secret", "-v"}, env());
  ASSERT_EQ(r.code, 0);
  EXPECT_THAT(r.err, Not(HasSubstr(server().password())));
  // stdout is the result: the URL the user asked for.
  EXPECT_THAT(r.out, HasSubstr(server().password()));
}

TEST_F(Lifecycle, LocalStopWithNoServerSaysSoAndCreatesNothing) {
  // Stopping is idempotent: no home (never started here) is not an error, and nothing is made.
  util::TempDir dir;
  auto r = run_cli({"local", "stop"}, {}, dir.path().string());
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_THAT(r.err, HasSubstr("nothing to stop"));
  EXPECT_THAT(r.err, HasSubstr(".previewdb"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / ".previewdb"));
}

TEST_F(Lifecycle, EmbeddedDefaultFromAnEmptyDirectory) {
  util::TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  auto list = run_cli({"list", "--json"}, {}, dir.path().string());
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_FALSE(find(nlohmann::json::parse(list.out), "dev").is_null())
      << "the local server has a dev database from the start";
  // .previewdb keeps itself out of git.
  EXPECT_THAT(util::read_file(dir.path() / ".previewdb" / ".gitignore"), HasSubstr("\n*\n"));
  auto snap = run_cli({"snapshot"}, {{"PREVIEWDB_USER", "zed"}}, dir.path().string());
  ASSERT_EQ(snap.code, 0) << snap.err;
  auto spawned = run_cli({"spawn", "local"}, {{"PREVIEWDB_USER", "zed"}}, dir.path().string());
  ASSERT_EQ(spawned.code, 0) << spawned.err;
  EXPECT_THAT(spawned.out, HasSubstr("dev_zed_local"));
  auto url = spawned.out.substr(0, spawned.out.find('\n'));
  EXPECT_NO_THROW(db::Connection::open({.conninfo = url}));
  auto status = run_cli({"local", "status"}, {}, dir.path().string());
  EXPECT_THAT(status.out, HasSubstr("running"));
  EXPECT_EQ(run_cli({"local", "stop"}, {}, dir.path().string()).code, 0);
  EXPECT_THAT(run_cli({"local", "status"}, {}, dir.path().string()).out, HasSubstr("stopped"));
}

}  // namespace

namespace {
TEST_F(Lifecycle, PrismaStyleDatabaseUrlWorks) {
  snapshot();
  server().exec("dev", "CREATE SCHEMA app; CREATE TABLE app.only_in_app(x int)");
  auto prisma_env =
      env({{"DATABASE_URL",
            server().url("postgres") + "?schema=public&pgbouncer=false&connection_limit=5"}});
  auto list = run_cli({"list"}, prisma_env);
  EXPECT_EQ(list.code, 0) << list.err;
  auto spawned = run_cli({"spawn", "prisma"}, prisma_env);
  ASSERT_EQ(spawned.code, 0) << spawned.err;
  EXPECT_THAT(spawned.out,
              HasSubstr("/dev_alice_prisma?schema=public&pgbouncer=false&connection_limit=5"));
  // schema= is Prisma's search path: previewdb's own connections honour it.
  auto conn = db::Connection::open({.conninfo = server().url("dev") + "?schema=app"});
  EXPECT_EQ(conn.exec("SHOW search_path").get(0, 0), "app");
  EXPECT_EQ(conn.exec("SELECT count(*) FROM only_in_app").get_int(0, 0), 0);
}
}  // namespace

namespace {
TEST_F(Lifecycle, BadSnapshotArchivesAndEnvFilesLeaveNothingBehind) {
  snapshot();
  util::TempDir store;
  util::write_file_atomic(store.path() / "snap_dev_20200101_000000.dump", "not an archive");
  auto r = run_cli({"spawn", "broken", "--snapshot",
                    "file://" + (store.path() / "snap_dev_20200101_000000.dump").string()},
                   env());
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot restore"));
  EXPECT_FALSE(server().database_exists("dev_alice_broken"));
  auto temps = server().connect().exec(
      "SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb_tmp_%'");
  EXPECT_EQ(temps.get_int(0, 0), 0);

  auto missing = run_cli({"spawn", "x", "--snapshot", "snap_dev_19990101_000000"}, env());
  EXPECT_EQ(missing.code, 4);
  EXPECT_THAT(missing.err, HasSubstr("no snapshot \"snap_dev_19990101_000000\" found"));

  auto badenv = run_cli({"spawn", "envless", "--update-env", "/nonexistent/dir/.env"}, env());
  EXPECT_EQ(badenv.code, 2);
  EXPECT_THAT(badenv.err, HasSubstr("folder \"/nonexistent/dir\" does not exist"));
  EXPECT_FALSE(server().database_exists("dev_alice_envless"));
}
}  // namespace
