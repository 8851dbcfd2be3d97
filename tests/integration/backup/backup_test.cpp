// `previewdb backup`, `backup list`, `backup verify` (issue 9, backup section) on a real server:
// the real binary, the real pg_dump/pg_restore, real files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "backup/backup.hpp"
#include "crypto/sha256.hpp"
#include "db/connection.hpp"
#include "harness/harness.hpp"
#include "storage/store.hpp"
#include "storage/zstd.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

class Backup : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("postgres", "DROP DATABASE IF EXISTS shop WITH (FORCE)");
    server().exec("postgres", "CREATE DATABASE shop");
    server().exec("shop",
                  "CREATE TABLE customers(id int PRIMARY KEY, name text NOT NULL);"
                  "CREATE TABLE orders(id bigserial PRIMARY KEY, customer int REFERENCES "
                  "customers, total numeric(10,2), note text);"
                  "CREATE INDEX orders_customer ON orders(customer);"
                  "CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;"
                  "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 2000) g;"
                  "INSERT INTO orders(customer, total, note) SELECT 1 + g % 2000, g % 500, "
                  "md5(g::text) FROM generate_series(1, 30000) g;"
                  // previewdb's own history: the manifest records its head.
                  "CREATE SCHEMA _previewdb;"
                  "CREATE TABLE _previewdb.schema_migrations(id text PRIMARY KEY, name text, "
                  "format text, checksum text, status text, statements int, started_at "
                  "timestamptz, finished_at timestamptz, duration_ms bigint, applied_by text, "
                  "error text);"
                  "INSERT INTO _previewdb.schema_migrations VALUES "
                  "('0001', 'init', 'plain', 'x', 'applied', 1, now(), now() - interval '1 h', 1, "
                  "'t', NULL), ('0002', 'orders', 'plain', 'y', 'applied', 1, now(), now(), 1, "
                  "'t', NULL);");
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static test::Env env(test::Env extra = {}) {
    test::Env e = {{"DATABASE_URL", server().url("postgres")}};
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
  std::string store() const { return (m_tmp.path() / "backups").string(); }
  std::vector<std::string> archives() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(store(), ec))
      if (e.path().string().ends_with(".dump.zst")) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string make_backup(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"backup", "shop", "--store", store()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = run_cli(args, env());
    EXPECT_EQ(r.code, 0) << r.err;
    return util::trim(r.out);
  }
  util::TempDir m_tmp;
};

// pg_dump --schema-only without the per-run \restrict keys, and row counts.
std::string schema_of(const std::string& db) {
  util::ProcessSpec spec;
  spec.argv = {"pg_dump", "--schema-only", "--no-owner", "-d",
               test::PgServer::shared().url_without_password(db)};
  spec.env["PGPASSWORD"] = test::PgServer::shared().password();
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  auto r = util::run_process(spec);
  EXPECT_TRUE(r.ok()) << r.err;
  std::string out;
  for (const auto& line : util::split(r.out, '\n'))
    if (!line.starts_with("\\restrict") && !line.starts_with("\\unrestrict")) out += line + "\n";
  return out;
}

std::string counts_of(const std::string& db) {
  auto conn = test::PgServer::shared().connect(db);
  auto r = conn.exec(
      "SELECT (SELECT count(*) FROM customers) || '/' || (SELECT count(*) FROM orders) || '/' || "
      "(SELECT sum(total) FROM orders) || '/' || (SELECT count(*) FROM "
      "_previewdb.schema_migrations)");
  return r.get(0, 0);
}

}  // namespace

TEST_F(Backup, BackupWritesAPrivateVerifiedArchiveWithItsManifest) {
  auto r = run_cli({"backup", "shop", "--store", store()}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  std::string name = util::trim(r.out);
  EXPECT_TRUE(std::regex_match(name, std::regex("bak_shop_[0-9]{8}_[0-9]{6}"))) << name;
  EXPECT_THAT(r.err, HasSubstr("compressed (zstd 3)"));
  struct stat st {};
  ASSERT_EQ(::stat(store().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const auto& f : {name + ".dump.zst", name + ".json", std::string(".gitignore")}) {
    ASSERT_EQ(::stat((fs::path(store()) / f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  EXPECT_EQ(util::read_file(fs::path(store()) / ".gitignore").find("*") != std::string::npos, true);
  auto m = nlohmann::json::parse(util::read_file(fs::path(store()) / (name + ".json")));
  EXPECT_EQ(m["database"], "shop");
  EXPECT_EQ(m["format"], "previewdb-backup-1");
  EXPECT_THAT(m["pg_dump_version"].get<std::string>(), HasSubstr("pg_dump (PostgreSQL)"));
  EXPECT_FALSE(m["server_version"].get<std::string>().empty());
  EXPECT_GT(m["size_raw"].get<long long>(), m["size_compressed"].get<long long>());
  EXPECT_EQ(m["size_compressed"].get<long long>(),
            static_cast<long long>(fs::file_size(fs::path(store()) / (name + ".dump.zst"))));
  EXPECT_EQ(m["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(m["history_head"]["id"], "0002");
  EXPECT_EQ(m["history_head"]["name"], "orders");
  EXPECT_TRUE(m["label"].is_null());
  EXPECT_TRUE(m["verified_at"].is_string());
  EXPECT_TRUE(m["duration_ms"].is_number());
  // No temporary left behind.
  for (const auto& e : fs::directory_iterator(store()))
    EXPECT_THAT(e.path().filename().string(), Not(HasSubstr("partial")));
}

TEST_F(Backup, VerifyWithRestoreTestRoundTripsTheDatabase) {
  std::string name = make_backup();
  auto r = run_cli({"backup", "verify", name, "--store", store(), "--restore-test"}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("restore test passed"));

  // The same restore through the API, comparing the scratch database with the source before
  // it is dropped.
  auto st = storage::open_store(storage::store_url_from(store()));
  auto maintenance = server().connect("postgres");
  std::string scratch, schema, counts;
  backup::VerifyOptions vo;
  vo.maintenance = &maintenance;
  vo.conninfo = server().url("postgres");
  vo.on_restored = [&](const std::string& db) {
    scratch = db;
    schema = schema_of(db);
    counts = counts_of(db);
  };
  auto v = backup::verify_backup(*st, name, vo);
  ASSERT_TRUE(v.ok) << util::join(v.problems, "; ");
  ASSERT_FALSE(scratch.empty());
  EXPECT_THAT(scratch, HasSubstr("previewdb_tmp_"));
  EXPECT_EQ(schema, schema_of("shop"));
  EXPECT_EQ(counts, counts_of("shop"));
  EXPECT_EQ(counts, "2000/30000/7485000.00/2");
  // The scratch database is gone, and so is its registry row.
  EXPECT_FALSE(server().database_exists(scratch));
  auto reg = server().connect("previewdb_registry");
  EXPECT_EQ(reg.exec("SELECT count(*) FROM registry.databases").get(0, 0), "0");
}

TEST_F(Backup, VerifyDefaultsToTheNewestAndAcceptsAPathOrLabel) {
  make_backup({"--name", "before-refactor"});
  std::string newest = make_backup();
  auto r = run_cli({"backup", "verify", "--store", store()}, env());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(util::trim(r.out), newest);
  r = run_cli({"backup", "verify", (fs::path(store()) / (newest + ".dump.zst")).string()}, env());
  EXPECT_EQ(r.code, 0) << r.err;
  r = run_cli({"backup", "verify", "before-refactor"}, env({{"BACKUP_DIR", store()}}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(util::trim(r.out), newest);
  r = run_cli({"backup", "verify", "nope", "--store", store()}, env());
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("no backup \"nope\""));
}

TEST_F(Backup, AFlippedByteFailsVerify) {
  std::string name = make_backup();
  fs::path archive = fs::path(store()) / (name + ".dump.zst");
  std::string bytes = util::read_file(archive);
  bytes[bytes.size() / 2] ^= 0x01;
  std::ofstream(archive, std::ios::binary | std::ios::trunc) << bytes;
  auto r = run_cli({"backup", "verify", name, "--store", store()}, env());
  EXPECT_EQ(r.code, 9) << r.err;
  EXPECT_THAT(r.err, HasSubstr("backup " + name + " is damaged"));
  EXPECT_THAT(r.err, HasSubstr("differs from the manifest"));
}

TEST_F(Backup, ATruncatedFileFailsVerify) {
  std::string name = make_backup();
  fs::path archive = fs::path(store()) / (name + ".dump.zst");
  fs::resize_file(archive, fs::file_size(archive) * 2 / 3);
  auto r = run_cli({"backup", "verify", name, "--store", store(), "--restore-test"}, env());
  EXPECT_EQ(r.code, 9) << r.err;
  EXPECT_THAT(r.err, HasSubstr("truncated"));
  // The scratch database of the restore test did not survive the failure.
  auto conn = server().connect("postgres");
  EXPECT_EQ(
      conn.exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb_tmp_%'").get(0, 0),
      "0");
}

TEST_F(Backup, ADumpCutShortWithAManifestOfWhatArrivedFailsVerify) {
  // What a pg_dump killed mid-stream leaves when a tool writes the manifest from what arrived:
  // a well-formed zstd file of a partial dump whose checksum and sizes match the manifest.
  std::string name = make_backup();
  fs::path dir = store();
  std::string packed = util::read_file(dir / (name + ".dump.zst"), 1 << 30);
  storage::ZstdDecompressor d;
  std::string raw;
  d.update(packed, raw);
  ASSERT_TRUE(d.complete());
  for (size_t cut : {raw.size() * 6 / 10, raw.size() - 100, size_t{3000}}) {
    std::string partial = raw.substr(0, cut);
    storage::ZstdCompressor c(3);
    std::string repacked;
    c.update(partial, repacked);
    c.finish(repacked);
    auto st = storage::open_store(storage::store_url_from(store()));
    auto m = backup::parse_manifest(util::read_file(dir / (name + ".json")));
    ASSERT_TRUE(m);
    m->size_raw = partial.size();
    m->size_compressed = repacked.size();
    m->sha256 = crypto::sha256_hex(repacked);
    std::string cut_name = name + "_cut" + std::to_string(cut);
    m->name = cut_name;
    storage::write_object_text(*st, cut_name + ".dump.zst", repacked);
    storage::write_object_text(*st, cut_name + ".json", backup::to_json(*m));
    auto r = run_cli({"backup", "verify", cut_name, "--store", store()}, env());
    EXPECT_EQ(r.code, 9) << cut << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("pg_restore cannot read the archive")) << cut;
  }
}

TEST_F(Backup, AKilledPgDumpLeavesNoBackup) {
  // A pg_dump that writes part of a real dump and then dies by SIGKILL.
  fs::path bin = m_tmp.path() / "bin";
  fs::create_directories(bin);
  auto real = util::find_program("pg_dump");
  ASSERT_TRUE(real);
  {
    std::ofstream f(bin / "pg_dump");
    f << "#!/bin/sh\n"
         "if [ \"$1\" = --version ]; then exec "
      << *real << " --version; fi\n"
      << *real
      << " \"$@\" | head -c 20000\n"
         "kill -9 $$\n";
  }
  fs::permissions(bin / "pg_dump", fs::perms::owner_all);
  make_backup();
  auto before = archives();
  const char* path = std::getenv("PATH");
  auto r = run_cli({"backup", "shop", "--store", store()},
                   env({{"PATH", bin.string() + ":" + (path ? path : "/usr/bin:/bin")}}));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("pg_dump failed"));
  EXPECT_EQ(archives(), before);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(store())) {
    EXPECT_THAT(e.path().filename().string(), Not(HasSubstr("partial")));
    ++files;
  }
  EXPECT_EQ(files, 3u);  // the first backup's two files and .gitignore
}

TEST_F(Backup, RetentionKeepsTheNewestNAndNamedBackups) {
  std::string named = make_backup({"--name", "before-major-refactor"});
  for (int i = 0; i < 4; ++i) make_backup({"--keep", "2"});
  auto left = archives();
  EXPECT_EQ(left.size(), 3u) << util::join(left, " ");
  EXPECT_NE(std::find(left.begin(), left.end(), named + ".dump.zst"), left.end());
  // MAX_BACKUPS is the same setting.
  make_backup();
  auto r = run_cli({"backup", "shop", "--store", store()}, env({{"MAX_BACKUPS", "1"}}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("deleted old backup"));
  left = archives();
  EXPECT_EQ(left.size(), 2u) << util::join(left, " ");
  // The label is unique per database.
  r = run_cli({"backup", "shop", "--store", store(), "--name", "before-major-refactor"}, env());
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_THAT(r.err, HasSubstr("already exists"));
}

TEST_F(Backup, ListShowsSizeAgeLabelAndVerified) {
  std::string named = make_backup({"--name", "kept"});
  std::string plain = make_backup();
  auto r = run_cli({"backup", "list", "--json", "--store", store()}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["name"], named);
  EXPECT_EQ(j[0]["label"], "kept");
  EXPECT_EQ(j[1]["name"], plain);
  EXPECT_TRUE(j[1]["label"].is_null());
  for (const auto& b : j) {
    EXPECT_EQ(b["database"], "shop");
    EXPECT_EQ(b["verified"], true);
    EXPECT_GT(b["size_bytes"].get<long long>(), 0);
    EXPECT_GE(b["age_seconds"].get<long long>(), 0);
  }
  r = run_cli({"backup", "list", "--store", store()}, env());
  ASSERT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("BACKUP"));
  EXPECT_THAT(r.out, HasSubstr(named));
  EXPECT_THAT(r.out, HasSubstr("kept"));
}

TEST_F(Backup, AProtectedDatabaseCanBeBackedUp) {
  // Backups only read: protection (which guards against changes) does not apply.
  auto r = run_cli({"backup", "shop", "--store", store(), "--protect", "shop"}, env());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(archives().size(), 1u);
}

TEST_F(Backup, BadInputIsRefusedClearly) {
  auto r = run_cli({"backup", "no_such_db", "--store", store()}, env());
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no database \"no_such_db\""));
  r = run_cli({"backup", "shop", "--store", "ftp://x/y"}, env());
  EXPECT_EQ(r.code, 2) << r.err;
  r = run_cli({"backup", "shop", "--store", "/etc/passwd/backups"}, env());
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("/etc/passwd/backups"));
  r = run_cli({"backup", "shop", "--store", store(), "--level", "40"}, env());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("backup_level"));
  r = run_cli({"backup", "shop", "--store", store(), "--name", "../x"}, env());
  EXPECT_EQ(r.code, 2) << r.err;
  r = run_cli({"backup", "shop", "--store", store(), "--to", store()}, env());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_FALSE(fs::exists(store()) && !archives().empty());
}
