// `previewdb webhook serve` as a real process on a free local port, against the harness's real
// PostgreSQL: GitHub deliveries signed as GitHub signs them (the pull_request payloads of
// tests/fixtures/github), Netlify deploy notifications signed as a JWS, and the token path asking
// the recorded GitHub API (tests/harness/http_replay). `webhook verify` with GitHub's published
// test vector.
#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/registry.hpp"
#include "crypto/hmac.hpp"
#include "crypto/sha256.hpp"
#include "harness/harness.hpp"
#include "harness/http_replay.hpp"

using namespace previewdb;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string k_secret = "webhook-test-secret-0123456789";
const std::string k_token = "ghp_webhook_token_0123456789";

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string fixture(const std::string& rel) {
  return read_all(test::fixtures_dir() / rel);
}

std::string b64url(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned int buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += a[(buf >> bits) & 63];
    }
  }
  if (bits > 0) out += a[(buf << (6 - bits)) & 63];
  return out;
}

std::string netlify_signature(const std::string& secret, const std::string& body) {
  std::string signing =
      b64url(R"({"alg":"HS256","typ":"JWT"})") + "." +
      b64url(R"({"iss":"netlify","sha256":")" + crypto::sha256_hex(body) + R"("})");
  return signing + "." + b64url(crypto::hmac_sha256(secret, signing));
}

std::string github_signature(const std::string& secret, const std::string& body) {
  return "sha256=" + crypto::hmac_sha256_hex(secret, body);
}

test::PgServer& server() {
  return test::PgServer::shared();
}

// The built binary with exactly this environment, stdin from a file, stdout and stderr to files.
pid_t spawn_binary(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env, const fs::path& in,
                   const fs::path& out, const fs::path& err) {
  std::vector<std::string> argv_s = {PREVIEWDB_BIN};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s;
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  pid_t pid = ::fork();
  if (pid == 0) {
    // Outside any checkout (a spawn or a drop must not depend on the surrounding repository).
    if (::chdir(fs::temp_directory_path().c_str()) != 0) _exit(126);
    int i = ::open(in.c_str(), O_RDONLY);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (i < 0 || o < 0 || e < 0) _exit(126);
    ::dup2(i, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& s : env_s) envp.push_back(s.data());
    envp.push_back(nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

std::map<std::string, std::string> base_env() {
  return {{"PATH", std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin"},
          {"HOME", fs::temp_directory_path().string()},
          {"DATABASE_URL", server().url("postgres")},
          {"PREVIEWDB_WEBHOOK_SECRET", k_secret}};
}

struct Reply {
  int status = 0;
  std::string body;
  std::chrono::milliseconds took{0};
};

// `previewdb webhook serve --listen 127.0.0.1:0` until the test ends; then SIGTERM, and the exit
// status must be 0.
class Receiver {
 public:
  explicit Receiver(std::map<std::string, std::string> extra_env = {}) {
    char tmpl[] = "/tmp/previewdb-webhook-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    m_dir = tmpl;
    auto env = base_env();
    for (auto& [k, v] : extra_env) env[k] = v;
    std::ofstream(m_dir / "in").close();
    m_pid = spawn_binary({"webhook", "serve", "--listen", "127.0.0.1:0"}, env, m_dir / "in",
                         m_dir / "out", m_dir / "err");
    for (int i = 0; i < 300 && m_port == 0; ++i) {
      auto out = read_all(m_dir / "out");
      if (auto at = out.find("listening on 127.0.0.1:");
          at != std::string::npos && out.find('\n', at) != std::string::npos) {
        m_port = std::stoi(out.substr(at + std::string("listening on 127.0.0.1:").size()));
        break;
      }
      int status = 0;
      if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
        m_pid = -1;
        throw std::runtime_error("webhook serve exited: " + read_all(m_dir / "err"));
      }
      std::this_thread::sleep_for(50ms);
    }
    if (m_port == 0) throw std::runtime_error("webhook serve did not start: " + log());
  }
  ~Receiver() {
    int code = stop();
    EXPECT_EQ(code, 0) << log();
    std::error_code ec;
    fs::remove_all(m_dir, ec);
  }
  // SIGTERM, then the exit status (-1 when it did not exit normally).
  int stop() {
    if (m_pid < 0) return m_code;
    ::kill(m_pid, SIGTERM);
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    m_pid = -1;
    m_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return m_code;
  }
  std::string log() const { return read_all(m_dir / "err"); }

  Reply post(const std::string& body, const httplib::Headers& headers) const {
    httplib::Client c("127.0.0.1", m_port);
    c.set_read_timeout(30, 0);
    c.set_write_timeout(30, 0);
    auto start = std::chrono::steady_clock::now();
    auto r = c.Post("/", headers, body, "application/json");
    Reply out;
    out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (r) {
      out.status = r->status;
      out.body = r->body;
    }
    return out;
  }
  Reply github(const std::string& event, const std::string& body, const std::string& delivery,
               std::optional<std::string> signature = std::nullopt) const {
    httplib::Headers h = {{"X-GitHub-Event", event},
                          {"X-GitHub-Delivery", delivery},
                          {"User-Agent", "GitHub-Hookshot/044aadd"}};
    std::string sig = signature ? *signature : github_signature(k_secret, body);
    if (!sig.empty()) h.emplace("X-Hub-Signature-256", sig);
    return post(body, h);
  }
  Reply netlify(const std::string& body,
                std::optional<std::string> signature = std::nullopt) const {
    return post(body, {{"X-Webhook-Signature",
                        signature ? *signature : netlify_signature(k_secret, body)}});
  }
  // Waits until the log has `text` (the worker logs every outcome).
  bool wait_log(const std::string& text, std::chrono::seconds limit = 30s) const {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

 private:
  fs::path m_dir;
  pid_t m_pid = -1;
  int m_port = 0;
  int m_code = -1;
};

// closed.payload.json is pull request #7 of acme/shop.
std::string closed_payload(const std::string& repository = "acme/shop", long long number = 7) {
  auto j = nlohmann::json::parse(fixture("github/pull_request/closed.payload.json"));
  j["number"] = number;
  j["pull_request"]["number"] = number;
  j["repository"]["full_name"] = repository;
  return j.dump(2);
}

class WebhookServe : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    server().exec("dev", "CREATE TABLE items(id int primary key);");
    auto r = test::run_cli({"snapshot"}, {{"DATABASE_URL", server().url("postgres")}});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void spawn_pr(long long pr, const std::string& repository = "acme/shop") {
    auto r = test::run_cli({"spawn", "--pr", std::to_string(pr)},
                           {{"DATABASE_URL", server().url("postgres")},
                            {"PREVIEWDB_USER", "alice"},
                            {"GITHUB_REPOSITORY", repository}},
                           fs::temp_directory_path().string());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static bool wait_gone(const std::string& db, std::chrono::seconds limit = 30s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (!server().database_exists(db)) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
};

TEST_F(WebhookServe, ClosedPullRequestDropsItsPreviewAndAReplayIsIgnored) {
  spawn_pr(7);
  spawn_pr(8);
  Receiver rx;
  auto ping = rx.github("ping", R"({"zen":"Design for failure.","hook_id":12345678})", "ping-1");
  EXPECT_EQ(ping.status, 200) << ping.body;
  EXPECT_THAT(ping.body, HasSubstr("pong"));

  auto opened = rx.github("pull_request", fixture("github/pull_request/opened.payload.json"),
                          "delivery-opened");
  EXPECT_EQ(opened.status, 200);
  EXPECT_THAT(opened.body, HasSubstr("ignored"));

  auto closed = rx.github("pull_request", fixture("github/pull_request/closed.payload.json"),
                          "delivery-closed-7");
  EXPECT_EQ(closed.status, 202) << closed.body;
  EXPECT_TRUE(wait_gone("pr_7")) << rx.log();
  EXPECT_TRUE(rx.wait_log("dropped pr_7")) << rx.log();
  EXPECT_TRUE(server().database_exists("pr_8"));  // only the closed one

  // The same delivery again (a recorded request sent twice): answered, nothing done.
  spawn_pr(7);  // as if the PR had been reopened and its preview made again
  auto replay = rx.github("pull_request", fixture("github/pull_request/closed.payload.json"),
                          "delivery-closed-7");
  EXPECT_EQ(replay.status, 200) << replay.body;
  EXPECT_THAT(replay.body, HasSubstr("already received"));
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(server().database_exists("pr_7")) << rx.log();
  EXPECT_EQ(rx.stop(), 0);
  // The log names what happened, never the payload.
  EXPECT_THAT(rx.log(), Not(HasSubstr("\"pull_request\"")));
  EXPECT_THAT(rx.log(), Not(HasSubstr(k_secret)));
}

TEST_F(WebhookServe, WrongMissingOrMalformedRequestsDropNothing) {
  spawn_pr(7);
  Receiver rx;
  std::string body = fixture("github/pull_request/closed.payload.json");
  auto wrong = rx.github("pull_request", body, "d-wrong", github_signature("not the secret", body));
  EXPECT_EQ(wrong.status, 401);
  auto missing = rx.github("pull_request", body, "d-missing", std::string());
  EXPECT_EQ(missing.status, 401);
  auto changed =
      rx.github("pull_request", body + " ", "d-changed", github_signature(k_secret, body));
  EXPECT_EQ(changed.status, 401);
  auto bare = rx.post(body, {});
  EXPECT_EQ(bare.status, 401);
  // GitHub's published test vector is a valid signature for another secret: refused here.
  auto vector =
      rx.github("pull_request", "Hello, World!", "d-vector",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  EXPECT_EQ(vector.status, 401);
  auto netlify_bad = rx.netlify(R"({"review_id":7})", netlify_signature("not the secret", "x"));
  EXPECT_EQ(netlify_bad.status, 401);
  // Signed, but not a pull_request payload: 400.
  auto malformed = rx.github("pull_request", "{\"action\":\"closed\"", "d-malformed");
  EXPECT_EQ(malformed.status, 400) << malformed.body;
  auto no_number = rx.github("pull_request", R"({"action":"closed","pull_request":{}})", "d-nonum");
  EXPECT_EQ(no_number.status, 400);
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(server().database_exists("pr_7")) << rx.log();
  auto log = rx.log();
  EXPECT_THAT(log, HasSubstr("401"));
  EXPECT_THAT(log, HasSubstr("400"));
  EXPECT_THAT(log, HasSubstr("missing or wrong X-Hub-Signature-256"));
  EXPECT_THAT(log, Not(HasSubstr("acme/shop")));  // nothing of a refused payload is logged
}

TEST_F(WebhookServe, ClosedEventForAPullRequestWithoutPreview) {
  Receiver rx;
  auto r = rx.github("pull_request", closed_payload("acme/shop", 41), "d-41");
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_TRUE(rx.wait_log("nothing to drop for pr_41")) << rx.log();
  auto replay = rx.github("pull_request", closed_payload("acme/shop", 41), "d-41");
  EXPECT_EQ(replay.status, 200);
  EXPECT_THAT(replay.body, HasSubstr("already received"));
}

TEST_F(WebhookServe, AnotherRepositorysPreviewIsKept) {
  spawn_pr(7, "acme/other");
  Receiver rx;
  auto r = rx.github("pull_request", closed_payload("acme/shop", 7), "d-other");
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(rx.wait_log("kept pr_7")) << rx.log();
  EXPECT_TRUE(server().database_exists("pr_7"));
}

TEST_F(WebhookServe, BodyOverTheCapIs413) {
  spawn_pr(7);
  Receiver rx;
  std::string big(26u * 1000u * 1000u, ' ');
  auto r = rx.github("pull_request", big, "d-big");
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(server().database_exists("pr_7"));
  EXPECT_TRUE(rx.wait_log(" 413 ")) << rx.log();
  auto ping = rx.github("ping", R"({"zen":"Keep it logically awesome."})", "d-ping");
  EXPECT_EQ(ping.status, 200);  // still serving
}

TEST_F(WebhookServe, RepliesAtOnceWhileTheNameLockIsHeldAndDropsAfterRelease) {
  spawn_pr(7);
  Receiver rx;
  auto holder = server().connect(core::k_registry_database);
  holder.exec("SELECT pg_advisory_lock(hashtextextended('previewdb:spawn:pr_7', 0))");
  auto r = rx.github("pull_request", fixture("github/pull_request/closed.payload.json"), "d-lock");
  EXPECT_EQ(r.status, 202);
  EXPECT_LT(r.took, 1000ms);
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(server().database_exists("pr_7")) << "dropped under another run's lock";
  // Another delivery is answered at once too, while the worker waits.
  auto ping = rx.github("ping", R"({"zen":"Half measures are as bad as nothing at all."})", "d-p");
  EXPECT_EQ(ping.status, 200);
  EXPECT_LT(ping.took, 1000ms);
  holder.exec("SELECT pg_advisory_unlock(hashtextextended('previewdb:spawn:pr_7', 0))");
  EXPECT_TRUE(wait_gone("pr_7")) << rx.log();
}

TEST_F(WebhookServe, WithATokenOnlyAClosedPullRequestIsDropped) {
  // PyGithub/PyGithub #31 is the recorded closed pull request; #32 is derived from it as open
  // (state "open", no closed_at/merged_at), as cleanup --closed-prs' tests do.
  auto closed = test::ReplayServer::load(test::github_fixture("pr-state-closed.json")).at(0);
  closed.times = 10;
  auto open = closed;
  auto body = nlohmann::json::parse(open.body);
  body["number"] = 32;
  body["state"] = "open";
  body["closed_at"] = nullptr;
  body["merged_at"] = nullptr;
  open.body = body.dump();
  open.path = "/repos/PyGithub/PyGithub/pulls/32";
  test::ReplayServer api({closed, open});
  spawn_pr(31, "PyGithub/PyGithub");
  spawn_pr(32, "PyGithub/PyGithub");
  Receiver rx({{"GITHUB_TOKEN", k_token}, {"GITHUB_API_URL", api.url()}});

  auto r31 = rx.github("pull_request", closed_payload("PyGithub/PyGithub", 31), "d-31");
  EXPECT_EQ(r31.status, 202);
  EXPECT_TRUE(wait_gone("pr_31")) << rx.log();
  // A closed delivery for a PR that is open again (reopened since): kept.
  auto r32 = rx.github("pull_request", closed_payload("PyGithub/PyGithub", 32), "d-32");
  EXPECT_EQ(r32.status, 202);
  EXPECT_TRUE(rx.wait_log("kept pr_32")) << rx.log();
  EXPECT_THAT(rx.log(), HasSubstr("is open on GitHub"));
  EXPECT_TRUE(server().database_exists("pr_32"));
  std::vector<std::string> paths;
  for (const auto& q : api.requests()) {
    paths.push_back(q.path);
    EXPECT_EQ(q.headers.at("authorization"), "Bearer " + k_token);
  }
  EXPECT_THAT(paths, ::testing::ElementsAre("/repos/PyGithub/PyGithub/pulls/31",
                                            "/repos/PyGithub/PyGithub/pulls/32"));
  EXPECT_THAT(rx.log(), Not(HasSubstr(k_token)));
}

TEST_F(WebhookServe, NetlifyDeployNotifications) {
  auto closed = test::ReplayServer::load(test::github_fixture("pr-state-closed.json")).at(0);
  test::ReplayServer api({closed});
  spawn_pr(31, "PyGithub/PyGithub");
  // The deploy notification's shape (Netlify's deploy object: review_id, review_url, context).
  std::string deploy =
      R"({"id":"5ebc34bf4fea0b01f02efa3a","state":"ready","name":"shop",)"
      R"("review_id":31,"review_url":"https://github.com/PyGithub/PyGithub/pull/31",)"
      R"("branch":"feature","context":"deploy-preview"})";
  {
    // Without a token, a deploy cannot say whether the PR is closed: nothing is dropped.
    Receiver rx;
    auto r = rx.netlify(deploy);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_THAT(r.body, HasSubstr("without GITHUB_TOKEN"));
    auto production = rx.netlify(R"({"review_id":null,"context":"production"})");
    EXPECT_EQ(production.status, 200);
    auto bad = rx.netlify(deploy, netlify_signature(k_secret, deploy + "x"));
    EXPECT_EQ(bad.status, 401);
  }
  EXPECT_TRUE(server().database_exists("pr_31"));
  Receiver rx({{"GITHUB_TOKEN", k_token}, {"GITHUB_API_URL", api.url()}});
  auto r = rx.netlify(deploy);
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_TRUE(wait_gone("pr_31")) << rx.log();
}

class WebhookVerify : public ::testing::Test {
 protected:
  struct Run {
    int code;
    std::string out, err;
  };
  static Run verify(const std::vector<std::string>& args, const std::string& body,
                    const std::map<std::string, std::string>& env) {
    char tmpl[] = "/tmp/previewdb-verify-XXXXXX";
    fs::path dir = ::mkdtemp(tmpl);
    std::ofstream(dir / "in", std::ios::binary) << body;
    std::vector<std::string> a = {"webhook", "verify"};
    a.insert(a.end(), args.begin(), args.end());
    pid_t pid = spawn_binary(a, env, dir / "in", dir / "out", dir / "err");
    int status = 0;
    ::waitpid(pid, &status, 0);
    Run r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_all(dir / "out"),
          read_all(dir / "err")};
    fs::remove_all(dir);
    return r;
  }
  static std::map<std::string, std::string> env(const std::string& secret) {
    return {{"PATH", "/usr/bin:/bin"}, {"PREVIEWDB_WEBHOOK_SECRET", secret}};
  }
};

// GitHub's published test values (docs.github.com, "Validating webhook deliveries", section
// "Testing the webhook payload validation"; github/docs
// content/webhooks/using-webhooks/validating-webhook-deliveries.md).
TEST_F(WebhookVerify, GithubPublishedTestVector) {
  const std::string sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  auto ok = verify({"--provider", "github", "--signature", sig}, "Hello, World!",
                   env("It's a Secret to Everybody"));
  EXPECT_EQ(ok.code, 0) << ok.err;
  auto changed = verify({"--provider", "github", "--signature", sig}, "Hello, World?",
                        env("It's a Secret to Everybody"));
  EXPECT_EQ(changed.code, 6);
  EXPECT_THAT(changed.err, HasSubstr("signature does not match the body"));
  auto other = verify({"--provider", "github", "--signature", sig}, "Hello, World!", env("x"));
  EXPECT_EQ(other.code, 6);
}

TEST_F(WebhookVerify, NetlifyAndUsage) {
  std::string body = R"({"review_id":3})";
  EXPECT_EQ(
      verify({"--provider", "netlify", "--signature", netlify_signature("s", body)}, body, env("s"))
          .code,
      0);
  EXPECT_EQ(
      verify({"--provider", "netlify", "--signature", netlify_signature("t", body)}, body, env("s"))
          .code,
      6);
  auto no_provider = verify({"--signature", "x"}, body, env("s"));
  EXPECT_EQ(no_provider.code, 2);
  EXPECT_THAT(no_provider.err, HasSubstr("--provider github or --provider netlify"));
  EXPECT_EQ(verify({"--provider", "gitlab", "--signature", "x"}, body, env("s")).code, 2);
  EXPECT_EQ(verify({"--provider", "github"}, body, env("s")).code, 2);
  auto no_secret = verify({"--provider", "github", "--signature", "sha256=00"}, body,
                          {{"PATH", "/usr/bin:/bin"}});
  EXPECT_EQ(no_secret.code, 2);
  EXPECT_THAT(no_secret.err, HasSubstr("PREVIEWDB_WEBHOOK_SECRET"));
  // The secret from a file (a trailing newline is not part of it).
  char tmpl[] = "/tmp/previewdb-secret-XXXXXX";
  fs::path dir = ::mkdtemp(tmpl);
  std::ofstream(dir / "secret") << "It's a Secret to Everybody\n";
  auto from_file = verify(
      {"--provider", "github", "--signature",
       "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
      "Hello, World!",
      {{"PATH", "/usr/bin:/bin"}, {"PREVIEWDB_WEBHOOK_SECRET_FILE", (dir / "secret").string()}});
  EXPECT_EQ(from_file.code, 0) << from_file.err;
  auto both = verify({"--provider", "github", "--signature", "sha256=00"}, "x",
                     {{"PATH", "/usr/bin:/bin"},
                      {"PREVIEWDB_WEBHOOK_SECRET", "a"},
                      {"PREVIEWDB_WEBHOOK_SECRET_FILE", (dir / "secret").string()}});
  EXPECT_EQ(both.code, 2);
  // A secret written in previewdb.json (committed with the repository) is refused.
  std::ofstream(dir / "previewdb.json") << R"({"webhook_secret": "It's a Secret to Everybody"})";
  auto in_file =
      verify({"--provider", "github", "--signature", "sha256=00"}, "x",
             {{"PATH", "/usr/bin:/bin"}, {"PREVIEWDB_CONFIG", (dir / "previewdb.json").string()}});
  EXPECT_EQ(in_file.code, 2);
  EXPECT_THAT(in_file.err, HasSubstr("webhook_secret may not be written in previewdb.json"));
  fs::remove_all(dir);
}

}  // namespace

namespace {

// SIGTERM while a drop waits for another run's lock: no new requests, the drop finishes once the
// lock is released, exit 0.
TEST_F(WebhookServe, SigtermFinishesTheCurrentDropAndExitsZero) {
  spawn_pr(7);
  Receiver rx;
  auto holder = server().connect(core::k_registry_database);
  holder.exec("SELECT pg_advisory_lock(hashtextextended('previewdb:spawn:pr_7', 0))");
  auto r = rx.github("pull_request", fixture("github/pull_request/closed.payload.json"), "d-term");
  EXPECT_EQ(r.status, 202);
  std::this_thread::sleep_for(500ms);
  std::thread release([&] {
    std::this_thread::sleep_for(2s);
    holder.exec("SELECT pg_advisory_unlock(hashtextextended('previewdb:spawn:pr_7', 0))");
  });
  int code = rx.stop();  // SIGTERM, then waits for the exit
  release.join();
  EXPECT_EQ(code, 0) << rx.log();
  EXPECT_FALSE(server().database_exists("pr_7")) << rx.log();
  EXPECT_THAT(rx.log(), HasSubstr("received SIGTERM"));
  EXPECT_THAT(rx.log(), HasSubstr("dropped pr_7"));
}

}  // namespace
