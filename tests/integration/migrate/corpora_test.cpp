// Every reader on real migration histories (../shared/corpora): previewdb applies them to an
// empty database, and the schema equals the one psql builds from the same files in the tool's
// own order.
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

}  // namespace

TEST(MigrateCorpora, PrismaDocumenso) {
  auto dir = corpus("prisma-documenso/packages/prisma/migrations");
  if (!dir) GTEST_SKIP() << "../shared/corpora/prisma-documenso is missing";
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
  if (!dir) GTEST_SKIP() << "../shared/corpora/drizzle-dokploy is missing";
  auto journal = nlohmann::json::parse(util::read_file(*dir / "meta/_journal.json"));
  std::vector<fs::path> order;
  for (const auto& e : journal["entries"])
    order.push_back(*dir / (e["tag"].get<std::string>() + ".sql"));
  check_corpus("drizzle", *dir, order, 186);
  EXPECT_EQ(count("corpus_drizzle", "SELECT count(*) FROM drizzle.__drizzle_migrations"), 186);
  EXPECT_EQ(
      count("corpus_drizzle",
            "SELECT count(*) FROM _previewdb.schema_migrations WHERE id = '0130_abandoned_dagger'"),
      0);
}

TEST(MigrateCorpora, GolangMigrateEnte) {
  auto dir = corpus("golang-migrate-ente/server/migrations");
  if (!dir) GTEST_SKIP() << "../shared/corpora/golang-migrate-ente is missing";
  std::vector<std::pair<unsigned long long, fs::path>> ups;
  for (const auto& n : sorted_names(*dir, false)) {
    if (n.size() > 7 && n.substr(n.size() - 7) == ".up.sql") {
      ups.emplace_back(std::stoull(n.substr(0, n.find('_'))), *dir / n);
    }
  }
  std::sort(ups.begin(), ups.end());
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
  if (!dir) GTEST_SKIP() << "../shared/corpora/dbmate-ftl is missing";
  util::TempDir ups("previewdb-dbmate-ups-");
  std::vector<fs::path> order;
  for (const auto& n : sorted_names(*dir, false)) {
    std::string text = util::read_file(*dir / n);
    auto up = text.find("-- migrate:up");
    auto body = text.find('\n', up) + 1;
    auto down = text.find("-- migrate:down", body);
    fs::path out = ups.path() / n;
    std::ofstream(out) << text.substr(body,
                                      down == std::string::npos ? std::string::npos : down - body);
    order.push_back(out);
  }
  check_corpus("dbmate", *dir, order, 45);
  EXPECT_EQ(count("corpus_dbmate", "SELECT count(*) FROM schema_migrations"), 45);
}
