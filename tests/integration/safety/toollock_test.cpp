// While previewdb migrates it also holds the folder's own tool's advisory lock (issue 10): a
// session holding Prisma's key (or golang-migrate's) makes `migrate` wait, bounded by
// --lock-timeout, then exit 8 naming the tool, the key and the holder.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "migrate/lock.hpp"

using namespace previewdb;
using namespace previewdb::test::safety;
using test::run_cli;
using ::testing::HasSubstr;

namespace {

class ToolLock : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    fresh_db("app");
  }
  static std::string folder(const std::string& format) {
    return (test::fixtures_dir() / "migrations" / format).string();
  }
};

}  // namespace

TEST_F(ToolLock, ASessionHoldingPrismasLockMakesMigrateWaitThenExit8) {
  auto prisma = server().connect("app");  // Prisma locks in the database it migrates
  prisma.exec("SELECT set_config('application_name', 'prisma-migrate', false)");
  prisma.exec("SELECT pg_advisory_lock(72707369)");
  auto r = run_cli({"migrate", "--dir", folder("prisma"), "--lock-timeout", "2s"}, env_for("app"));
  EXPECT_EQ(r.code, 8) << r.all();
  EXPECT_THAT(r.err, HasSubstr("Prisma's migration lock (pg_advisory_lock(72707369)"));
  EXPECT_THAT(r.err, HasSubstr("prisma-migrate"));
  // Nothing applied meanwhile.
  auto st = run_cli({"status", "--dir", folder("prisma"), "--json"}, env_for("app"));
  EXPECT_EQ(nlohmann::json::parse(st.out)["counts"]["applied"], 0) << st.all();
  prisma.exec("SELECT pg_advisory_unlock(72707369)");
  auto ok = run_cli({"migrate", "--dir", folder("prisma"), "--json"}, env_for("app"));
  ASSERT_EQ(ok.code, 0) << ok.all();
  EXPECT_THAT(ok.out, HasSubstr("Prisma:72707369"));
}

TEST_F(ToolLock, GolangMigratesDatabaseDerivedKeyIsHeldToo) {
  long long key = migrate::golang_migrate_lock_key("/app", "public");
  auto tool = server().connect("app");
  tool.exec("SELECT pg_advisory_lock($1::bigint)", {std::to_string(key)});
  auto r = run_cli({"migrate", "--dir", folder("golang-migrate"), "--lock-timeout", "1s"},
                   env_for("app"));
  EXPECT_EQ(r.code, 8) << r.all();
  EXPECT_THAT(r.err, HasSubstr("golang-migrate's migration lock"));
  EXPECT_THAT(r.err, HasSubstr(std::to_string(key)));
  tool.exec("SELECT pg_advisory_unlock_all()");
  // While previewdb holds it, golang-migrate's own attempt would wait: check from a session.
  EXPECT_EQ(run_cli({"migrate", "--dir", folder("golang-migrate")}, env_for("app")).code, 0);
}

TEST_F(ToolLock, ACommandRunUnderPreviewdbsLockIsNotBlockedByTheToolsLock) {
  // --command runs the tool itself: previewdb must not hold the tool's key then, or it would wait
  // for previewdb forever.
  auto r = run_cli({"migrate", "--dir", folder("prisma"), "--command",
                    "psql -X -q -c 'SELECT pg_advisory_lock(72707369)' \"$DATABASE_URL\""},
                   env_for("app"));
  EXPECT_EQ(r.code, 0) << r.all();
}

// `migrate down` and `resolve` write the same history: they hold the tool's lock too.
TEST_F(ToolLock, MigrateDownAndResolveHoldThePrismaLockToo) {
  ASSERT_EQ(run_cli({"migrate", "--dir", folder("prisma")}, env_for("app")).code, 0);
  auto prisma = server().connect("app");
  prisma.exec("SELECT pg_advisory_lock(72707369)");
  auto down = run_cli(
      {"migrate", "--dir", folder("prisma"), "down", "--steps", "1", "--lock-timeout", "1s"},
      env_for("app"));
  EXPECT_EQ(down.code, 8) << down.all();
  EXPECT_THAT(down.err, HasSubstr("Prisma's migration lock"));
  auto st = run_cli({"status", "--dir", folder("prisma"), "--json"}, env_for("app"));
  EXPECT_EQ(nlohmann::json::parse(st.out)["counts"]["pending"], 0) << "nothing undone";
  prisma.exec("SELECT pg_advisory_unlock(72707369)");
  auto ok = run_cli({"migrate", "--dir", folder("prisma"), "down", "--steps", "1"}, env_for("app"));
  EXPECT_EQ(ok.code, 0) << ok.all();
}
