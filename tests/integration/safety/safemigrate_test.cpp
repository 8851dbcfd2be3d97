// `previewdb safe-migrate` (issue 10) on a real server: backup -> dry run -> apply -> restore,
// the refusal on data loss, no restore over other sessions' writes, and a run killed at every
// step (SIGKILL) reported and finished by the next run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <nlohmann/json.hpp>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test::safety;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

class SafeMigrate : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    make_shop();
  }
  std::filesystem::path dir() const { return m_tmp.path() / "migrations"; }
  std::filesystem::path pause_file() const { return m_tmp.path() / "paused"; }
  // 0001 succeeds everywhere; 0002 passes on the clone but fails on the real database (it
  // checks current_database()).
  void failing_on_real() {
    write_folder(dir(),
                 {{"0001_nickname.sql",
                   "ALTER TABLE users ADD COLUMN nickname text;\n"
                   "UPDATE users SET nickname = 'n' || id;"},
                  {"0002_only_fails_on_shop.sql",
                   "DO $$ BEGIN IF current_database() = 'shop' THEN "
                   "RAISE EXCEPTION 'this only fails on the real database'; END IF; END $$;"}});
  }
  void good_migrations() {
    write_folder(dir(), {{"0001_nickname.sql", "ALTER TABLE users ADD COLUMN nickname text;"},
                         {"0002_index.sql", "CREATE INDEX users_email ON users(email);"}});
  }
  long long count(const std::string& sql) {
    return server().connect("shop").exec(sql).get_int(0, 0);
  }
  bool has_column(const std::string& table, const std::string& column) {
    return count("SELECT count(*) FROM information_schema.columns WHERE table_name = '" + table +
                 "' AND column_name = '" + column + "'") > 0;
  }
  util::TempDir m_tmp;
};

}  // namespace

TEST_F(SafeMigrate, AppliesAfterBackupAndDryRunReportingEachStep) {
  good_migrations();
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"}, env_for("shop"));
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_THAT(j["backup"].get<std::string>(), HasSubstr("snap_shop_"));
  ASSERT_EQ(j["steps"].size(), 3u);
  EXPECT_EQ(j["steps"][0]["step"], "backup");
  EXPECT_EQ(j["steps"][1]["step"], "dry-run");
  EXPECT_EQ(j["steps"][2]["step"], "apply");
  EXPECT_EQ(j["applied"].size(), 2u);
  EXPECT_FALSE(j["restored"].get<bool>());
  EXPECT_TRUE(has_column("users", "nickname"));
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(SafeMigrate, DataLossIsRefusedUnlessAllowed) {
  write_folder(dir(), {{"0001_drop.sql", "ALTER TABLE users DROP COLUMN legacy;"}});
  std::string before = full_dump("shop");
  auto r = run_cli({"safe-migrate", "--dir", dir().string()}, env_for("shop"));
  EXPECT_EQ(r.code, 6) << r.all();
  EXPECT_THAT(r.out, HasSubstr("column public.users.legacy dropped with 100 rows"));
  EXPECT_EQ(full_dump("shop"), before);
  auto ok =
      run_cli({"safe-migrate", "--dir", dir().string(), "--allow-data-loss"}, env_for("shop"));
  EXPECT_EQ(ok.code, 0) << ok.all();
  EXPECT_FALSE(has_column("users", "legacy"));
}

TEST_F(SafeMigrate, AFailureOnTheRealDatabaseIsRestoredFromTheBackup) {
  failing_on_real();
  std::string before = full_dump("shop");
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"}, env_for("shop"));
  ASSERT_EQ(r.code, 7) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["restored"].get<bool>()) << j.dump(2);
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("only fails on the real database"));
  EXPECT_THAT(j["kept_as"].get<std::string>(), HasSubstr("shop_before_restore_"));
  // 0001 was applied before 0002 failed; the restore took it back.
  EXPECT_FALSE(has_column("users", "nickname"));
  EXPECT_EQ(full_dump("shop"), before);
  EXPECT_TRUE(server().database_exists(j["kept_as"].get<std::string>()));
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(SafeMigrate, NoRestoreLeavesItAndNamesTheCommand) {
  failing_on_real();
  auto r =
      run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--no-restore"}, env_for("shop"));
  ASSERT_EQ(r.code, 7) << r.all();
  EXPECT_THAT(r.out, HasSubstr("restored=false: --no-restore"));
  EXPECT_THAT(r.out, HasSubstr("previewdb safe-migrate shop --restore snap_shop_"));
  EXPECT_TRUE(has_column("users", "nickname"));
}

TEST_F(SafeMigrate, OtherSessionsWritesSinceTheBackupPreventTheRestore) {
  failing_on_real();
  int pid =
      test::start_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"},
                      env_for("shop", {{"PREVIEWDB_TEST_PAUSE_AT", "apply"},
                                       {"PREVIEWDB_TEST_PAUSE_FILE", pause_file().string()}}));
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(pause_file()); }));
  {
    auto app = server().connect("shop");
    app.exec("INSERT INTO logs VALUES (1000, 'written by the application')");
  }
  std::filesystem::remove(pause_file());
  EXPECT_EQ(wait_cli(pid), 7);
  // Not restored: the application's row is still there, and so is 0001's column.
  EXPECT_EQ(count("SELECT count(*) FROM logs WHERE id = 1000"), 1);
  EXPECT_TRUE(has_column("users", "nickname"));
  auto again = run_cli({"status", "--dir", dir().string(), "--json"}, env_for("shop"));
  EXPECT_THAT(again.out, HasSubstr("0002_only_fails_on_shop"));
}

TEST_F(SafeMigrate, NotRestoredIsWrittenToTheOutputs) {
  failing_on_real();
  // The same as above, run in the foreground through the outputs file: restored=false and why.
  auto outputs = m_tmp.path() / "github_output";
  std::ofstream(outputs).close();
  int pid = test::start_cli({"safe-migrate", "shop", "--dir", dir().string()},
                            env_for("shop", {{"PREVIEWDB_TEST_PAUSE_AT", "apply"},
                                             {"PREVIEWDB_TEST_PAUSE_FILE", pause_file().string()},
                                             {"GITHUB_OUTPUT", outputs.string()}}));
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(pause_file()); }));
  server().exec("shop", "UPDATE logs SET line = 'changed' WHERE id = 1");
  std::filesystem::remove(pause_file());
  EXPECT_EQ(wait_cli(pid), 7);
  std::string text = util::read_file(outputs);
  EXPECT_THAT(text, HasSubstr("restored"));
  EXPECT_THAT(text, HasSubstr("false"));
  EXPECT_THAT(text, HasSubstr("snap_shop_"));
}

// SIGKILL at every step: the next run reports where the last one stopped, and finishes it (or
// finishes its restore). The database is never left half-migrated without a report.
TEST_F(SafeMigrate, KilledAtEveryStepTheNextRunReportsAndFinishes) {
  for (std::string step : {"backup", "dry-run", "apply"}) {
    SCOPED_TRACE(step);
    server().reset();
    make_shop();
    good_migrations();
    int pid =
        test::start_cli({"safe-migrate", "shop", "--dir", dir().string()},
                        env_for("shop", {{"PREVIEWDB_TEST_PAUSE_AT", step},
                                         {"PREVIEWDB_TEST_PAUSE_FILE", pause_file().string()}}));
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(pause_file()); }));
    ::kill(pid, SIGKILL);
    wait_cli(pid);
    std::filesystem::remove(pause_file());
    auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"}, env_for("shop"));
    ASSERT_EQ(r.code, 0) << r.all();
    auto j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j.contains("previous_run")) << j.dump(2);
    EXPECT_THAT(j["previous_run"].get<std::string>(), HasSubstr("step \"" + step + "\""));
    EXPECT_TRUE(has_column("users", "nickname"));
    EXPECT_TRUE(temporaries().empty()) << util::join(temporaries(), ", ");
  }
  for (std::string step : {"restore", "swap"}) {
    SCOPED_TRACE(step);
    server().reset();
    make_shop();
    failing_on_real();
    std::string before = full_dump("shop");
    int pid =
        test::start_cli({"safe-migrate", "shop", "--dir", dir().string()},
                        env_for("shop", {{"PREVIEWDB_TEST_PAUSE_AT", step},
                                         {"PREVIEWDB_TEST_PAUSE_FILE", pause_file().string()}}));
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(pause_file()); }));
    ::kill(pid, SIGKILL);
    wait_cli(pid);
    std::filesystem::remove(pause_file());
    // The swap is one transaction: killed just before it, the database is the failed one.
    EXPECT_TRUE(server().database_exists("shop"));
    auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"}, env_for("shop"));
    ASSERT_EQ(r.code, 7) << r.all();
    auto j = nlohmann::json::parse(r.out);
    EXPECT_THAT(j["previous_run"].get<std::string>(), HasSubstr("finishing its restore"));
    EXPECT_TRUE(j["restored"].get<bool>()) << j.dump(2);
    EXPECT_EQ(full_dump("shop"), before);
  }
}

TEST_F(SafeMigrate, AFailedRestoreIsLoudExitsOneAndNamesTheBackup) {
  failing_on_real();
  int pid =
      test::start_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"},
                      env_for("shop", {{"PREVIEWDB_TEST_PAUSE_AT", "restore"},
                                       {"PREVIEWDB_TEST_PAUSE_FILE", pause_file().string()}}));
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(pause_file()); }));
  // The backup disappears before the restore can use it.
  auto conn = server().connect();
  auto snap = conn.exec("SELECT datname FROM pg_database WHERE datname LIKE 'snap\\_shop\\_%'");
  ASSERT_EQ(snap.rows(), 1);
  std::string name = snap.get(0, 0);
  conn.exec("ALTER DATABASE " + conn.quote_ident(name) + " IS_TEMPLATE false");
  conn.exec("DROP DATABASE " + conn.quote_ident(name));
  std::filesystem::remove(pause_file());
  EXPECT_EQ(wait_cli(pid), 1);
  // The failed database is left as it was (0001 applied), not half-swapped.
  EXPECT_TRUE(has_column("users", "nickname"));
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(SafeMigrate, RestoreOnItsOwnPutsASnapshotBackAndKeepsTheOld) {
  good_migrations();
  std::string before = full_dump("shop");
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"}, env_for("shop"));
  ASSERT_EQ(r.code, 0) << r.all();
  std::string backup = nlohmann::json::parse(r.out)["backup"];
  server().exec("shop", "COMMENT ON DATABASE shop IS 'the shop'");
  auto back = run_cli({"safe-migrate", "shop", "--restore", backup, "--json"}, env_for("shop"));
  ASSERT_EQ(back.code, 0) << back.all();
  auto j = nlohmann::json::parse(back.out);
  EXPECT_TRUE(j["restored"].get<bool>());
  EXPECT_EQ(full_dump("shop"), before);
  EXPECT_TRUE(server().database_exists(j["kept_as"].get<std::string>()));
  // What a new database would lose is carried over (here: the comment).
  auto c = server().connect();
  EXPECT_EQ(c.exec("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                   "WHERE datname = 'shop'")
                .get(0, 0),
            "the shop");
}

TEST_F(SafeMigrate, NothingPendingTakesNoBackup) {
  good_migrations();
  ASSERT_EQ(run_cli({"safe-migrate", "shop", "--dir", dir().string()}, env_for("shop")).code, 0);
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"}, env_for("shop"));
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["steps"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["steps"][0]["step"], "check");
  EXPECT_EQ(j["backup"], "");
  auto c = server().connect();
  EXPECT_EQ(
      c.exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'snap\\_shop\\_%'").get_int(0, 0),
      1);
}
