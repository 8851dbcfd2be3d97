// The s3:// store (issue 12) against a real S3-compatible server: s3rver behind a Signature V4
// check (tests/harness/s3_server), the real binary, the real pg_dump/pg_restore.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness/harness.hpp"
#include "harness/s3_server.hpp"
#include "util/files.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

class S3Store : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::S3Server::available()) {
      GTEST_SKIP() << test::k_skip_peer_s3rver
                   << "node or s3rver is not installed (scripts/install-deps.sh --peers)";
    }
    server().reset();
    server().exec("dev",
                  "CREATE TABLE items(id int primary key, name text);"
                  "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;");
    s3 = std::make_unique<test::S3Server>();
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  test::Env env(test::Env extra = {}) const {
    test::Env e = {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_USER", "alice"}};
    for (auto& [k, v] : s3->env()) e[k] = v;
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
  std::string url(const std::string& prefix = "snaps") const {
    return "s3://" + s3->bucket() + "/" + prefix;
  }
  test::CliResult cli(const std::vector<std::string>& args, test::Env extra = {}) const {
    auto r = run_cli(args, env(std::move(extra)), cwd.path().string());
    // Credentials never reach an output.
    EXPECT_THAT(r.all(), Not(HasSubstr(test::S3Server::k_secret)));
    EXPECT_THAT(r.all(), Not(HasSubstr(test::S3Server::k_manifest_key)));
    return r;
  }
  std::string snapshot(test::Env extra = {}) const {
    auto r = cli({"snapshot", "--to", url()}, std::move(extra));
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  long long count(const std::string& db, const std::string& table = "items") const {
    return server().connect(db).exec("SELECT count(*) FROM " + table).get_int(0, 0);
  }
  size_t requests(const std::string& method, const std::string& query_part) const {
    size_t n = 0;
    for (const auto& r : s3->requests()) {
      if (r["method"] == method &&
          r["query"].get<std::string>().find(query_part) != std::string::npos)
        ++n;
    }
    return n;
  }
  // A table whose dump is several 5 MiB parts (random hex compresses about 2:1).
  void make_big(int rows = 800000) const {
    server().exec("dev",
                  "CREATE TABLE big AS SELECT g AS id, md5(random()::text) || md5(random()::text) "
                  "|| md5(random()::text) AS v FROM generate_series(1, " +
                      std::to_string(rows) + ") g");
  }
  fs::path object_file(const std::string& key) const {
    return s3->data_dir() / (key + "._S3rver_object");
  }

  std::unique_ptr<test::S3Server> s3;
  util::TempDir cwd;  // outside any git repository
};

TEST_F(S3Store, SnapshotToS3ThenSpawnLatestAndById) {
  std::string snap = snapshot();
  ASSERT_THAT(snap, HasSubstr("snap_dev_"));
  // The manifest is written after the archive.
  auto log = s3->requests();
  size_t manifest_put = 0, archive_put = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    std::string p = log[i]["path"];
    if (log[i]["method"] == "PUT" && p.find(snap + ".json") != std::string::npos) manifest_put = i;
    if (log[i]["method"] == "PUT" && p.find(".dump") != std::string::npos) archive_put = i;
  }
  EXPECT_GT(manifest_put, archive_put);

  auto latest = cli({"spawn", "froms3", "--snapshot", url()});
  ASSERT_EQ(latest.code, 0) << latest.err;
  EXPECT_EQ(count("dev_alice_froms3"), 100);

  server().exec("dev", "INSERT INTO items VALUES (101, 'later')");
  std::string second = snapshot();
  auto by_id = cli({"spawn", "byid", "--snapshot", url() + "/" + snap + ".dump"});
  ASSERT_EQ(by_id.code, 0) << by_id.err;
  EXPECT_EQ(count("dev_alice_byid"), 100);
  auto newest = cli({"spawn", "newest", "--snapshot", url()});
  ASSERT_EQ(newest.code, 0) << newest.err;
  EXPECT_EQ(count("dev_alice_newest"), 101);
}

TEST_F(S3Store, ListAndPruneTheStore) {
  std::vector<std::string> snaps;
  for (int i = 0; i < 3; ++i) {
    snaps.push_back(snapshot());
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // distinct names
  }
  auto list = cli({"snapshot", "list", "--store", url(), "--json"});
  ASSERT_EQ(list.code, 0) << list.err;
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["id"], snaps[2]);  // newest first
  EXPECT_EQ(j[0]["source"], "dev");

  auto dry = cli({"snapshot", "prune", "--keep", "1", "--store", url(), "--dry-run"});
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_THAT(dry.err, HasSubstr("would remove " + snaps[0]));
  auto pruned = cli({"snapshot", "prune", "--keep", "1", "--store", url(), "--yes"});
  ASSERT_EQ(pruned.code, 0) << pruned.err;
  auto after = nlohmann::json::parse(cli({"snapshot", "list", "--store", url(), "--json"}).out);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["id"], snaps[2]);
  // Manifests and archives are gone: one of each is left.
  size_t dumps = 0, manifests = 0;
  for (const auto& o : s3->objects()) {
    dumps += o.find(".dump") != std::string::npos;
    manifests += o.find(".json") != std::string::npos;
  }
  EXPECT_EQ(dumps, 1u);
  EXPECT_EQ(manifests, 1u);
}

TEST_F(S3Store, ALargeDumpIsAStreamedMultipartUploadWithBoundedMemory) {
  make_big();
  // The CLI's own peak RSS (VmHWM), sampled until it exits.
  int pid = test::start_cli({"snapshot", "--to", url()}, env({{"PREVIEWDB_S3_PART_SIZE_MB", "5"}}),
                            cwd.path().string());
  long peak_kib = 0;
  int status = 0;
  for (;;) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(st, line)) {
      if (line.rfind("VmHWM:", 0) == 0) peak_kib = std::max(peak_kib, std::stol(line.substr(6)));
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GE(requests("PUT", "partNumber"), 3u);
  std::uintmax_t archive_size = 0;
  for (const auto& o : s3->objects()) {
    if (o.find(".dump") != std::string::npos) archive_size = fs::file_size(object_file(o));
  }
  EXPECT_GT(archive_size, 15u << 20);
  // A few 5 MiB parts in memory, far from the whole archive.
  EXPECT_LT(static_cast<std::uintmax_t>(peak_kib) * 1024, archive_size)
      << "peak RSS " << peak_kib << " KiB for an archive of " << archive_size << " bytes";
  std::printf("peak RSS of snapshot --to s3: %ld KiB for an archive of %ju bytes\n", peak_kib,
              archive_size);
  auto spawned = cli({"spawn", "bigcopy", "--snapshot", url()});
  ASSERT_EQ(spawned.code, 0) << spawned.err;
  EXPECT_EQ(count("dev_alice_bigcopy", "big"), 800000);
}

TEST_F(S3Store, AKilledUploadIsNeverLatestAndIsSweptByTheNextRun) {
  std::string first = snapshot();
  make_big(300000);
  s3->clear_requests();
  int pid = test::start_cli({"snapshot", "--to", url()}, env({{"PREVIEWDB_S3_PART_SIZE_MB", "5"}}),
                            cwd.path().string());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (requests("PUT", "partNumber") < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(requests("PUT", "partNumber"), 1u);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_FALSE(s3->incomplete_uploads().empty());

  auto list = nlohmann::json::parse(cli({"snapshot", "list", "--store", url(), "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], first);
  server().exec("dev", "DROP TABLE big");
  auto spawned = cli({"spawn", "afterkill", "--snapshot", url()});
  ASSERT_EQ(spawned.code, 0) << spawned.err;
  EXPECT_EQ(spawned.err.find("aborted an incomplete upload"), std::string::npos);

  // The next writer sweeps uploads older than s3_sweep_after.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto next = cli({"snapshot", "--to", url()}, {{"PREVIEWDB_S3_SWEEP_AFTER", "1s"}});
  ASSERT_EQ(next.code, 0) << next.err;
  EXPECT_THAT(next.err, HasSubstr("aborted an incomplete upload"));
  EXPECT_TRUE(s3->incomplete_uploads().empty());
}

TEST_F(S3Store, ATamperedOrPlantedManifestIsRefused) {
  std::string good = snapshot();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::string tampered = snapshot();
  // Someone with write access changes the newest manifest (e.g. points it at another archive).
  fs::path manifest = object_file("snaps/" + tampered + ".json");
  ASSERT_TRUE(fs::exists(manifest)) << manifest;
  auto j = nlohmann::json::parse(util::read_file(manifest));
  j["created_at"] = "2099-01-01T00:00:00Z";
  std::ofstream(manifest, std::ios::trunc) << j.dump();

  auto by_id = cli({"spawn", "tampered", "--snapshot", url() + "/" + tampered + ".dump"});
  EXPECT_EQ(by_id.code, 6);
  EXPECT_THAT(by_id.err, HasSubstr("fails its HMAC check"));
  EXPECT_FALSE(server().database_exists("dev_alice_tampered"));
  // "latest" skips it, naming it.
  auto latest = cli({"spawn", "latest", "--snapshot", url()});
  ASSERT_EQ(latest.code, 0) << latest.err;
  EXPECT_THAT(latest.err, HasSubstr(tampered + ".json"));
  auto list = nlohmann::json::parse(cli({"snapshot", "list", "--store", url(), "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], good);

  // A manifest signed with another key is refused too.
  auto other = cli({"spawn", "otherkey", "--snapshot", url() + "/" + good + ".dump"},
                   {{"PREVIEWDB_MANIFEST_KEY", "another-key"}});
  EXPECT_EQ(other.code, 6);
  EXPECT_THAT(other.err, HasSubstr("fails its HMAC check"));
  // And s3:// without a manifest key is a usage error before anything happens.
  auto none = cli({"spawn", "nokey", "--snapshot", url()}, {{"PREVIEWDB_MANIFEST_KEY", ""}});
  EXPECT_EQ(none.code, 2);
  EXPECT_THAT(none.err, HasSubstr("PREVIEWDB_MANIFEST_KEY"));
}

TEST_F(S3Store, AWrongSecretIsRejectedAndA4xxIsNotRetried) {
  s3->clear_requests();
  auto r = cli({"snapshot", "list", "--store", url()},
               {{"AWS_SECRET_ACCESS_KEY", "not-the-secret-key-at-all"}});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("403 SignatureDoesNotMatch"));
  EXPECT_THAT(r.err, HasSubstr("AWS_SECRET_ACCESS_KEY"));
  EXPECT_THAT(r.err, Not(HasSubstr("not-the-secret-key-at-all")));
  EXPECT_EQ(s3->requests().size(), 1u);  // never retried

  // The fallback names of the original scripts work.
  auto fallback = cli({"snapshot", "list", "--store", url()},
                      {{"AWS_ACCESS_KEY_ID", ""},
                       {"AWS_SECRET_ACCESS_KEY", ""},
                       {"AWS_ACCESS_KEY_COCKROACH_BACKUP", test::S3Server::k_access_key},
                       {"AWS_SECRET_ACCESS_KEY_COCKROACH_BACKUP", test::S3Server::k_secret}});
  EXPECT_EQ(fallback.code, 0) << fallback.err;
}

TEST_F(S3Store, ServerErrorsAndThrottlingAreRetried) {
  s3->set_faults(nlohmann::json::array({{{"method", "PUT"}, {"status", 503}, {"times", 2}},
                                        {{"method", "GET"}, {"status", 500}, {"times", 1}}}));
  std::string snap = snapshot();
  ASSERT_FALSE(snap.empty());
  size_t failed = 0;
  for (const auto& r : s3->requests()) failed += r["status"].get<int>() >= 500;
  EXPECT_EQ(failed, 3u);
  auto spawned = cli({"spawn", "retried", "--snapshot", url()});
  ASSERT_EQ(spawned.code, 0) << spawned.err;
}

TEST_F(S3Store, BackupToS3VerifyListAndRetention) {
  std::string store = url("backups");
  auto first = cli({"backup", "dev", "--store", store});
  ASSERT_EQ(first.code, 0) << first.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto second = cli({"backup", "dev", "--store", store, "--keep", "1"});
  ASSERT_EQ(second.code, 0) << second.err;
  std::string name = second.out.substr(0, second.out.find('\n'));
  EXPECT_THAT(second.err, HasSubstr("deleted old backup"));

  auto list = cli({"backup", "list", "--store", store, "--json"});
  ASSERT_EQ(list.code, 0) << list.err;
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["name"], name);
  EXPECT_EQ(j[0]["verified"], true);

  auto verify = cli({"backup", "verify", "--store", store, "--restore-test"});
  ASSERT_EQ(verify.code, 0) << verify.err;
  EXPECT_THAT(verify.err, HasSubstr("restore test passed"));
  // A tampered backup manifest is refused too.
  fs::path manifest = object_file("backups/" + name + ".json");
  ASSERT_TRUE(fs::exists(manifest));
  auto m = nlohmann::json::parse(util::read_file(manifest));
  m["database"] = "other";
  std::ofstream(manifest, std::ios::trunc) << m.dump();
  auto bad = cli({"backup", "verify", "--store", store, name});
  EXPECT_EQ(bad.code, 6);
  EXPECT_THAT(bad.err, HasSubstr("fails its HMAC check"));
}

// --encrypt: AES-256-GCM chunks, for file:// and s3:// alike; a wrong key, a missing key or a
// tampered archive is refused and leaves no database.
TEST_F(S3Store, EncryptedArchivesRoundTripAndRefuseAWrongKeyOrTampering) {
  const std::string key = std::string(64, '7');
  const std::string other = std::string(64, '8');
  util::TempDir dir;
  util::TempDir keys;
  fs::path key_file = keys.path() / "key";
  std::ofstream(key_file) << key << "\n";
  for (const std::string& store : {url("enc"), "file://" + dir.path().string()}) {
    SCOPED_TRACE(store);
    auto made = cli({"snapshot", "--to", store, "--encrypt"}, {{"PREVIEWDB_ENCRYPTION_KEY", key}});
    ASSERT_EQ(made.code, 0) << made.err;
    std::string snap = made.out.substr(0, made.out.find('\n'));
    auto ok =
        cli({"spawn", "enc_ok", "--snapshot", store, "--encryption-key-file", key_file.string()});
    ASSERT_EQ(ok.code, 0) << ok.err;
    EXPECT_EQ(count("dev_alice_enc_ok"), 100);
    auto wrong =
        cli({"spawn", "enc_wrong", "--snapshot", store}, {{"PREVIEWDB_ENCRYPTION_KEY", other}});
    EXPECT_EQ(wrong.code, 6);
    EXPECT_THAT(wrong.err, HasSubstr("not with the key given"));
    EXPECT_THAT(wrong.err, Not(HasSubstr(other)));
    EXPECT_FALSE(server().database_exists("dev_alice_enc_wrong"));
    auto none = cli({"spawn", "enc_none", "--snapshot", store});
    EXPECT_EQ(none.code, 2);
    EXPECT_THAT(none.err, HasSubstr("is encrypted"));
    EXPECT_FALSE(server().database_exists("dev_alice_enc_none"));
    cli({"cleanup", "enc_ok", "--yes"});
  }
  // A tampered file:// archive (one byte of a chunk): refused, nothing left behind.
  fs::path archive;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().extension() == ".dump") archive = e.path();
  }
  ASSERT_FALSE(archive.empty());
  {
    std::fstream f(archive, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    char c = 0;
    f.read(&c, 1);
    f.seekp(200);
    c ^= 0x20;
    f.write(&c, 1);
  }
  auto tampered = cli({"spawn", "enc_bad", "--snapshot", "file://" + dir.path().string()},
                      {{"PREVIEWDB_ENCRYPTION_KEY", key}});
  EXPECT_EQ(tampered.code, 6);
  EXPECT_THAT(tampered.err, HasSubstr("chunk 0 fails authentication"));
  EXPECT_FALSE(server().database_exists("dev_alice_enc_bad"));
  auto left = server().connect().exec(
      "SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb_tmp%'");
  EXPECT_EQ(left.get_int(0, 0), 0);
  // Configured on, encryption applies to archives; a snapshot without --to is not refused.
  auto configured = cli({"snapshot"}, {{"PREVIEWDB_ENCRYPT", "true"}});
  EXPECT_EQ(configured.code, 0) << configured.err;
  auto flag = cli({"snapshot", "--encrypt"}, {{"PREVIEWDB_ENCRYPTION_KEY", key}});
  EXPECT_EQ(flag.code, 2);
  EXPECT_THAT(flag.err, HasSubstr("--encrypt encrypts the archive written with --to"));
  // --encrypt without a key is refused before anything is made.
  auto nokey = cli({"snapshot", "--to", url("enc"), "--encrypt"});
  EXPECT_EQ(nokey.code, 2);
  EXPECT_THAT(nokey.err, HasSubstr("--encrypt needs a key"));
}

}  // namespace
