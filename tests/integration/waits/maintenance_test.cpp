// Issue 8 section 6: the maintenance connection falls back when "postgres" refuses connections,
// and a role without CREATEDB gets one clear error naming the role and the grant.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/waits/waits_helpers.hpp"

using namespace previewdb;
using namespace previewdb::test::waits;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

std::string role_url(const std::string& role, const std::string& db) {
  return "postgresql://" + role + ":pw_" + role + "@127.0.0.1:" + std::to_string(server().port()) +
         "/" + db;
}

class Maintenance : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    auto conn = server().connect();
    for (const char* role : {"waits_limited", "waits_nocreate"}) {
      conn.exec("DROP ROLE IF EXISTS " + std::string(role));
    }
    conn.exec("CREATE ROLE waits_limited LOGIN CREATEDB PASSWORD 'pw_waits_limited'");
    conn.exec("CREATE ROLE waits_nocreate LOGIN PASSWORD 'pw_waits_nocreate'");
    conn.exec("CREATE DATABASE waits_app OWNER waits_limited");
  }
  void TearDown() override {
    auto conn = server().connect();
    conn.exec("GRANT CONNECT ON DATABASE postgres TO PUBLIC");
    conn.exec("DROP DATABASE IF EXISTS waits_app WITH (FORCE)");
    auto dbs = conn.exec(
        "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
        "WHERE r.rolname IN ('waits_limited', 'waits_nocreate')");
    for (int i = 0; i < dbs.rows(); ++i) {
      conn.exec("ALTER DATABASE " + conn.quote_ident(dbs.get(i, 0)) + " IS_TEMPLATE false");
      conn.exec("DROP DATABASE " + conn.quote_ident(dbs.get(i, 0)) + " WITH (FORCE)");
    }
    conn.exec("DROP ROLE IF EXISTS waits_limited");
    conn.exec("DROP ROLE IF EXISTS waits_nocreate");
  }
};

TEST_F(Maintenance, FallsBackToTheUrlsDatabaseWhenPostgresRefusesConnect) {
  server().exec("postgres", "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC");
  auto r = run_cli(
      {"snapshot", "waits_app"},
      {{"DATABASE_URL", role_url("waits_limited", "waits_app")}, {"PREVIEWDB_USER", "alice"}});
  // waits_app is the maintenance database now, so it has a session (ours): copied online.
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot use the \"postgres\" database for maintenance "
                               "(connections refused); using the URL's own database"));
  EXPECT_THAT(r.out, HasSubstr("snap_waits_app_"));
}

TEST_F(Maintenance, RoleWithoutCreatedbGetsOneClearError) {
  auto r = run_cli({"snapshot", "dev"}, {{"DATABASE_URL", role_url("waits_nocreate", "postgres")},
                                         {"PREVIEWDB_USER", "alice"}});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_THAT(r.err, HasSubstr("role \"waits_nocreate\" may not create databases (it has neither "
                               "CREATEDB nor SUPERUSER)"));
  EXPECT_THAT(r.err, HasSubstr("hint: as a superuser (or a role with ADMIN on it), run: ALTER ROLE "
                               "\"waits_nocreate\" CREATEDB;"));
  // Nothing half-made.
  EXPECT_EQ(server()
                .connect()
                .exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb_tmp_%'")
                .get_int(0, 0),
            0);
}

}  // namespace
