// Fewer statements per spawn (issue 15) against a real PostgreSQL: the registry's owner check and
// its prune run once per session (a new session checks again, so a registry taken over meanwhile
// is refused), the role's CREATEDB comes with the owner check, spawn can leave its evidence (the
// clone's duration, the new database's size) to the caller, and the rename and the registry's
// rows commit together.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "harness/harness.hpp"
#include "util/error.hpp"
#include "util/files.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

class SpawnStatements : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev",
                  "CREATE TABLE items(id int primary key, name text);"
                  "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;");
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  // Maintenance sessions are connected to the registry's database (as connect_maintenance does;
  // the first one creates it from "postgres").
  static db::Connection maintenance() {
    {
      auto boot = server().connect();
      core::Registry::open(boot);
    }
    return server().connect(core::k_registry_database);
  }
  void snapshot() {
    auto r = run_cli({"snapshot"},
                     {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_USER", "alice"}},
                     m_dir.path().string());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static long long count(db::Connection& conn, const std::string& sql) {
    return conn.exec(sql).get_int(0, 0);
  }
  util::TempDir m_dir;
};

TEST_F(SpawnStatements, TheOwnerCheckRunsOncePerSessionAndEveryNewSessionChecksAgain) {
  auto conn = maintenance();
  auto first = core::Registry::open(conn);
  EXPECT_TRUE(first.may_create_databases());  // the test server's role is a superuser
  // Another role takes the registry over while this session is open.
  server().exec("postgres",
                "DROP ROLE IF EXISTS registry_thief; CREATE ROLE registry_thief;"
                "ALTER DATABASE previewdb_registry OWNER TO registry_thief");
  // The session already checked: no second owner check in the same run.
  auto again = core::Registry::open(conn);
  EXPECT_EQ(again.role_oid(), first.role_oid());
  // A new session (the next run) is refused.
  auto next = server().connect(core::k_registry_database);
  try {
    core::Registry::open(next);
    FAIL() << "a registry owned by another role was used";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::refused);
    EXPECT_THAT(std::string(e.what()), HasSubstr("owned by role \"registry_thief\""));
  }
  server().exec("postgres", "ALTER DATABASE previewdb_registry OWNER TO CURRENT_USER");
}

TEST_F(SpawnStatements, ThePruneRunsOncePerSession) {
  auto conn = maintenance();
  core::list_databases(conn);  // creates the registry and prunes it
  // A row whose database is gone (dropped behind previewdb's back).
  auto stale = [&] {
    conn.exec(
        "INSERT INTO registry.databases (oid, name, target, owner, state, kind) "
        "SELECT 4000000000, 'gone', 'gone', oid, 'ready', 'pr' FROM pg_roles "
        "WHERE rolname = current_user ON CONFLICT (oid) DO NOTHING");
  };
  stale();
  // Never shown: the catalog joins on oid, name and owner.
  for (const auto& d : core::list_databases(conn)) EXPECT_NE(d.name, "gone");
  EXPECT_EQ(count(conn, "SELECT count(*) FROM registry.databases WHERE name = 'gone'"), 1);
  // The next session prunes it on its first catalog read.
  auto next = maintenance();
  core::list_databases(next);
  EXPECT_EQ(count(next, "SELECT count(*) FROM registry.databases WHERE name = 'gone'"), 0);
  // An explicit refresh always runs.
  stale();
  core::Registry::open(conn).refresh();
  EXPECT_EQ(count(conn, "SELECT count(*) FROM registry.databases WHERE name = 'gone'"), 0);
}

TEST_F(SpawnStatements, TheCallerRecordsDeferredEvidenceAfterItsOutputs) {
  snapshot();
  auto conn = maintenance();
  long long samples = count(conn, "SELECT count(*) FROM registry.clone_samples");
  core::SpawnRequest req;
  req.name = "dev_alice_deferred";
  req.meta.kind = core::Kind::personal;
  req.meta.created_by = "alice";
  req.defer_evidence = true;
  auto result = core::spawn(conn, req, core::Protection{});
  ASSERT_TRUE(result.created);
  ASSERT_TRUE(result.evidence.has_value());
  EXPECT_EQ(result.evidence->name, "dev_alice_deferred");
  EXPECT_EQ(result.evidence->plan_keyword, result.strategy);
  EXPECT_GT(result.evidence->size_bytes, 0);
  // Nothing recorded yet, but the database is complete: renamed, registered as ready.
  EXPECT_EQ(count(conn, "SELECT count(*) FROM registry.clone_samples"), samples);
  EXPECT_EQ(count(conn,
                  "SELECT count(*) FROM registry.database_sizes s JOIN pg_database d "
                  "ON d.oid = s.oid WHERE d.datname = 'dev_alice_deferred'"),
            0);
  auto info = core::find_database(conn, "dev_alice_deferred");
  ASSERT_TRUE(info && info->managed());
  EXPECT_EQ(info->meta->kind, core::Kind::personal);
  EXPECT_EQ(count(conn,
                  "SELECT count(*) FROM registry.databases WHERE name = 'dev_alice_deferred' "
                  "AND state = 'ready' AND oid IS NOT NULL"),
            1);

  core::record_spawn_evidence(conn, result);
  EXPECT_EQ(count(conn, "SELECT count(*) FROM registry.clone_samples"), samples + 1);
  EXPECT_EQ(count(conn,
                  "SELECT count(*) FROM registry.database_sizes s JOIN pg_database d "
                  "ON d.oid = s.oid WHERE d.datname = 'dev_alice_deferred'"),
            1);

  // Without defer_evidence spawn records them itself and leaves nothing to the caller.
  req.name = "dev_alice_direct";
  req.defer_evidence = false;
  auto direct = core::spawn(conn, req, core::Protection{});
  EXPECT_FALSE(direct.evidence.has_value());
  EXPECT_EQ(count(conn, "SELECT count(*) FROM registry.clone_samples"), samples + 2);
}

TEST_F(SpawnStatements, AFailedRenameLeavesNothingHalfMade) {
  snapshot();
  auto conn = maintenance();
  // The transaction that renames the clone and marks its row ready fails at its last statement
  // (a trigger refuses the row's update): the rename is rolled back with it, so the clone is still
  // the temporary database, which is dropped. (Before, the rename had committed on its own and
  // the failure left the target behind, renamed but never marked ready.)
  core::SpawnRequest req;
  req.name = "dev_alice_halfmade";
  req.meta.kind = core::Kind::personal;
  req.meta.created_by = "alice";
  conn.exec(
      "CREATE FUNCTION registry.refuse_ready() RETURNS trigger LANGUAGE plpgsql AS "
      "$$BEGIN IF NEW.state = 'ready' THEN RAISE EXCEPTION 'refused for the test'; END IF; "
      "RETURN NEW; END$$;"
      "CREATE TRIGGER refuse_ready BEFORE UPDATE ON registry.databases FOR EACH ROW "
      "EXECUTE FUNCTION registry.refuse_ready()");
  EXPECT_ANY_THROW(core::spawn(conn, req, core::Protection{}));
  conn.exec(
      "DROP TRIGGER refuse_ready ON registry.databases; DROP FUNCTION registry.refuse_ready()");
  // Neither the target nor a temporary database is left, nor a row for them.
  EXPECT_EQ(count(conn,
                  "SELECT count(*) FROM pg_database WHERE datname = 'dev_alice_halfmade' "
                  "OR datname LIKE 'previewdb_tmp_%'"),
            0);
  EXPECT_EQ(
      count(conn, "SELECT count(*) FROM registry.databases WHERE target = 'dev_alice_halfmade'"),
      0);
  // And the same spawn works afterwards.
  auto result = core::spawn(conn, req, core::Protection{});
  EXPECT_TRUE(result.created);
}

}  // namespace
