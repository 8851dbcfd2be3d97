// `previewdb restore` and `previewdb rollback` (issue 9, restore side) on a real server: the real
// binary, real pg_dump/pg_restore/psql, real files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/registry.hpp"
#include "db/connection.hpp"
#include "harness/harness.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

test::PgServer& server() {
  return test::PgServer::shared();
}

// pg_dump (plain, with owners and privileges) without the per-run \restrict keys.
std::string dump_of(const std::string& db) {
  util::ProcessSpec spec;
  spec.argv = {"pg_dump", "-d", server().url_without_password(db)};
  spec.env["PGPASSWORD"] = server().password();
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  auto r = util::run_process(spec);
  EXPECT_TRUE(r.ok()) << r.err;
  std::string out;
  for (const auto& line : util::split(r.out, '\n'))
    if (!line.starts_with("\\restrict") && !line.starts_with("\\unrestrict")) out += line + "\n";
  return out;
}

std::string counts_of(const std::string& db) {
  return server()
      .connect(db)
      .exec(
          "SELECT (SELECT count(*) FROM customers) || '/' || (SELECT count(*) FROM orders) || "
          "'/' || (SELECT sum(total) FROM orders)")
      .get(0, 0);
}

// Owner, ACL, connection limit, comment and settings of a database (not its oid or name).
std::string properties_of(const std::string& db) {
  return server()
      .connect("postgres")
      .exec(
          "SELECT pg_get_userbyid(d.datdba) || '|' || coalesce(d.datacl::text, 'default') || "
          "'|' || d.datconnlimit || '|' || coalesce(shobj_description(d.oid, 'pg_database'), "
          "'') || '|' || coalesce((SELECT string_agg(setrole::text || ':' || "
          "array_to_string(setconfig, '|'), ',' ORDER BY setrole) FROM pg_db_role_setting "
          "WHERE setdatabase = d.oid), '') FROM pg_database d WHERE datname = $1",
          {db})
      .get(0, 0);
}

std::vector<std::string> databases_like(const std::string& pattern) {
  auto r = server()
               .connect("postgres")
               .exec("SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1", {pattern});
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.get(i, 0));
  return out;
}

class Restore : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("postgres",
                  "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_owner') "
                  "THEN CREATE ROLE shop_owner; END IF; IF NOT EXISTS (SELECT FROM pg_roles WHERE "
                  "rolname = 'shop_reader') THEN CREATE ROLE shop_reader LOGIN; END IF; END$$");
    make_shop("shop", 2000, 30000);
  }
  static void make_shop(const std::string& db, int customers, int orders) {
    server().exec("postgres", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    server().exec("postgres", "CREATE DATABASE " + db);
    server().exec(db,
                  "CREATE TABLE customers(id int PRIMARY KEY, name text NOT NULL);"
                  "CREATE TABLE orders(id bigserial PRIMARY KEY, customer int REFERENCES "
                  "customers, total numeric(10,2), note text);"
                  "CREATE INDEX orders_customer ON orders(customer);"
                  "CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;"
                  "GRANT SELECT ON orders TO shop_reader;"
                  "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, " +
                      std::to_string(customers) +
                      ") g;"
                      "INSERT INTO orders(customer, total, note) SELECT 1 + g % " +
                      std::to_string(customers) +
                      ", g % 500, md5(g::text) FROM generate_series(1, " + std::to_string(orders) +
                      ") g;"
                      "CREATE SCHEMA _previewdb;"
                      "CREATE TABLE _previewdb.schema_migrations(id text PRIMARY KEY, name text, "
                      "format text, checksum text, status text, statements int, started_at "
                      "timestamptz, finished_at timestamptz, duration_ms bigint, applied_by text, "
                      "error text);");
    add_migration(db, "0001", "init", "now() - interval '2 h'");
    add_migration(db, "0002", "orders", "now() - interval '1 h'");
  }
  static void add_migration(const std::string& db, const std::string& id, const std::string& name,
                            const std::string& finished) {
    server().exec(db, "INSERT INTO _previewdb.schema_migrations VALUES ('" + id + "', '" + name +
                          "', 'plain', 'x', 'applied', 1, " + finished + ", " + finished +
                          ", 1, 't', NULL)");
  }
  static void dress_up(const std::string& db) {
    server().exec(
        "postgres",
        "ALTER DATABASE " + db + " OWNER TO shop_owner;" + "REVOKE ALL ON DATABASE " + db +
            " FROM PUBLIC;" + "GRANT CONNECT ON DATABASE " + db + " TO shop_reader;" +
            "ALTER DATABASE " + db + " SET search_path TO \"$user\", public;" + "ALTER DATABASE " +
            db + " SET work_mem TO '32MB';" + "ALTER ROLE shop_reader IN DATABASE " + db +
            " SET statement_timeout TO '7s';" + "COMMENT ON DATABASE " + db + " IS 'the shop'");
  }
  static test::Env env(const std::string& db = "postgres") {
    return {{"DATABASE_URL", server().url(db)}};
  }
  std::string store() const { return (m_tmp.path() / "backups").string(); }
  std::string make_backup(const std::string& db = "shop", std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"backup", db, "--store", store()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = run_cli(args, env());
    EXPECT_EQ(r.code, 0) << r.err;
    return util::trim(r.out);
  }
  test::CliResult restore(std::vector<std::string> extra, const std::string& db = "postgres") {
    std::vector<std::string> args = {"restore", "--store", store()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args, env(db));
  }
  util::TempDir m_tmp;
};

TEST_F(Restore, BackupVerifyRestoreRoundTripCarriesOverGrantsSettingsAndComment) {
  dress_up("shop");
  std::string dump = dump_of("shop");
  std::string props = properties_of("shop");
  std::string name = make_backup();
  ASSERT_EQ(run_cli({"backup", "verify", name, "--store", store()}, env()).code, 0);
  // Changes after the backup, which the restore takes back.
  server().exec("shop", "DELETE FROM orders WHERE id % 3 = 0; CREATE TABLE extra(x int);");
  std::string changed = counts_of("shop");

  auto r = restore({"--into", "shop", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["database"], "shop");
  EXPECT_EQ(j["source"], name);
  std::string kept = j["kept_as"];
  EXPECT_TRUE(kept.starts_with("shop_before_restore_")) << kept;
  EXPECT_FALSE(j["kept_managed"].get<bool>());  // owned by shop_owner
  EXPECT_THAT(r.err, HasSubstr("the original is kept as \"" + kept + "\""));
  EXPECT_THAT(r.err, HasSubstr("previewdb cleanup " + kept + " --include-unmanaged"));

  EXPECT_EQ(dump_of("shop"), dump);
  EXPECT_EQ(counts_of("shop"), "2000/30000/7485000.00");
  EXPECT_EQ(properties_of("shop"), props);
  EXPECT_EQ(counts_of(kept), changed);
  EXPECT_TRUE(databases_like("previewdb_tmp_%").empty());

  // The kept original is removable the way the message says.
  auto c = run_cli({"cleanup", kept, "--include-unmanaged", "--yes"}, env());
  EXPECT_EQ(c.code, 0) << c.err;
  EXPECT_FALSE(server().database_exists(kept));
}

TEST_F(Restore, TheKeptOriginalOfADatabaseOfPreviewdbsRoleIsManagedAndCleanedUp) {
  std::string name = make_backup();
  auto r = restore({}, "shop");  // no backup named: the newest of the URL's database
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(util::trim(r.out), "shop");
  auto kept = databases_like("shop_before_restore_%");
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_THAT(r.err, HasSubstr("previewdb cleanup " + kept[0]));
  EXPECT_THAT(r.err, Not(HasSubstr("--include-unmanaged")));
  auto c = run_cli({"cleanup", kept[0], "--yes"}, env());
  EXPECT_EQ(c.code, 0) << c.err;
  EXPECT_FALSE(server().database_exists(kept[0]));
  // The restored shop was not managed before, and is not now.
  auto refused = run_cli({"cleanup", "shop", "--yes"}, env());
  EXPECT_TRUE(server().database_exists("shop")) << refused.err;
}

TEST_F(Restore, IntoANewDatabaseCreatesIt) {
  std::string name = make_backup();
  auto r = restore({name, "--into", "shop_copy"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(counts_of("shop_copy"), counts_of("shop"));
  EXPECT_TRUE(databases_like("%_before_restore_%").empty());
}

TEST_F(Restore, ConnectedSessionsAreNamedAndTerminatedWhenAsked) {
  make_backup();
  auto client =
      db::Connection::open({.conninfo = server().url("shop"), .application_name = "shop-api"});
  auto r = restore({"--into", "shop"});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_THAT(r.err, HasSubstr("shop-api"));
  EXPECT_THAT(r.err, HasSubstr("pid " + std::to_string(client.backend_pid())));
  EXPECT_THAT(r.err, HasSubstr("user previewdb"));
  EXPECT_THAT(r.err, HasSubstr("--terminate-sessions"));
  EXPECT_TRUE(databases_like("%_before_restore_%").empty());
  EXPECT_TRUE(databases_like("previewdb_tmp_%").empty());

  r = restore({"--into", "shop", "--terminate-sessions"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("terminated 1 session(s)"));
  EXPECT_THAT(r.err, HasSubstr("shop-api"));
  EXPECT_THROW(client.exec("SELECT 1"), Error);
}

TEST_F(Restore, AProtectedDatabaseNeedsAllowProtectedAndAConfirmation) {
  make_shop("dev", 10, 10);
  make_backup("dev");
  server().exec("dev", "CREATE TABLE later(x int)");
  auto r = restore({"--into", "dev"});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_THAT(r.err, HasSubstr("protected"));
  EXPECT_THAT(r.err, HasSubstr("--allow-protected"));
  r = restore({"--into", "dev", "--allow-protected"});  // no terminal, no --yes
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_THAT(r.err, HasSubstr("without confirmation"));
  EXPECT_TRUE(databases_like("dev_before_restore_%").empty());
  EXPECT_EQ(server().connect("dev").exec("SELECT to_regclass('later') IS NOT NULL").get(0, 0), "t");
  r = restore({"--into", "dev", "--allow-protected", "--yes"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server().connect("dev").exec("SELECT to_regclass('later') IS NULL").get(0, 0), "t");
  EXPECT_EQ(databases_like("dev_before_restore_%").size(), 1u);
}

TEST_F(Restore, PlainSqlAndGzippedSqlFromOtherToolsAreRestored) {
  std::string expected = counts_of("shop");
  fs::path sql = m_tmp.path() / "seed.sql";
  fs::path gz = m_tmp.path() / "seed.sql.gz";
  util::ProcessSpec dump;
  dump.argv = {"sh", "-c",
               "pg_dump --no-owner -d \"$URL\" > \"$OUT\" && gzip -c \"$OUT\" > \"$OUT.gz\""};
  dump.env = {{"URL", server().url_without_password("shop")},
              {"PGPASSWORD", server().password()},
              {"OUT", sql.string()}};
  ASSERT_TRUE(util::run_process(dump).ok());
  auto r = restore({gz.string(), "--into", "from_gz"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("psql"));
  EXPECT_EQ(counts_of("from_gz"), expected);
  r = restore({sql.string(), "--into", "from_sql"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(counts_of("from_sql"), expected);
  // Over an existing database: swapped in like a backup.
  server().exec("from_sql", "DELETE FROM orders");
  r = restore({sql.string(), "--into", "from_sql"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(counts_of("from_sql"), expected);
  EXPECT_EQ(databases_like("from_sql_before_restore_%").size(), 1u);
  // A broken file fails whole: nothing half-made, the original untouched.
  fs::path bad = m_tmp.path() / "bad.sql";
  util::write_file_atomic(bad, "CREATE TABLE half(x int);\nSELECT * FROM no_such_table;\n");
  r = restore({bad.string(), "--into", "from_sql"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no_such_table"));
  EXPECT_EQ(counts_of("from_sql"), expected);
  EXPECT_TRUE(databases_like("previewdb_tmp_%").empty());
  // A dump made with --create cannot leave the database being built: its CREATE DATABASE fails
  // inside the one transaction, before its \connect.
  fs::path create = m_tmp.path() / "create.sql";
  util::ProcessSpec dump_create;
  dump_create.argv = {"sh", "-c", "pg_dump --create --no-owner -d \"$URL\" > \"$OUT\""};
  dump_create.env = {{"URL", server().url_without_password("shop")},
                     {"PGPASSWORD", server().password()},
                     {"OUT", create.string()}};
  ASSERT_TRUE(util::run_process(dump_create).ok());
  server().exec("shop", "CREATE TABLE later(x int)");
  r = restore({create.string(), "--into", "from_sql"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("CREATE DATABASE"));
  EXPECT_EQ(counts_of("from_sql"), expected);
  EXPECT_EQ(server().connect("shop").exec("SELECT to_regclass('later') IS NOT NULL").get(0, 0),
            "t");
  EXPECT_TRUE(databases_like("previewdb_tmp_%").empty());
  // --clean cannot undo plain SQL.
  r = restore({sql.string(), "--into", "from_sql", "--clean", "--yes"});
  EXPECT_EQ(r.code, 2) << r.err;
}

TEST_F(Restore, AnotherToolsArchiveIsRestoredWithAPgRestoreNewEnough) {
  std::string expected = counts_of("shop");
  fs::path archive = m_tmp.path() / "shop.dump";
  util::ProcessSpec dump;
  dump.argv = {"pg_dump",        "-Fc", "-f",
               archive.string(), "-d",  server().url_without_password("shop")};
  dump.env = {{"PGPASSWORD", server().password()}};
  ASSERT_TRUE(util::run_process(dump).ok());
  auto r = restore({archive.string(), "--into", "from_archive"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("pg_restore"));
  EXPECT_EQ(counts_of("from_archive"), expected);
  // Not an archive at all: named, nothing made.
  fs::path junk = m_tmp.path() / "junk.dump";
  util::write_file_atomic(junk, "this is not a dump\n");
  r = restore({junk.string(), "--into", "from_archive"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("as a pg_dump archive"));
  EXPECT_EQ(counts_of("from_archive"), expected);
  EXPECT_TRUE(databases_like("previewdb_tmp_%").empty());
}

TEST_F(Restore, CleanRestoresInPlace) {
  dress_up("shop");
  std::string dump = dump_of("shop");
  std::string name = make_backup();
  server().exec("shop", "DELETE FROM orders WHERE id % 2 = 0");
  auto r = restore({name, "--into", "shop", "--clean"});  // no terminal: refused
  EXPECT_EQ(r.code, 6) << r.err;
  r = restore({name, "--into", "shop", "--clean", "--yes"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("in place"));
  EXPECT_EQ(dump_of("shop"), dump);
  EXPECT_TRUE(databases_like("%_before_restore_%").empty());
}

TEST_F(Restore, AKilledRestoreLeavesTheOriginalAndTheNextRunCleansUp) {
  make_shop("shop", 20000, 400000);
  std::string full = counts_of("shop");
  std::string name = make_backup();
  server().exec("shop", "DELETE FROM orders WHERE id > 1000");
  std::string changed = counts_of("shop");
  auto e = env();
  int before_swap = 0, after_swap = 0;
  for (int delay_ms : {20, 100, 250, 500, 800, 1200, 1800, 2600}) {
    int pid = test::start_cli({"restore", name, "--store", store(), "--into", "shop"}, e);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    // Whatever the moment: shop is whole, either the original or the complete restore, and
    // never gone.
    ASSERT_TRUE(server().database_exists("shop")) << delay_ms;
    std::string now = counts_of("shop");
    EXPECT_TRUE(now == changed || now == full) << delay_ms << " ms: " << now;
    ++(now == full ? after_swap : before_swap);
    if (now == full) {
      // It swapped before the kill: the original is under its kept name; put it back for the
      // next round.
      auto kept = databases_like("shop_before_restore_%");
      ASSERT_EQ(kept.size(), 1u);
      EXPECT_EQ(counts_of(kept[0]), changed);
      server().exec("postgres", "DROP DATABASE shop WITH (FORCE)");
      server().exec("postgres", "ALTER DATABASE \"" + kept[0] + "\" RENAME TO shop");
    }
  }
  std::cerr << "killed before the swap: " << before_swap << ", after it: " << after_swap << "\n";
  EXPECT_GT(before_swap, 0);
  // The next run removes what the killed ones left (temporary builds and their rows).
  auto r = run_cli({"restore", name, "--store", store(), "--into", "shop"}, e);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(counts_of("shop"), full);
  EXPECT_TRUE(databases_like("previewdb_tmp_%").empty());
  // (A row registered just before a killed CREATE DATABASE has no database: refresh() prunes
  // those after a day; none may stand for a database that exists.)
  auto reg = server().connect(core::k_registry_database);
  EXPECT_EQ(reg.exec("SELECT count(*) FROM registry.databases r JOIN pg_database d ON d.datname = "
                     "r.name OR d.oid = r.oid WHERE r.state = 'building'")
                .get(0, 0),
            "0");
}

TEST_F(Restore, ADamagedBackupIsNotSwappedIn) {
  std::string name = make_backup();
  server().exec("shop", "CREATE TABLE later(x int)");
  fs::path archive = fs::path(store()) / (name + ".dump.zst");
  std::string bytes = util::read_file(archive);
  bytes[bytes.size() / 2] ^= 0x55;
  util::write_file_atomic(archive, bytes);
  auto r = restore({name, "--into", "shop"});
  EXPECT_EQ(r.code, 9) << r.err;
  EXPECT_THAT(r.err, HasSubstr("damaged"));
  EXPECT_EQ(server().connect("shop").exec("SELECT to_regclass('later') IS NOT NULL").get(0, 0),
            "t");
  EXPECT_TRUE(databases_like("previewdb_tmp_%").empty());
  EXPECT_TRUE(databases_like("%_before_restore_%").empty());
}

TEST_F(Restore, RollbackPicksTheNewestBackupBeforeTheLastMigration) {
  std::string older = make_backup();  // head 0002
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::string before_0003 = make_backup();  // head 0002, newer
  server().exec("shop", "CREATE TABLE coupons(id int)");
  add_migration("shop", "0003", "coupons", "now()");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::string after_0003 = make_backup();  // head 0003: not before the last run
  auto r = run_cli({"rollback", "shop", "--store", store(), "--json"}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backup"], before_0003);
  ASSERT_EQ(j["no_longer_applied"].size(), 1u);
  EXPECT_EQ(j["no_longer_applied"][0]["id"], "0003");
  EXPECT_THAT(r.err, HasSubstr("no longer applied: 0003 coupons"));
  EXPECT_EQ(server().connect("shop").exec("SELECT to_regclass('coupons') IS NULL").get(0, 0), "t");
  (void)older;
  (void)after_0003;
}

TEST_F(Restore, RollbackWithoutAnEarlierBackupIsNotFound) {
  make_backup();  // head 0002 = the current head
  auto r = run_cli({"rollback", "shop", "--store", store()}, env());
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("was taken before its last migration (0002 orders)"));
  EXPECT_THAT(r.err, HasSubstr("hint:"));
  server().exec("postgres", "CREATE DATABASE plain_db");
  r = run_cli({"rollback", "plain_db", "--store", store()}, env());
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no migrations applied by previewdb"));
  r = run_cli({"rollback", "no_such_db", "--store", store()}, env());
  EXPECT_EQ(r.code, 4) << r.err;
}

TEST_F(Restore, RollbackMarksPrismaMigrationsWhoseFoldersAreGone) {
  server().exec("shop",
                "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum "
                "varchar(64) NOT NULL, finished_at timestamptz, migration_name varchar(255) NOT "
                "NULL, logs text, rolled_back_at timestamptz, started_at timestamptz NOT NULL "
                "DEFAULT now(), applied_steps_count int NOT NULL DEFAULT 0);"
                "INSERT INTO _prisma_migrations VALUES "
                "('a', 'x', now(), '20260101000000_init', NULL, NULL, now(), 1),"
                "('b', 'x', now(), '20260102000000_reverted', NULL, NULL, now(), 1)");
  make_backup();
  server().exec("shop",
                "INSERT INTO _prisma_migrations VALUES "
                "('c', 'x', now(), '20260103000000_next', NULL, NULL, now(), 1)");
  add_migration("shop", "20260103000000_next", "next", "now()");
  // The team removed 20260102000000_reverted from the folder since.
  fs::path dir = m_tmp.path() / "prisma";
  for (const char* m : {"20260101000000_init", "20260103000000_next"}) {
    fs::create_directories(dir / m);
    util::write_file_atomic(dir / m / "migration.sql", "SELECT 1;\n");
  }
  util::write_file_atomic(dir / "migration_lock.toml", "provider = \"postgresql\"\n");
  auto r =
      run_cli({"rollback", "shop", "--store", store(), "--dir", dir.string(), "--json"}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prisma_rolled_back"], nlohmann::json::array({"20260102000000_reverted"}));
  auto rows = server().connect("shop").exec(
      "SELECT migration_name, rolled_back_at IS NOT NULL FROM _prisma_migrations ORDER BY 1");
  ASSERT_EQ(rows.rows(), 2);
  EXPECT_EQ(rows.get(0, 1), "f");
  EXPECT_EQ(rows.get(1, 1), "t");
}

TEST_F(Restore, BadArgumentsAreUsageErrors) {
  make_backup();
  auto r = restore({"a", "b"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("one backup"));
  r = restore({"--bogus"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = restore({"./no/such/file.sql", "--into", "x"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no such file"));
  r = restore({"--into", "-x"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = restore({"no-such-label", "--into", "shop"});
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no backup \"no-such-label\""));
  r = run_cli({"rollback", "a", "b", "--store", store()}, env());
  EXPECT_EQ(r.code, 2) << r.err;
  r = run_cli({"rollback", "--store", store(), "--nope"}, env());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(databases_like("previewdb_tmp_%").empty());
}

}  // namespace
