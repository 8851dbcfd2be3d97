// previewdb drift: a database migrated with a real history, then changed by hand, against the
// migrations it applied. The core case uses tests/fixtures/diff/history; the real corpora in
// ../shared/corpora are extra cases that skip visibly when missing.
#include <gtest/gtest.h>

#include <set>

#include "diff_helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::schema_it;
namespace fs = std::filesystem;

namespace {

CliResult drift(const std::string& db, std::vector<std::string> args) {
  return cli("drift", std::move(args), db);
}

std::set<std::string> summary(const nlohmann::json& j) {
  std::set<std::string> out;
  for (const auto& d : j["differences"]) {
    std::string attrs;
    for (const auto& a : d["attributes"]) attrs += " " + a["name"].get<std::string>();
    out.insert(d["change"].get<std::string>() + " " + d["kind"].get<std::string>() + " " +
               d["name"].get<std::string>() + attrs);
  }
  return out;
}

}  // namespace

TEST(Drift, ListsExactlyTheManualChanges) {
  auto db = fresh_db("drift_fixture");
  auto m = cli("migrate", {"--dir", history().string()}, db);
  ASSERT_EQ(m.code, 0) << m.all();

  auto clean = drift(db, {"--dir", history().string(), "--exit-code"});
  EXPECT_EQ(clean.code, 0) << clean.all();
  EXPECT_TRUE(contains(clean.out, "no differences: every object compared")) << clean.out;

  server().exec(db,
                "ALTER TABLE orders ADD COLUMN note text;"
                "DROP INDEX orders_user_id_idx;"
                "ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'pro';"
                "REVOKE SELECT ON users FROM PUBLIC;"
                "ALTER TYPE order_status ADD VALUE 'refunded';");

  auto r = drift(db, {"--dir", history().string(), "--json"});
  ASSERT_EQ(r.code, 0) << r.all();  // a report, not a failure, without --exit-code
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["drift"], true);
  EXPECT_EQ(j["database"], "drift_fixture");
  EXPECT_EQ(j["applied"], 3);
  EXPECT_TRUE(j["not_compared"].empty()) << r.out;
  std::set<std::string> expected = {
      "added column public.orders.note",          "removed index public.orders_user_id_idx",
      "changed column public.users.plan default", "changed table public.users grants",
      "changed enum public.order_status values",
  };
  EXPECT_EQ(summary(j), expected) << r.out;

  auto ci = drift(db, {"--dir", history().string(), "--exit-code"});
  EXPECT_EQ(ci.code, 9) << ci.all();
  EXPECT_TRUE(contains(ci.out, "+ column note: text")) << ci.out;
  EXPECT_TRUE(contains(ci.out, "- index public.orders_user_id_idx")) << ci.out;
  EXPECT_TRUE(contains(ci.out, "5 differences")) << ci.out;
  EXPECT_TRUE(temporaries().empty());
}

TEST(Drift, MigrationsNotAppliedYetAreNotDrift) {
  Folder f;
  for (const auto& e : fs::directory_iterator(history()))
    f.file(e.path().filename().string(), util::read_file(e.path()));
  f.file("0004_pending.sql", "CREATE TABLE later (id bigint);\n");
  auto db = fresh_db("drift_pending");
  auto m = cli("migrate", {"--dir", history().string()}, db);
  ASSERT_EQ(m.code, 0) << m.all();
  auto r = drift(db, {"--dir", f.path(), "--exit-code", "--json"});
  EXPECT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["applied"], 3);
  EXPECT_EQ(j["drift"], false);
}

TEST(Drift, NamesTheDatabaseAsAnArgument) {
  auto db = fresh_db("drift_named");
  ASSERT_EQ(cli("migrate", {"--dir", history().string()}, db).code, 0);
  server().exec(db, "ALTER TABLE users ADD COLUMN age int");
  auto r = cli("drift", {db, "--dir", history().string(), "--exit-code"});
  EXPECT_EQ(r.code, 9) << r.all();
  EXPECT_TRUE(contains(r.out, "-> database \"drift_named\"")) << r.out;
  EXPECT_EQ(cli("drift", {"no_such_db", "--dir", history().string()}).code, 4);
  EXPECT_EQ(cli("drift", {db, "--database", db}).code, 2);
}

// The real corpora: a whole history applied, no drift; one column added by hand, exactly that.
TEST(Drift, RealCorpora) {
  auto shared = shared_dir();
  if (!shared || !fs::exists(*shared / "corpora"))
    GTEST_SKIP() << k_skip_shared << "../shared/corpora is missing";
  struct Corpus {
    std::string tag, rel;
  } corpora[] = {
      {"dbmate", "dbmate-ftl/backend/controller/sql/schema"},
      {"golang", "golang-migrate-ente/server/migrations"},
      {"drizzle", "drizzle-dokploy/apps/dokploy/drizzle"},
      {"prisma", "prisma-documenso/packages/prisma/migrations"},
  };
  for (const auto& c : corpora) {
    auto dir = *shared / "corpora" / c.rel;
    ASSERT_TRUE(fs::exists(dir)) << dir;
    auto db = fresh_db("drift_corpus_" + c.tag);
    auto m = cli("migrate", {"--dir", dir.string()}, db);
    ASSERT_EQ(m.code, 0) << c.tag << ": " << m.all();
    auto r = drift(db, {"--dir", dir.string(), "--exit-code", "--json"});
    ASSERT_EQ(r.code, 0) << c.tag << ": " << r.all();

    auto table = server().connect(db).exec(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND "
        "n.nspname = 'public' AND c.relname NOT IN ('schema_migrations', '_prisma_migrations') "
        "ORDER BY c.relname LIMIT 1");
    ASSERT_EQ(table.rows(), 1) << c.tag;
    std::string name = table.get(0, 0);
    server().exec(db, "ALTER TABLE " + name + " ADD COLUMN drift_probe int");
    r = drift(db, {"--dir", dir.string(), "--exit-code", "--json"});
    ASSERT_EQ(r.code, 9) << c.tag << ": " << r.all();
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(summary(j), std::set<std::string>{"added column " + name + ".drift_probe"})
        << c.tag << ": " << r.out;
  }
  EXPECT_TRUE(temporaries().empty());
}
