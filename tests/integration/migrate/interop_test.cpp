// The tools' own history tables, both ways: what they already list is not applied again, and
// what previewdb applies is listed there as the tool would list it.
#include <gtest/gtest.h>

#include "crypto/sha256.hpp"
#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;

namespace {

const char* k_prisma_table =
    "CREATE TABLE \"_prisma_migrations\" (\"id\" VARCHAR(36) PRIMARY KEY NOT NULL, \"checksum\" "
    "VARCHAR(64) NOT NULL, \"finished_at\" TIMESTAMPTZ, \"migration_name\" VARCHAR(255) NOT NULL, "
    "\"logs\" TEXT, \"rolled_back_at\" TIMESTAMPTZ, \"started_at\" TIMESTAMPTZ NOT NULL DEFAULT "
    "now(), \"applied_steps_count\" INTEGER NOT NULL DEFAULT 0)";

void prisma_folder(Folder& f) {
  f.file("migration_lock.toml", "provider = \"postgresql\"\n")
      .file("20240101000000_a/migration.sql", "CREATE TABLE a (id int);\n")
      .file("20240102000000_b/migration.sql", "CREATE TABLE b (id int);\n")
      .file("20240103000000_c/migration.sql", "CREATE TABLE c (id int);\n");
}

}  // namespace

TEST(MigrateInterop, PrismaRowsCarryPrismasChecksum) {
  Folder f;
  prisma_folder(f);
  auto db = fresh_db("interop_prisma");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  auto r = server().connect(db).exec(
      "SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NULL, "
      "applied_steps_count, logs IS NULL, length(id) FROM _prisma_migrations ORDER BY "
      "migration_name");
  ASSERT_EQ(r.rows(), 3);
  EXPECT_EQ(r.get(0, 0), "20240101000000_a");
  EXPECT_EQ(r.get(0, 1), crypto::sha256_hex("CREATE TABLE a (id int);\n"));
  EXPECT_EQ(r.get(2, 1), crypto::sha256_hex("CREATE TABLE c (id int);\n"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(r.get_bool(i, 2));
    EXPECT_TRUE(r.get_bool(i, 3));
    EXPECT_EQ(r.get(i, 4), "1");
    EXPECT_TRUE(r.get_bool(i, 5));
    EXPECT_EQ(r.get(i, 6), "36");
  }
}

TEST(MigrateInterop, PrismaMigratedDatabaseGetsOnlyTheRest) {
  Folder f;
  prisma_folder(f);
  auto db = fresh_db("interop_prisma_rest");
  auto conn = server().connect(db);
  conn.exec(k_prisma_table);
  conn.exec("CREATE TABLE a (id int); CREATE TABLE b (id int);");
  for (const char* name : {"20240101000000_a", "20240102000000_b"}) {
    std::string table = std::string("CREATE TABLE ") + name[15] + " (id int);\n";
    conn.exec(
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, "
        "applied_steps_count) VALUES (gen_random_uuid(), $1, now(), $2, 1)",
        {crypto::sha256_hex(table), std::string(name)});
  }
  // A failed (not rolled back) attempt of c, as Prisma leaves it.
  conn.exec(
      "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES "
      "(gen_random_uuid(), 'x', '20240103000000_c', 'boom')");
  auto r = cli("status", db, {"--dir", f.path()});
  EXPECT_TRUE(contains(r.out, "failed    20240103000000_c")) << r.out;
  r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "applied 1 migration to ")) << r.out;
  EXPECT_TRUE(contains(r.out, "(2 already applied)")) << r.out;
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND "
                  "rolled_back_at IS NULL"),
            3);
  EXPECT_EQ(count(db, "SELECT count(*) FROM _prisma_migrations WHERE rolled_back_at IS NOT NULL"),
            1)
      << "the failed attempt is marked rolled back, as 'prisma migrate resolve' would";
  // Prisma's checksum of an applied file disagrees: refused.
  conn.exec(
      "UPDATE _prisma_migrations SET checksum = 'different' WHERE migration_name = "
      "'20240101000000_a'");
  conn.exec("DROP SCHEMA _previewdb CASCADE");
  r = migrate_cli(db, {"--dir", f.path()});
  EXPECT_EQ(r.code, 6);
  EXPECT_TRUE(contains(
      r.err, "changed since they were applied: " + f.path() + "/20240101000000_a/migration.sql"))
      << r.err;
}

TEST(MigrateInterop, GolangMigrateVersionIsHonoured) {
  Folder f;
  f.file("1_a.up.sql", "CREATE TABLE a (id int);")
      .file("2_b.up.sql", "CREATE TABLE b (id int);")
      .file("3_c.up.sql", "CREATE TABLE c (id int);");
  auto db = fresh_db("interop_golang");
  auto conn = server().connect(db);
  conn.exec(
      "CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not "
      "null);"
      "INSERT INTO schema_migrations VALUES (2, false);");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "applied 1 migration to ")) << r.out;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename IN ('a', 'b')"), 0);
  EXPECT_EQ(count(db, "SELECT version FROM schema_migrations WHERE NOT dirty"), 3);
  EXPECT_EQ(count(db, "SELECT count(*) FROM schema_migrations"), 1);
}

TEST(MigrateInterop, DbmateVersionsAreHonoured) {
  Folder f;
  f.file("20240101_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n")
      .file("20240102_b.sql", "-- migrate:up\nCREATE TABLE b (id int);\n");
  auto db = fresh_db("interop_dbmate");
  server().exec(db,
                "CREATE TABLE schema_migrations (version varchar(128) primary key);"
                "INSERT INTO schema_migrations VALUES ('20240101');");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'a'"), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM schema_migrations WHERE version = '20240102'"), 1);
}

TEST(MigrateInterop, DrizzleCreatedAtIsHonoured) {
  Folder f;
  f.file(
       "meta/_journal.json",
       R"({"entries":[{"idx":0,"when":1000,"tag":"0000_a"},{"idx":1,"when":2000,"tag":"0001_b"}]})")
      .file("0000_a.sql", "CREATE TABLE a (id int);")
      .file("0001_b.sql", "CREATE TABLE b (id int);");
  auto db = fresh_db("interop_drizzle");
  server().exec(db,
                "CREATE SCHEMA drizzle; CREATE TABLE drizzle.__drizzle_migrations (id SERIAL "
                "PRIMARY KEY, hash text NOT NULL, created_at bigint);"
                "INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('" +
                    crypto::sha256_hex("CREATE TABLE a (id int);") + "', 1000);");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'a'"), 0);
  auto rows = server().connect(db).exec(
      "SELECT hash, created_at FROM drizzle.__drizzle_migrations ORDER BY id");
  ASSERT_EQ(rows.rows(), 2);
  EXPECT_EQ(rows.get(1, 0), crypto::sha256_hex("CREATE TABLE b (id int);"));
  EXPECT_EQ(rows.get(1, 1), "2000");
}

TEST(MigrateInterop, FlywayHistoryIsHonoured) {
  Folder f;
  f.file("V1__a.sql", "CREATE TABLE a (id int);").file("V2__b.sql", "CREATE TABLE b (id int);");
  auto db = fresh_db("interop_flyway");
  // The first run writes Flyway's table; then previewdb's own is dropped, Flyway's is enough.
  f.file("V2__b.sql", "CREATE TABLE b (id int);");
  ASSERT_EQ(migrate_cli(db, {"--dir", f.path()}).code, 0);
  server().exec(db, "DROP SCHEMA _previewdb CASCADE");
  f.file("V3__c.sql", "CREATE TABLE c (id int);");
  auto r = migrate_cli(db, {"--dir", f.path()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "applied 1 migration to ")) << r.out;
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM flyway_schema_history WHERE success AND type = 'SQL' "
                  "AND checksum IS NOT NULL"),
            3);
}
