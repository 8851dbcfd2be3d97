// Interop with the real dbmate (npm package `dbmate`, installed by scripts/install-deps.sh
// --peers): after previewdb applies a dbmate folder, dbmate's own status agrees, and a database
// dbmate migrated part of the way gets only the rest from previewdb. On the repository's own
// dbmate history (tests/fixtures/migrations/dbmate), and on ../shared's real corpus when present.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "util/files.hpp"
#include "util/subprocess.hpp"

using namespace previewdb;
using namespace previewdb::test;
using namespace previewdb::test::migrate;
namespace fs = std::filesystem;

namespace {

std::optional<fs::path> ftl_corpus() {
  auto shared = shared_dir();
  if (!shared) return std::nullopt;
  auto dir = *shared / "corpora/dbmate-ftl/backend/controller/sql/schema";
  if (!fs::exists(dir)) return std::nullopt;
  return dir;
}

// Runs the real dbmate against db; the URL (with its password) goes in the environment.
util::ProcessResult dbmate(const std::string& db, const fs::path& dir,
                           std::vector<std::string> args) {
  util::ProcessSpec spec;
  spec.argv = {"dbmate", "--migrations-dir", dir.string(), "--no-dump-schema"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env["DATABASE_URL"] = server().url(db) + "?sslmode=disable";
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  return util::run_process(spec);
}

class DbmatePeer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!util::find_program("dbmate")) {
      GTEST_SKIP() << k_skip_peer_dbmate
                   << "dbmate is not installed (scripts/install-deps.sh --peers installs it)";
    }
  }
  // The real corpus; the test skips (visibly) when ../shared is missing.
  bool use_ftl_corpus() {
    auto dir = ftl_corpus();
    if (!dir) return false;
    m_dir = *dir;
    return true;
  }
  fs::path m_dir = fixtures_dir() / "migrations" / "dbmate";
};

void dbmate_agrees_after_previewdb_applies(const std::string& db, const fs::path& dir, int total) {
  auto r = migrate_cli(db, {"--dir", dir.string(), "--format", "dbmate"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto status = dbmate(db, dir, {"status", "--exit-code"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  EXPECT_TRUE(contains(status.out, "Applied: " + std::to_string(total))) << status.out;
  EXPECT_TRUE(contains(status.out, "Pending: 0")) << status.out;
  auto up = dbmate(db, dir, {"up"});
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_FALSE(contains(up.out, "Applying:")) << "dbmate found nothing left to apply: " << up.out;
}

void previewdb_applies_only_what_dbmate_has_not(const std::string& db, const fs::path& dir,
                                                size_t first, int total) {
  util::TempDir part;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < first; ++i) fs::copy_file(files[i], part.path() / files[i].filename());
  auto up = dbmate(db, part.path(), {"up"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;

  auto r = migrate_cli(db, {"--dir", dir.string(), "--format", "dbmate", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["applied_count"], total - static_cast<int>(first));
  EXPECT_EQ(report["skipped"], first);
  auto status = dbmate(db, dir, {"status", "--exit-code"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  EXPECT_TRUE(contains(status.out, "Applied: " + std::to_string(total))) << status.out;
}

TEST_F(DbmatePeer, DbmateAgreesAfterPreviewdbApplies) {
  dbmate_agrees_after_previewdb_applies(fresh_db("peer_dbmate_fx_full"), m_dir, 4);
}

TEST_F(DbmatePeer, PreviewdbAppliesOnlyWhatDbmateHasNot) {
  previewdb_applies_only_what_dbmate_has_not(fresh_db("peer_dbmate_fx_half"), m_dir, 2, 4);
}

TEST_F(DbmatePeer, DbmateAgreesAfterPreviewdbAppliesTheFtlCorpus) {
  if (!use_ftl_corpus()) GTEST_SKIP() << k_skip_shared << "../shared/corpora/dbmate-ftl is missing";
  dbmate_agrees_after_previewdb_applies(fresh_db("peer_dbmate_full"), m_dir, 45);
}

TEST_F(DbmatePeer, PreviewdbAppliesOnlyWhatDbmateHasNotOnTheFtlCorpus) {
  if (!use_ftl_corpus()) GTEST_SKIP() << k_skip_shared << "../shared/corpora/dbmate-ftl is missing";
  previewdb_applies_only_what_dbmate_has_not(fresh_db("peer_dbmate_half"), m_dir, 20, 45);
}

}  // namespace
