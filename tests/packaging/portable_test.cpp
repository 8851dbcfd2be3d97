// Issue 13: the portable tarball (scripts/build-portable.sh, cmake/portable.cmake). Its binary
// needs nothing but glibc <= 2.35, starts faster than the Debian build, and runs in a minimal
// Debian root (debootstrap --variant=minbase, cached in the build dir) with none of the libraries
// installed: --version, `ci --dry-run` on a git repository, and a full `ci` against the harness's
// PostgreSQL over TCP. The action's install step (scripts/action-install.sh) installs it from a
// file:// "release" checked against SHA256SUMS, and the workflows' commands run through it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <sstream>

#include "harness/git_repo.hpp"
#include "harness/harness.hpp"
#include "util/files.hpp"
#include "util/subprocess.hpp"

namespace fs = std::filesystem;
using namespace previewdb;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const std::string k_version = PREVIEWDB_VERSION;
const std::string k_name = "previewdb-" + k_version + "-linux-x64";

util::ProcessResult sh(std::vector<std::string> argv, util::ProcessSpec spec = {}) {
  spec.argv = std::move(argv);
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  return util::run_process(spec);
}

// The tarball's binary, unpacked once for the whole test binary.
const fs::path& portable_dir() {
  static util::TempDir dir("previewdb-portable-");
  static bool unpacked = false;
  if (!unpacked) {
    auto r = sh({"tar", "-xzf", PREVIEWDB_TARBALL, "-C", dir.path().string()});
    if (!r.ok())
      throw std::runtime_error("cannot unpack " + std::string(PREVIEWDB_TARBALL) + r.err);
    unpacked = true;
  }
  static fs::path p = dir.path() / k_name;
  return p;
}

fs::path portable_bin() {
  return portable_dir() / "previewdb";
}

// (major, minor) of the newest GLIBC_x.y symbol version the binary needs.
std::pair<int, int> newest_glibc(const std::string& objdump) {
  std::pair<int, int> newest{0, 0};
  std::regex re(R"(GLIBC_(\d+)\.(\d+))");
  for (auto it = std::sregex_iterator(objdump.begin(), objdump.end(), re);
       it != std::sregex_iterator(); ++it) {
    newest = std::max(newest, {std::stoi((*it)[1]), std::stoi((*it)[2])});
  }
  return newest;
}

double ms_per_run(const std::string& binary, int runs) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) {
    auto r = sh({binary, "--version"});
    if (!r.ok()) throw std::runtime_error(binary + " --version failed: " + r.err);
  }
  std::chrono::duration<double, std::milli> d = std::chrono::steady_clock::now() - start;
  return d.count() / runs;
}

TEST(PortableTarball, HoldsTheBinaryAndItsDocs) {
  auto r = sh({"tar", "-tzvf", PREVIEWDB_TARBALL});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_THAT(r.out, HasSubstr(k_name + "/previewdb\n"));
  EXPECT_THAT(r.out, HasSubstr(k_name + "/README.md\n"));
  EXPECT_THAT(r.out, HasSubstr(k_name + "/PACKAGING.md\n"));
  EXPECT_THAT(r.out, HasSubstr("-rwxr-xr-x 0/0"));  // owner root, whoever packed it
  // Stripped: no symbol table to ship.
  auto file = sh({"file", portable_bin().string()});
  EXPECT_THAT(file.out, HasSubstr("stripped"));
  EXPECT_THAT(file.out, Not(HasSubstr("not stripped")));
}

TEST(PortableTarball, NeedsOnlyGlibc235) {
  auto dyn = sh({"readelf", "-d", portable_bin().string()});
  ASSERT_TRUE(dyn.ok()) << dyn.err;
  std::regex needed(R"(\(NEEDED\).*\[(.+?)\])");
  std::vector<std::string> libs;
  for (auto it = std::sregex_iterator(dyn.out.begin(), dyn.out.end(), needed);
       it != std::sregex_iterator(); ++it) {
    libs.push_back((*it)[1]);
  }
  EXPECT_FALSE(libs.empty());
  for (const auto& lib : libs) {
    EXPECT_THAT((std::vector<std::string>{"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"}),
                ::testing::Contains(lib))
        << lib << " is not part of glibc";
  }
  auto syms = sh({"objdump", "-T", portable_bin().string()});
  ASSERT_TRUE(syms.ok()) << syms.err;
  auto [major, minor] = newest_glibc(syms.out);
  std::cout << "newest glibc symbol version: GLIBC_" << major << "." << minor << "\n";
  RecordProperty("newest_glibc", std::to_string(major) + "." + std::to_string(minor));
  EXPECT_TRUE(major == 2 && minor >= 2 && minor <= 35)
      << "the binary needs GLIBC_" << major << "." << minor
      << ": it would not run on Ubuntu 22.04 (glibc 2.35); see docs/PACKAGING.md";
  // libstdc++, OpenSSL, libcurl, libpq and libgit2 are inside, not dynamic imports.
  for (const char* lib : {"GLIBCXX_", "CXXABI_", "OPENSSL_", "CURL_", "PQconnectdb", "git_"}) {
    EXPECT_THAT(syms.out, Not(HasSubstr(lib))) << lib << " is imported dynamically";
  }
}

TEST(PortableTarball, StartsFasterThanTheDebianBuild) {
  // Interleaved rounds, so that load from elsewhere hits both alike.
  double portable = 0, debian = 0;
  for (int round = 0; round < 4; ++round) {
    portable += ms_per_run(portable_bin().string(), 25) / 4;
    debian += ms_per_run(PREVIEWDB_BIN, 25) / 4;
  }
  std::cout << "--version, mean of 100 runs: portable " << portable << " ms, Debian build "
            << debian << " ms\n";
  RecordProperty("startup_portable_ms", std::to_string(portable));
  RecordProperty("startup_debian_ms", std::to_string(debian));
  EXPECT_LT(portable, debian);
}

// A minimal Debian 12 root: debootstrap --variant=minbase, made once and kept in the build dir
// (made in a temp dir and renamed, so a failed run leaves nothing half-made to reuse).
fs::path bare_root() {
  fs::path root = PREVIEWDB_BARE_ROOT;
  if (fs::exists(root / ".previewdb-bare-root")) return root;
  fs::path tmp = root.string() + ".tmp";
  fs::remove_all(tmp);
  const char* mirror = std::getenv("PREVIEWDB_DEBIAN_MIRROR");
  auto r = sh({"debootstrap", "--variant=minbase", "bookworm", tmp.string(),
               mirror ? mirror : "http://deb.debian.org/debian"});
  if (!r.ok()) throw std::runtime_error("debootstrap failed: " + r.out + r.err);
  util::write_file_atomic(tmp / ".previewdb-bare-root", "debootstrap --variant=minbase bookworm\n");
  fs::remove_all(root);
  fs::rename(tmp, root);
  return root;
}

class BareRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << test::k_skip_root << "chroot into a bare Debian root";
    root = bare_root();
    fs::remove_all(root / "opt/previewdb");
    fs::remove_all(root / "work");
    fs::create_directories(root / "opt");
    auto cp = sh({"cp", "-a", portable_dir().string(), (root / "opt/previewdb").string()});
    ASSERT_TRUE(cp.ok()) << cp.err;
  }

  // previewdb in the root, with a clean environment and cwd.
  util::ProcessResult in_root(const std::vector<std::string>& args, const std::string& cwd,
                              const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {"chroot",
                                     root.string(),
                                     "/usr/bin/env",
                                     "-i",
                                     "PATH=/usr/bin:/bin",
                                     "HOME=/root",
                                     "PREVIEWDB_HOME=/tmp/pdb"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.insert(argv.end(),
                {"/bin/sh", "-c", "cd \"$0\" && exec /opt/previewdb/previewdb \"$@\"", cwd});
    argv.insert(argv.end(), args.begin(), args.end());
    return sh(argv);
  }

  fs::path root;
};

TEST_F(BareRoot, RunsWithoutTheLibraries) {
  // The root has glibc and none of the libraries previewdb's Debian build links but the two
  // that dpkg and apt need themselves (libzstd, libstdc++), which the loader must not load.
  for (const char* lib : {"libpq.so.5", "libgit2.so.1.5", "libcurl.so.4", "libssl.so.3",
                          "libpg_query.so.1504.0", "libnghttp2.so.14", "libgssapi_krb5.so.2"}) {
    EXPECT_FALSE(fs::exists(root / "usr/lib/x86_64-linux-gnu" / lib)) << lib;
  }
  EXPECT_FALSE(fs::exists(root / "usr/bin/pg_dump"));
  auto v = in_root({"--version"}, "/");
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr(k_version));
  // What the loader maps in the root: glibc only.
  auto loaded = in_root({"--version"}, "/", {"LD_TRACE_LOADED_OBJECTS=1"});
  ASSERT_EQ(loaded.exit_code, 0) << loaded.err;
  std::istringstream lines(loaded.out);
  int count = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("linux-vdso") != std::string::npos) continue;
    ++count;
    EXPECT_THAT(line, ::testing::ContainsRegex("(libc\\.so\\.6|libm\\.so\\.6|ld-linux-x86-64)"));
  }
  EXPECT_GE(count, 2) << loaded.out;
}

TEST_F(BareRoot, CiOnAGitRepositoryAgainstPostgresOverTcp) {
  auto& server = test::PgServer::shared();
  server.reset();
  test::GitRepos repos;
  fs::create_directories(root / "work");
  auto cp = sh({"cp", "-a", repos.work().string(), (root / "work/repo").string()});
  ASSERT_TRUE(cp.ok()) << cp.err;
  fs::path repo = root / "work/repo";

  auto dry =
      in_root({"ci", "--provider", "generic", "--pr", "7", "--base-ref", "main", "--dry-run"},
              "/work/repo");
  ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  EXPECT_THAT(dry.out, HasSubstr("reason=migrations-changed"));

  // The shared database at main's schema, snapshotted; then the PR's preview, all over TCP
  // (127.0.0.1, password authentication through the static libpq and OpenSSL).
  std::string url = "DATABASE_URL=" + server.url("dev");
  test::git(repo, {"checkout", "-q", "main"});
  auto m = in_root({"migrate", "--database", "dev"}, "/work/repo", {url});
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  auto s = in_root({"snapshot"}, "/work/repo", {url});
  ASSERT_EQ(s.exit_code, 0) << s.out << s.err;
  test::git(repo, {"checkout", "-q", "feature"});
  auto ci = in_root({"ci", "--provider", "generic", "--pr", "7", "--base-ref", "main"},
                    "/work/repo", {url});
  ASSERT_EQ(ci.exit_code, 0) << ci.out << ci.err;
  EXPECT_THAT(ci.out, HasSubstr("preview=true"));
  EXPECT_THAT(ci.out, HasSubstr("migrations-applied=1"));
  EXPECT_TRUE(server.database_exists("pr_7"));

  // What needs pg_dump says so, with the version it must be.
  auto to_file = in_root({"snapshot", "--to", "file:///tmp/snapshots"}, "/work/repo", {url});
  EXPECT_NE(to_file.exit_code, 0);
  int major = server.connect().server_version() / 10000;
  EXPECT_THAT(to_file.err, HasSubstr("\"pg_dump\""));
  EXPECT_THAT(to_file.err, HasSubstr("PostgreSQL " + std::to_string(major) + " or newer"));
  EXPECT_THAT(to_file.err, HasSubstr("postgresql-client-" + std::to_string(major)));
  EXPECT_THAT(to_file.out + to_file.err, Not(HasSubstr(server.password())));
}

// --- the action's install step -----------------------------------------------------------------

class ActionInstall : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(release);
    fs::copy_file(PREVIEWDB_TARBALL, release / (k_name + ".tar.gz"));
    auto sum = sh({"sha256sum", k_name + ".tar.gz"}, {.cwd = release.string()});
    ASSERT_TRUE(sum.ok()) << sum.err;
    util::write_file_atomic(release / "SHA256SUMS", sum.out);
  }

  util::ProcessResult install(const std::string& mode, test::Env extra = {}) {
    util::ProcessSpec spec;
    spec.env = {{"PREVIEWDB_RELEASE_URL", "file://" + release.string()},
                {"PREVIEWDB_INSTALL_ROOT", (tmp.path() / "tools").string()},
                {"GITHUB_OUTPUT", (tmp.path() / "output").string()},
                {"GITHUB_PATH", (tmp.path() / "path").string()},
                {"ACTION_REF", "v" + k_version},
                {"PREVIEWDB_VERSION_INPUT", std::nullopt}};
    for (auto& [k, v] : extra) spec.env[k] = v;
    return sh({"bash", std::string(PREVIEWDB_SOURCE_DIR) + "/scripts/action-install.sh", mode},
              spec);
  }

  std::string file(const std::string& name) {
    return util::read_file_if_exists(tmp.path() / name).value_or("");
  }

  util::TempDir tmp{"previewdb-action-"};
  fs::path release = tmp.path() / "release";
  fs::path dir = tmp.path() / "tools" / k_version;
};

TEST_F(ActionInstall, InstallsTheReleaseOfTheActionsTagAndCachesIt) {
  auto resolve = install("resolve");
  ASSERT_EQ(resolve.exit_code, 0) << resolve.err;
  EXPECT_THAT(file("output"), HasSubstr("version=" + k_version + "\n"));
  EXPECT_THAT(file("output"), HasSubstr("dir=" + dir.string() + "\n"));
  EXPECT_THAT(file("output"), HasSubstr("cache-key=previewdb-" + k_version + "-linux-x64\n"));

  auto first = install("install");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.err, HasSubstr("downloading file://"));
  EXPECT_EQ(file("path"), dir.string() + "\n");
  EXPECT_THAT(file("output"), HasSubstr("path=" + (dir / "previewdb").string() + "\n"));
  auto v = sh({(dir / "previewdb").string(), "--version"});
  EXPECT_THAT(v.out, HasSubstr(k_version));

  // What actions/cache restored is used as it is.
  auto again = install("install");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("cached"));
  EXPECT_THAT(again.err, Not(HasSubstr("downloading")));

  // The workflows' and the action's commands through the installed binary.
  auto check = sh({"/usr/bin/python3",
                   std::string(PREVIEWDB_SOURCE_DIR) + "/tests/packaging/check_packaging.py",
                   "--previewdb", (dir / "previewdb").string(), "--root", PREVIEWDB_SOURCE_DIR});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_THAT(check.out, HasSubstr(" 0 failed"));
}

TEST_F(ActionInstall, TheVersionInputWinsOverABranchRef) {
  auto r =
      install("install", {{"ACTION_REF", "main"}, {"PREVIEWDB_VERSION_INPUT", "v" + k_version}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "previewdb"));
  EXPECT_THAT(r.err, Not(HasSubstr("slow path")));
}

TEST_F(ActionInstall, TheRefComesFromTheActionsCheckoutWhenGitHubLeavesItEmpty) {
  // Where the runner checks out `uses: acme/previewdb@v<version>`.
  fs::path checkout = tmp.path() / "_actions/acme/previewdb" / ("v" + k_version);
  fs::create_directories(checkout.parent_path());
  fs::create_directory_symlink(PREVIEWDB_SOURCE_DIR, checkout);
  auto r = install("install", {{"ACTION_REF", ""}, {"ACTION_PATH", checkout.string()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "previewdb"));
}

TEST_F(ActionInstall, ABranchWithoutVersionSaysItIsTheSlowPath) {
  // A checkout without the build scripts stops right after the notice (a real one builds from
  // source, which scripts/test.sh already does).
  fs::create_directories(tmp.path() / "empty");
  auto r = install("install",
                   {{"ACTION_REF", "main"}, {"ACTION_PATH", (tmp.path() / "empty").string()}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err,
              HasSubstr("::notice title=previewdb::the action's ref 'main' is not a release tag"));
  EXPECT_THAT(r.err, HasSubstr("slow path"));
  EXPECT_THAT(r.err, HasSubstr("set the version input"));
  EXPECT_EQ(file("path"), "");
}

TEST_F(ActionInstall, AWrongChecksumFailsAndInstallsNothing) {
  util::write_file_atomic(release / "SHA256SUMS",
                          std::string(64, '0') + "  " + k_name + ".tar.gz\n");
  auto r = install("install");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("checksum mismatch for " + k_name + ".tar.gz"));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_EQ(file("path"), "");

  fs::remove(release / "SHA256SUMS");
  auto missing = install("install");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("SHA256SUMS"));
  EXPECT_FALSE(fs::exists(dir));

  auto bad = install("install", {{"PREVIEWDB_VERSION_INPUT", "latest; rm -rf /"}});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("is not a release version"));
}

}  // namespace
