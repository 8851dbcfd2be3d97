// Hand-written folders for each rule: ordering, orphans, placeholders, statements that cannot
// run in a transaction, files with their own BEGIN/COMMIT, dollar quotes, dry runs.
#include <gtest/gtest.h>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;

namespace {

std::vector<std::string> applied_ids(const std::string& db) {
  auto r = server().connect(db).exec(
      "SELECT id FROM _previewdb.schema_migrations WHERE status = 'applied' ORDER BY started_at, "
      "id");
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.get(i, 0));
  return out;
}

}  // namespace

TEST(MigrateRules, PrismaDirectoryNamesWithSpaces) {
  Folder f;
  f.file("migration_lock.toml", "provider = \"postgresql\"\n")
      .file("20240101000000_create things/migration.sql", "CREATE TABLE things (id int);")
      .file("20240102000000_add name/migration.sql", "ALTER TABLE things ADD name text;");
  auto db = fresh_db("rules_prisma_spaces");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(applied_ids(db),
            (std::vector<std::string>{"20240101000000_create things", "20240102000000_add name"}));
  EXPECT_EQ(count(db, "SELECT count(*) FROM _prisma_migrations WHERE migration_name LIKE '% %'"),
            2);
}

TEST(MigrateRules, DrizzleJournalOrderAndOrphans) {
  Folder f;
  // The journal says b before a; a depends on b.
  f.file("meta/_journal.json",
         R"({"entries":[{"idx":0,"when":1,"tag":"0001_b"},{"idx":1,"when":2,"tag":"0000_a"}]})")
      .file("0001_b.sql", "CREATE TABLE b (id int PRIMARY KEY);")
      .file("0000_a.sql",
            "CREATE TABLE a (b_id int REFERENCES b);\n--> statement-breakpoint\nCREATE INDEX ON a "
            "(b_id);")
      .file("0002_orphan.sql", "CREATE TABLE orphan (id int);");
  auto db = fresh_db("rules_drizzle");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(
      contains(r.err, "0002_orphan.sql is not in meta/_journal.json: not a migration, not applied"))
      << r.err;
  EXPECT_EQ(applied_ids(db), (std::vector<std::string>{"0001_b", "0000_a"}));
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'orphan'"), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM drizzle.__drizzle_migrations"), 2);
}

TEST(MigrateRules, GolangMigrateNumericVersionOrder) {
  Folder f;
  f.file("1_a.up.sql", "CREATE TABLE t (v text);")
      .file("2_b.up.sql", "INSERT INTO t VALUES ('2');")
      .file("10_c.up.sql", "INSERT INTO t VALUES ('10');")
      .file("10_c.down.sql", "DELETE FROM t;");
  auto db = fresh_db("rules_golang");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(applied_ids(db), (std::vector<std::string>{"1_a", "2_b", "10_c"}));
  EXPECT_EQ(count(db, "SELECT version FROM schema_migrations WHERE NOT dirty"), 10);
}

TEST(MigrateRules, FlywayPlaceholdersAndVersionParts) {
  Folder f;
  f.file("V1__init.sql", "CREATE SCHEMA ${app};\nCREATE TABLE ${app}.log (v text);")
      .file("V1.9__nine.sql", "INSERT INTO ${app}.log VALUES ('1.9');")
      .file("V1.10__ten.sql", "INSERT INTO ${app}.log VALUES ('1.10');")
      .file("R__view.sql",
            "CREATE OR REPLACE VIEW ${app}.v AS SELECT string_agg(v, ',') AS s FROM ${app}.log;");
  auto db = fresh_db("rules_flyway");
  auto r = migrate_cli(db, {"--dir", f.path(), "--placeholder", "app=shop"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server().connect(db).exec("SELECT s FROM shop.v").get(0, 0), "1.9,1.10");
  auto h = server().connect(db).exec(
      "SELECT string_agg(coalesce(version, 'R') || ':' || description || ':' || success, ' ' "
      "ORDER BY installed_rank) FROM flyway_schema_history");
  EXPECT_EQ(h.get(0, 0), "1:init:true 1.9:nine:true 1.10:ten:true R:view:true");
  // A changed repeatable is re-applied, not refused.
  f.file("R__view.sql", "CREATE OR REPLACE VIEW ${app}.v AS SELECT 'changed'::text AS s;");
  r = migrate_cli(db, {"--dir", f.path(), "--placeholder", "app=shop"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server().connect(db).exec("SELECT s FROM shop.v").get(0, 0), "changed");
  // Without the value: a usage error naming the file and line.
  r = migrate_cli(fresh_db("rules_flyway2"), {"--dir", f.path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "no value for placeholder ${app} in " + f.path() + "/R__view.sql:1"))
      << r.err;
}

TEST(MigrateRules, ConcurrentlyRunsOutsideATransaction) {
  Folder f;
  f.file("1_table.sql", "CREATE TABLE t (a int);")
      .file("2_index.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\nVACUUM t;\n")
      .file("3_marked.sql", "-- previewdb:no-transaction\nCREATE TABLE u (a int);");
  auto db = fresh_db("rules_concurrently");
  auto r = migrate_cli(db, {"--dir", f.path(), "--dry-run"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out,
                       "2. 2_index  (2 statements, no transaction: CREATE INDEX CONCURRENTLY "
                       "at line 1 cannot run inside a transaction)"))
      << r.out;
  EXPECT_TRUE(contains(r.out,
                       "3. 3_marked  (1 statement, no transaction: the file is marked "
                       "-- previewdb:no-transaction)"))
      << r.out;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_namespace WHERE nspname = '_previewdb'"), 0)
      << "a dry run changes nothing";
  r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_a'"), 1);
  EXPECT_EQ(applied_ids(db), (std::vector<std::string>{"1_table", "2_index", "3_marked"}));
}

TEST(MigrateRules, FilesWithTheirOwnBeginCommit) {
  Folder f;
  f.file("1_wrapped.sql", "BEGIN;\nCREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\nCOMMIT;\n")
      .file(
          "2_blocks.sql",
          "BEGIN;\nCREATE TYPE mood AS ENUM ('ok');\nCOMMIT;\nALTER TYPE mood ADD VALUE 'great';\n"
          "BEGIN;\nCREATE TABLE b (m mood DEFAULT 'great');\nCOMMIT;\n");
  auto db = fresh_db("rules_own_tx");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(applied_ids(db), (std::vector<std::string>{"1_wrapped", "2_blocks"}));
  EXPECT_EQ(count(db, "SELECT count(*) FROM a"), 1);
  EXPECT_FALSE(contains(r.err, "there is already a transaction in progress")) << r.err;
}

TEST(MigrateRules, DollarQuotesAndBeginAtomic) {
  Folder f;
  f.file(
      "1_functions.sql",
      "CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $fn$\n"
      "BEGIN\n  RETURN 'a;b';  -- not the end\nEND;\n$fn$;\n"
      "CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\n"
      "SELECT E'it\\'s; fine';\n");
  auto db = fresh_db("rules_dollar");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server().connect(db).exec("SELECT f() || g()").get(0, 0), "a;b2");
}

TEST(MigrateRules, DbmateTransactionFalse) {
  Folder f;
  f.file("20240101000000_t.sql",
         "-- migrate:up\nCREATE TABLE t (a int);\n-- migrate:down\nDROP TABLE t;\n")
      .file("20240102000000_i.sql",
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n"
            "-- migrate:down\nDROP INDEX t_a;\n");
  auto db = fresh_db("rules_dbmate");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM schema_migrations"), 2);
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 't'"), 1)
      << "the down section is never applied";
}

TEST(MigrateRules, StatusHistoryAndOutOfOrder) {
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int);").file("3_c.sql", "CREATE TABLE c (id int);");
  auto db = fresh_db("rules_status");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  // A rebase brings in 2_b, older than the newest applied 3_c.
  f.file("2_b.sql", "CREATE TABLE b (id int);");
  auto r = cli("status", db, {"--dir", f.path(), "--exit-code"});
  EXPECT_EQ(r.code, 9);
  EXPECT_TRUE(contains(r.out, "pending*  2_b")) << r.out;
  EXPECT_TRUE(contains(r.out, "2 applied, 1 pending")) << r.out;
  r = cli("status", db, {"--dir", f.path(), "--json"});
  EXPECT_TRUE(contains(r.out, "\"diverged\": true")) << r.out;
  r = migrate_cli(db, {"--dir", f.path(), "--strict-order"});
  EXPECT_EQ(r.code, 6);
  EXPECT_TRUE(contains(
      r.err, "previewdb: error: pending migration(s) older than the newest applied one: 2_b"))
      << r.err;
  r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err,
                       "warning: applying migration(s) older than the newest applied one "
                       "(after a rebase?): 2_b"))
      << r.err;
  r = cli("history", db, {"-n", "2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "2_b")) << r.out;
  EXPECT_FALSE(contains(r.out, "1_a")) << r.out;
  r = cli("history", db, {"--json"});
  EXPECT_TRUE(contains(r.out, "\"status\": \"applied\"")) << r.out;
}

TEST(MigrateRules, ChangedFilesAreRefused) {
  Folder f;
  f.file("1_a.sql", "CREATE TABLE a (id int);");
  auto db = fresh_db("rules_changed");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  f.file("1_a.sql", "CREATE TABLE a (id bigint);").file("2_b.sql", "CREATE TABLE b (id int);");
  auto r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 6);
  EXPECT_TRUE(contains(r.err,
                       "previewdb: error: 1 applied migration(s) changed since they were "
                       "applied: " +
                           f.path() + "/1_a.sql"))
      << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0);
  r = cli("status", db, {"--dir", f.path(), "--exit-code"});
  EXPECT_EQ(r.code, 9);
  EXPECT_TRUE(contains(r.out, "changed   1_a")) << r.out;
  r = migrate_cli(db, {"--dir", f.path(), "--allow-changed"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 1);
}
