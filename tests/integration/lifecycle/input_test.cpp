// Secrets and bad input through spawn, list and snapshot (issue 7 items 11-13, 16b, 17, 18;
// issue 8 sections 5 and 6): the real binary against the real server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "harness/harness.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

class LifecycleInput : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev", "CREATE TABLE items(id int primary key);");
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  static test::Env env(test::Env extra = {}) {
    test::Env e = {{"DATABASE_URL", server().url("postgres")}, {"PREVIEWDB_USER", "alice"}};
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
  // A URL for the test server whose password part is `password_part`, written as is.
  static std::string url_with_password(const std::string& password_part) {
    return "postgresql://previewdb:" + password_part +
           "@127.0.0.1:" + std::to_string(server().port()) + "/postgres";
  }
  static void snapshot() { ASSERT_EQ(run_cli({"snapshot"}, env()).code, 0); }
};

}  // namespace

TEST_F(LifecycleInput, AmbiguousUrlsAreRefusedBeforeAnythingShowsThePassword) {
  const std::string secret = "Zq8secretPart";
  for (const std::string& part : {secret + "%zz", secret + "@x", secret + "/x", secret + "?x",
                                  "12/" + secret, "12?" + secret}) {
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{"spawn", "x"},
                                               {"list"},
                                               {"snapshot", "list"},
                                               {"ci", "--provider", "generic"},
                                               {"ci", "--provider", "generic", "--dry-run"}}) {
      auto r = run_cli(args, env({{"DATABASE_URL", url_with_password(part)}}));
      EXPECT_EQ(r.code, 2) << part << " " << args[0] << "\n" << r.err;
      EXPECT_THAT(r.all(), Not(HasSubstr(secret))) << part << " " << args[0];
      EXPECT_THAT(r.err, HasSubstr("DATABASE_URL: invalid connection string")) << r.err;
    }
  }
  EXPECT_FALSE(server().database_exists("dev_alice_x"));
}

TEST_F(LifecycleInput, SslpasswordNeverAppears) {
  snapshot();
  std::string url = server().url("postgres") + "?sslpassword=Kl13ntKeyPass";
  auto r = run_cli({"spawn", "ssl", "--json"}, env({{"DATABASE_URL", url}}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("Kl13ntKeyPass")));
  auto list = run_cli({"list"}, env({{"DATABASE_URL", url}}));
  EXPECT_THAT(list.all(), Not(HasSubstr("Kl13ntKeyPass")));
}

TEST_F(LifecycleInput, HundredKilobyteUrlIsAUsageErrorNotACrash) {
  std::string url = server().url("postgres") + "?application_name=" + std::string(100 * 1024, 'a');
  auto r = run_cli({"list"}, env({{"DATABASE_URL", url}}));
  EXPECT_EQ(r.code, 2) << r.err.substr(0, 500);
  EXPECT_THAT(r.err, HasSubstr("at most 8192"));
  EXPECT_LT(r.err.size(), 2000u);
}

TEST_F(LifecycleInput, BadPortIsAUsageError) {
  auto r = run_cli({"list"}, env({{"DATABASE_URL", "postgresql://previewdb@127.0.0.1:99999/x"}}));
  EXPECT_EQ(r.code, 2) << r.err;
  auto pgport = run_cli({"list"}, {{"PGHOST", "127.0.0.1"}, {"PGPORT", "abc"}});
  EXPECT_EQ(pgport.code, 2) << pgport.err;
  EXPECT_THAT(pgport.err, HasSubstr("PGPORT"));
}

TEST_F(LifecycleInput, SpawnUnderGitHubActionsMasksThePasswordBeforePrintingTheUrl) {
  snapshot();
  auto r = run_cli({"spawn", "masked"}, env({{"GITHUB_ACTIONS", "true"}}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(server().password()));  // the URL is the result
  EXPECT_THAT(r.err, HasSubstr("::add-mask::" + server().password()));
  // Outside GitHub Actions, no workflow commands.
  auto plain = run_cli({"spawn", "plain"}, env());
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_THAT(plain.err, Not(HasSubstr("::add-mask::")));
}

TEST_F(LifecycleInput, UpdateEnvThatIsADirectoryFailsBeforeAnythingIsCreated) {
  snapshot();
  util::TempDir dir("previewdb-envdir-");
  auto r = run_cli({"spawn", "envdir", "--update-env", dir.path().string()}, env());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("it is a directory"));
  EXPECT_FALSE(server().database_exists("dev_alice_envdir"));
}

TEST_F(LifecycleInput, UpdateEnvUpdatesDirectUrlAndRestoreEnvPutsBothBack) {
  snapshot();
  util::TempDir dir("previewdb-env-");
  fs::path file = dir.path() / ".env";
  std::string original =
      "DATABASE_URL=postgresql://pooler/app\nDIRECT_URL=postgresql://direct/app\nOTHER=1\n";
  util::write_file_atomic(file, original);
  auto r = run_cli({"spawn", "direct", "--update-env", file.string()}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  std::string text = util::read_file(file);
  EXPECT_THAT(text, HasSubstr("\nDIRECT_URL=postgresql://previewdb:"));
  EXPECT_THAT(text, HasSubstr("/dev_alice_direct\n"));
  EXPECT_THAT(text, Not(HasSubstr("\nDIRECT_URL=postgresql://direct/app")));
  auto c = run_cli({"cleanup", "direct", "--yes", "--restore-env", file.string()}, env());
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(util::read_file(file), original);
}

TEST_F(LifecycleInput, CommandsRefuseArgumentsTheyDoNotTake) {
  auto r = run_cli({"list", "extra"}, env());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unexpected argument \"extra\" for 'previewdb list'"));
  auto flag = run_cli({"spawn", "x", "--reuze"}, env());
  EXPECT_EQ(flag.code, 2);
  EXPECT_THAT(flag.err, HasSubstr("did you mean --reuse?"));
  auto dash = run_cli({"spawn", "--name=-x"}, env());
  EXPECT_EQ(dash.code, 2);
  EXPECT_THAT(dash.err, HasSubstr("starts with '-'"));
}

TEST_F(LifecycleInput, SnapshotWithoutUserOrGitNameFallsBackToTheAccountName) {
  util::TempDir home("previewdb-home-");
  auto r = run_cli({"snapshot", "--json"},
                   {{"DATABASE_URL", server().url("postgres")},
                    {"USER", std::nullopt},
                    {"LOGNAME", std::nullopt},
                    {"HOME", home.path().string()},
                    {"GIT_CONFIG_NOSYSTEM", "1"},
                    {"GIT_CONFIG_GLOBAL", "/dev/null"}},
                   home.path().string());
  ASSERT_EQ(r.code, 0) << r.err;
  auto list = run_cli({"snapshot", "list", "--json"}, env());
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_FALSE(j[0]["created_by"].get<std::string>().empty());
}

TEST_F(LifecycleInput, S3SnapshotWithoutCredentialsIsAUsageErrorNotNotFound) {
  snapshot();
  auto r = run_cli({"spawn", "s3", "--snapshot", "s3://bucket/snap_dev_x.dump"}, env());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("s3://bucket needs credentials"));
  EXPECT_FALSE(server().database_exists("dev_alice_s3"));
}

TEST_F(LifecycleInput, FileStoreLatestIsTheNewestOfTheRequestedSource) {
  util::TempDir store("previewdb-store-");
  std::string url = "file://" + store.path().string();
  server().exec("postgres", "CREATE DATABASE zzz");
  server().exec("zzz", "CREATE TABLE other(id int)");
  ASSERT_EQ(run_cli({"snapshot", "--to", url}, env()).code, 0);
  // Taken later, and its id sorts last: "latest" of dev must still be dev's.
  ASSERT_EQ(run_cli({"snapshot", "zzz", "--to", url}, env()).code, 0);
  auto r = run_cli({"spawn", "fromdev", "--snapshot", url}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server()
                .connect("dev_alice_fromdev")
                .exec("SELECT count(*) FROM pg_tables WHERE tablename = 'items'")
                .get_int(0, 0),
            1);
}

TEST_F(LifecycleInput, ListTableCannotStartAWorkflowCommand) {
  auto conn = server().connect();
  conn.exec("CREATE DATABASE " + conn.quote_ident("x\n::error::pwned"));
  auto r = run_cli({"list"}, env());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const auto& line : util::split(r.out, '\n')) {
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    EXPECT_NE(line.substr(first, 2), "::") << line;
  }
  EXPECT_THAT(r.out, HasSubstr("x\\n::error::pwned"));
  conn.exec("DROP DATABASE " + conn.quote_ident("x\n::error::pwned"));
}

TEST_F(LifecycleInput, FifoAndDeviceAsGitHubFilesFailAtOnce) {
  util::TempDir dir("previewdb-fifo-");
  fs::path fifo = dir.path() / "event.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& event : {fifo.string(), std::string("/dev/zero")}) {
    // Before: a FIFO hung for ever and /dev/zero ate memory.
    auto r = run_cli(
        {"ci", "--provider", "github"},
        {{"GITHUB_ACTIONS", "true"}, {"GITHUB_EVENT_NAME", "push"}, {"GITHUB_EVENT_PATH", event}});
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr("not a regular file")) << event;
  }
  fs::path push = dir.path() / "push.json";
  util::write_file_atomic(push, R"({"ref":"refs/heads/main","repository":{"full_name":"o/r"}})");
  fs::path out = dir.path() / "out";
  ASSERT_EQ(::mkfifo(out.c_str(), 0600), 0);
  auto r = run_cli({"ci", "--provider", "github"}, {{"GITHUB_ACTIONS", "true"},
                                                    {"GITHUB_EVENT_NAME", "push"},
                                                    {"GITHUB_EVENT_PATH", push.string()},
                                                    {"GITHUB_OUTPUT", out.string()}});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("not a regular file"));
}

TEST_F(LifecycleInput, CiNoPreviewPathNeverWritesAPasswordFromAnAmbiguousUrl) {
  util::TempDir dir("previewdb-ci-");
  fs::path push = dir.path() / "push.json";
  util::write_file_atomic(push, R"({"ref":"refs/heads/main","repository":{"full_name":"o/r"}})");
  fs::path out = dir.path() / "output", summary = dir.path() / "summary";
  const std::string secret = "Zq8secretPart";
  for (const std::string& part : {secret + "@x", secret + "/x", secret + "?x", secret + "%zz"}) {
    auto r = run_cli({"ci", "--provider", "github"}, {{"GITHUB_ACTIONS", "true"},
                                                      {"GITHUB_EVENT_NAME", "push"},
                                                      {"GITHUB_EVENT_PATH", push.string()},
                                                      {"GITHUB_OUTPUT", out.string()},
                                                      {"GITHUB_STEP_SUMMARY", summary.string()},
                                                      {"DATABASE_URL", url_with_password(part)}});
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_THAT(r.all(), Not(HasSubstr(secret))) << part;
    EXPECT_THAT(util::read_file_if_exists(out).value_or(""), Not(HasSubstr(secret)));
    EXPECT_THAT(util::read_file_if_exists(summary).value_or(""), Not(HasSubstr(secret)));
  }
}
