// `previewdb dry-run` (issue 10) on a real server: the findings come from what the migrations did
// to a clone's rows, the target stays identical (full dump), the clone is always dropped.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <csignal>
#include <nlohmann/json.hpp>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test::safety;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

class DryRun : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    make_shop();
  }
  std::filesystem::path dir() const { return m_tmp.path() / "migrations"; }
  util::TempDir m_tmp;
};

const nlohmann::json* find(const nlohmann::json& findings, const std::string& kind,
                           const std::string& migration) {
  for (const auto& f : findings) {
    if (f["kind"] == kind && f["migration"] == migration) return &f;
  }
  return nullptr;
}

}  // namespace

TEST_F(DryRun, ReportsDataLossFromTheClonesRowsAndLeavesTheTargetIdentical) {
  write_folder(dir(),
               {{"0001_drop_legacy.sql", "ALTER TABLE users DROP COLUMN legacy;"},
                {"0002_prices_to_int.sql", "ALTER TABLE prices ALTER COLUMN amount TYPE integer;"},
                {"0003_delete_debug.sql", "DELETE FROM events WHERE kind = 'debug';"},
                {"0004_do_block.sql", "DO $$ BEGIN DELETE FROM logs WHERE id <= 15; END $$;"},
                {"0005_scratch.sql",
                 "CREATE TABLE scratch(id int, note text);\n"
                 "INSERT INTO scratch SELECT g, 'x' FROM generate_series(1, 10) g;\n"
                 "ALTER TABLE scratch DROP COLUMN note;\n"
                 "DELETE FROM scratch WHERE id < 5;\n"
                 "DROP TABLE scratch;"},
                {"0006_check.sql",
                 "ALTER TABLE products ADD CONSTRAINT price_positive CHECK (price > 0);"}});
  std::string before = full_dump("shop");
  auto r = run_cli({"dry-run", "shop", "--dir", dir().string(), "--json"}, env_for("shop"));
  ASSERT_EQ(r.code, 9) << r.all();
  auto j = nlohmann::json::parse(r.out);
  const auto& f = j["findings"];

  auto* col = find(f, "column-dropped", "0001_drop_legacy");
  ASSERT_NE(col, nullptr) << f.dump(2);
  EXPECT_EQ((*col)["column"], "legacy");
  EXPECT_EQ((*col)["rows"], 100);
  EXPECT_EQ((*col)["severity"], "data-loss");

  auto* lossy = find(f, "lossy-type-change", "0002_prices_to_int");
  ASSERT_NE(lossy, nullptr) << f.dump(2);
  EXPECT_EQ((*lossy)["rows"], 38);
  EXPECT_THAT((*lossy)["message"].get<std::string>(), HasSubstr("numeric(10,2) to integer"));

  auto* del = find(f, "rows-deleted", "0003_delete_debug");
  ASSERT_NE(del, nullptr) << f.dump(2);
  EXPECT_EQ((*del)["rows"], 30);

  auto* in_do = find(f, "rows-deleted", "0004_do_block");
  ASSERT_NE(in_do, nullptr) << f.dump(2);
  EXPECT_EQ((*in_do)["rows"], 15);

  for (const auto& x : f) {
    EXPECT_NE(x["migration"], "0005_scratch") << "created and dropped in the run: " << x.dump();
  }

  auto* check = find(f, "constraint-fails", "0006_check");
  ASSERT_NE(check, nullptr) << f.dump(2);
  EXPECT_EQ((*check)["rows"], 10);
  EXPECT_EQ((*check)["severity"], "failure");
  ASSERT_NE(find(f, "migration-failed", "0006_check"), nullptr);

  // Per migration: statements, rows affected, rewrites, locks.
  const auto& m = j["migrations"];
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[2]["rows_affected"], 30);
  EXPECT_EQ(m[4]["statements"], 5);
  EXPECT_THAT(m[1]["tables_rewritten"].dump(), HasSubstr("public.prices"));
  bool exclusive = false;
  for (const auto& l : m[0]["locks"]) {
    exclusive |= l["table"] == "public.users" && l["mode"] == "AccessExclusiveLock";
  }
  EXPECT_TRUE(exclusive) << m[0].dump(2);
  EXPECT_TRUE(m[5]["failed"].get<bool>());

  EXPECT_EQ(full_dump("shop"), before) << "the target changed";
  EXPECT_TRUE(temporaries().empty()) << util::join(temporaries(), ", ");
}

TEST_F(DryRun, NothingToReviewExitsZeroAndTextNamesEachMigration) {
  write_folder(dir(), {{"0001_add_column.sql", "ALTER TABLE users ADD COLUMN nickname text;"},
                       {"0002_index.sql", "CREATE INDEX users_email ON users(email);"}});
  auto r = run_cli({"dry-run", "shop", "--dir", dir().string()}, env_for("shop"));
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("0001_add_column"));
  EXPECT_THAT(r.out, HasSubstr("0 data loss"));
  EXPECT_THAT(r.out, HasSubstr("the target was not changed"));
  // Still pending on the target.
  auto st = run_cli({"status", "--dir", dir().string(), "--json"}, env_for("shop"));
  EXPECT_THAT(st.out, HasSubstr("\"pending\""));
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(DryRun, FailOnChoosesWhatCounts) {
  write_folder(dir(), {{"0001_delete.sql", "DELETE FROM events WHERE id <= 3;"},
                       {"0002_rewrite.sql", "ALTER TABLE logs ALTER COLUMN id TYPE bigint;"}});
  EXPECT_EQ(
      run_cli({"dry-run", "--dir", dir().string(), "--fail-on", "never"}, env_for("shop")).code, 0);
  EXPECT_EQ(run_cli({"dry-run", "--dir", dir().string()}, env_for("shop")).code, 9);
  auto bad =
      run_cli({"dry-run", "--dir", dir().string(), "--fail-on", "sometimes"}, env_for("shop"));
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--fail-on"));
  // Only a warning (a rewrite, its lock): counts with --fail-on warning.
  util::TempDir other;
  write_folder(other.path(),
               {{"0001_rewrite.sql", "ALTER TABLE logs ALTER COLUMN id TYPE bigint;"}});
  EXPECT_EQ(run_cli({"dry-run", "--dir", other.path().string()}, env_for("shop")).code, 0);
  EXPECT_EQ(
      run_cli({"dry-run", "--dir", other.path().string(), "--fail-on", "warning"}, env_for("shop"))
          .code,
      9);
}

TEST_F(DryRun, ABusyTargetIsCopiedWithADump) {
  write_folder(dir(), {{"0001_delete.sql", "DELETE FROM events WHERE kind = 'debug';"}});
  auto holder = server().connect("shop");  // a template copy needs the target idle
  auto r = run_cli({"dry-run", "--dir", dir().string(), "--json"}, env_for("shop"));
  ASSERT_EQ(r.code, 9) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_THAT(j["clone"]["method"].get<std::string>(), HasSubstr("pg_dump"));
  EXPECT_EQ(j["findings"][0]["rows"], 30);
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(DryRun, SigintDropsTheClone) {
  write_folder(dir(), {{"0001_slow.sql", "SELECT pg_sleep(60);"}});
  int pid = test::start_cli({"dry-run", "--dir", dir().string()}, env_for("shop"));
  ASSERT_TRUE(eventually([] { return !temporaries().empty(); })) << "no clone appeared";
  // Wait until the slow statement runs on the clone.
  ASSERT_TRUE(eventually([] {
    auto c = server().connect();
    return c.exec(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' "
                "AND datname LIKE 'previewdb\\_tmp\\_%'")
               .get_int(0, 0) > 0;
  }));
  ::kill(pid, SIGINT);
  int code = wait_cli(pid, std::chrono::seconds(20));
  EXPECT_EQ(code, 1);
  EXPECT_TRUE(temporaries().empty()) << util::join(temporaries(), ", ");
}

TEST_F(DryRun, MigrateDryRunHelpPointsToDryRun) {
  auto r = run_cli({"migrate", "--help"});
  // cxxopts wraps the help text: compare with the whitespace collapsed.
  std::string flat;
  for (char c : r.out) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!flat.empty() && flat.back() != ' ') flat += ' ';
    } else {
      flat += c;
    }
  }
  EXPECT_THAT(flat, HasSubstr("previewdb dry-run"));
}

TEST_F(DryRun, FailingConstraintsAreCountedOnTheExistingRows) {
  struct Case {
    std::string sql;
    long long rows;
  };
  std::vector<Case> cases = {
      // kind is 'debug' in 30 rows and 'info' in 270: every row is in a duplicate group.
      {"CREATE UNIQUE INDEX events_kind ON events(kind);", 300},
      // products.price runs from -9 to 50; users' ids from 1 to 100: 10 prices match no user.
      {"ALTER TABLE products ADD CONSTRAINT price_user FOREIGN KEY (price) REFERENCES users(id);",
       10},
      {"UPDATE users SET legacy = NULL WHERE id <= 7;\n"
       "ALTER TABLE users ALTER COLUMN legacy SET NOT NULL;",
       7},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.sql);
    util::TempDir folder;
    write_folder(folder.path(), {{"0001_constraint.sql", c.sql}});
    auto r = run_cli({"dry-run", "--dir", folder.path().string(), "--json"}, env_for("shop"));
    ASSERT_EQ(r.code, 9) << r.all();
    auto j = nlohmann::json::parse(r.out);
    auto* f = find(j["findings"], "constraint-fails", "0001_constraint");
    ASSERT_NE(f, nullptr) << j["findings"].dump(2);
    EXPECT_EQ((*f)["rows"], c.rows);
  }
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(DryRun, ALossyTypeChangeWithUsingComparesTheKeptOldValues) {
  // Every amount is multiplied: all 50 rows change, though a plain cast would change 38.
  write_folder(dir(), {{"0001_cents.sql",
                        "ALTER TABLE prices ALTER COLUMN amount TYPE integer "
                        "USING (amount * 100)::integer;"},
                       {"0002_widen.sql", "ALTER TABLE prices ALTER COLUMN amount TYPE bigint;"}});
  auto r = run_cli({"dry-run", "--dir", dir().string(), "--json"}, env_for("shop"));
  ASSERT_EQ(r.code, 9) << r.all();
  auto j = nlohmann::json::parse(r.out);
  auto* lossy = find(j["findings"], "lossy-type-change", "0001_cents");
  ASSERT_NE(lossy, nullptr) << j["findings"].dump(2);
  EXPECT_EQ((*lossy)["rows"], 50);
  // Widening keeps every value: information, not data loss.
  EXPECT_EQ(find(j["findings"], "lossy-type-change", "0002_widen"), nullptr);
  ASSERT_NE(find(j["findings"], "type-change", "0002_widen"), nullptr);
}
