// What previewdb manages rests only on its registry (previewdb_registry), which only its own role
// can write: one test per way a database owner could forge or steal management (a forged snapshot
// comment, a renamed preview, a squatted pr_<N>, a re-created name, a user's previewdb_tmp_*), and
// the adoption of previews made before the registry. Roles are created on the real server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/git_repo.hpp"
#include "harness/harness.hpp"
#include "util/time.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const std::string k_mallory_password = "mallory-pw-5521";

class Trust : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev",
                  "CREATE TABLE items(id int primary key, name text);"
                  "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;");
    // A role with only LOGIN CREATEDB: anyone a server hands out databases to.
    server().exec("postgres", "DO $$ BEGIN CREATE ROLE mallory LOGIN CREATEDB PASSWORD '" +
                                  k_mallory_password +
                                  "'; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static db::Connection mallory(const std::string& dbname = "postgres") {
    return db::Connection::open({.conninfo = "postgresql://mallory:" + k_mallory_password +
                                             "@127.0.0.1:" + std::to_string(server().port()) + "/" +
                                             dbname});
  }
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
  static std::string comment_of(const std::string& db) {
    return server()
        .connect()
        .exec("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
              {db})
        .get(0, 0);
  }
  // previewdb's own comment for a snapshot of dev, dated `minutes` from now.
  static std::string snapshot_comment(int minutes) {
    nlohmann::json j = {{"tool", "previewdb"},
                        {"kind", "snapshot"},
                        {"created_at", util::to_iso8601(std::chrono::system_clock::now() +
                                                        std::chrono::minutes(minutes))},
                        {"created_by", "alice"},
                        {"pr_number", nullptr},
                        {"branch", nullptr},
                        {"snapshot", nullptr},
                        {"source", "dev"}};
    return j.dump();
  }
};

}  // namespace

TEST_F(Trust, AForgedSnapshotCommentIsNeverCloned) {
  // Mallory's database, dressed as the newest snapshot of dev (dated a minute from now, which
  // is plausible, not 2099), with a trigger waiting for whoever migrates a clone.
  auto m = mallory();
  m.exec("CREATE DATABASE evil");
  mallory("evil").exec("CREATE TABLE items(id int primary key, name text)");
  m.exec("COMMENT ON DATABASE evil IS " + m.quote_literal(snapshot_comment(1)));
  m.exec("ALTER DATABASE evil IS_TEMPLATE true");

  auto none = run_cli({"spawn", "feature"}, env());
  EXPECT_EQ(none.code, 4) << none.all();
  EXPECT_THAT(none.err, HasSubstr("no snapshot of 'dev' found"));

  std::string snap = snapshot();
  auto spawned = run_cli({"spawn", "feature", "--json"}, env());
  ASSERT_EQ(spawned.code, 0) << spawned.all();
  EXPECT_EQ(nlohmann::json::parse(spawned.out)["snapshot"], snap);
  EXPECT_EQ(server().connect("dev_alice_feature").exec("SELECT count(*) FROM items").get_int(0, 0),
            100);
  auto by_id = run_cli({"spawn", "other", "--snapshot", "evil"}, env());
  EXPECT_EQ(by_id.code, 4) << by_id.all();

  auto list = list_json();
  EXPECT_EQ(find(list, "evil")["managed"], false);
  EXPECT_NE(find(list, "evil")["kind"], "snapshot");
  auto snaps = run_cli({"snapshot", "list", "--json"}, env());
  EXPECT_THAT(snaps.out, Not(HasSubstr("evil")));
  // Pruning to one keeps the real snapshot and never touches mallory's database.
  auto prune = run_cli({"snapshot", "prune", "--keep", "1", "--yes"}, env());
  EXPECT_EQ(prune.code, 0) << prune.all();
  EXPECT_TRUE(server().database_exists(snap));
  EXPECT_TRUE(server().database_exists("evil"));
}

TEST_F(Trust, ARenamedPreviewIsNotManagedUnderItsNewName) {
  std::string snap = snapshot();
  ASSERT_EQ(run_cli({"spawn", "--pr", "5"}, env()).code, 0);
  auto conn = server().connect();
  std::string comment = comment_of("pr_5");
  conn.exec("ALTER DATABASE pr_5 RENAME TO innocent");
  // The comment moves with the database, and whoever renamed it may back-date it too.
  auto j = nlohmann::json::parse(comment);
  j["created_at"] = "2020-01-01T00:00:00Z";
  conn.exec("COMMENT ON DATABASE innocent IS " + conn.quote_literal(j.dump()));
  conn.exec("ALTER DATABASE " + conn.quote_ident(snap) + " RENAME TO snap_renamed");

  auto list = list_json();
  EXPECT_EQ(find(list, "innocent")["managed"], false);
  EXPECT_EQ(find(list, "snap_renamed")["managed"], false);

  auto byname = run_cli({"cleanup", "innocent", "--yes"}, env());
  EXPECT_EQ(byname.code, 6) << byname.all();
  EXPECT_THAT(byname.err, HasSubstr("skipping innocent: unmanaged"));
  auto byage = run_cli({"cleanup", "--older-than", "7d", "--yes"}, env());
  EXPECT_EQ(byage.code, 0) << byage.all();
  auto prune = run_cli({"snapshot", "prune", "--keep", "0", "--yes"}, env());
  EXPECT_EQ(prune.code, 0) << prune.all();
  EXPECT_TRUE(server().database_exists("innocent"));
  EXPECT_TRUE(server().database_exists("snap_renamed"));
}

TEST_F(Trust, APrNameMadeByAnotherRoleIsNeitherReusedNorMigrated) {
  snapshot();
  auto m = mallory();
  m.exec("CREATE DATABASE pr_7");
  nlohmann::json j = {{"tool", "previewdb"},
                      {"kind", "pr"},
                      {"pr_number", 7},
                      {"created_at", util::to_iso8601(std::chrono::system_clock::now())},
                      {"created_by", "previewdb ci (generic)"},
                      {"branch", "feature"},
                      {"snapshot", nullptr}};
  m.exec("COMMENT ON DATABASE pr_7 IS " + m.quote_literal(j.dump()));

  test::GitRepos repos;
  auto ci = run_cli({"ci", "--provider", "generic", "--pr", "7", "--force"}, env(),
                    repos.work().string());
  EXPECT_EQ(ci.code, 6) << ci.all();
  EXPECT_THAT(ci.err,
              HasSubstr("database \"pr_7\" already exists and is not managed by previewdb"));
  EXPECT_THAT(ci.err, HasSubstr("owned by role \"mallory\""));
  auto replace = run_cli({"spawn", "--pr", "7", "--replace"}, env());
  EXPECT_EQ(replace.code, 6) << replace.all();
  EXPECT_TRUE(server().database_exists("pr_7"));
  // Nothing ran in it: no history schema.
  EXPECT_EQ(server()
                .connect("pr_7")
                .exec("SELECT count(*) FROM pg_namespace WHERE nspname = '_previewdb'")
                .get_int(0, 0),
            0);
}

TEST_F(Trust, ARecreatedNameIsNotManaged) {
  snapshot();
  ASSERT_EQ(run_cli({"spawn", "--pr", "8"}, env()).code, 0);
  ASSERT_EQ(run_cli({"spawn", "--pr", "9"}, env()).code, 0);
  std::string c8 = comment_of("pr_8"), c9 = comment_of("pr_9");
  auto conn = server().connect();
  conn.exec("DROP DATABASE pr_8");
  conn.exec("DROP DATABASE pr_9");
  // Re-created under the same names, comments copied: by another role, and by previewdb's own
  // role outside previewdb (a new oid either way).
  auto m = mallory();
  m.exec("CREATE DATABASE pr_8");
  m.exec("COMMENT ON DATABASE pr_8 IS " + m.quote_literal(c8));
  conn.exec("CREATE DATABASE pr_9");
  conn.exec("COMMENT ON DATABASE pr_9 IS " + conn.quote_literal(c9));

  auto list = list_json();
  EXPECT_EQ(find(list, "pr_8")["managed"], false);
  EXPECT_EQ(find(list, "pr_9")["managed"], false);
  auto cleanup = run_cli({"cleanup", "--pr", "8", "--pr", "9", "--yes"}, env());
  EXPECT_EQ(cleanup.code, 6) << cleanup.all();
  auto reuse = run_cli({"spawn", "--pr", "9", "--reuse"}, env());
  EXPECT_EQ(reuse.code, 6) << reuse.all();
  EXPECT_TRUE(server().database_exists("pr_8"));
  EXPECT_TRUE(server().database_exists("pr_9"));
}

TEST_F(Trust, OnlyRegisteredInterruptedBuildsAreCleanedUp) {
  snapshot();
  auto conn = server().connect();
  mallory().exec("CREATE DATABASE previewdb_tmp_mine");
  conn.exec("CREATE DATABASE previewdb_tmp_0000aaaa");  // previewdb's role, but not a build
  // What a spawn killed after registering its build leaves: a registered temporary database.
  conn.exec("CREATE DATABASE previewdb_tmp_feedbeef");
  server().exec("previewdb_registry",
                "INSERT INTO registry.databases (oid, name, target, owner, state, kind, pr_number,"
                " created_by) SELECT oid, datname, 'pr_9', datdba, 'building', 'pr', 9, 'test' "
                "FROM pg_database WHERE datname = 'previewdb_tmp_feedbeef'");

  auto list = list_json();
  auto build = find(list, "previewdb_tmp_feedbeef");
  EXPECT_EQ(build["kind"], "build");
  EXPECT_EQ(build["managed"], true);
  EXPECT_EQ(build["build_of"], "pr_9");
  EXPECT_EQ(find(list, "previewdb_tmp_mine")["managed"], false);
  EXPECT_EQ(find(list, "previewdb_tmp_0000aaaa")["managed"], false);
  auto text = run_cli({"list"}, env());
  EXPECT_THAT(text.out, HasSubstr("previewdb_tmp_feedbeef (build of pr_9"));

  auto cleanup = run_cli({"cleanup", "--older-than", "7d", "--yes"}, env());
  EXPECT_EQ(cleanup.code, 0) << cleanup.all();
  EXPECT_THAT(cleanup.err, HasSubstr("removing previewdb_tmp_feedbeef"));
  EXPECT_FALSE(server().database_exists("previewdb_tmp_feedbeef"));
  ASSERT_EQ(run_cli({"spawn", "x"}, env()).code, 0);
  EXPECT_TRUE(server().database_exists("previewdb_tmp_mine"));
  EXPECT_TRUE(server().database_exists("previewdb_tmp_0000aaaa"));
}

TEST_F(Trust, PreviewsFromBeforeTheRegistryAreAdoptedOnce) {
  auto conn = server().connect();
  // What an earlier previewdb left: pr_3 and a snapshot, owned by previewdb's role, with its
  // comment; and a look-alike owned by another role.
  conn.exec("CREATE DATABASE pr_3");
  nlohmann::json j = {{"tool", "previewdb"}, {"kind", "pr"},
                      {"pr_number", 3},      {"created_at", "2026-01-02T03:04:05Z"},
                      {"created_by", "ci"},  {"branch", "feature"},
                      {"snapshot", nullptr}};
  conn.exec("COMMENT ON DATABASE pr_3 IS " + conn.quote_literal(j.dump()));
  conn.exec("CREATE DATABASE snap_dev_20260101_000000 TEMPLATE dev");
  conn.exec("COMMENT ON DATABASE snap_dev_20260101_000000 IS " +
            conn.quote_literal(snapshot_comment(-60)));
  conn.exec("ALTER DATABASE snap_dev_20260101_000000 IS_TEMPLATE true ALLOW_CONNECTIONS false");
  auto m = mallory();
  m.exec("CREATE DATABASE pr_4");
  j["pr_number"] = 4;
  m.exec("COMMENT ON DATABASE pr_4 IS " + m.quote_literal(j.dump()));

  auto first = run_cli({"list", "--json"}, env());
  ASSERT_EQ(first.code, 0) << first.all();
  EXPECT_THAT(first.err, HasSubstr("adopted pr_3 (pr, made by previewdb before its registry"));
  EXPECT_THAT(first.err, HasSubstr("adopted snap_dev_20260101_000000 (snapshot"));
  EXPECT_THAT(first.err, Not(HasSubstr("adopted pr_4")));
  auto list = nlohmann::json::parse(first.out);
  EXPECT_EQ(find(list, "pr_3")["managed"], true);
  EXPECT_EQ(find(list, "pr_3")["pr_number"], 3);
  EXPECT_EQ(find(list, "pr_3")["created_at"], "2026-01-02T03:04:05Z");
  EXPECT_EQ(find(list, "pr_4")["managed"], false);

  // Once: a later database with previewdb's comment is not adopted, and nothing is re-adopted.
  conn.exec("CREATE DATABASE pr_6");
  j["pr_number"] = 6;
  conn.exec("COMMENT ON DATABASE pr_6 IS " + conn.quote_literal(j.dump()));
  auto second = run_cli({"list", "--json"}, env());
  EXPECT_THAT(second.err, Not(HasSubstr("adopted")));
  EXPECT_EQ(find(nlohmann::json::parse(second.out), "pr_6")["managed"], false);

  // The adopted snapshot is a snapshot.
  auto spawned = run_cli({"spawn", "feature", "--json"}, env());
  ASSERT_EQ(spawned.code, 0) << spawned.all();
  EXPECT_EQ(nlohmann::json::parse(spawned.out)["snapshot"], "snap_dev_20260101_000000");
}

TEST_F(Trust, ARegistryMadeByAnotherRoleIsRefused) {
  mallory().exec("CREATE DATABASE previewdb_registry");
  auto r = run_cli({"list"}, env());
  EXPECT_EQ(r.code, 6) << r.all();
  EXPECT_THAT(r.err, HasSubstr("refusing to use previewdb_registry: it is owned by role "
                               "\"mallory\", not by \"previewdb\""));
}

TEST_F(Trust, TheRegistryIsPrivateToPreviewdbsRole) {
  snapshot();
  auto conn = server().connect();
  auto acl = conn.exec(
      "SELECT has_database_privilege('mallory', 'previewdb_registry', 'CONNECT'), "
      "pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'previewdb_registry'");
  ASSERT_EQ(acl.rows(), 1);
  EXPECT_FALSE(acl.get_bool(0, 0));
  EXPECT_EQ(acl.get(0, 1), "previewdb");
  EXPECT_THROW(mallory("previewdb_registry"), Error);
  auto protect = run_cli({"cleanup", "previewdb_registry", "--include-unmanaged", "--yes"}, env());
  EXPECT_EQ(protect.code, 6) << protect.all();
  EXPECT_TRUE(server().database_exists("previewdb_registry"));
}
