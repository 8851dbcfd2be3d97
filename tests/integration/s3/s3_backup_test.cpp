// Backups in an s3:// store (issue 12): `backup --encrypt`, verify and restore of an encrypted
// backup from the bucket (wrong key, tampered archive: refused, nothing restored), `backup prune
// --store s3://...`, and a tampered manifest that `backup list` skips while verify and restore
// refuse it. s3rver behind the harness's Signature V4 check, the real binary, the real pg tools.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness/harness.hpp"
#include "harness/s3_server.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

const std::string k_key(64, 'c');
const std::string k_other_key(64, 'd');

class S3Backup : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::S3Server::available()) {
      GTEST_SKIP() << test::k_skip_peer_s3rver
                   << "node or s3rver is not installed (scripts/install-deps.sh --peers)";
    }
    server().reset();
    server().exec("postgres", "DROP DATABASE IF EXISTS shop WITH (FORCE)");
    server().exec("postgres", "DROP DATABASE IF EXISTS shop_copy WITH (FORCE)");
    server().exec("postgres", "CREATE DATABASE shop");
    server().exec("shop",
                  "CREATE TABLE items(id int PRIMARY KEY, name text);"
                  "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g;");
    s3 = std::make_unique<test::S3Server>();
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  std::string store() const { return "s3://" + s3->bucket() + "/backups"; }
  test::CliResult cli(const std::vector<std::string>& args, test::Env extra = {}) const {
    test::Env e = {{"DATABASE_URL", server().url("postgres")}};
    for (auto& [k, v] : s3->env()) e[k] = v;
    for (auto& [k, v] : extra) e[k] = v;
    auto r = run_cli(args, e, cwd.path().string());
    for (const char* secret : {test::S3Server::k_secret, test::S3Server::k_manifest_key})
      EXPECT_THAT(r.all(), Not(HasSubstr(secret)));
    EXPECT_THAT(r.all(), Not(HasSubstr(k_key)));
    EXPECT_THAT(r.all(), Not(HasSubstr(k_other_key)));
    return r;
  }
  std::string backup(std::vector<std::string> extra = {}, test::Env e = {}) const {
    std::vector<std::string> args = {"backup", "shop", "--store", store()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = cli(args, std::move(e));
    EXPECT_EQ(r.code, 0) << r.err;
    return util::trim(r.out);
  }
  fs::path object_file(const std::string& key) const {
    return s3->data_dir() / (key + "._S3rver_object");
  }
  long long items(const std::string& db) const {
    return server().connect(db).exec("SELECT count(*) FROM items").get_int(0, 0);
  }
  long long temporaries() const {
    return server()
        .connect()
        .exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb_tmp%'")
        .get_int(0, 0);
  }

  std::unique_ptr<test::S3Server> s3;
  util::TempDir cwd;  // outside any git repository
};

}  // namespace

TEST_F(S3Backup, EncryptedBackupVerifiesAndRestoresFromTheBucket) {
  const test::Env with_key = {{"PREVIEWDB_ENCRYPTION_KEY", k_key}};
  std::string name = backup({"--encrypt"}, with_key);
  ASSERT_THAT(name, HasSubstr("bak_shop_"));
  std::string bytes = util::read_file(object_file("backups/" + name + ".dump.zst"));
  EXPECT_EQ(bytes.substr(0, 8), "PDBENC1\n");
  EXPECT_THAT(bytes, Not(HasSubstr("item 17")));

  auto list = cli({"backup", "list", "--store", store(), "--json"});
  ASSERT_EQ(list.code, 0) << list.err;
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["encrypted"], true);
  EXPECT_EQ(j[0]["valid"], true);

  auto verify = cli({"backup", "verify", name, "--store", store(), "--restore-test"}, with_key);
  ASSERT_EQ(verify.code, 0) << verify.err;
  auto restored = cli({"restore", name, "--store", store(), "--into", "shop_copy"}, with_key);
  ASSERT_EQ(restored.code, 0) << restored.err;
  EXPECT_EQ(items("shop_copy"), 500);

  // A wrong key: refused before a database is made.
  auto wrong = cli({"restore", name, "--store", store(), "--into", "shop_wrong"},
                   {{"PREVIEWDB_ENCRYPTION_KEY", k_other_key}});
  EXPECT_EQ(wrong.code, 6) << wrong.err;
  EXPECT_THAT(wrong.err, HasSubstr("not with the key given"));
  EXPECT_FALSE(server().database_exists("shop_wrong"));
  auto none = cli({"backup", "verify", name, "--store", store()});
  EXPECT_EQ(none.code, 2) << none.err;
  EXPECT_THAT(none.err, HasSubstr("is encrypted"));

  // A tampered archive in the bucket: verify says damaged, restore refuses, nothing is left.
  std::string bad = bytes;
  bad[bad.size() / 2] ^= 0x01;
  std::ofstream(object_file("backups/" + name + ".dump.zst"), std::ios::binary | std::ios::trunc)
      << bad;
  auto damaged = cli({"backup", "verify", name, "--store", store()}, with_key);
  EXPECT_EQ(damaged.code, 9) << damaged.err;
  EXPECT_THAT(damaged.err, HasSubstr("fails authentication"));
  auto refused = cli({"restore", name, "--store", store(), "--into", "shop_bad"}, with_key);
  EXPECT_EQ(refused.code, 6) << refused.err;
  EXPECT_FALSE(server().database_exists("shop_bad"));
  EXPECT_EQ(temporaries(), 0);
}

TEST_F(S3Backup, PruneAndATamperedManifestInTheBucket) {
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    names.push_back(backup({"--keep", "100"}));
  }
  auto pruned = cli({"backup", "prune", "--keep", "1", "--store", store(), "--yes", "--json"});
  ASSERT_EQ(pruned.code, 0) << pruned.err;
  auto p = nlohmann::json::parse(pruned.out);
  EXPECT_EQ(p["dropped"], nlohmann::json({names[0], names[1]}));
  auto objects = s3->objects();
  for (const auto& gone : {names[0], names[1]}) {
    for (const auto& o : objects) EXPECT_THAT(o, Not(HasSubstr(gone)));
  }

  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::string tampered = backup();
  // Someone with write access to the bucket edits the newest manifest.
  fs::path manifest = object_file("backups/" + tampered + ".json");
  ASSERT_TRUE(fs::exists(manifest));
  auto m = nlohmann::json::parse(util::read_file(manifest));
  m["database"] = "other";
  std::ofstream(manifest, std::ios::trunc) << m.dump();

  auto list = cli({"backup", "list", "--store", store()});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr(names[2]));
  EXPECT_THAT(list.out, Not(HasSubstr(tampered)));
  EXPECT_THAT(list.err, HasSubstr("skipped backup " + tampered));
  EXPECT_THAT(list.err, HasSubstr("fails its HMAC check"));
  auto json = cli({"backup", "list", "--store", store(), "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1]["name"], tampered);
  EXPECT_EQ(j[1]["valid"], false);
  EXPECT_THAT(j[1]["reason"].get<std::string>(), HasSubstr("fails its HMAC check"));

  auto verify = cli({"backup", "verify", tampered, "--store", store()});
  EXPECT_EQ(verify.code, 6) << verify.err;
  auto restore = cli({"restore", tampered, "--store", store(), "--into", "shop_copy"});
  EXPECT_EQ(restore.code, 6) << restore.err;
  EXPECT_FALSE(server().database_exists("shop_copy"));
  // Restoring "the newest backup of shop" passes over it.
  server().exec("shop", "DELETE FROM items WHERE id > 5");
  auto newest = cli({"restore", "--store", store(), "--into", "shop"});
  ASSERT_EQ(newest.code, 0) << newest.err;
  EXPECT_EQ(items("shop"), 500);
  // prune leaves it alone (it is no one's to judge) and still works.
  auto again = cli({"backup", "prune", "--keep", "1", "--store", store(), "--yes"});
  EXPECT_EQ(again.code, 0) << again.err;
}
