// `previewdb migrate down` and `previewdb resolve` (issue 9, "Down migrations and marks"): the
// real binary against the real server, on the repository's own history of each format
// (tests/fixtures/migrations), ../shared's golang-migrate corpus as an extra case, and the real
// dbmate agreeing with the history previewdb leaves.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/migrate/helpers.hpp"
#include "util/files.hpp"
#include "util/subprocess.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

// `previewdb migrate down ARGS` ("down" must follow "migrate").
CliResult down_cli(const std::string& db, std::vector<std::string> args) {
  std::vector<std::string> all = {"migrate", "down", "--database-url",
                                  server().url_without_password(db)};
  all.insert(all.end(), args.begin(), args.end());
  return run_cli(all, {{"PGPASSWORD", server().password()}});
}

CliResult resolve_cli(const std::string& db, std::vector<std::string> args) {
  return cli("resolve", db, std::move(args));
}

fs::path fixture(const std::string& format) {
  return fixtures_dir() / "migrations" / format;
}

nlohmann::json status_json(const std::string& db, const fs::path& dir) {
  auto r = cli("status", db, {"--dir", dir.string(), "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

long long own_rows(const std::string& db) {
  return count(db, "SELECT count(*) FROM _previewdb.schema_migrations");
}

// Up, then every down: the schema is the empty database's again (history tables aside), and
// previewdb's table is empty; a second up applies all four again.
void round_trip(const std::string& db, const fs::path& dir) {
  std::string start = schema_dump(db);
  auto up = migrate_cli(db, {"--dir", dir.string()});
  ASSERT_EQ(up.code, 0) << up.err;
  ASSERT_NE(schema_dump(db), start);
  auto down = down_cli(db, {"--dir", dir.string(), "--to", "0"});
  ASSERT_EQ(down.code, 0) << down.err;
  EXPECT_THAT(down.out, HasSubstr("undid 4 migrations"));
  std::string end = schema_dump(db);
  EXPECT_EQ(end, start) << first_difference(end, start);
  EXPECT_EQ(own_rows(db), 0);
  auto st = status_json(db, dir);
  EXPECT_EQ(st["counts"]["pending"], 4) << st.dump(2);
  EXPECT_EQ(st["counts"]["applied"], 0) << st.dump(2);
  auto again = migrate_cli(db, {"--dir", dir.string()});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("applied 4 migrations"));
}

}  // namespace

// ---- each format: up, then all downs, returns to the start ----

TEST(MigrateDown, GolangMigrateRoundTripAndItsSingleRow) {
  auto db = fresh_db("down_golang");
  round_trip(db, fixture("golang-migrate"));
  auto conn = server().connect(db);
  auto r = conn.exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.get(0, 0), "10");
  // One step: the row names the version below, not dirty (golang-migrate's 'down 1').
  auto one = down_cli(db, {"--dir", fixture("golang-migrate").string(), "--steps", "1"});
  ASSERT_EQ(one.code, 0) << one.err;
  r = conn.exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.get(0, 0), "3");
  EXPECT_EQ(r.get(0, 1), "f");
  // --to keeps the named version applied.
  auto to = down_cli(db, {"--dir", fixture("golang-migrate").string(), "--to", "1"});
  ASSERT_EQ(to.code, 0) << to.err;
  EXPECT_THAT(to.out, HasSubstr("undid 2 migrations"));
  r = conn.exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.get(0, 0), "1");
  auto st = status_json(db, fixture("golang-migrate"));
  EXPECT_EQ(st["counts"]["applied"], 1);
  EXPECT_EQ(st["counts"]["pending"], 3);
  // Everything: golang-migrate's table is left empty, as its 'down -all' leaves it.
  auto all = down_cli(db, {"--dir", fixture("golang-migrate").string(), "--steps", "1"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM schema_migrations"), 0);
}

TEST(MigrateDown, DbmateRoundTripRemovesItsRows) {
  auto db = fresh_db("down_dbmate");
  round_trip(db, fixture("dbmate"));
  EXPECT_EQ(count(db, "SELECT count(*) FROM schema_migrations"), 4);
  auto two = down_cli(db, {"--dir", fixture("dbmate").string(), "--steps", "2"});
  ASSERT_EQ(two.code, 0) << two.err;
  auto conn = server().connect(db);
  auto r = conn.exec("SELECT version FROM schema_migrations ORDER BY version");
  ASSERT_EQ(r.rows(), 2);
  EXPECT_EQ(r.get(0, 0), "20260101090000");
  EXPECT_EQ(r.get(1, 0), "20260102090000");
}

TEST(MigrateDown, FlywayRoundTripWritesUndoRows) {
  auto db = fresh_db("down_flyway");
  round_trip(db, fixture("flyway"));
  auto conn = server().connect(db);
  // Flyway Teams' history: the four SQL rows, four UNDO_SQL rows (newest version first), then
  // the four SQL rows of the second up.
  auto r = conn.exec(
      "SELECT installed_rank, version, type, script, success FROM flyway_schema_history "
      "ORDER BY installed_rank");
  ASSERT_EQ(r.rows(), 12);
  std::vector<std::string> undo_versions;
  for (int i = 4; i < 8; ++i) {
    EXPECT_EQ(r.get(i, 2), "UNDO_SQL");
    EXPECT_EQ(r.get(i, 3), "U" + r.get(i, 1) + "__" +
                               std::string(r.get(i, 1) == "1"   ? "create_users"
                                           : r.get(i, 1) == "2" ? "create_orders"
                                           : r.get(i, 1) == "3" ? "order_total"
                                                                : "paid_orders") +
                               ".sql");
    EXPECT_EQ(r.get(i, 4), "t");
    undo_versions.push_back(r.get(i, 1));
  }
  EXPECT_EQ(undo_versions, (std::vector<std::string>{"10", "3", "2", "1"}));
  EXPECT_EQ(r.get(8, 2), "SQL");
  // An undo with --to: V2 stays.
  auto to = down_cli(db, {"--dir", fixture("flyway").string(), "--to", "V2"});
  ASSERT_EQ(to.code, 0) << to.err;
  auto st = status_json(db, fixture("flyway"));
  EXPECT_EQ(st["counts"]["applied"], 2) << st.dump(2);
  EXPECT_EQ(st["counts"]["pending"], 2) << st.dump(2);
}

TEST(MigrateDown, PrismaRollbackSqlSetsRolledBackAt) {
  auto db = fresh_db("down_prisma");
  round_trip(db, fixture("prisma"));
  // The undone rows stay as Prisma keeps rolled-back ones (an audit trail it ignores); the
  // second up added four new rows.
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM _prisma_migrations WHERE rolled_back_at IS NOT NULL "
                  "AND finished_at IS NOT NULL"),
            4);
  EXPECT_EQ(count(db, "SELECT count(*) FROM _prisma_migrations WHERE rolled_back_at IS NULL"), 4);
}

TEST(MigrateDown, PlainDownSqlCompanions) {
  auto db = fresh_db("down_plain");
  round_trip(db, fixture("plain"));
}

TEST(MigrateDown, DrizzleHasNoDownsAndSaysSo) {
  auto db = fresh_db("down_drizzle");
  auto up = migrate_cli(db, {"--dir", fixture("drizzle").string()});
  ASSERT_EQ(up.code, 0) << up.err;
  auto r = down_cli(db, {"--dir", fixture("drizzle").string(), "--steps", "1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("Drizzle migrations have no down parts"));
  EXPECT_EQ(count(db, "SELECT count(*) FROM drizzle.__drizzle_migrations"), 4);
}

// ---- before anything runs ----

TEST(MigrateDown, MissingDownIsNamedBeforeAnythingRuns) {
  Folder f;
  f.file("1_a.up.sql", "CREATE TABLE a (id int);");
  f.file("2_b.up.sql", "CREATE TABLE b (id int);");
  f.file("3_c.up.sql", "CREATE TABLE c (id int);");
  f.file("3_c.down.sql", "DROP TABLE c;");
  auto db = fresh_db("down_missing");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  auto r = down_cli(db, {"--dir", f.path(), "--to", "0"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("migration \"2_b\" has no down migration (expected " + f.path() +
                               "/2_b.down.sql)"));
  EXPECT_THAT(r.err, HasSubstr("nothing was undone"));
  // 3_c's down, which would run first, did not run.
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'c'"), 1);
  EXPECT_EQ(count(db, "SELECT version FROM schema_migrations"), 3);
  // Undoing only what has downs works.
  auto ok = down_cli(db, {"--dir", f.path(), "--to", "2"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'c'"), 0);
}

TEST(MigrateDown, DbmateFileWithoutDownSectionIsNamed) {
  Folder f;
  f.file("20260101000000_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n");
  auto db = fresh_db("down_dbmate_missing");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  auto r = down_cli(db, {"--dir", f.path(), "--steps", "1"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("migration \"20260101000000_a\" has no down migration (expected a "
                               "'-- migrate:down' section in " +
                               f.path() + "/20260101000000_a.sql)"));
}

TEST(MigrateDown, UsageErrors) {
  auto db = fresh_db("down_usage");
  std::string dir = fixture("golang-migrate").string();
  ASSERT_EQ(migrate_cli(db, {"--dir", dir}).code, 0);
  auto none = down_cli(db, {"--dir", dir});
  EXPECT_EQ(none.code, 2);
  EXPECT_THAT(none.err, HasSubstr("'migrate down' needs --steps N or --to VERSION"));
  auto zero = down_cli(db, {"--dir", dir, "--steps", "0"});
  EXPECT_EQ(zero.code, 2);
  EXPECT_THAT(zero.err, HasSubstr("--steps \"0\" is not a number of migrations"));
  auto word = down_cli(db, {"--dir", dir, "--steps", "all"});
  EXPECT_EQ(word.code, 2);
  auto both = down_cli(db, {"--dir", dir, "--steps", "1", "--to", "2"});
  EXPECT_EQ(both.code, 2);
  EXPECT_THAT(both.err, HasSubstr("--steps and --to cannot be used together"));
  auto unknown = down_cli(db, {"--dir", dir, "--to", "000004_nope"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("--to \"000004_nope\": no migration \"000004_nope\""));
  auto too_many = down_cli(db, {"--dir", dir, "--steps", "5"});
  EXPECT_EQ(too_many.code, 2);
  EXPECT_THAT(too_many.err, HasSubstr("only 4 migration(s) are applied"));
  // 'down' after flags is 'migrate down' too (never "up").
  auto after_flags = migrate_cli(db, {"--dir", dir, "down"});
  EXPECT_EQ(after_flags.code, 2);
  EXPECT_THAT(after_flags.err, HasSubstr("'migrate down' needs --steps N or --to VERSION"));
  // Nothing changed.
  EXPECT_EQ(own_rows(db), 4);
  EXPECT_EQ(count(db, "SELECT version FROM schema_migrations"), 10);
}

TEST(MigrateDown, DownAfterFlagsAndAFolderNamedDown) {
  auto db = fresh_db("down_words");
  util::TempDir work("previewdb-down-words-");
  fs::copy(fixture("golang-migrate"), work.path() / "down");
  // '--dir down' is a folder: migrate applies it.
  std::vector<std::string> args = {"migrate", "--database-url", server().url_without_password(db),
                                   "--dir", "down"};
  auto r = run_cli(args, {{"PGPASSWORD", server().password()}}, work.path().string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("applied 4 migrations"));
  // 'migrate --dir down down --steps 1': the second one is the command.
  args.insert(args.end(), {"down", "--steps", "1"});
  auto d = run_cli(args, {{"PGPASSWORD", server().password()}}, work.path().string());
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_THAT(d.out, HasSubstr("undid 1 migration"));
  EXPECT_EQ(count(db, "SELECT version FROM schema_migrations"), 3);
}

TEST(MigrateDown, DryRunListsAndChangesNothing) {
  auto db = fresh_db("down_dry");
  std::string dir = fixture("dbmate").string();
  ASSERT_EQ(migrate_cli(db, {"--dir", dir}).code, 0);
  auto r = down_cli(db, {"--dir", dir, "--steps", "2", "--dry-run"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("would undo 2 migrations"));
  EXPECT_THAT(r.out, HasSubstr("1. 20260110090000_paid_orders"));
  EXPECT_THAT(r.out, HasSubstr("2. 20260103090000_order_total"));
  auto j = down_cli(db, {"--dir", dir, "--to", "0", "--dry-run", "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["dry_run"], true);
  EXPECT_EQ(doc["undone_count"], 4);
  EXPECT_EQ(doc["undone"][0], "20260110090000_paid_orders");
  EXPECT_EQ(doc["remaining"], 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM schema_migrations"), 4);
  EXPECT_EQ(own_rows(db), 4);
}

TEST(MigrateDown, JsonReportMatchesMigrate) {
  auto db = fresh_db("down_json");
  std::string dir = fixture("golang-migrate").string();
  ASSERT_EQ(migrate_cli(db, {"--dir", dir}).code, 0);
  auto r = down_cli(db, {"--dir", dir, "--steps", "2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["format"], "golang-migrate");
  EXPECT_EQ(doc["dry_run"], false);
  EXPECT_EQ(doc["lock_mode"], "advisory");
  EXPECT_EQ(doc["undone"], (nlohmann::json{"000010_paid_orders", "000003_order_total"}));
  EXPECT_EQ(doc["remaining"], 2);
  ASSERT_EQ(doc["migrations"].size(), 2u);
  EXPECT_EQ(doc["migrations"][0]["file"], dir + "/000010_paid_orders.down.sql");
  EXPECT_EQ(doc["migrations"][0]["mode"], "transaction");
}

TEST(MigrateDown, HeldLockTimesOutWithExit8) {
  auto db = fresh_db("down_lock");
  std::string dir = fixture("golang-migrate").string();
  ASSERT_EQ(migrate_cli(db, {"--dir", dir}).code, 0);
  auto holder = server().connect(db);
  holder.exec("SELECT pg_advisory_lock(" + std::to_string(0x707265766d696772LL) + ")");
  auto r = down_cli(db, {"--dir", dir, "--steps", "1", "--lock-timeout", "1s"});
  EXPECT_EQ(r.code, 8) << r.err;
  EXPECT_THAT(r.err, HasSubstr("waiting for the migration lock on database \"down_lock\""));
  EXPECT_EQ(own_rows(db), 4);
  EXPECT_EQ(count(db, "SELECT version FROM schema_migrations"), 10);
}

TEST(MigrateDown, FailingDownRollsBackAndNamesIt) {
  Folder f;
  f.file("1_a.up.sql", "CREATE TABLE a (id int);");
  f.file("1_a.down.sql", "DROP TABLE a;");
  f.file("2_b.up.sql", "CREATE TABLE b (id int);");
  f.file("2_b.down.sql", "DROP TABLE b;\nDROP TABLE nope;\n");
  auto db = fresh_db("down_fail");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  auto r = down_cli(db, {"--dir", f.path(), "--to", "0"});
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_THAT(r.err, HasSubstr("down migration of \"2_b\" failed at " + f.path() +
                               "/2_b.down.sql:2: table \"nope\" does not exist"));
  EXPECT_THAT(r.err, HasSubstr("2_b is still applied and recorded"));
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 1);
  EXPECT_EQ(count(db, "SELECT version FROM schema_migrations"), 2);
  EXPECT_EQ(own_rows(db), 2);
}

TEST(MigrateDown, NoTransactionDownRunsStatementByStatement) {
  Folder f;
  f.file("20260101000000_a.sql",
         "-- migrate:up\nCREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY a_id ON a (id);\n"
         "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY a_id;\nDROP TABLE a;\n");
  auto db = fresh_db("down_notx");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  auto dry = down_cli(db, {"--dir", f.path(), "--steps", "1", "--dry-run"});
  EXPECT_THAT(dry.out, HasSubstr("no transaction: dbmate option transaction:false"));
  auto r = down_cli(db, {"--dir", f.path(), "--steps", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'a'"), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM schema_migrations"), 0);
  EXPECT_EQ(own_rows(db), 0);
}

// ---- ../shared: the real golang-migrate corpus ----

TEST(MigrateDown, EnteCorpusDownsFailAtTheKnownMigration) {
  auto shared = shared_dir();
  fs::path dir;
  if (shared) dir = *shared / "corpora/golang-migrate-ente/server/migrations";
  if (!shared || !fs::exists(dir)) {
    GTEST_SKIP() << k_skip_shared << "../shared/corpora/golang-migrate-ente is missing";
  }
  auto db = fresh_db("down_ente");
  auto up = migrate_cli(db, {"--dir", dir.string()});
  ASSERT_EQ(up.code, 0) << up.err;
  auto conn = server().connect(db);
  // All of them: 44's down ("DROP INDEX IF NOT EXISTS") is not SQL; the parser finds it before
  // anything runs.
  auto all = down_cli(db, {"--dir", dir.string(), "--to", "0"});
  EXPECT_EQ(all.code, 7) << all.err;
  EXPECT_THAT(all.err, HasSubstr("down migration of \"44_trash_add_index\" has a syntax error at " +
                                 dir.string() + "/44_trash_add_index.down.sql:1"));
  EXPECT_THAT(all.err, HasSubstr("nothing was undone"));
  EXPECT_EQ(conn.exec("SELECT version FROM schema_migrations").get(0, 0), "124");
  // Down to 44: 124..94 are undone, then 93's down fails (as it does in the original project)
  // and is rolled back.
  auto r = down_cli(db, {"--dir", dir.string(), "--to", "44"});
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_THAT(r.err, HasSubstr("down migration of \"93_emergency_contact\" failed at " +
                               dir.string() + "/93_emergency_contact.down.sql"));
  EXPECT_THAT(r.err, HasSubstr("31 migration(s) after it were undone"));
  // golang-migrate's row is clean at 93; previewdb's table keeps 1..93.
  auto row = conn.exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(row.rows(), 1);
  EXPECT_EQ(row.get(0, 0), "93");
  EXPECT_EQ(row.get(0, 1), "f");
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM _previewdb.schema_migrations WHERE id = "
                  "'93_emergency_contact'"),
            1);
  EXPECT_EQ(count(db, "SELECT count(*) FROM _previewdb.schema_migrations"), 93);
}

// ---- the real dbmate agrees ----

TEST(MigrateDown, DbmateStatusAgreesAfterDown) {
  if (!util::find_program("dbmate")) {
    GTEST_SKIP() << k_skip_peer_dbmate
                 << "dbmate is not installed (scripts/install-deps.sh --peers installs it)";
  }
  auto db = fresh_db("down_dbmate_peer");
  std::string dir = fixture("dbmate").string();
  ASSERT_EQ(migrate_cli(db, {"--dir", dir}).code, 0);
  auto r = down_cli(db, {"--dir", dir, "--steps", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  util::ProcessSpec spec;
  spec.argv = {"dbmate", "--migrations-dir", dir, "--no-dump-schema", "status"};
  spec.env["DATABASE_URL"] = server().url(db) + "?sslmode=disable";
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  auto status = util::run_process(spec);
  EXPECT_THAT(status.out, HasSubstr("Applied: 1")) << status.out << status.err;
  EXPECT_THAT(status.out, HasSubstr("Pending: 3")) << status.out;
  // dbmate's own 'up' re-applies exactly the three previewdb undid.
  spec.argv = {"dbmate", "--migrations-dir", dir, "--no-dump-schema", "up"};
  auto up = util::run_process(spec);
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM schema_migrations"), 4);
}

// ---- resolve ----

TEST(Resolve, AppliedMarksWithoutRunning) {
  auto db = fresh_db("resolve_applied");
  std::string dir = fixture("dbmate").string();
  auto r = resolve_cli(db, {"--dir", dir, "--applied", "20260101090000_create_users"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("marked 20260101090000_create_users applied"));
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'users'"), 0)
      << "resolve never runs the migration";
  EXPECT_EQ(count(db, "SELECT count(*) FROM schema_migrations WHERE version = '20260101090000'"),
            1);
  EXPECT_EQ(own_rows(db), 1);
  auto st = status_json(db, dir);
  EXPECT_EQ(st["counts"]["applied"], 1);
  // Prisma's rules: applied twice is refused; rolled back needs a failed migration.
  auto again = resolve_cli(db, {"--dir", dir, "--applied", "20260101090000_create_users"});
  EXPECT_EQ(again.code, 6);
  EXPECT_THAT(again.err, HasSubstr("is already recorded as applied"));
  auto not_failed = resolve_cli(db, {"--dir", dir, "--rolled-back", "20260101090000"});
  EXPECT_EQ(not_failed.code, 6);
  EXPECT_THAT(not_failed.err, HasSubstr("it is applied, not failed"));
  auto never = resolve_cli(db, {"--dir", dir, "--rolled-back", "20260102090000_create_orders"});
  EXPECT_EQ(never.code, 6);
  EXPECT_THAT(never.err, HasSubstr("it was never applied"));
  auto unknown = resolve_cli(db, {"--dir", dir, "--applied", "2026_nope"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("no migration \"2026_nope\""));
  auto neither = resolve_cli(db, {"--dir", dir});
  EXPECT_EQ(neither.code, 2);
  EXPECT_THAT(neither.err, HasSubstr("needs --applied NAME or --rolled-back NAME"));
  auto both = resolve_cli(db, {"--dir", dir, "--applied", "a", "--rolled-back", "b"});
  EXPECT_EQ(both.code, 2);
}

TEST(Resolve, PrismaFailedMigrationRolledBackThenApplied) {
  Folder f;
  f.file("migration_lock.toml", "provider = \"postgresql\"\n");
  f.file("20260101000000_a/migration.sql", "CREATE TABLE a (id int);\n");
  f.file("20260102000000_b/migration.sql",
         "-- previewdb:no-transaction\nCREATE TABLE b (id int);\nSELECT 1/0;\n");
  auto db = fresh_db("resolve_prisma");
  auto up = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(up.code, 7) << up.err;
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM _prisma_migrations WHERE migration_name = "
                  "'20260102000000_b' AND finished_at IS NULL AND rolled_back_at IS NULL"),
            1);
  auto rb = resolve_cli(db, {"--dir", f.path(), "--rolled-back", "20260102000000_b", "--json"});
  ASSERT_EQ(rb.code, 0) << rb.err;
  auto doc = nlohmann::json::parse(rb.out);
  EXPECT_EQ(doc["previous_state"], "failed");
  EXPECT_EQ(doc["mark"], "rolled-back");
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM _prisma_migrations WHERE migration_name = "
                  "'20260102000000_b' AND rolled_back_at IS NOT NULL"),
            1);
  auto st = status_json(db, f.path());
  EXPECT_EQ(st["counts"]["pending"], 1) << st.dump(2);
  EXPECT_EQ(st["counts"]["failed"], 0) << st.dump(2);
  // The team applied it by hand: mark it applied.
  auto ap = resolve_cli(db, {"--dir", f.path(), "--applied", "20260102000000_b"});
  ASSERT_EQ(ap.code, 0) << ap.err;
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM _prisma_migrations WHERE migration_name = "
                  "'20260102000000_b' AND finished_at IS NOT NULL AND rolled_back_at IS NULL"),
            1);
  st = status_json(db, f.path());
  EXPECT_EQ(st["counts"]["applied"], 2) << st.dump(2);
}

TEST(Resolve, GolangMigrateDirtyVersionRolledBack) {
  Folder f;
  f.file("1_a.up.sql", "CREATE TABLE a (id int);");
  f.file("2_b.up.sql", "-- previewdb:no-transaction\nCREATE TABLE b (id int);\nSELECT 1/0;\n");
  auto db = fresh_db("resolve_golang");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 7);
  auto conn = server().connect(db);
  auto row = conn.exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(row.rows(), 1);
  EXPECT_EQ(row.get(0, 1), "t");
  // A dirty migration is in the way of 'migrate down' until it is resolved.
  f.file("2_b.down.sql", "DROP TABLE b;");
  f.file("1_a.down.sql", "DROP TABLE a;");
  auto blocked = down_cli(db, {"--dir", f.path(), "--steps", "1"});
  EXPECT_EQ(blocked.code, 6) << blocked.err;
  EXPECT_THAT(blocked.err, HasSubstr("migration \"2_b\" failed"));
  auto rb = resolve_cli(db, {"--dir", f.path(), "--rolled-back", "2"});
  ASSERT_EQ(rb.code, 0) << rb.err;
  row = conn.exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(row.rows(), 1);
  EXPECT_EQ(row.get(0, 0), "1");
  EXPECT_EQ(row.get(0, 1), "f");
  auto st = status_json(db, f.path());
  EXPECT_EQ(st["counts"]["applied"], 1) << st.dump(2);
  EXPECT_EQ(st["counts"]["pending"], 1) << st.dump(2);
}

TEST(Resolve, FailedNoTransactionDownThenRolledBack) {
  Folder f;
  f.file("1_a.up.sql", "CREATE TABLE a (id int);");
  f.file("1_a.down.sql", "DROP TABLE a;");
  f.file("2_b.up.sql", "CREATE TABLE b (id int);");
  f.file("2_b.down.sql", "-- previewdb:no-transaction\nDROP TABLE b;\nDROP TABLE nope;\n");
  auto db = fresh_db("resolve_down_failed");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  auto r = down_cli(db, {"--dir", f.path(), "--steps", "1"});
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_THAT(r.err, HasSubstr("down migration of \"2_b\" failed at " + f.path() +
                               "/2_b.down.sql:3: table \"nope\" does not exist"));
  EXPECT_THAT(r.err, HasSubstr("were run and 2_b is recorded as failed"));
  // golang-migrate's row is dirty at the version below, as golang-migrate leaves a failed down.
  auto conn = server().connect(db);
  auto row = conn.exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(row.rows(), 1);
  EXPECT_EQ(row.get(0, 0), "1");
  EXPECT_EQ(row.get(0, 1), "t");
  auto st = status_json(db, f.path());
  EXPECT_EQ(st["counts"]["failed"], 1) << st.dump(2);
  // The table is gone (the down's first statement ran): mark it rolled back.
  auto rb = resolve_cli(db, {"--dir", f.path(), "--rolled-back", "2_b"});
  ASSERT_EQ(rb.code, 0) << rb.err;
  row = conn.exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(row.rows(), 1);
  EXPECT_EQ(row.get(0, 0), "1");
  EXPECT_EQ(row.get(0, 1), "f");
  st = status_json(db, f.path());
  EXPECT_EQ(st["counts"]["applied"], 1) << st.dump(2);
  EXPECT_EQ(st["counts"]["pending"], 1) << st.dump(2);
  EXPECT_EQ(st["counts"]["failed"], 0) << st.dump(2);
}
