// Interop with the real dbmate (npm package `dbmate`, installed by scripts/install-deps.sh
// --peers): after previewdb applies a dbmate folder, dbmate's own status agrees, and a database
// dbmate migrated part of the way gets only the rest from previewdb.
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
      GTEST_SKIP() << "dbmate is not installed (scripts/install-deps.sh --peers installs it)";
    }
    auto dir = ftl_corpus();
    if (!dir) GTEST_SKIP() << "../shared/corpora/dbmate-ftl is missing";
    m_dir = *dir;
  }
  fs::path m_dir;
};

TEST_F(DbmatePeer, DbmateAgreesAfterPreviewdbApplies) {
  auto db = fresh_db("peer_dbmate_full");
  auto r = migrate_cli(db, {"--dir", m_dir.string(), "--format", "dbmate"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto status = dbmate(db, m_dir, {"status", "--exit-code"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  EXPECT_TRUE(contains(status.out, "Applied: 45")) << status.out;
  EXPECT_TRUE(contains(status.out, "Pending: 0")) << status.out;
  auto up = dbmate(db, m_dir, {"up"});
  EXPECT_EQ(up.exit_code, 0) << up.err;
  EXPECT_FALSE(contains(up.out, "Applying:")) << "dbmate found nothing left to apply: " << up.out;
}

TEST_F(DbmatePeer, PreviewdbAppliesOnlyWhatDbmateHasNot) {
  auto db = fresh_db("peer_dbmate_half");
  util::TempDir first;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(m_dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < 20; ++i) fs::copy_file(files[i], first.path() / files[i].filename());
  auto up = dbmate(db, first.path(), {"up"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;

  auto r = migrate_cli(db, {"--dir", m_dir.string(), "--format", "dbmate", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["applied_count"], 25);
  EXPECT_EQ(report["skipped"], 20);
  auto status = dbmate(db, m_dir, {"status", "--exit-code"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  EXPECT_TRUE(contains(status.out, "Applied: 45")) << status.out;
}

}  // namespace
