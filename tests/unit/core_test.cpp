#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "core/metadata.hpp"
#include "core/naming.hpp"
#include "db/connection.hpp"
#include "db/dialect.hpp"
#include "snapshot/snapshot.hpp"
#include "util/dotenv.hpp"
#include "util/error.hpp"
#include "util/files.hpp"

using namespace previewdb;
using ::testing::HasSubstr;

TEST(Naming, ValidNames) {
  EXPECT_NO_THROW(core::validate_name("pr_12"));
  EXPECT_NO_THROW(core::validate_name("dev_alice_checkout-v2"));
  EXPECT_NO_THROW(core::validate_name(std::string(63, 'a')));
  EXPECT_EQ(core::pr_database_name(12), "pr_12");
  EXPECT_EQ(core::personal_database_name("alice", "checkout"), "dev_alice_checkout");
}

TEST(Naming, EveryInvalidClassIsAUsageError) {
  for (std::string bad :
       {std::string("Upper"), std::string(64, 'a'), std::string("pr_1; drop database dev"),
        std::string("a'b"), std::string("a\"b"), std::string("caf\xc3\xa9"), std::string(""),
        std::string("a b"), std::string("a\nb"), std::string("a.b")}) {
    try {
      core::validate_name(bad);
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::usage);
      ASSERT_FALSE(e.hints().empty());
      EXPECT_THAT(e.hints()[0], HasSubstr("lowercase letters a-z, digits 0-9, '_' and '-'"));
    }
  }
  EXPECT_THROW(core::pr_database_name(0), Error);
  EXPECT_THROW(core::personal_database_name("alice", "Bad"), Error);
}

TEST(Naming, NormaliseUser) {
  EXPECT_EQ(core::normalise_user("Jane Doe"), "jane_doe");
  EXPECT_EQ(core::normalise_user("  O'Brien--"), "o_brien");
  EXPECT_EQ(core::normalise_user("J\xc3\xb6rg"), "j_rg");
  EXPECT_THROW(core::normalise_user("!!!"), Error);
  EXPECT_LE(core::normalise_user(std::string(100, 'x')).size(), 32u);
}

TEST(Metadata, RoundTrip) {
  core::Metadata m;
  m.kind = core::Kind::pr;
  m.created_at = "2026-11-21T12:00:00Z";
  m.created_by = "ci";
  m.pr_number = 7;
  m.branch = "feature/x";
  m.snapshot = "snap_dev_20261121_120000";
  auto text = core::to_comment(m);
  EXPECT_THAT(text, HasSubstr("\"tool\":\"previewdb\""));
  auto back = core::parse_comment(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, core::Kind::pr);
  EXPECT_EQ(back->pr_number, 7);
  EXPECT_EQ(back->branch, "feature/x");
  EXPECT_EQ(back->snapshot, m.snapshot);
}

TEST(Metadata, ForeignAndMalformedCommentsAreUnmanaged) {
  for (const char* c : {"", "{", "null", "[]", "42", "\"text\"", "{\"tool\":\"other\"}",
                        "{\"tool\":\"previewdb\"}", "{\"tool\":\"previewdb\",\"kind\":\"weird\"}",
                        "{\"tool\":\"previewdb\",\"kind\":3}", "just a human comment"}) {
    EXPECT_FALSE(core::parse_comment(c).has_value()) << c;
  }
  // Wrong types in optional fields are dropped, not fatal.
  auto m = core::parse_comment(
      "{\"tool\":\"previewdb\",\"kind\":\"personal\",\"pr_number\":\"x\",\"branch\":5}");
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->pr_number);
  EXPECT_FALSE(m->branch);
}

TEST(Config, PrecedenceDefaultsFileEnvFlags) {
  util::TempDir dir;
  auto file = dir.path() / "previewdb.json";
  util::write_file_atomic(file,
                          R"({"source": "from_file", "label": "file-label", "protect": ["a"]})");
  auto cfg = config::Config::load({{"from", "from_flag"}}, file,
                                  {{"PREVIEWDB_LABEL", "env-label"}, {"PREVIEWDB_PROTECT", "b,c"}});
  EXPECT_EQ(cfg.get("source")->value, "from_flag");
  EXPECT_EQ(cfg.get("source")->origin, "--from");
  EXPECT_EQ(cfg.get("label")->value, "env-label");
  EXPECT_EQ(cfg.get("label")->origin, "PREVIEWDB_LABEL");
  EXPECT_EQ(cfg.get("base_ref")->value, "main");
  EXPECT_EQ(cfg.get("base_ref")->origin, "default");
  EXPECT_EQ(cfg.get_list("protect"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(cfg.get("database_url"));
}

TEST(Config, BrokenFileIsAClearError) {
  util::TempDir dir;
  auto file = dir.path() / "previewdb.json";
  util::write_file_atomic(file, "{ not json");
  try {
    config::Config::load({}, file, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_THAT(e.what(), HasSubstr("cannot parse"));
    EXPECT_THAT(e.what(), HasSubstr("previewdb.json"));
  }
}

TEST(Dotenv, SetGetKeepsOtherLines) {
  std::string text = "# comment\nexport A=1\nDATABASE_URL=\"postgresql://x/y\"\n";
  EXPECT_EQ(util::dotenv_get(text, "DATABASE_URL"), "postgresql://x/y");
  EXPECT_EQ(util::dotenv_get(text, "A"), "1");
  auto out = util::dotenv_set(text, "DATABASE_URL", "postgresql://new/db");
  EXPECT_EQ(out, "# comment\nexport A=1\nDATABASE_URL=postgresql://new/db\n");
  EXPECT_EQ(util::dotenv_set(out, "B", "has space"), out + "B=\"has space\"\n");
  EXPECT_EQ(util::dotenv_set(out, "DATABASE_URL", std::nullopt), "# comment\nexport A=1\n");
}

TEST(Conninfo, UrlForAnotherDatabaseKeepsOptionsAndHidesPasswordOnRequest) {
  std::string base = "postgresql://app:p%40ss@db.example.com:6543/dev?sslmode=require";
  EXPECT_EQ(db::url_for_database(base, "pr_7", true),
            "postgresql://app:p%40ss@db.example.com:6543/pr_7?sslmode=require");
  EXPECT_EQ(db::url_for_database(base, "pr_7", false),
            "postgresql://app@db.example.com:6543/pr_7?sslmode=require");
  EXPECT_EQ(db::url_for_database("host=/run/pg port=5433 user=me dbname=x", "pr_1", false),
            "postgresql://me@/pr_1?host=%2Frun%2Fpg&port=5433");
  EXPECT_THROW(db::url_for_database("postgresql://[bad", "x", false), Error);
}

TEST(Conninfo, ChildEnvironmentCarriesThePasswordNotArgv) {
  auto env = db::libpq_environment("postgresql://app:s3cret@h:1/dev", "pr_1");
  EXPECT_EQ(env["PGPASSWORD"], "s3cret");
  EXPECT_EQ(env["PGHOST"], "h");
  EXPECT_EQ(env["PGPORT"], "1");
  EXPECT_EQ(env["PGDATABASE"], "pr_1");
  EXPECT_FALSE(env["PGSSLMODE"].has_value()) << "unset settings are cleared, not inherited";
}

TEST(Snapshot, NamesFitIn63Bytes) {
  EXPECT_EQ(snapshot::snapshot_name("dev", "20261121_120000"), "snap_dev_20261121_120000");
  auto long_name = snapshot::snapshot_name(std::string(63, 'a'), "20261121_120000");
  EXPECT_LE(long_name.size() + 2, 63u);
  EXPECT_NO_THROW(core::validate_name(long_name + "_9"));
}

TEST(Dialect, PostgresAndCockroach) {
  auto pg = db::classify_version(
      "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc");
  EXPECT_EQ(pg.kind, db::ServerKind::postgres);
  EXPECT_EQ(pg.version, "15.18");
  EXPECT_TRUE(db::dialect_for(pg, 151800).clone_strategy);
  EXPECT_FALSE(db::dialect_for(pg, 140000).clone_strategy);
  // The version() text CockroachDB returns: its own dialect now, no longer refused
  // (tests/unit/dialect_test.cpp checks what differs).
  auto crdb = db::classify_version(
      "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27 01:53:43, go1.19.10)");
  EXPECT_EQ(crdb.kind, db::ServerKind::cockroach);
  EXPECT_EQ(crdb.version, "v23.1.11");
  EXPECT_EQ(db::dialect_for(crdb, 130000).kind, db::ServerKind::cockroach);
}

TEST(Conninfo, PrismaParametersAreKeptAwayFromLibpqAndTravelOn) {
  auto split = db::split_foreign_params(
      "postgresql://app:pw@db:5432/"
      "dev?schema=app&sslmode=require&pgbouncer=true&connection_limit=5");
  EXPECT_EQ(split.libpq,
            "postgresql://app:pw@db:5432/dev?sslmode=require&options=-c%20search_path%3Dapp");
  EXPECT_EQ(split.foreign,
            (std::vector<std::string>{"schema=app", "pgbouncer=true", "connection_limit=5"}));
  EXPECT_NO_THROW(db::parse_conninfo("postgresql://app@db/dev?schema=app&pgbouncer=true"));
  EXPECT_EQ(db::url_for_database("postgresql://app:pw@db:5432/dev?schema=app&sslmode=require",
                                 "pr_3", false),
            "postgresql://app@db:5432/pr_3?sslmode=require&schema=app");
  // key=value strings and plain URLs are untouched.
  EXPECT_EQ(db::split_foreign_params("host=db dbname=dev").libpq, "host=db dbname=dev");
  EXPECT_EQ(db::split_foreign_params("postgresql://db/dev?sslmode=disable").libpq,
            "postgresql://db/dev?sslmode=disable");
}
