// Issue 16: what CockroachDB shares with PostgreSQL, run on the real PostgreSQL through the
// dialect interface with CockroachDB's choices forced where they also work on PostgreSQL: its
// session settings, the lease-row migration lock, no database sizes, migrations a statement at a
// time with the history written after, and the redaction of statements that carry credentials.
// (No CockroachDB server runs here: docs/COCKROACHDB.md.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "db/dialect.hpp"
#include "harness/folder.hpp"
#include "harness/harness.hpp"
#include "migrate/lock.hpp"
#include "migrate/migrate.hpp"
#include "util/error.hpp"

using namespace previewdb;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const test::PgServer& server() {
  return test::PgServer::shared();
}

// CockroachDB's row with the two statements PostgreSQL cannot run (DROP ... CASCADE, CREATE
// without TEMPLATE is fine but kept as PostgreSQL's) and the template clones it lacks taken from
// PostgreSQL's: everything else is CockroachDB's choice.
const db::Dialect& cockroach_choices_on_postgres() {
  static const db::Dialect d = [] {
    db::Dialect c = db::cockroach_dialect();
    const db::Dialect& pg = db::postgres_dialect(150000);
    c.template_databases = pg.template_databases;
    c.drop_database = pg.drop_database;
    c.create_empty_database = pg.create_empty_database;
    return c;
  }();
  return d;
}

db::Connection forced_maintenance() {
  {
    auto boot = server().connect("postgres");
    core::Registry::open(boot);
  }
  auto conn = server().connect(core::k_registry_database);
  db::force_dialect(conn, cockroach_choices_on_postgres());
  conn.set_limits({.lock_timeout = std::chrono::seconds(7)});
  return conn;
}

TEST(DialectOnPostgres, ThePostgresPathChoosesPostgres) {
  auto conn = server().connect("postgres");
  const auto& d = db::dialect_of(conn);
  EXPECT_EQ(d.kind, db::ServerKind::postgres);
  EXPECT_TRUE(d.advisory_locks);
  EXPECT_EQ(&db::dialect_of(conn), &d) << "asked once, remembered on the connection";
  conn.set_limits({.lock_timeout = std::chrono::seconds(3)});
  EXPECT_EQ(conn.exec("SHOW lock_timeout").get(0, 0), "3s");
  EXPECT_EQ(conn.exec("SHOW client_connection_check_interval").get(0, 0), "1s");
}

TEST(DialectOnPostgres, CockroachSessionSettingsAndNoSizes) {
  server().reset();
  auto conn = forced_maintenance();
  EXPECT_EQ(conn.exec("SHOW lock_timeout").get(0, 0), "7s");
  EXPECT_EQ(conn.exec("SHOW statement_timeout").get(0, 0), "0");
  EXPECT_EQ(conn.exec("SHOW client_connection_check_interval").get(0, 0), "0")
      << "CockroachDB has no such setting: its dialect never sets it";
  for (const auto& d : core::list_databases(conn, /*with_sizes=*/true)) {
    EXPECT_EQ(d.size_bytes, -1) << d.name << ": sizes are unknown, shown as \"-\"";
  }
  auto pg = server().connect(core::k_registry_database);
  bool some_size = false;
  for (const auto& d : core::list_databases(pg, true)) some_size = some_size || d.size_bytes > 0;
  EXPECT_TRUE(some_size) << "PostgreSQL still reads sizes";
}

TEST(DialectOnPostgres, TheMigrationLockIsTheLeaseRow) {
  server().reset();
  auto conn = server().connect("dev");
  db::force_dialect(conn, cockroach_choices_on_postgres());
  migrate::LockOptions lo{.mode = migrate::LockMode::advisory,
                          .timeout = std::chrono::seconds(5),
                          .conninfo = server().url(),
                          .dbname = "dev",
                          .database_label = "database \"dev\""};
  auto held = migrate::acquire_lock(conn, lo);
  EXPECT_EQ(held->mode(), migrate::LockMode::table) << "no advisory lock on CockroachDB";
  EXPECT_EQ(server()
                .connect("dev")
                .exec("SELECT count(*) FROM pg_locks WHERE locktype = "
                      "'advisory'")
                .get_int(0, 0),
            0);
  // A second run waits for the row and times out naming it.
  auto other = server().connect("dev");
  db::force_dialect(other, cockroach_choices_on_postgres());
  lo.timeout = std::chrono::milliseconds(300);
  try {
    migrate::acquire_lock(other, lo);
    FAIL() << "the lease row did not exclude a second run";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::lock_timeout) << e.what();
  }
  held->release();
  EXPECT_EQ(migrate::acquire_lock(other, lo)->mode(), migrate::LockMode::table);
}

TEST(DialectOnPostgres, DropAndSpawnThroughTheDialectKeepTheRegistry) {
  server().reset();
  server().exec("dev", "CREATE TABLE items (id int); INSERT INTO items VALUES (1)");
  auto conn = forced_maintenance();
  core::Protection protection;
  ASSERT_EQ(test::run_cli({"snapshot", "--json"}, {{"DATABASE_URL", server().url()}}).code, 0);
  core::SpawnRequest req;
  req.name = "dev_alice_crdb";
  req.meta.kind = core::Kind::personal;
  req.meta.created_by = "alice";
  auto r = core::spawn(conn, req, protection);
  EXPECT_TRUE(r.created);
  auto info = core::find_database(conn, "dev_alice_crdb");
  ASSERT_TRUE(info && info->managed()) << "registered as previewdb's";
  EXPECT_EQ(core::drop_database(conn, "system", protection, true).outcome,
            core::DropOutcome::refused_protected);
  EXPECT_EQ(core::drop_database(conn, "dev_alice_crdb", protection, false).outcome,
            core::DropOutcome::dropped);
  EXPECT_FALSE(server().database_exists("dev_alice_crdb"));
  EXPECT_FALSE(core::find_database(conn, "dev_alice_crdb"));
}

const char* k_two_ddl = "CREATE TABLE a (id int PRIMARY KEY);\nALTER TABLE a ADD COLUMN b text;\n";

TEST(StatementAtATime, AppliesEachStatementAndRecordsAfter) {
  server().reset();
  test::Folder dir;
  dir.file("0001_a.sql", k_two_ddl);
  migrate::MigrateOptions mo;
  mo.target = {.conninfo = server().url(), .dbname = "dev"};
  mo.dir = dir.dir();
  mo.statement_at_a_time = true;
  auto report = migrate::migrate(mo);
  ASSERT_EQ(report.applied.size(), 1u);
  EXPECT_EQ(report.runs.front().mode, "statement at a time");
  auto dev = server().connect("dev");
  dev.exec("SELECT id, b FROM a");
  auto status = migrate::status({.target = mo.target, .dir = dir.dir()});
  EXPECT_EQ(status.count(migrate::State::applied), 1u);
}

TEST(StatementAtATime, AFailureKeepsWhatRanAndRecordsTheFailureNotSuccess) {
  server().reset();
  test::Folder dir;
  dir.file("0001_a.sql",
           "CREATE TABLE a (id int PRIMARY KEY);\nALTER TABLE nope ADD COLUMN b int;\n");
  migrate::MigrateOptions mo;
  mo.target = {.conninfo = server().url(), .dbname = "dev"};
  mo.dir = dir.dir();
  mo.statement_at_a_time = true;
  try {
    migrate::migrate(mo);
    FAIL() << "the second statement should fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::migration_failed);
    EXPECT_THAT(e.what(), HasSubstr("0001_a.sql:2"));
  }
  // Each statement ran on its own: the first one's table exists, and the history says failed
  // (written after the statements, never "applied" before they all returned).
  EXPECT_EQ(server()
                .connect("dev")
                .exec("SELECT count(*) FROM pg_tables WHERE tablename = 'a'")
                .get_int(0, 0),
            1);
  auto status = migrate::status({.target = mo.target, .dir = dir.dir()});
  EXPECT_EQ(status.count(migrate::State::failed), 1u);
  EXPECT_EQ(status.count(migrate::State::applied), 0u);
}

TEST(StatementAtATime, TheDefaultOnPostgresIsOneTransaction) {
  server().reset();
  test::Folder dir;
  dir.file("0001_a.sql",
           "CREATE TABLE a (id int PRIMARY KEY);\nALTER TABLE nope ADD COLUMN b int;\n");
  migrate::MigrateOptions mo;
  mo.target = {.conninfo = server().url(), .dbname = "dev"};
  mo.dir = dir.dir();
  EXPECT_THROW(migrate::migrate(mo), Error);
  EXPECT_EQ(server()
                .connect("dev")
                .exec("SELECT count(*) FROM pg_tables WHERE tablename = 'a'")
                .get_int(0, 0),
            0)
      << "PostgreSQL's behaviour is unchanged: rolled back as a whole";
}

TEST(Redaction, AStatementWithCredentialsNeverShowsThemInAnError) {
  // PostgreSQL echoes a bad literal in its message: the URL and its secret come back from the
  // server, as CockroachDB's errors about a storage URL may.
  const std::string secret = "Zk9secretValue1234";
  std::string sql = "SELECT " +
                    db::quote_string(
                        "s3://acme/p?AWS_ACCESS_KEY_ID=AKIAEXAMPLE&"
                        "AWS_SECRET_ACCESS_KEY=" +
                        secret + "&AWS_SESSION_TOKEN=tok" + secret) +
                    "::int";
  auto conn = server().connect("postgres");
  try {
    conn.exec(sql);
    FAIL();
  } catch (const db::QueryError& e) {
    ASSERT_THAT(e.what(), HasSubstr(secret)) << "the server does echo it: the test means something";
  }
  try {
    db::exec_redacted(conn, sql);
    FAIL();
  } catch (const db::QueryError& e) {
    EXPECT_THAT(e.what(), Not(HasSubstr(secret)));
    EXPECT_THAT(e.primary(), Not(HasSubstr(secret)));
    EXPECT_THAT(e.detail(), Not(HasSubstr(secret)));
    EXPECT_THAT(e.what(),
                HasSubstr("s3://acme/p?AWS_ACCESS_KEY_ID=AKIAEXAMPLE&AWS_SECRET_ACCESS_KEY=***"));
  }
  // The connection still works after a redacted failure.
  EXPECT_EQ(conn.exec("SELECT 1").get(0, 0), "1");
}

}  // namespace
