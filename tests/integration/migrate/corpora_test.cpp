// Every reader on migration histories: previewdb applies them to an empty database, and the schema
// equals the one psql builds from the same files in the tool's own order. The core cases use the
// repository's own small histories (tests/fixtures/migrations, one per format, with ups and
// downs); the real corpora in ../shared/corpora are extra cases that skip visibly when missing.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "helpers.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;
namespace fs = std::filesystem;

namespace {

std::optional<fs::path> corpus(const std::string& rel) {
  auto shared = shared_dir();
  if (!shared || !fs::exists(*shared / "corpora" / rel)) return std::nullopt;
  return *shared / "corpora" / rel;
}

std::vector<std::string> sorted_names(const fs::path& dir, bool dirs) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() == dirs) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Applies files with psql in order; the reference schema.
void psql_all(const std::string& db, const std::vector<fs::path>& files) {
  for (const auto& f : files) {
    auto r = psql_file(db, f);
    ASSERT_EQ(r.exit_code, 0) << f << ": " << r.err;
  }
}

void check_corpus(const std::string& name, const fs::path& dir, const std::vector<fs::path>& order,
                  size_t expected) {
  ASSERT_EQ(order.size(), expected);
  std::string ours = fresh_db("corpus_" + name);
  std::string ref = fresh_db("corpus_" + name + "_psql");
  auto r = migrate_cli(ours, {"--dir", dir.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "applied " + std::to_string(expected) + " migrations to ")) << r.out;
  psql_all(ref, order);
  std::string a = schema_dump(ours), b = schema_dump(ref);
  EXPECT_GT(a.size(), 1000u);
  EXPECT_TRUE(a == b) << "schema differs from psql's for " << name << " at "
                      << first_difference(a, b);
  EXPECT_EQ(
      count(ours, "SELECT count(*) FROM _previewdb.schema_migrations WHERE status = 'applied'"),
      static_cast<long long>(expected));

  // Idempotent: the second run applies nothing, status has nothing to do.
  r = migrate_cli(ours, {"--dir", dir.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(
      r.out, "nothing to apply: " + std::to_string(expected) + " migrations already applied"))
      << r.out;
  r = cli("status", ours, {"--dir", dir.string(), "--exit-code", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["counts"]["applied"], expected);
  EXPECT_EQ(j["diverged"], false);
}

fs::path fixture(const std::string& format) {
  return fixtures_dir() / "migrations" / format;
}

// The up sections of dbmate files, written to scratch: psql's reference input.
std::vector<fs::path> dbmate_ups(const fs::path& dir, const fs::path& scratch) {
  std::vector<fs::path> order;
  for (const auto& n : sorted_names(dir, false)) {
    std::string text = util::read_file(dir / n);
    auto up = text.find("-- migrate:up");
    auto body = text.find('\n', up) + 1;
    auto down = text.find("-- migrate:down", body);
    fs::path out = scratch / n;
    std::ofstream(out) << text.substr(body,
                                      down == std::string::npos ? std::string::npos : down - body);
    order.push_back(out);
  }
  return order;
}

// golang-migrate's .up.sql files in numeric version order, with their versions.
std::vector<std::pair<unsigned long long, fs::path>> golang_ups(const fs::path& dir) {
  std::vector<std::pair<unsigned long long, fs::path>> ups;
  for (const auto& n : sorted_names(dir, false)) {
    if (n.size() > 7 && n.substr(n.size() - 7) == ".up.sql") {
      ups.emplace_back(std::stoull(n.substr(0, n.find('_'))), dir / n);
    }
  }
  std::sort(ups.begin(), ups.end());
  return ups;
}

std::vector<fs::path> drizzle_journal_order(const fs::path& dir) {
  auto journal = nlohmann::json::parse(util::read_file(dir / "meta/_journal.json"));
  std::vector<fs::path> order;
  for (const auto& e : journal["entries"])
    order.push_back(dir / (e["tag"].get<std::string>() + ".sql"));
  return order;
}

}  // namespace

// The repository's own histories: 4 migrations each (users, orders with an enum and a foreign key,
// a function whose body has semicolons, a view), version 10 after 3 where versions are numbers.

TEST(MigrateFixtures, Prisma) {
  auto dir = fixture("prisma");
  std::vector<fs::path> order;
  for (const auto& d : sorted_names(dir, true)) order.push_back(dir / d / "migration.sql");
  check_corpus("fx_prisma", dir, order, 4);
  EXPECT_EQ(count("corpus_fx_prisma",
                  "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND "
                  "rolled_back_at IS NULL AND applied_steps_count = 1"),
            4);
}

TEST(MigrateFixtures, DrizzleFollowsTheJournal) {
  auto dir = fixture("drizzle");
  check_corpus("fx_drizzle", dir, drizzle_journal_order(dir), 4);
  EXPECT_EQ(count("corpus_fx_drizzle", "SELECT count(*) FROM drizzle.__drizzle_migrations"), 4);
  EXPECT_EQ(
      count("corpus_fx_drizzle", "SELECT count(*) FROM pg_class WHERE relname = 'not_in_journal'"),
      0);
}

TEST(MigrateFixtures, GolangMigrateWithDowns) {
  auto dir = fixture("golang-migrate");
  auto ups = golang_ups(dir);
  std::vector<fs::path> order;
  for (const auto& [v, p] : ups) order.push_back(p);
  check_corpus("fx_golang", dir, order, 4);
  auto r =
      server().connect("corpus_fx_golang").exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.get(0, 0), "10");
  EXPECT_FALSE(r.get_bool(0, 1));
}

TEST(MigrateFixtures, DbmateWithDowns) {
  auto dir = fixture("dbmate");
  util::TempDir ups("previewdb-dbmate-ups-");
  check_corpus("fx_dbmate", dir, dbmate_ups(dir, ups.path()), 4);
  EXPECT_EQ(count("corpus_fx_dbmate", "SELECT count(*) FROM schema_migrations"), 4);
}

TEST(MigrateFixtures, FlywayVersionedAndUndo) {
  auto dir = fixture("flyway");
  std::vector<fs::path> order;
  for (const char* v :
       {"V1__create_users", "V2__create_orders", "V3__order_total", "V10__paid_orders"})
    order.push_back(dir / (std::string(v) + ".sql"));
  check_corpus("fx_flyway", dir, order, 4);
  EXPECT_EQ(count("corpus_fx_flyway",
                  "SELECT count(*) FROM flyway_schema_history WHERE success AND type = 'SQL'"),
            4);
}

TEST(MigrateFixtures, PlainWithDownCompanions) {
  auto dir = fixture("plain");
  std::vector<fs::path> order;
  for (const auto& n : sorted_names(dir, false)) {
    if (n.find(".down.sql") == std::string::npos) order.push_back(dir / n);
  }
  check_corpus("fx_plain", dir, order, 4);
}

// The real corpora (../shared/corpora).

TEST(MigrateCorpora, PrismaDocumenso) {
  auto dir = corpus("prisma-documenso/packages/prisma/migrations");
  if (!dir) GTEST_SKIP() << k_skip_shared << "../shared/corpora/prisma-documenso is missing";
  std::vector<fs::path> order;
  for (const auto& d : sorted_names(*dir, true)) order.push_back(*dir / d / "migration.sql");
  check_corpus("prisma", *dir, order, 163);
  // Prisma's own table agrees: one finished row per migration, checksum = SHA-256 of the file.
  auto conn = server().connect("corpus_prisma");
  auto rows = conn.exec(
      "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL AND "
      "rolled_back_at IS NULL AND applied_steps_count = 1");
  EXPECT_EQ(rows.get_int(0, 0), 163);
}

TEST(MigrateCorpora, DrizzleDokployFollowsTheJournal) {
  auto dir = corpus("drizzle-dokploy/apps/dokploy/drizzle");
  if (!dir) GTEST_SKIP() << k_skip_shared << "../shared/corpora/drizzle-dokploy is missing";
  auto order = drizzle_journal_order(*dir);
  check_corpus("drizzle", *dir, order, 186);
  EXPECT_EQ(count("corpus_drizzle", "SELECT count(*) FROM drizzle.__drizzle_migrations"), 186);
  EXPECT_EQ(
      count("corpus_drizzle",
            "SELECT count(*) FROM _previewdb.schema_migrations WHERE id = '0130_abandoned_dagger'"),
      0);
}

TEST(MigrateCorpora, GolangMigrateEnte) {
  auto dir = corpus("golang-migrate-ente/server/migrations");
  if (!dir) GTEST_SKIP() << k_skip_shared << "../shared/corpora/golang-migrate-ente is missing";
  auto ups = golang_ups(*dir);
  std::vector<fs::path> order;
  for (const auto& [v, p] : ups) order.push_back(p);
  check_corpus("golang", *dir, order, 124);
  auto conn = server().connect("corpus_golang");
  auto r = conn.exec("SELECT version, dirty FROM schema_migrations");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.get(0, 0), std::to_string(ups.back().first));
  EXPECT_FALSE(r.get_bool(0, 1));
}

TEST(MigrateCorpora, DbmateFtl) {
  auto dir = corpus("dbmate-ftl/backend/controller/sql/schema");
  if (!dir) GTEST_SKIP() << k_skip_shared << "../shared/corpora/dbmate-ftl is missing";
  util::TempDir ups("previewdb-dbmate-ups-");
  auto order = dbmate_ups(*dir, ups.path());
  check_corpus("dbmate", *dir, order, 45);
  EXPECT_EQ(count("corpus_dbmate", "SELECT count(*) FROM schema_migrations"), 45);
}
