// Issue 11: `previewdb reset [DB]` against a real server: a preview re-created from the latest
// snapshot and migrated (its data gone, its metadata kept), empty then migrated without a
// snapshot, a failing migration leaving the old database as it was, refusals (protected,
// unmanaged, snapshot, missing, not confirmed), and the embedded local server's dev wiped and
// re-migrated from the folder.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/harness.hpp"
#include "util/files.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

namespace fs = std::filesystem;

class Reset : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev",
                  "CREATE TABLE items(id int primary key, name text);"
                  "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10) g;");
    fs::create_directories(work.path() / "migrations" / "schema");
    write_migration("0001_notes.sql", "CREATE TABLE notes (id bigint PRIMARY KEY, body text);\n");
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  test::CliResult cli(const std::vector<std::string>& args, test::Env extra = {}) {
    test::Env e = {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_USER", "alice"}};
    for (auto& [k, v] : extra) e[k] = v;
    return run_cli(args, e, work.path().string());
  }
  void write_migration(const std::string& file, const std::string& sql) {
    util::write_file_atomic(work.path() / "migrations" / "schema" / file, sql);
  }
  std::string scalar(const std::string& db, const std::string& sql) {
    auto r = server().connect(db).exec(sql);
    return r.rows() ? r.get(0, 0) : std::string();
  }
  nlohmann::json listed(const std::string& name) {
    auto r = cli({"list", "--json"});
    EXPECT_EQ(r.code, 0) << r.all();
    for (const auto& d : nlohmann::json::parse(r.out)) {
      if (d["name"] == name) return d;
    }
    return nullptr;
  }
  util::TempDir work{"previewdb-reset-"};
};

TEST_F(Reset, PreviewIsRecreatedFromTheSnapshotAndMigrated) {
  ASSERT_EQ(cli({"snapshot"}).code, 0);
  auto spawned = cli({"spawn", "--pr", "12", "--branch", "feature"});
  ASSERT_EQ(spawned.code, 0) << spawned.all();
  server().exec("pr_12", "DELETE FROM items; CREATE TABLE scratch (x int);");
  auto before = listed("pr_12");

  auto r = cli({"reset", "pr_12", "--yes", "--json"});
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["name"], "pr_12");
  EXPECT_EQ(j["empty"], false);
  EXPECT_THAT(j["snapshot"].get<std::string>(), ::testing::StartsWith("snap_dev_"));
  EXPECT_EQ(j["migrations_applied"], 1);
  EXPECT_EQ(scalar("pr_12", "SELECT count(*) FROM items"), "10") << "the snapshot's data is back";
  EXPECT_EQ(scalar("pr_12", "SELECT to_regclass('scratch') IS NULL"), "t");
  EXPECT_EQ(scalar("pr_12", "SELECT to_regclass('notes') IS NOT NULL"), "t") << "migrated";
  // Still previewdb's preview of PR 12, on the same branch.
  auto after = listed("pr_12");
  EXPECT_EQ(after["managed"], true);
  EXPECT_EQ(after["kind"], before["kind"]);
  EXPECT_EQ(after["pr_number"], 12);
  EXPECT_EQ(after["branch"], "feature");
}

TEST_F(Reset, WithoutASnapshotItIsRecreatedEmptyThenMigrated) {
  ASSERT_EQ(cli({"snapshot"}).code, 0);
  ASSERT_EQ(cli({"spawn", "checkout"}).code, 0);
  auto r = cli({"reset", "dev_alice_checkout", "--empty", "--yes", "--json"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(nlohmann::json::parse(r.out)["empty"], true);
  EXPECT_EQ(scalar("dev_alice_checkout", "SELECT to_regclass('items') IS NULL"), "t");
  EXPECT_EQ(scalar("dev_alice_checkout", "SELECT to_regclass('notes') IS NOT NULL"), "t");
  EXPECT_EQ(listed("dev_alice_checkout")["managed"], true);
}

TEST_F(Reset, AFailingMigrationLeavesTheDatabaseAsItWas) {
  ASSERT_EQ(cli({"snapshot"}).code, 0);
  ASSERT_EQ(cli({"spawn", "checkout"}).code, 0);
  server().exec("dev_alice_checkout", "INSERT INTO items VALUES (1000, 'mine')");
  write_migration("0002_broken.sql", "ALTER TABLE missing ADD COLUMN x int;\n");
  auto r = cli({"reset", "dev_alice_checkout", "--yes"});
  EXPECT_EQ(r.code, 7) << r.all();
  EXPECT_THAT(r.err, HasSubstr("0002_broken.sql"));
  EXPECT_EQ(scalar("dev_alice_checkout", "SELECT count(*) FROM items"), "11") << "untouched";
  auto temps =
      scalar("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb_tmp_%'");
  EXPECT_EQ(temps, "0") << "nothing half-made left";
}

TEST_F(Reset, RefusesWhatItMayNotReset) {
  auto snap = cli({"snapshot"});
  ASSERT_EQ(snap.code, 0);
  std::string snapshot = snap.out.substr(0, snap.out.find('\n'));
  server().exec("postgres", "CREATE DATABASE someone_elses");

  auto r = cli({"reset", "dev", "--yes"});
  EXPECT_EQ(r.code, 6) << r.all();
  EXPECT_THAT(r.err, HasSubstr("refusing to reset \"dev\": it is protected"));
  EXPECT_THAT(r.err, HasSubstr("--refresh-source"));
  r = cli({"reset", "staging_copy", "--yes", "--protect", "staging_copy"});
  EXPECT_EQ(r.code, 4) << r.all();  // not there at all
  r = cli({"reset", "someone_elses", "--yes"});
  EXPECT_EQ(r.code, 6) << r.all();
  EXPECT_THAT(r.err,
              HasSubstr("refusing to reset \"someone_elses\": it is not managed by previewdb"));
  r = cli({"reset", snapshot, "--yes"});
  EXPECT_EQ(r.code, 6) << r.all();
  EXPECT_THAT(r.err, HasSubstr("refusing to reset \"" + snapshot + "\""));
  r = cli({"reset", "pr_99", "--yes"});
  EXPECT_EQ(r.code, 4) << r.all();
  EXPECT_THAT(r.err, HasSubstr("database \"pr_99\" does not exist"));
  r = cli({"reset"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_THAT(r.err, HasSubstr("name the database to reset"));

  // Without a terminal and without --yes: refused, nothing changed.
  ASSERT_EQ(cli({"spawn", "checkout"}).code, 0);
  server().exec("dev_alice_checkout", "INSERT INTO items VALUES (1000, 'mine')");
  r = cli({"reset", "dev_alice_checkout"});
  EXPECT_EQ(r.code, 6) << r.all();
  EXPECT_THAT(r.err, HasSubstr("without confirmation"));
  EXPECT_EQ(scalar("dev_alice_checkout", "SELECT count(*) FROM items"), "11");
  EXPECT_TRUE(server().database_exists("someone_elses"));
}

TEST_F(Reset, LocalServerDevIsWipedAndRemigrated) {
  // No server URL: the embedded local server under the work folder.
  test::Env local = {{"PREVIEWDB_USER", "zed"}};
  auto stop = [&] { run_cli({"local", "stop"}, local, work.path().string()); };
  fs::permissions(work.path(), fs::perms(0755));
  auto m = run_cli({"migrate"}, local, work.path().string());
  if (m.code != 0) stop();
  ASSERT_EQ(m.code, 0) << m.all();
  auto url = run_cli({"local", "url"}, local, work.path().string());
  std::string dev_url = url.out.substr(0, url.out.find('\n'));
  {
    auto conn = db::Connection::open({.conninfo = dev_url});
    conn.exec("INSERT INTO notes VALUES (1, 'local data'); CREATE TABLE stray (x int)");
  }
  auto refused = run_cli({"reset"}, local, work.path().string());
  EXPECT_EQ(refused.code, 6) << refused.all();
  EXPECT_THAT(refused.err, HasSubstr("without confirmation"));

  write_migration("0002_tags.sql", "CREATE TABLE tags (id bigint PRIMARY KEY);\n");
  auto r = run_cli({"reset", "--yes", "--json"}, local, work.path().string());
  EXPECT_EQ(r.code, 0) << r.all();
  if (r.code == 0) {
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["name"], "dev");
    EXPECT_EQ(j["migrations_applied"], 2);
    auto conn = db::Connection::open({.conninfo = dev_url});
    EXPECT_EQ(conn.exec("SELECT count(*) FROM notes").get(0, 0), "0");
    EXPECT_EQ(conn.exec("SELECT to_regclass('stray') IS NULL").get(0, 0), "t");
    EXPECT_EQ(conn.exec("SELECT to_regclass('tags') IS NOT NULL").get(0, 0), "t");
    // Still the local server's dev: listed, and unregistered as `local start` made it.
    auto list = run_cli({"list", "--json"}, local, work.path().string());
    bool found = false;
    for (const auto& d : nlohmann::json::parse(list.out)) found = found || d["name"] == "dev";
    EXPECT_TRUE(found) << list.out;
  }
  stop();
}

}  // namespace
