// Issue 13: the npm packages (scripts/build-npm.sh) the way users get them: published to a local
// registry (verdaccio from npm, started here on a free port with its own storage), installed by
// name into a scratch project, run with npx. With --omit=optional the launcher names the fix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness/harness.hpp"
#include "util/files.hpp"
#include "util/subprocess.hpp"

namespace fs = std::filesystem;
using namespace previewdb;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const std::string k_version = PREVIEWDB_VERSION;
// scripts/install-deps.sh --peers installs verdaccio here.
const fs::path k_verdaccio = "/opt/previewdb-peers/verdaccio/node_modules/.bin/verdaccio";

util::ProcessResult sh(std::vector<std::string> argv, util::ProcessSpec spec = {}) {
  spec.argv = std::move(argv);
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  return util::run_process(spec);
}

class Npm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(k_verdaccio) || !util::find_program("npm")) {
      GTEST_SKIP() << test::k_skip_peer_verdaccio
                   << "verdaccio or npm is not installed "
                      "(scripts/install-deps.sh --peers installs them)";
    }
    port = test::free_port();
    fs::path conf = tmp.path() / "verdaccio.yaml";
    std::ofstream(conf) << "storage: " << (tmp.path() / "storage").string() << "\n"
                        << "auth:\n  htpasswd:\n    file: " << (tmp.path() / "htpasswd").string()
                        << "\n    max_users: 10\n"
                        << "uplinks: {}\n"
                        << "packages:\n"
                        << "  '@previewdb/*': {access: $all, publish: $authenticated}\n"
                        << "  'previewdb': {access: $all, publish: $authenticated}\n"
                        << "  '**': {access: $all}\n"
                        << "log: {type: stdout, format: pretty, level: warn}\n";
    pid = ::fork();
    if (pid == 0) {
      std::string log = (tmp.path() / "verdaccio.log").string();
      FILE* f = std::freopen(log.c_str(), "w", stdout);
      (void)f;
      ::dup2(STDOUT_FILENO, STDERR_FILENO);
      std::string listen = "127.0.0.1:" + std::to_string(port);
      ::execl(k_verdaccio.c_str(), "verdaccio", "--config", conf.c_str(), "--listen",
              listen.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    registry = "http://127.0.0.1:" + std::to_string(port) + "/";
    for (int i = 0; i < 300; ++i) {
      if (sh({"curl", "-sf", registry + "-/ping"}).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "verdaccio did not start: "
           << util::read_file_if_exists(tmp.path() / "verdaccio.log").value_or("");
  }

  void TearDown() override {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }

  // npm with a private user config, cache and registry (nothing from ~/.npmrc or the public
  // registry).
  util::ProcessResult npm(const std::vector<std::string>& args, const fs::path& cwd) {
    util::ProcessSpec spec;
    spec.cwd = cwd.string();
    spec.env = {{"NPM_CONFIG_USERCONFIG", (tmp.path() / "npmrc").string()},
                {"npm_config_cache", (tmp.path() / "npm-cache").string()},
                {"npm_config_registry", registry},
                {"npm_config_update_notifier", "false"},
                {"npm_config_audit", "false"},
                {"npm_config_fund", "false"}};
    return sh(args, spec);
  }

  util::TempDir tmp{"previewdb-npm-"};
  pid_t pid = -1;
  int port = 0;
  std::string registry;
};

TEST_F(Npm, InstalledByNameRunsWithNpxAndNamesTheFixWithoutTheOptionalPackage) {
  // Build both packages from the tarball.
  fs::path out = tmp.path() / "packages";
  auto build = sh({"bash", std::string(PREVIEWDB_SOURCE_DIR) + "/scripts/build-npm.sh",
                   PREVIEWDB_TARBALL, out.string()});
  ASSERT_TRUE(build.ok()) << build.out << build.err;
  fs::path launcher = out / ("previewdb-" + k_version + ".tgz");
  fs::path platform = out / ("previewdb-linux-x64-" + k_version + ".tgz");
  ASSERT_TRUE(fs::exists(launcher) && fs::exists(platform)) << build.err;

  // No install scripts; the platform package says where it runs.
  for (const auto& tgz : {launcher, platform}) {
    auto manifest = sh({"tar", "-xzOf", tgz.string(), "package/package.json"});
    ASSERT_TRUE(manifest.ok()) << manifest.err;
    auto j = nlohmann::json::parse(manifest.out);
    EXPECT_FALSE(j.contains("scripts")) << tgz;
    if (tgz == platform) {
      EXPECT_EQ(j["name"], "@previewdb/linux-x64");
      EXPECT_EQ(j["os"], nlohmann::json::array({"linux"}));
      EXPECT_EQ(j["cpu"], nlohmann::json::array({"x64"}));
    } else {
      EXPECT_EQ(j["optionalDependencies"]["@previewdb/linux-x64"], k_version);
      EXPECT_EQ(j["bin"]["previewdb"], "bin/previewdb.js");
    }
  }

  // A user and its token, then publish both (the platform package first, as the release does).
  auto user =
      sh({"curl", "-sf", "-X", "PUT", "-H", "content-type: application/json", "-d",
          R"({"name":"ci","password":"ci-password-1"})", registry + "-/user/org.couchdb.user:ci"});
  ASSERT_TRUE(user.ok()) << user.err;
  std::string token = nlohmann::json::parse(user.out)["token"];
  util::write_file_atomic(tmp.path() / "npmrc",
                          "//127.0.0.1:" + std::to_string(port) + "/:_authToken=" + token + "\n");
  for (const auto& tgz : {platform, launcher}) {
    auto pub = npm({"npm", "publish", tgz.string()}, tmp.path());
    ASSERT_TRUE(pub.ok()) << pub.out << pub.err;
  }

  // A scratch project installs previewdb by name; npx runs the platform package's binary.
  fs::path app = tmp.path() / "app";
  fs::create_directories(app);
  util::write_file_atomic(app / "package.json",
                          R"({"name":"app","version":"1.0.0","private":true})");
  auto add = npm({"npm", "install", "previewdb"}, app);
  ASSERT_TRUE(add.ok()) << add.out << add.err;
  EXPECT_TRUE(fs::exists(app / "node_modules/@previewdb/linux-x64/bin/previewdb"));
  auto run = npm({"npx", "previewdb", "--version"}, app);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr(k_version));
  // Exit codes pass through.
  auto bad = npm({"npx", "previewdb", "no-such-command"}, app);
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;

  // Without optional dependencies there is no binary: the launcher names the fix.
  fs::path bare = tmp.path() / "bare";
  fs::create_directories(bare);
  util::write_file_atomic(bare / "package.json",
                          R"({"name":"bare","version":"1.0.0","private":true})");
  auto omit = npm({"npm", "install", "--omit=optional", "previewdb"}, bare);
  ASSERT_TRUE(omit.ok()) << omit.out << omit.err;
  EXPECT_FALSE(fs::exists(bare / "node_modules/@previewdb/linux-x64"));
  auto missing = npm({"npx", "previewdb", "--version"}, bare);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("@previewdb/linux-x64 is not installed"));
  EXPECT_THAT(missing.err, HasSubstr("--omit=optional"));
  EXPECT_THAT(missing.err, HasSubstr("npm install @previewdb/linux-x64@" + k_version));
}

}  // namespace
