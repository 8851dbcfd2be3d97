// previewdb diff as users run it: identical schemas built by different paths are equal, object
// kinds previewdb does not model are reported (never silently equal), migrations folders are
// applied to scratch databases that are always dropped (also on SIGINT), the output shapes, the
// exit codes of bad input, and the time a 500-table schema takes.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "diff_helpers.hpp"
#include "util/files.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::schema_it;
namespace fs = std::filesystem;

namespace {

std::string history_sql() {
  std::string all;
  for (const char* f : {"0001_users.sql", "0002_orders.sql", "0003_reporting.sql"})
    all += util::read_file(history() / f) + "\n";
  return all;
}

// Waits (up to 30 s) until a scratch database's migration sits in its pg_sleep(60).
bool scratch_migration_running() {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (server()
            .connect()
            .exec("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' "
                  "AND pid <> pg_backend_pid() AND datname LIKE 'previewdb\\_tmp\\_%'")
            .get_int(0, 0) > 0)
      return true;
  }
  return false;
}

}  // namespace

TEST(Diff, EqualWhenBuiltByCreateOrByAlter) {
  auto a = fresh_db("paths_create",
                    "CREATE TYPE mood AS ENUM ('sad', 'ok');"
                    "CREATE TABLE p (id bigint PRIMARY KEY);"
                    "CREATE TABLE t (id bigint PRIMARY KEY, email text NOT NULL DEFAULT '',"
                    "  m mood, p_id bigint REFERENCES p (id) ON DELETE SET NULL,"
                    "  CONSTRAINT t_email_key UNIQUE (email));"
                    "CREATE INDEX t_m_idx ON t (m) WHERE m IS NOT NULL;");
  auto b = fresh_db("paths_alter",
                    "CREATE TYPE mood AS ENUM ('sad');"
                    "ALTER TYPE mood ADD VALUE 'ok';"
                    "CREATE TABLE p (id bigint);"
                    "ALTER TABLE p ADD PRIMARY KEY (id);"
                    "CREATE TABLE t (id bigint, dropped int);"
                    "ALTER TABLE t ADD PRIMARY KEY (id);"
                    "ALTER TABLE t DROP COLUMN dropped;"
                    "ALTER TABLE t ADD COLUMN email text;"
                    "ALTER TABLE t ALTER COLUMN email SET DEFAULT '';"
                    "ALTER TABLE t ALTER COLUMN email SET NOT NULL;"
                    "ALTER TABLE t ADD CONSTRAINT t_email_key UNIQUE (email);"
                    "ALTER TABLE t ADD COLUMN m mood;"
                    "ALTER TABLE t ADD COLUMN p_id bigint;"
                    "ALTER TABLE t ADD FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE SET NULL;"
                    "CREATE INDEX t_m_idx ON t (m) WHERE m IS NOT NULL;");
  auto r = diff_cli({a, b});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(contains(r.out, "no differences: every object compared")) << r.out;
  auto j = diff_json(b, a);
  EXPECT_EQ(j["equal"], true) << j.dump(2);
}

TEST(Diff, EqualForOneMigrationAndSeveral) {
  Folder one;
  one.file("0001_everything.sql", history_sql());
  auto r = diff_cli({one.path(), history().string()});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(contains(r.out, "schema diff: folder \"" + one.path() + "\" -> folder \"")) << r.out;
  EXPECT_TRUE(temporaries().empty());
}

TEST(Diff, FolderAgainstDatabaseIgnoresTheHistoryTables) {
  // One database migrated by previewdb (with its history tables), one by plain SQL.
  auto migrated = fresh_db("folder_migrated");
  auto m = cli("migrate", {"--dir", history().string()}, migrated);
  ASSERT_EQ(m.code, 0) << m.all();
  auto plain = fresh_db("folder_plain", history_sql());
  for (const auto& db : {migrated, plain}) {
    auto r = diff_cli({history().string(), db});
    EXPECT_EQ(r.code, 0) << db << ": " << r.all();
    r = diff_cli({db, "dir:" + history().string()});
    EXPECT_EQ(r.code, 0) << db << ": " << r.all();
  }
  // Asked to, they are compared: the folder's scratch database has previewdb's history.
  auto r = diff_cli({history().string(), plain, "--include-tool-tables", "--json"});
  EXPECT_EQ(r.code, 9) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(find_difference(j, "schema", "_previewdb").is_null()) << r.out;
  EXPECT_EQ(j["differences"][0]["change"], "removed");
  EXPECT_TRUE(temporaries().empty());
}

TEST(Diff, FolderAgainstDatabaseFindsTheDifference) {
  auto db = fresh_db("folder_changed", history_sql() + "; ALTER TABLE users DROP COLUMN plan;");
  auto r = diff_cli({"dir:" + history().string(), "db:" + db, "--json"});
  ASSERT_EQ(r.code, 9) << r.all();
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["differences"].size(), 1u) << r.out;
  EXPECT_EQ(j["differences"][0]["name"], "public.users.plan");
  EXPECT_EQ(j["differences"][0]["change"], "removed");
  EXPECT_EQ(j["from"], "folder \"" + history().string() + "\"");
  EXPECT_EQ(j["to"], "database \"folder_changed\"");
}

TEST(Diff, ObjectsOfKindsNotModelledAreReportedNotCompared) {
  const std::string base = "CREATE TABLE t (a int, b int); CREATE VIEW v AS SELECT a FROM t";
  auto plain = fresh_db("nc_plain", base);
  struct Case {
    std::string tag, sql, kind, name;
  } cases[] = {
      {"stats", "CREATE STATISTICS s1 ON a, b FROM t", "statistics object", "public.s1"},
      {"publication", "CREATE PUBLICATION pub1 FOR TABLE t", "publication", "pub1"},
      {"rule", "CREATE RULE r1 AS ON DELETE TO v DO INSTEAD NOTHING", "rule", "r1 on public.v"},
  };
  for (const auto& c : cases) {
    auto db = fresh_db("nc_" + c.tag, base + ";" + c.sql);
    auto r = diff_cli({plain, db, "--json"});
    ASSERT_EQ(r.code, 9) << c.tag << ": " << r.all();
    auto j = nlohmann::json::parse(r.out);
    EXPECT_TRUE(j["differences"].empty()) << r.out;
    bool found = false;
    for (const auto& u : j["not_compared"]) {
      if (u["kind"] == c.kind && u["name"] == c.name) {
        found = true;
        EXPECT_EQ(u["in_from"], false);
        EXPECT_EQ(u["in_to"], true);
      }
    }
    EXPECT_TRUE(found) << c.tag << ": " << r.out;
    // The same object on both sides is still not known to be equal.
    auto same = diff_cli({db, db});
    EXPECT_EQ(same.code, 9) << same.all();
    EXPECT_TRUE(contains(same.out, "? " + c.kind + " " + c.name + " (in both)")) << same.out;
    EXPECT_TRUE(contains(same.out, "no differences in what was compared")) << same.out;
  }
}

TEST(Diff, OutputShapes) {
  auto a = fresh_db("shapes_a", "CREATE TABLE t (a int)");
  auto b =
      fresh_db("shapes_b", "CREATE TABLE t (a bigint NOT NULL, b text); CREATE INDEX t_b ON t (b)");
  auto text = diff_cli({a, b});
  EXPECT_EQ(text.code, 9);
  EXPECT_TRUE(contains(text.out,
                       "table public.t\n"
                       "  ~ column a\n"
                       "      not_null: no -> yes\n"
                       "      type: integer -> bigint\n"
                       "  + column b: text\n"
                       "  + index public.t_b: btree (b)\n"))
      << text.out;
  auto sql = diff_cli({a, b, "--sql"});
  EXPECT_EQ(sql.code, 9);
  EXPECT_TRUE(contains(sql.out, "BEST-EFFORT")) << sql.out;
  // The patch applied to FROM gives TO.
  server().exec(a, sql.out);
  EXPECT_EQ(diff_cli({a, b}).code, 0) << sql.out;
  auto md = diff_cli({"shapes_a", "shapes_b", "--markdown"});
  EXPECT_EQ(md.code, 0) << md.all();  // equal now
  EXPECT_TRUE(contains(md.out, "### Schema diff")) << md.out;
  EXPECT_EQ(diff_cli({a, b, "--json", "--sql"}).code, 2);
}

TEST(Diff, UsageErrors) {
  auto r = diff_cli({"dbx:nope", "postgres"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(contains(r.err, "FROM \"dbx:nope\" has an unknown prefix \"dbx:\"")) << r.err;
  EXPECT_TRUE(contains(r.err, "hint: use db:NAME for a database or dir:PATH")) << r.err;

  r = diff_cli({"postgres", "dir:/nonexistent/migrations"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(contains(r.err, "TO: migrations folder \"/nonexistent/migrations\" does not exist"))
      << r.err;

  r = diff_cli({"./no-such-folder", "postgres"});
  EXPECT_EQ(r.code, 2) << r.all();

  r = diff_cli({"postgres", "no_such_database"});
  EXPECT_EQ(r.code, 4) << r.all();
  EXPECT_TRUE(contains(r.err, "no_such_database")) << r.err;

  r = diff_cli({"postgres"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(contains(r.err, "diff needs FROM and TO (got 1)")) << r.err;

  // A URL with a password in argv is refused before anything connects.
  r = diff_cli({server().url("postgres"), "postgres"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_FALSE(contains(r.all(), server().password()));
  // Without one (PGPASSWORD), a URL is a database.
  r = diff_cli({server().url_without_password("postgres"), "db:postgres"});
  EXPECT_EQ(r.code, 0) << r.all();

  // A folder whose migration fails: exit 7, nothing left behind.
  Folder bad;
  bad.file("0001_bad.sql", "CREATE TABLE t (a int);\nCREATE TABLE t (a int);\n");
  r = diff_cli({bad.path(), "postgres"});
  EXPECT_EQ(r.code, 7) << r.all();
  EXPECT_TRUE(temporaries().empty());
}

TEST(Diff, InterruptedWhileApplyingAFolderLeavesNoScratchDatabase) {
  Folder slow;
  slow.file("0001_slow.sql", "CREATE TABLE t (a int);\nSELECT pg_sleep(60);\n");
  int pid = start_cli({"diff", "--database-url", server().url_without_password("postgres"),
                       slow.path(), "postgres"},
                      {{"PGPASSWORD", server().password()}});
  ASSERT_TRUE(scratch_migration_running()) << "the scratch migration never started";
  ASSERT_EQ(temporaries().size(), 1u);
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGINT);
  EXPECT_TRUE(temporaries().empty());
}

TEST(Diff, FiveHundredTablesTakeWellUnderASecond) {
  std::string sql;
  for (int i = 0; i < 500; ++i) {
    std::string t = "t" + std::to_string(i);
    sql += "CREATE TABLE " + t + " (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, " +
           "name text NOT NULL DEFAULT '', n int CHECK (n > 0), at timestamptz, ref bigint" +
           (i ? " REFERENCES t" + std::to_string(i - 1) + " (id)" : "") + ");\n" + "CREATE INDEX " +
           t + "_name_idx ON " + t + " (name);\n" + "COMMENT ON TABLE " + t + " IS 'table " +
           std::to_string(i) + "';\n";
  }
  auto a = fresh_db("big_a", sql);
  auto b = fresh_db("big_b", sql + "ALTER TABLE t499 ADD COLUMN extra int;");
  auto started = std::chrono::steady_clock::now();
  auto r = diff_cli({a, b, "--json"});
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  ASSERT_EQ(r.code, 9) << r.all();
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["differences"].size(), 1u) << r.out;
  EXPECT_EQ(j["differences"][0]["name"], "public.t499.extra");
  RecordProperty("diff_500_tables_ms", std::to_string(ms));
  std::cout << "diff of two 500-table schemas (whole CLI run): " << ms << " ms\n";
  // Generous: the suite runs on loaded machines. One query per object would take far longer.
  EXPECT_LT(ms, 5000);
}

TEST(Diff, SqlPatchFromAnEmptyDatabaseRebuildsTheSchema) {
  auto empty = fresh_db("patch_empty");
  auto full = fresh_db("patch_full", history_sql());
  auto sql = diff_cli({empty, full, "--sql"});
  ASSERT_EQ(sql.code, 9) << sql.all();
  server().exec(empty, sql.out);
  auto r = diff_cli({empty, full});
  EXPECT_EQ(r.code, 0) << r.all() << "\n" << sql.out;
}

TEST(Diff, AScratchDatabaseOfAKilledRunIsDroppedByTheNextRun) {
  Folder slow;
  slow.file("0001_slow.sql", "CREATE TABLE t (a int);\nSELECT pg_sleep(60);\n");
  int pid = start_cli({"diff", "--database-url", server().url_without_password("postgres"),
                       slow.path(), "postgres"},
                      {{"PGPASSWORD", server().password()}});
  ASSERT_TRUE(scratch_migration_running()) << "the scratch migration never started";
  ASSERT_EQ(temporaries().size(), 1u);
  ::kill(pid, SIGKILL);  // nothing runs: the leftover is the next run's to remove
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_EQ(temporaries().size(), 1u);
  auto r = diff_cli({history().string(), "dir:" + history().string()});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(contains(r.err, "left behind by an interrupted previewdb")) << r.err;
  EXPECT_TRUE(temporaries().empty());
}
