// Interop with the real drizzle-orm migrator (npm packages drizzle-orm and pg, installed by
// scripts/install-deps.sh --peers): after previewdb applies a Drizzle folder, Drizzle's own
// migrate() finds nothing to do, and a database Drizzle migrated part of the way gets only the
// rest from previewdb. On the repository's own Drizzle history (tests/fixtures/migrations/drizzle),
// and on ../shared's real corpus when present.
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
      GTEST_SKIP() << k_skip_peer_drizzle
                   << "drizzle-orm is not installed (scripts/install-deps.sh --peers installs it)";
    }
  }
  // The real corpus; the test skips (visibly) when ../shared is missing.
  bool use_dokploy_corpus() {
    auto shared = shared_dir();
    if (!shared || !fs::exists(*shared / "corpora/drizzle-dokploy/apps/dokploy/drizzle")) {
      return false;
    }
    m_dir = *shared / "corpora/drizzle-dokploy/apps/dokploy/drizzle";
    return true;
  }
  fs::path m_dir = fixtures_dir() / "migrations" / "drizzle";
};

void drizzle_finds_nothing_to_do_after_previewdb(const std::string& db, const fs::path& dir,
                                                 int total) {
  auto r = migrate_cli(db, {"--dir", dir.string(), "--format", "drizzle"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto d = drizzle(db, dir);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto counts = nlohmann::json::parse(d.out);
  EXPECT_EQ(counts["before"], total);
  EXPECT_EQ(counts["after"], total) << "drizzle applied something previewdb had applied";
}

void previewdb_applies_only_what_drizzle_has_not(const std::string& db, const fs::path& dir,
                                                 int first, int total) {
  // The first journal entries, migrated by Drizzle itself.
  util::TempDir part;
  fs::copy(dir, part.path(), fs::copy_options::recursive);
  auto journal = nlohmann::json::parse(util::read_file(part.path() / "meta/_journal.json"));
  journal["entries"].erase(journal["entries"].begin() + first, journal["entries"].end());
  util::write_file_atomic(part.path() / "meta/_journal.json", journal.dump(2));
  auto d = drizzle(db, part.path());
  ASSERT_EQ(d.exit_code, 0) << d.err;
  ASSERT_EQ(nlohmann::json::parse(d.out)["after"], first);

  auto r = migrate_cli(db, {"--dir", dir.string(), "--format", "drizzle", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["applied_count"], total - first);
  EXPECT_EQ(report["skipped"], first);
  auto again = drizzle(db, dir);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["after"], total);
}

TEST_F(DrizzlePeer, DrizzleFindsNothingToDoAfterPreviewdb) {
  drizzle_finds_nothing_to_do_after_previewdb(fresh_db("peer_drizzle_fx_full"), m_dir, 4);
}

TEST_F(DrizzlePeer, PreviewdbAppliesOnlyWhatDrizzleHasNot) {
  previewdb_applies_only_what_drizzle_has_not(fresh_db("peer_drizzle_fx_half"), m_dir, 2, 4);
}

TEST_F(DrizzlePeer, DrizzleFindsNothingToDoAfterPreviewdbOnTheDokployCorpus) {
  if (!use_dokploy_corpus())
    GTEST_SKIP() << k_skip_shared << "../shared/corpora/drizzle-dokploy is missing";
  drizzle_finds_nothing_to_do_after_previewdb(fresh_db("peer_drizzle_full"), m_dir, 186);
}

TEST_F(DrizzlePeer, PreviewdbAppliesOnlyWhatDrizzleHasNotOnTheDokployCorpus) {
  if (!use_dokploy_corpus())
    GTEST_SKIP() << k_skip_shared << "../shared/corpora/drizzle-dokploy is missing";
  previewdb_applies_only_what_drizzle_has_not(fresh_db("peer_drizzle_half"), m_dir, 50, 186);
}

}  // namespace
