// Bad input and secrets (issue 7 items 11-16b): one URL parser that refuses ambiguous URLs without
// quoting them, linear redaction, workflow-command neutralising, regular-file-only reads, NUL bytes
// in migrations, names, durations and the protect list.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "commands/common.hpp"
#include "config/config.hpp"
#include "core/naming.hpp"
#include "core/protection.hpp"
#include "db/connection.hpp"
#include "migrate/history.hpp"
#include "migrate/readers.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/url.hpp"
#include "util/workflow_commands.hpp"

using namespace previewdb;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

// The error a callable throws (ADD_FAILURE when none).
template <typename F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return Error(ExitCode::success, "");
}

std::string all_text(const Error& e) {
  std::string s = e.what();
  for (const auto& h : e.hints()) s += "\n" + h;
  return s;
}

}  // namespace

// --- 11 and 13: one URL parser, refusing ambiguous URLs before anything prints them ---

TEST(InputUrl, UnambiguousUrlsPass) {
  for (const char* ok : {"postgresql://app:s3cr3t@db:5432/dev",
                         "postgres://app:p%40ss%2Fw%3Frd@db/dev?sslmode=require",
                         "postgresql://db1:5432,db2:5433/dev", "postgresql://[::1]:5432/dev",
                         "postgresql:///dev?host=/var/run/postgresql",
                         "postgresql://u@h/db?schema=app&connection_limit=5&user=x@corp",
                         "host=db password=x dbname=dev"}) {
    EXPECT_EQ(util::url_problem(ok), std::nullopt) << ok;
  }
}

TEST(InputUrl, AmbiguousUrlsAreRefusedWithoutQuotingThem) {
  const std::string secret = "Sup3rSecret";
  for (const std::string& bad : std::vector<std::string>{
           "postgresql://app:" + secret + "%zz@db/dev", "postgresql://app:" + secret + "@x@db/dev",
           "postgresql://app:" + secret + "/x@db/dev", "postgresql://app:" + secret + "?x@db/dev",
           "postgresql://app:12/" + secret + "@db/dev", "postgresql://app:12?" + secret + "@db/dev",
           "postgresql://app@db:99999/dev", "postgresql://app@db:54x/dev"}) {
    auto problem = util::url_problem(bad);
    ASSERT_TRUE(problem.has_value()) << bad;
    EXPECT_THAT(*problem, Not(HasSubstr(secret))) << bad;
    auto e = error_of([&] { db::parse_conninfo(bad); });
    EXPECT_EQ(e.code(), ExitCode::usage) << bad;
    EXPECT_THAT(all_text(e), Not(HasSubstr(secret))) << bad;
  }
}

TEST(InputUrl, LibpqParseErrorsNeverQuoteTheInput) {
  // libpq itself would say: invalid connection option "Sup3rSecretLeak"
  auto e = error_of([] { db::parse_conninfo("host=h Sup3rSecretLeak=1"); });
  EXPECT_EQ(e.code(), ExitCode::usage);
  EXPECT_THAT(all_text(e), Not(HasSubstr("Sup3rSecretLeak")));
  auto kv = error_of([] { db::parse_conninfo("host=h password='Sup3rSecretLeak"); });
  EXPECT_THAT(all_text(kv), Not(HasSubstr("Sup3rSecretLeak")));
}

TEST(InputUrl, BadPortIsAUsageError) {
  auto e = error_of([] { db::parse_conninfo("host=db port=abc dbname=dev"); });
  EXPECT_EQ(e.code(), ExitCode::usage);
  EXPECT_THAT(e.what(), HasSubstr("invalid port \"abc\""));
  EXPECT_EQ(error_of([] { db::parse_conninfo("postgresql://db:0/dev"); }).code(), ExitCode::usage);
}

TEST(InputUrl, HundredKilobyteUrlIsRefusedAndRedactedWithoutCrashing) {
  std::string huge = "postgresql://app:pw@db/dev?application_name=" + std::string(100 * 1024, 'a');
  auto e = error_of([&] { db::parse_conninfo(huge); });
  EXPECT_EQ(e.code(), ExitCode::usage);
  EXPECT_THAT(e.what(), HasSubstr("at most 8192"));
  EXPECT_LT(std::string(e.what()).size(), 1000u);
  // Redaction is linear: a long URL neither crashes nor prints.
  std::string shown = util::redact_url(huge);
  EXPECT_THAT(shown, Not(HasSubstr("pw@")));
  std::string long_ok = "postgresql://app:pw@db/dev?x=" + std::string(12 * 1024, 'b');
  EXPECT_THAT(util::redact_url(long_ok), HasSubstr("app:***@db"));
}

TEST(InputRedact, PasswordsWithUnescapedCharactersAreHiddenWhole) {
  EXPECT_EQ(util::redact_url("postgresql://app:pa@ss@db/dev"), "postgresql://app:***@db/dev");
  EXPECT_EQ(util::redact_url("postgresql://app:pa/ss@db/dev"), "postgresql://app:***@db/dev");
  EXPECT_EQ(util::redact_url("postgresql://app:pa?ss@db/dev"), "postgresql://app:***@db/dev");
  EXPECT_EQ(util::redact_url("postgresql://app@db/dev?sslpassword=k3y&sslmode=require"),
            "postgresql://app@db/dev?sslpassword=***&sslmode=require");
  EXPECT_EQ(util::redact_url("host=db sslpassword='a b' password=c dbname=d"),
            "host=db sslpassword=*** password=*** dbname=d");
  // Not a password parameter: left alone.
  EXPECT_EQ(util::redact_url("host=db mypassword_hint=x"), "host=db mypassword_hint=x");
  EXPECT_EQ(util::redact_url("https://api.github.com/repos/o/r/pulls?page=2"),
            "https://api.github.com/repos/o/r/pulls?page=2");
}

TEST(InputSecrets, SslpasswordAndEncodedFormsAreRegistered) {
  auto found =
      db::register_conninfo_secrets("postgresql://app:p%21ss-Word1@db/dev?sslpassword=Cl13ntK3y");
  EXPECT_THAT(found, ::testing::Contains("p!ss-Word1"));
  EXPECT_THAT(found, ::testing::Contains("p%21ss-Word1"));
  EXPECT_THAT(found, ::testing::Contains("Cl13ntK3y"));
  EXPECT_EQ(util::scrub("key Cl13ntK3y and p!ss-Word1"), "key *** and ***");
}

// --- 12: workflow-command injection ---

TEST(InputEscaping, NoDataLineStartsAWorkflowCommand) {
  EXPECT_EQ(util::workflow::neutralize_commands("applying a\n::error::pwned\n  ::warning x"),
            "applying a\n%3A%3Aerror::pwned\n  %3A%3Awarning x");
  EXPECT_EQ(util::workflow::neutralize_commands("no: colons::here"), "no: colons::here");
  EXPECT_EQ(util::printable("a\n::error::x"), "a\\n::error::x");
  EXPECT_EQ(util::workflow::error_command("a\n::error::b.sql", 3, "t", "m\n::x"),
            "::error file=a%0A%3A%3Aerror%3A%3Ab.sql,line=3,title=t::m%0A::x\n");
}

// --- 14: NUL bytes in migrations, per reader family ---

namespace {

struct Layout {
  const char* name;
  std::vector<std::pair<std::string, std::string>> files;  // {path, content}; NUL in the last
};

std::string with_nul() {
  return std::string("CREATE TABLE t (id int);\nSELECT 1;") + '\0' + "DROP TABLE t;";
}

}  // namespace

TEST(InputNul, EveryReaderRefusesANulByteNamingFileAndOffset) {
  const std::vector<Layout> layouts = {
      {"prisma",
       {{"migration_lock.toml", "provider = \"postgresql\"\n"},
        {"20240101000000_init/migration.sql", with_nul()}}},
      {"drizzle",
       {{"meta/_journal.json", R"({"entries":[{"idx":0,"when":1,"tag":"0000_a"}]})"},
        {"0000_a.sql", with_nul()}}},
      {"drizzle1", {{"20250101000000_init/migration.sql", with_nul()}}},
      {"golang-migrate", {{"1_init.down.sql", "SELECT 1;"}, {"1_init.up.sql", with_nul()}}},
      {"dbmate", {{"20240101000000_init.sql", "-- migrate:up\n" + with_nul()}}},
      {"flyway", {{"V1__init.sql", with_nul()}}},
      {"plain", {{"0001_init.sql", with_nul()}}},
  };
  for (const auto& layout : layouts) {
    util::TempDir dir("previewdb-nul-");
    for (const auto& [rel, content] : layout.files) {
      fs::create_directories((dir.path() / rel).parent_path());
      std::ofstream(dir.path() / rel, std::ios::binary) << content;
    }
    auto e = error_of([&] { migrate::read_migrations({dir.path(), "auto", {}}); });
    EXPECT_EQ(e.code(), ExitCode::usage) << layout.name;
    std::string offset =
        std::to_string(with_nul().find('\0') + (layout.name == std::string("dbmate") ? 14 : 0));
    EXPECT_THAT(e.what(), HasSubstr("contains a NUL byte at byte offset " + offset)) << layout.name;
    EXPECT_THAT(e.what(), HasSubstr(layout.files.back().first)) << layout.name;
  }
}

// --- 15: regular files only, bounded, symlinks only inside the repository ---

TEST(InputFiles, FifoDeviceAndDirectoryAreRefusedAtOnce) {
  util::TempDir dir("previewdb-files-");
  fs::path fifo = dir.path() / "event.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto e = error_of([&] { util::read_file(fifo); });  // would block for ever without O_NONBLOCK
  EXPECT_EQ(e.code(), ExitCode::usage);
  EXPECT_THAT(e.what(), HasSubstr("FIFO"));
  EXPECT_THAT(error_of([] { util::read_file("/dev/zero"); }).what(), HasSubstr("character device"));
  EXPECT_THAT(error_of([&] { util::read_file(dir.path()); }).what(), HasSubstr("directory"));
  // Appending to a FIFO (GITHUB_OUTPUT) fails at once too.
  EXPECT_NE(error_of([&] { util::append_file(fifo, "x=1\n"); }).code(), ExitCode::success);
}

TEST(InputFiles, SizeIsBounded) {
  util::TempDir dir("previewdb-files-");
  fs::path big = dir.path() / "big.json";
  std::ofstream(big) << std::string(2048, 'x');
  auto e = error_of([&] { util::read_file(big, 1024); });
  EXPECT_EQ(e.code(), ExitCode::usage);
  EXPECT_THAT(e.what(), HasSubstr("at most 1024"));
  EXPECT_EQ(util::read_file(big, 4096).size(), 2048u);
}

TEST(InputFiles, OutputTargetsAreCheckedBeforeAnyWork) {
  util::TempDir dir("previewdb-files-");
  auto e = error_of([&] { util::check_output_file(dir.path(), "--update-env file"); });
  EXPECT_EQ(e.code(), ExitCode::usage);
  EXPECT_THAT(e.what(), HasSubstr("--update-env file"));
  EXPECT_THAT(e.what(), HasSubstr("it is a directory"));
  EXPECT_THAT(error_of([] { util::check_output_file("/nonexistent/dir/.env", "x"); }).what(),
              HasSubstr("does not exist"));
  EXPECT_NO_THROW(util::check_output_file(dir.path() / ".env", "x"));
}

TEST(InputFiles, MigrationSymlinkOutsideTheRepositoryIsNotRead) {
  util::TempDir dir("previewdb-link-");
  fs::create_symlink("/etc/passwd", dir.path() / "0001_passwd.sql");
  std::ofstream(dir.path() / "0002_ok.sql") << "SELECT 1;";
  auto e = error_of([&] { migrate::read_migrations({dir.path(), "plain", {}}); });
  EXPECT_EQ(e.code(), ExitCode::usage);
  EXPECT_THAT(e.what(), HasSubstr("0001_passwd.sql"));
  EXPECT_THAT(e.what(), HasSubstr("outside the migrations folder"));
  // A link inside the folder is fine.
  util::TempDir ok("previewdb-link-");
  fs::create_directories(ok.path() / "shared");
  std::ofstream(ok.path() / "shared" / "init.sql") << "SELECT 1;";
  fs::create_symlink(ok.path() / "shared" / "init.sql", ok.path() / "0001_init.sql");
  EXPECT_EQ(migrate::read_migrations({ok.path(), "plain", {}}).migrations.size(), 1u);
}

// --- 16: empty durations, the protect string, names, production ---

TEST(InputSettings, EmptyDurationIsAUsageError) {
  EXPECT_EQ(
      error_of([] { util::parse_duration("", util::BareUnit::seconds, "--lock-timeout"); }).code(),
      ExitCode::usage);
}

TEST(InputSettings, ProtectAsAStringIsAListLikeTheEnvironment) {
  util::TempDir dir("previewdb-cfg-");
  std::ofstream(dir.path() / "previewdb.json") << R"({"protect": "staging, analytics"})";
  auto cfg = config::Config::load({}, dir.path() / "previewdb.json", {});
  EXPECT_EQ(cfg.get_list("protect"), (std::vector<std::string>{"staging", "analytics"}));
}

TEST(InputSettings, NamesStartingWithADashAreRejected) {
  auto e = error_of([] { core::validate_name("-h", "database name"); });
  EXPECT_EQ(e.code(), ExitCode::usage);
  EXPECT_THAT(e.what(), HasSubstr("starts with '-'"));
  EXPECT_NO_THROW(core::validate_name("a-b"));
}

TEST(InputSettings, ProductionIsBuiltInProtected) {
  core::Protection p(std::vector<std::string>{});
  EXPECT_TRUE(p.is_builtin("production"));
}

// --- issue 8 section 6: DIRECT_URL in dotenv files; status counting missing migrations once ---

TEST(InputDotenv, UpdateEnvAlsoPointsDirectUrlAndRestoreEnvPutsBothBack) {
  std::string text = "DATABASE_URL=postgresql://orig/app\nDIRECT_URL=postgresql://direct/app\n";
  std::string updated = commands::dotenv_point_at(text, "postgresql://new/pr_1");
  EXPECT_THAT(updated, HasSubstr("\nDIRECT_URL=postgresql://new/pr_1\n"));
  EXPECT_THAT(updated, HasSubstr("DATABASE_URL=postgresql://new/pr_1\n"));
  // Twice: the originals are remembered once.
  updated = commands::dotenv_point_at(updated, "postgresql://new/pr_2");
  std::vector<std::string> restored;
  EXPECT_EQ(commands::dotenv_restore(updated, restored), text);
  EXPECT_EQ(restored, (std::vector<std::string>{"DATABASE_URL", "DIRECT_URL"}));
  // No DIRECT_URL before: none added.
  EXPECT_THAT(commands::dotenv_point_at("A=1\n", "postgresql://new/x"), Not(HasSubstr("DIRECT")));
}

TEST(InputStatus, OneMissingMigrationIsCountedOnce) {
  migrate::AppliedSet applied;
  applied.missing.push_back({"0003_add_orders", {}});  // previewdb's table
  applied.missing.push_back({"3", {}});                // golang-migrate's version
  applied.missing.push_back({"7", {}});                // only the tool has it
  migrate::dedupe_missing(applied, 1);
  ASSERT_EQ(applied.missing.size(), 2u);
  EXPECT_EQ(applied.missing[0].first, "0003_add_orders");
  EXPECT_EQ(applied.missing[1].first, "7");
  migrate::AppliedSet same;
  same.missing.push_back({"20240101_init", {}});
  same.missing.push_back({"20240101_init", {}});
  migrate::dedupe_missing(same, 1);
  EXPECT_EQ(same.missing.size(), 1u);
}

TEST(InputUrls, PrintedUrlsEncodeOptionsOnceAndNameTheDatabase) {
  for (const std::string& u :
       {std::string("postgresql://u:p@h:5432/postgres?options=-c%20search_path%3Dapp&schema=app"),
        std::string("postgresql://u:p@h:5432/postgres?schema=app"),
        std::string("host=h user=u dbname=postgres options='-c search_path=app'")}) {
    std::string once = db::url_for_database(u, "pr_1", false);
    EXPECT_EQ(db::url_for_database(once, "pr_1", false), once) << u;
    EXPECT_THAT(once, Not(HasSubstr("%25"))) << once;
    EXPECT_THAT(once, Not(HasSubstr("postgres?"))) << once;
    EXPECT_THAT(once, HasSubstr("/pr_1")) << once;
  }
}

TEST(InputSecrets, TokensInUrlsAreRedactedAndRegistered) {
  EXPECT_EQ(util::redact_url("prisma://accelerate.prisma-data.net/?api_key=eyJhbGciOi.x"),
            "prisma://accelerate.prisma-data.net/?api_key=***");
  EXPECT_EQ(util::redact_url("host=h password = 'a b' x=1"), "host=h password = *** x=1");
  auto found =
      db::register_conninfo_secrets("prisma://accelerate.prisma-data.net/?api_key=T0kenValue1");
  EXPECT_THAT(found, ::testing::Contains("T0kenValue1"));
  EXPECT_EQ(util::scrub("T0kenValue1"), "***");
}
