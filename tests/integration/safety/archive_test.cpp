// safe-migrate's "elsewhere" backup (issue 10): a verified pg_dump archive in a backup store when
// a template snapshot on the target's server is impossible (a role without CREATEDB, clones on
// another server) or asked for; the restore from it when applying fails; a run killed at each step.
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

const char* k_role = "safety_nocreate";

std::string role_url(const std::string& db) {
  return "postgresql://" + std::string(k_role) + ":pw_" + k_role +
         "@127.0.0.1:" + std::to_string(server().port()) + "/" + db;
}

class SafeMigrateArchive : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    auto conn = server().connect();
    if (!conn.exec("SELECT 1 FROM pg_roles WHERE rolname = $1", {k_role}).rows()) {
      conn.exec("CREATE ROLE " + std::string(k_role) + " LOGIN NOCREATEDB PASSWORD 'pw_" + k_role +
                "'");
    }
    shop_owned_by_role();
  }
  // shop, owned (database, schema, tables) by the role that may not create databases.
  void shop_owned_by_role() {
    make_shop();
    auto conn = server().connect();
    conn.exec("ALTER DATABASE shop OWNER TO " + std::string(k_role));
    server().exec("shop",
                  "DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables "
                  "WHERE schemaname = 'public' LOOP EXECUTE format('ALTER TABLE %I OWNER "
                  "TO " +
                      std::string(k_role) + "', t); END LOOP; END $$");
  }
  std::filesystem::path dir() const { return m_tmp.path() / "migrations"; }
  std::filesystem::path store() const { return m_tmp.path() / "backups"; }
  std::filesystem::path pause_file() const { return m_tmp.path() / "paused"; }
  // The role's URL for the target; previewdb's clones and records on the same server through the
  // superuser (PREVIEWDB_SCRATCH_URL): "another server" that may create databases.
  test::Env role_env(test::Env extra = {}) const {
    test::Env e = {{"DATABASE_URL", role_url("shop")},
                   {"PREVIEWDB_SCRATCH_URL", server().url("postgres")},
                   {"BACKUP_DIR", store().string()}};
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
  void failing_on_real() {
    write_folder(dir(),
                 {{"0001_nickname.sql",
                   "ALTER TABLE users ADD COLUMN nickname text;\n"
                   "UPDATE users SET nickname = 'n' || id;\n"
                   "CREATE TABLE badges(id int PRIMARY KEY);"},
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
  bool has_table(const std::string& table) {
    return count("SELECT count(*) FROM pg_tables WHERE tablename = '" + table + "'") > 0;
  }
  std::vector<std::string> archives() const {
    std::vector<std::string> out;
    if (!std::filesystem::exists(store())) return out;
    for (const auto& e : std::filesystem::directory_iterator(store())) {
      if (e.path().string().ends_with(".dump.zst")) out.push_back(e.path().filename().string());
    }
    return out;
  }
  util::TempDir m_tmp;
};

}  // namespace

TEST_F(SafeMigrateArchive, ARoleWithoutCreatedbGetsAVerifiedArchive) {
  good_migrations();
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"}, role_env());
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backup_kind"], "archive") << j.dump(2);
  EXPECT_THAT(j["backup_reason"].get<std::string>(), HasSubstr("another server"));
  EXPECT_THAT(j["backup"].get<std::string>(), HasSubstr("bak_shop_"));
  EXPECT_THAT(j["backup_url"].get<std::string>(), HasSubstr("file://" + store().string()));
  EXPECT_THAT(j["backup_url"].get<std::string>(), ::testing::Not(HasSubstr("pw_")));
  ASSERT_EQ(j["steps"].size(), 4u);
  EXPECT_EQ(j["steps"][0]["step"], "backup");
  EXPECT_EQ(j["steps"][1]["step"], "verify");
  EXPECT_EQ(j["steps"][2]["step"], "dry-run");
  EXPECT_EQ(j["steps"][3]["step"], "apply");
  EXPECT_EQ(j["dry_run"]["migrations"].size(), 2u);
  EXPECT_TRUE(has_column("users", "nickname"));
  ASSERT_EQ(archives().size(), 1u);
  // The manifest records the verification.
  auto manifest =
      nlohmann::json::parse(util::read_file(store() / (j["backup"].get<std::string>() + ".json")));
  EXPECT_TRUE(manifest.contains("verified_at") && !manifest["verified_at"].is_null())
      << manifest.dump(2);
  EXPECT_TRUE(temporaries().empty()) << util::join(temporaries(), ", ");
}

TEST_F(SafeMigrateArchive, AFailingMigrationIsRestoredFromTheArchiveInPlace) {
  failing_on_real();
  std::string before = full_dump("shop");
  auto outputs = m_tmp.path() / "github_output";
  std::ofstream(outputs).close();
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"},
                   role_env({{"GITHUB_OUTPUT", outputs.string()}}));
  ASSERT_EQ(r.code, 7) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backup_kind"], "archive");
  EXPECT_TRUE(j["restored"].get<bool>()) << j.dump(2);
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("only fails on the real database"));
  // 0001 (a column, a table, previewdb's history) was applied before 0002 failed: all gone.
  EXPECT_FALSE(has_column("users", "nickname"));
  EXPECT_FALSE(has_table("badges"));
  EXPECT_EQ(full_dump("shop"), before);
  std::string text = util::read_file(outputs);
  EXPECT_THAT(text, HasSubstr("backup-kind"));
  EXPECT_THAT(text, HasSubstr("archive"));
  EXPECT_THAT(text, HasSubstr("bak_shop_"));
  EXPECT_TRUE(temporaries().empty()) << util::join(temporaries(), ", ");
}

TEST_F(SafeMigrateArchive, TextReportNamesTheKindAndWhy) {
  failing_on_real();
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--no-restore"}, role_env());
  ASSERT_EQ(r.code, 7) << r.all();
  EXPECT_THAT(r.out, HasSubstr("backup_kind: archive ("));
  EXPECT_THAT(r.out, HasSubstr("restored=false: --no-restore"));
  EXPECT_THAT(r.out, HasSubstr("previewdb restore bak_shop_"));
  EXPECT_THAT(r.out, HasSubstr("--into shop"));
}

TEST_F(SafeMigrateArchive, ForcedArchiveOnTheSameServerIsSwappedInAndKeepsTheOld) {
  failing_on_real();
  std::string before = full_dump("shop");
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json", "--backup",
                    "archive", "--backup-store", store().string()},
                   env_for("shop"));
  ASSERT_EQ(r.code, 7) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backup_kind"], "archive");
  EXPECT_THAT(j["backup_reason"].get<std::string>(), HasSubstr("--backup"));
  EXPECT_TRUE(j["restored"].get<bool>()) << j.dump(2);
  EXPECT_THAT(j["kept_as"].get<std::string>(), HasSubstr("shop_before_restore_"));
  EXPECT_EQ(full_dump("shop"), before);
  EXPECT_EQ(archives().size(), 1u);
}

TEST_F(SafeMigrateArchive, ABusyTargetGetsAnArchive) {
  good_migrations();
  auto app = server().connect("shop");  // an application's session: no template copy
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"},
                   env_for("shop", {{"BACKUP_DIR", store().string()}}));
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backup_kind"], "archive") << j.dump(2);
  EXPECT_THAT(j["backup_reason"].get<std::string>(), HasSubstr("other session"));
  EXPECT_TRUE(has_column("users", "nickname"));
}

TEST_F(SafeMigrateArchive, TemplateForcedWhereImpossibleIsRefused) {
  good_migrations();
  auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--backup", "template"},
                   role_env());
  EXPECT_EQ(r.code, 6) << r.all();
  EXPECT_THAT(r.err, HasSubstr("cannot take a template backup"));
  EXPECT_THAT(r.err, HasSubstr("--backup archive"));
  EXPECT_FALSE(has_column("users", "nickname"));
  auto bad =
      run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--backup", "tape"}, role_env());
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_THAT(bad.err, HasSubstr("invalid backup kind \"tape\""));
}

// SIGKILL at each step of an archive run: the next run reports where the last one stopped and
// finishes it, or finishes its restore from the archive.
TEST_F(SafeMigrateArchive, KilledAtEachStepTheNextRunReportsAndFinishes) {
  for (std::string step : {"backup", "dry-run", "apply", "restore"}) {
    SCOPED_TRACE(step);
    server().reset();
    shop_owned_by_role();
    std::filesystem::remove_all(dir());
    bool failing = step == "restore";
    if (failing) {
      failing_on_real();
    } else {
      good_migrations();
    }
    std::string before = full_dump("shop");
    int pid = test::start_cli({"safe-migrate", "shop", "--dir", dir().string()},
                              role_env({{"PREVIEWDB_TEST_PAUSE_AT", step},
                                        {"PREVIEWDB_TEST_PAUSE_FILE", pause_file().string()}}));
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(pause_file()); }));
    ::kill(pid, SIGKILL);
    wait_cli(pid);
    std::filesystem::remove(pause_file());
    auto r = run_cli({"safe-migrate", "shop", "--dir", dir().string(), "--json"}, role_env());
    ASSERT_EQ(r.code, failing ? 7 : 0) << r.all();
    auto j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j.contains("previous_run")) << j.dump(2);
    EXPECT_THAT(j["previous_run"].get<std::string>(), HasSubstr("step \"" + step + "\""));
    if (failing) {
      EXPECT_TRUE(j["restored"].get<bool>()) << j.dump(2);
      EXPECT_EQ(full_dump("shop"), before);
    } else {
      EXPECT_TRUE(has_column("users", "nickname"));
    }
    EXPECT_TRUE(temporaries().empty()) << util::join(temporaries(), ", ");
  }
}

TEST_F(SafeMigrateArchive, RestoreOfASnapshotWithAScratchServerIsAUsageError) {
  auto r = run_cli({"safe-migrate", "shop", "--restore", "snap_shop_20261130_000000"}, role_env());
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_THAT(r.err, HasSubstr("--restore puts a template snapshot back"));
  EXPECT_THAT(r.err, HasSubstr("previewdb restore BACKUP --store URL --into DB"));
}
