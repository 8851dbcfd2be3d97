// core::swap_database on a real server: the replacement takes the name, the original is kept as
// <name>_before_restore_<time>, owner/grants/settings/comment carried over, sessions named.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/catalog.hpp"
#include "core/registry.hpp"
#include "core/swap.hpp"
#include "harness/harness.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

using namespace previewdb;
using ::testing::HasSubstr;

namespace {

class Swap : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    for (const char* db : {"app", "app_new"})
      server().exec("postgres", std::string("DROP DATABASE IF EXISTS ") + db + " WITH (FORCE)");
    server().exec("postgres",
                  "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_owner') "
                  "THEN CREATE ROLE app_owner; END IF; IF NOT EXISTS (SELECT FROM pg_roles WHERE "
                  "rolname = 'app_reader') THEN CREATE ROLE app_reader LOGIN; END IF; END$$");
    server().exec("postgres", "CREATE DATABASE app");
    server().exec("app", "CREATE TABLE t(v text); INSERT INTO t VALUES ('old')");
    server().exec("postgres", "CREATE DATABASE app_new");
    server().exec("app_new", "CREATE TABLE t(v text); INSERT INTO t VALUES ('new')");
    // The maintenance connection of a real run is on the registry's database.
    auto first = server().connect("postgres");
    core::Registry::open(first);
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static db::Connection maintenance() { return server().connect(core::k_registry_database); }
  static std::string value_in(const std::string& db) {
    return server().connect(db).exec("SELECT v FROM t").get(0, 0);
  }
  // Everything about a database but its oid and name.
  static std::string properties_of(const std::string& db) {
    auto conn = server().connect("postgres");
    return conn
        .exec(
            "SELECT pg_get_userbyid(d.datdba) || '|' || coalesce(d.datacl::text, 'default') || "
            "'|' || d.datconnlimit || '|' || coalesce(shobj_description(d.oid, 'pg_database'), "
            "'') || '|' || coalesce((SELECT string_agg(setrole::text || ':' || "
            "array_to_string(setconfig, '|'), ',' ORDER BY setrole) FROM pg_db_role_setting "
            "WHERE setdatabase = d.oid), '') FROM pg_database d WHERE datname = $1",
            {db})
        .get(0, 0);
  }
};

TEST_F(Swap, TheReplacementTakesTheNameAndCarriesOverOwnerGrantsSettingsAndComment) {
  server().exec("postgres",
                "ALTER DATABASE app OWNER TO app_owner;"
                "REVOKE ALL ON DATABASE app FROM PUBLIC;"
                "GRANT CONNECT ON DATABASE app TO app_reader;"
                "GRANT CREATE ON DATABASE app TO app_reader WITH GRANT OPTION;"
                "ALTER DATABASE app SET search_path TO \"$user\", public, \"Odd Schema\";"
                "ALTER DATABASE app SET work_mem TO '64MB';"
                "ALTER DATABASE app SET application_name TO 'two words';"
                "ALTER DATABASE app SET app.tenant TO 'acme';"
                "ALTER ROLE app_reader IN DATABASE app SET statement_timeout TO '5s';"
                "ALTER DATABASE app CONNECTION LIMIT 40;"
                "COMMENT ON DATABASE app IS 'the shop''s data'");
  std::string before = properties_of("app");
  auto conn = maintenance();
  core::SwapRequest req;
  req.target = "app";
  req.replacement = "app_new";
  req.timestamp = "20260101_120000";
  auto r = core::swap_database(conn, req);
  EXPECT_EQ(r.kept_as, "app_before_restore_20260101_120000");
  EXPECT_FALSE(r.kept_managed);  // owned by app_owner: not previewdb's to drop
  EXPECT_EQ(r.kept_owner, "app_owner");
  EXPECT_EQ(value_in("app"), "new");
  EXPECT_EQ(value_in(r.kept_as), "old");
  EXPECT_FALSE(server().database_exists("app_new"));
  EXPECT_EQ(properties_of("app"), before);
  // The settings work as settings, not as one odd string.
  auto app = server().connect("app");
  EXPECT_EQ(app.exec("SHOW search_path").get(0, 0), "\"$user\", public, \"Odd Schema\"");
  EXPECT_EQ(app.exec("SHOW work_mem").get(0, 0), "64MB");
  EXPECT_EQ(app.exec("SHOW app.tenant").get(0, 0), "acme");
}

TEST_F(Swap, TheKeptOriginalIsRegisteredWhenPreviewdbsRoleOwnsIt) {
  auto conn = maintenance();
  core::SwapRequest req{.target = "app", .replacement = "app_new", .timestamp = "20260101_120000"};
  auto r = core::swap_database(conn, req);
  EXPECT_TRUE(r.kept_managed);
  auto kept = core::find_database(conn, r.kept_as);
  ASSERT_TRUE(kept);
  EXPECT_TRUE(kept->managed());
  EXPECT_EQ(kept->meta->created_by, "previewdb restore");
  auto now_app = core::find_database(conn, "app");
  ASSERT_TRUE(now_app);
  EXPECT_FALSE(now_app->managed());  // it was not before either
}

TEST_F(Swap, ConnectedSessionsAreNamedAndTerminatedOnlyWhenAsked) {
  auto conn = maintenance();
  auto client =
      db::Connection::open({.conninfo = server().url("app"), .application_name = "shop-worker"});
  core::SwapRequest req{.target = "app", .replacement = "app_new", .timestamp = "20260101_120000"};
  try {
    core::swap_database(conn, req);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::refused);
    EXPECT_THAT(e.what(), HasSubstr("shop-worker"));
    EXPECT_THAT(e.what(), HasSubstr("pid " + std::to_string(client.backend_pid())));
    EXPECT_THAT(util::join(e.hints(), "\n"), HasSubstr("--terminate-sessions"));
  }
  EXPECT_EQ(value_in("app"), "old");
  req.terminate_sessions = true;
  auto r = core::swap_database(conn, req);
  ASSERT_EQ(r.terminated.size(), 1u);
  EXPECT_EQ(r.terminated[0].application, "shop-worker");
  EXPECT_EQ(value_in("app"), "new");
}

TEST_F(Swap, AProtectedTargetNeedsAllowProtected) {
  auto conn = maintenance();
  core::Protection protection({"app"});
  core::SwapRequest req{.target = "app", .replacement = "app_new", .timestamp = "20260101_120000"};
  req.protection = &protection;
  try {
    core::swap_database(conn, req);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::refused);
    EXPECT_THAT(e.what(), HasSubstr("protected"));
  }
  EXPECT_EQ(value_in("app"), "old");
  req.allow_protected = true;
  core::swap_database(conn, req);
  EXPECT_EQ(value_in("app"), "new");
}

TEST_F(Swap, AMissingDatabaseIsNotFoundAndNothingChanges) {
  auto conn = maintenance();
  core::SwapRequest req{.target = "nope", .replacement = "app_new", .timestamp = "20260101_120000"};
  try {
    core::swap_database(conn, req);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::not_found);
  }
  EXPECT_TRUE(server().database_exists("app_new"));
}

}  // namespace
