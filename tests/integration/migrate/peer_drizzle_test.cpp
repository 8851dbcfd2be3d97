// Interop with the real drizzle-orm migrator (npm packages drizzle-orm and pg, installed by
// scripts/install-deps.sh --peers): after previewdb applies a Drizzle folder, Drizzle's own
// migrate() finds nothing to do, and a database Drizzle migrated part of the way gets only the
// rest from previewdb.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "util/files.hpp"
#include "util/subprocess.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;
namespace fs = std::filesystem;

namespace {

const fs::path k_peers = "/opt/previewdb-peers/node_modules";

// Runs drizzle-orm's migrator; returns {"before": n, "after": m} or the failure.
util::ProcessResult drizzle(const std::string& db, const fs::path& dir) {
  util::ProcessSpec spec;
  spec.argv = {"node", std::string(PREVIEWDB_SOURCE_DIR) + "/tests/peers/drizzle_migrate.cjs",
               dir.string()};
  spec.env["DATABASE_URL"] = server().url(db);
  spec.env["NODE_PATH"] = k_peers.string();
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  return util::run_process(spec);
}

class DrizzlePeer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!util::find_program("node") || !fs::exists(k_peers / "drizzle-orm")) {
      GTEST_SKIP() << "drizzle-orm is not installed (scripts/install-deps.sh --peers installs it)";
    }
    auto shared = shared_dir();
    if (!shared || !fs::exists(*shared / "corpora/drizzle-dokploy/apps/dokploy/drizzle")) {
      GTEST_SKIP() << "../shared/corpora/drizzle-dokploy is missing";
    }
    m_dir = *shared / "corpora/drizzle-dokploy/apps/dokploy/drizzle";
  }
  fs::path m_dir;
};

TEST_F(DrizzlePeer, DrizzleFindsNothingToDoAfterPreviewdb) {
  auto db = fresh_db("peer_drizzle_full");
  auto r = migrate_cli(db, {"--dir", m_dir.string(), "--format", "drizzle"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto d = drizzle(db, m_dir);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto counts = nlohmann::json::parse(d.out);
  EXPECT_EQ(counts["before"], 186);
  EXPECT_EQ(counts["after"], 186) << "drizzle applied something previewdb had applied";
}

TEST_F(DrizzlePeer, PreviewdbAppliesOnlyWhatDrizzleHasNot) {
  // The first 50 journal entries, migrated by Drizzle itself.
  util::TempDir part;
  fs::copy(m_dir, part.path(), fs::copy_options::recursive);
  auto journal = nlohmann::json::parse(util::read_file(part.path() / "meta/_journal.json"));
  journal["entries"].erase(journal["entries"].begin() + 50, journal["entries"].end());
  util::write_file_atomic(part.path() / "meta/_journal.json", journal.dump(2));
  auto db = fresh_db("peer_drizzle_half");
  auto d = drizzle(db, part.path());
  ASSERT_EQ(d.exit_code, 0) << d.err;
  ASSERT_EQ(nlohmann::json::parse(d.out)["after"], 50);

  auto r = migrate_cli(db, {"--dir", m_dir.string(), "--format", "drizzle", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["applied_count"], 136);
  EXPECT_EQ(report["skipped"], 50);
  auto again = drizzle(db, m_dir);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["after"], 186);
}

}  // namespace
