// PII masking of snapshots (issue 12, docs/MASKING.md) on the harness's real PostgreSQL: a
// populated schema with foreign keys is snapshotted with --mask; the snapshot keeps joins, the
// counts are reported, the source is untouched, and no original value is left in the copy's
// relation files (table, indexes, TOAST: read from disk after a CHECKPOINT) nor in pg_stats.
// Bad rules fail before anything is created; --require-rules and --exclude-data.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "harness/harness.hpp"
#include "util/files.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

namespace {

// Long enough, and not compressible (stored EXTERNAL), to live in TOAST in one row.
const char* k_marker = "zebracornoriginal";
const char* k_salt = "test-salt-0123456789abcdef";

// HMAC-SHA-256's inner (0x36) or outer (0x5c) key of k_salt, hex: written here independently of
// previewdb's mask::hmac_pads.
std::string pad_hex(int pad) {
  std::string k = k_salt;
  k.resize(64, '\0');
  std::string h;
  char buf[3];
  for (char c : k) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(c ^ pad));
    h += buf;
  }
  return h;
}

class MaskSnapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    ASSERT_EQ(run_cli({"list"}, env()).code, 0);  // the registry exists before any count
    server().exec("dev", R"SQL(
CREATE TABLE users(id serial PRIMARY KEY, email text UNIQUE NOT NULL, full_name text,
                   phone text, bio text);
ALTER TABLE users ALTER COLUMN bio SET STORAGE EXTERNAL;
CREATE TABLE orders(id serial PRIMARY KEY, user_email text REFERENCES users(email), total int);
CREATE TABLE audit_log(id serial PRIMARY KEY, user_id int REFERENCES users(id), detail text);
INSERT INTO users(email, full_name, phone, bio)
  SELECT 'zebracornoriginal' || i || '@example.org', 'Zebracornoriginal Person ' || i,
         '+44 20 7946 00' || lpad(i::text, 2, '0'), 'short bio ' || i
  FROM generate_series(1, 30) i;
UPDATE users SET bio = 'zebracornoriginal-toast-' ||
  (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 200) g) WHERE id = 1;
INSERT INTO orders(user_email, total) SELECT 'zebracornoriginal' || (1 + i % 30) || '@example.org', i
  FROM generate_series(1, 60) i;
INSERT INTO audit_log(user_id, detail) SELECT 1 + i % 30, 'logged ' || i FROM generate_series(1, 10) i;
ANALYZE;
)SQL");
    m_rules = m_dir.path() / "rules.json";
    write_rules(R"([
  {"table": "users", "column": "email", "function": "hash"},
  {"table": "orders", "column": "user_email", "function": "hash"},
  {"table": "users", "column": "full_name", "function": "fake_name"},
  {"table": "users", "column": "phone", "function": "partial", "params": {"suffix": 2}},
  {"table": "users", "column": "bio", "function": "fixed", "params": {"value": "redacted"}}
])");
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static test::Env env() {
    return {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_MASK_SALT", k_salt}};
  }
  void write_rules(const std::string& text) { std::ofstream(m_rules, std::ios::trunc) << text; }

  std::vector<std::string> databases() {
    auto conn = server().connect();
    auto r = conn.exec("SELECT datname FROM pg_database ORDER BY 1");
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.get(i, 0));
    return out;
  }
  // The snapshot opened for reading (the test is a superuser).
  db::Connection open_snapshot(const std::string& id) {
    server().connect().exec("ALTER DATABASE \"" + id + "\" ALLOW_CONNECTIONS true");
    return server().connect(id);
  }
  static std::string file_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The files of a table, its indexes and its TOAST table (and TOAST index).
  static std::vector<fs::path> relation_files(db::Connection& conn, const std::string& table) {
    auto dir = conn.exec("SHOW data_directory").get(0, 0);
    auto r = conn.exec(
        "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = $1::regclass "
        "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass) "
        "OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = $1::regclass) "
        "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = "
        "(SELECT reltoastrelid FROM pg_class WHERE oid = $1::regclass))",
        {table});
    std::vector<fs::path> out;
    for (int i = 0; i < r.rows(); ++i) {
      fs::path base = fs::path(dir) / r.get(i, 0);
      for (const auto& e : fs::directory_iterator(base.parent_path())) {
        auto name = e.path().filename().string();
        if (name == base.filename().string() || name.rfind(base.filename().string() + ".", 0) == 0)
          out.push_back(e.path());
      }
    }
    return out;
  }
  static long long stats_hits(db::Connection& conn) {
    return conn
        .exec(
            "SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND "
            "(coalesce(most_common_vals::text, '') || coalesce(histogram_bounds::text, '')) "
            "LIKE '%zebracornoriginal%'")
        .get_int(0, 0);
  }

  util::TempDir m_dir;
  fs::path m_rules;
};

TEST_F(MaskSnapshot, MasksTheCopyOnlyAndLeavesNoOriginalInItsFilesOrStatistics) {
  auto r = run_cli({"snapshot", "--mask", m_rules.string(), "--json"}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.all(), Not(HasSubstr(k_salt)));
  auto out = nlohmann::json::parse(r.out);
  std::string id = out["id"];
  EXPECT_TRUE(out["masked"].get<bool>());
  std::map<std::string, long long> rows;
  for (const auto& rule : out["masking"]["rules"]) {
    rows[rule["table"].get<std::string>() + "." + rule["column"].get<std::string>()] = rule["rows"];
  }
  EXPECT_EQ(rows["users.email"], 30);
  EXPECT_EQ(rows["orders.user_email"], 60);
  EXPECT_EQ(rows["users.full_name"], 30);
  EXPECT_EQ(rows["users.phone"], 30);
  EXPECT_EQ(rows["users.bio"], 30);
  EXPECT_THAT(r.err, HasSubstr("masking: public.orders.user_email hash: 60 rows changed"));

  // The source is untouched.
  auto src = server().connect("dev");
  EXPECT_EQ(
      src.exec("SELECT count(*) FROM users WHERE email LIKE 'zebracornoriginal%'").get_int(0, 0),
      30);
  EXPECT_EQ(src.exec("SELECT count(*) FROM users WHERE bio LIKE 'zebracornoriginal-toast-%'")
                .get_int(0, 0),
            1);

  auto snap = open_snapshot(id);
  // Joins still match, values are masked.
  EXPECT_EQ(snap.exec("SELECT count(*) FROM orders o JOIN users u ON u.email = o.user_email")
                .get_int(0, 0),
            60);
  EXPECT_EQ(snap.exec("SELECT count(DISTINCT email) FROM users").get_int(0, 0), 30);
  EXPECT_EQ(snap.exec("SELECT count(*) FROM users WHERE email ~ '^[0-9a-f]{64}$'").get_int(0, 0),
            30);
  EXPECT_EQ(snap.exec("SELECT count(*) FROM users WHERE phone ~ '^[*]{14}[0-9]{2}$'").get_int(0, 0),
            30);
  EXPECT_EQ(snap.exec("SELECT count(*) FROM users WHERE bio = 'redacted'").get_int(0, 0), 30);
  // The same value hashes the same way in both tables and matches a hash computed here.
  auto expect_hash = src.exec(
      "SELECT encode(sha256(decode($2, 'hex') || sha256(decode($1, 'hex') || "
      "convert_to('zebracornoriginal1@example.org', 'UTF8'))), 'hex')",
      {pad_hex(0x36), pad_hex(0x5c)});
  EXPECT_EQ(snap.exec("SELECT email FROM users WHERE id = 1").get(0, 0), expect_hash.get(0, 0));

  // Nothing of the originals in pg_stats (the source's statistics do have them).
  EXPECT_GT(stats_hits(src), 0);
  EXPECT_EQ(stats_hits(snap), 0);

  // Nor in the files: table, indexes, TOAST of both tables; then the whole database directory.
  server().connect().exec("CHECKPOINT");
  auto src_files = relation_files(src, "users");
  bool source_has_it = false;
  for (const auto& f : src_files) source_has_it |= file_text(f).find(k_marker) != std::string::npos;
  EXPECT_TRUE(source_has_it) << "the search must find the marker in the source's files";
  for (const char* table : {"users", "orders"}) {
    auto files = relation_files(snap, table);
    EXPECT_GE(files.size(), 3u) << table;
    for (const auto& f : files) {
      EXPECT_EQ(file_text(f).find(k_marker), std::string::npos) << f;
    }
  }
  auto oid = server().connect().exec("SELECT oid FROM pg_database WHERE datname = $1", {id});
  fs::path dir = fs::path(snap.exec("SHOW data_directory").get(0, 0)) / "base" / oid.get(0, 0);
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    EXPECT_EQ(file_text(e.path()).find(k_marker), std::string::npos) << e.path();
  }

  // snapshot list marks it.
  auto list = run_cli({"snapshot", "list"}, env());
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("MASKED"));
  EXPECT_THAT(list.out, HasSubstr("yes"));
  auto json_list = nlohmann::json::parse(run_cli({"snapshot", "list", "--json"}, env()).out);
  ASSERT_EQ(json_list.size(), 1u);
  EXPECT_TRUE(json_list[0]["masked"].get<bool>());
  EXPECT_EQ(json_list[0]["mask_rules_sha256"].get<std::string>().size(), 64u);
}

TEST_F(MaskSnapshot, TheSettingMasksToo_AndAnUnmaskedSnapshotIsListedAsSuch) {
  auto plain = run_cli({"snapshot"}, env());
  ASSERT_EQ(plain.code, 0) << plain.err;
  auto env2 = env();
  env2["PREVIEWDB_MASK_RULES"] = m_rules.string();
  auto masked = run_cli({"snapshot", "--json"}, env2);
  ASSERT_EQ(masked.code, 0) << masked.err;
  auto list = nlohmann::json::parse(run_cli({"snapshot", "list", "--json"}, env()).out);
  ASSERT_EQ(list.size(), 2u);
  std::map<std::string, bool> by_id;
  for (const auto& s : list) by_id[s["id"]] = s["masked"];
  EXPECT_FALSE(by_id[plain.out.substr(0, plain.out.find('\n'))]);
  EXPECT_TRUE(by_id[nlohmann::json::parse(masked.out)["id"]]);
}

TEST_F(MaskSnapshot, AnUnknownColumnFailsBeforeAnythingIsCreated) {
  write_rules(R"([{"table": "users", "column": "emial", "function": "hash"}])");
  auto before = databases();
  auto r = run_cli({"snapshot", "--mask", m_rules.string()}, env());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("rule 0: table \"public.users\" has no column \"emial\""));
  EXPECT_EQ(databases(), before);
  write_rules(R"([{"table": "userz", "column": "email", "function": "hash"}])");
  r = run_cli({"snapshot", "--mask", m_rules.string()}, env());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("no table \"public.userz\""));
  EXPECT_EQ(databases(), before);
  EXPECT_THAT(run_cli({"snapshot", "list"}, env()).all(), HasSubstr("no snapshots"));
}

TEST_F(MaskSnapshot, RefusesRulesThatWouldBreakForeignKeysOrUniqueness) {
  auto before = databases();
  // The referenced column masked, the referencing one not.
  write_rules(R"([{"table": "users", "column": "email", "function": "hash"}])");
  auto r = run_cli({"snapshot", "--mask", m_rules.string()}, env());
  EXPECT_EQ(r.code, 6);
  EXPECT_THAT(r.err, HasSubstr("referenced by public.orders.user_email"));
  // Masked differently.
  write_rules(R"([{"table": "users", "column": "email", "function": "hash"},
                  {"table": "orders", "column": "user_email", "function": "fake_email"}])");
  r = run_cli({"snapshot", "--mask", m_rules.string()}, env());
  EXPECT_EQ(r.code, 6);
  EXPECT_THAT(r.err, HasSubstr("masked differently"));
  // A function that can collide on a unique column.
  write_rules(R"([{"table": "users", "column": "email", "function": "shuffle"},
                  {"table": "orders", "column": "user_email", "function": "shuffle"}])");
  r = run_cli({"snapshot", "--mask", m_rules.string()}, env());
  EXPECT_EQ(r.code, 6);
  EXPECT_THAT(r.err, HasSubstr("unique index"));
  // No salt for a keyed function.
  write_rules(R"([{"table": "users", "column": "phone", "function": "fake_phone"}])");
  r = run_cli({"snapshot", "--mask", m_rules.string()}, {{"DATABASE_URL", server().url()}});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("PREVIEWDB_MASK_SALT is not set"));
  EXPECT_EQ(databases(), before);
}

TEST_F(MaskSnapshot, RequireRulesListsThePersonalColumnsWithoutARule) {
  write_rules(R"([{"table": "users", "column": "email", "function": "hash"},
                  {"table": "orders", "column": "user_email", "function": "hash"}])");
  auto before = databases();
  auto r = run_cli({"snapshot", "--mask", m_rules.string(), "--require-rules"}, env());
  EXPECT_EQ(r.code, 6);
  EXPECT_THAT(r.err, HasSubstr("public.users.full_name"));
  EXPECT_THAT(r.err, HasSubstr("public.users.phone"));
  EXPECT_THAT(r.err, Not(HasSubstr("public.users.email,")));
  EXPECT_EQ(databases(), before);
  write_rules(R"([{"table": "users", "column": "email", "function": "hash"},
                  {"table": "orders", "column": "user_email", "function": "hash"},
                  {"table": "users", "column": "full_name", "function": "fake_name"},
                  {"table": "users", "column": "phone", "function": "keep"}])");
  r = run_cli({"snapshot", "--mask", m_rules.string(), "--require-rules"}, env());
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(MaskSnapshot, ExcludeDataEmptiesATableAndKeepsItsSchema) {
  auto r = run_cli({"snapshot", "--exclude-data", "audit_log", "--json"}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["masking"]["excluded"][0]["rows"], 10);
  auto snap = open_snapshot(out["id"]);
  EXPECT_EQ(snap.exec("SELECT count(*) FROM audit_log").get_int(0, 0), 0);
  EXPECT_EQ(snap.exec("SELECT count(*) FROM users").get_int(0, 0), 30);
  EXPECT_EQ(server().connect("dev").exec("SELECT count(*) FROM audit_log").get_int(0, 0), 10);

  // A table other rows still reference: refused, nothing made.
  auto before = databases();
  auto refused = run_cli({"snapshot", "--exclude-data", "users"}, env());
  EXPECT_EQ(refused.code, 6);
  EXPECT_THAT(refused.err, HasSubstr("--exclude-data public.users: rows of public."));
  EXPECT_EQ(databases(), before);
}

TEST_F(MaskSnapshot, AnArchiveWrittenWithToIsMaskedToo) {
  util::TempDir store;
  std::string url = "file://" + store.path().string();
  auto r = run_cli({"snapshot", "--mask", m_rules.string(), "--to", url}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  // The store's listing says the archive is masked, and by which rules.
  auto listed = run_cli({"snapshot", "list", "--store", url, "--json"}, env());
  ASSERT_EQ(listed.code, 0) << listed.err;
  auto archives = nlohmann::json::parse(listed.out);
  ASSERT_EQ(archives.size(), 1u);
  EXPECT_TRUE(archives[0]["masked"].get<bool>());
  EXPECT_EQ(archives[0]["mask_rules_sha256"].get<std::string>().size(), 64u);
  auto text = run_cli({"snapshot", "list", "--store", url}, env());
  EXPECT_THAT(text.out, HasSubstr("MASKED"));
  auto spawned = run_cli({"spawn", "--pr", "77", "--snapshot", url}, env(),
                         fs::temp_directory_path().string());
  ASSERT_EQ(spawned.code, 0) << spawned.err;
  auto pr = server().connect("pr_77");
  EXPECT_EQ(pr.exec("SELECT count(*) FROM users WHERE email LIKE 'zebracorn%' OR bio LIKE "
                    "'zebracorn%'")
                .get_int(0, 0),
            0);
  EXPECT_EQ(
      pr.exec("SELECT count(*) FROM orders o JOIN users u ON u.email = o.user_email").get_int(0, 0),
      60);
}

}  // namespace
