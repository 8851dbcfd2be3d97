#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ci/event.hpp"
#include "harness/harness.hpp"
#include "util/error.hpp"
#include "util/files.hpp"

using namespace previewdb;

namespace {

std::string payload(const std::string& name) {
  auto shared = test::shared_dir();
  if (!shared) return {};
  return util::read_file(*shared / "fixtures" / "github" / "pull_request" / name);
}

#define REQUIRE_SHARED() \
  if (!test::shared_dir()) GTEST_SKIP() << "../shared is missing: no payloads"

void expect_usage(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    FAIL() << "no error; expected one mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_FALSE(e.hints().empty()) << e.what();
  }
}

}  // namespace

TEST(CiProvider, DetectionAndOverride) {
  EXPECT_EQ(ci::detect_provider({{"GITHUB_ACTIONS", "true"}}, std::nullopt), ci::Provider::github);
  EXPECT_EQ(ci::detect_provider({{"NETLIFY", "true"}}, std::nullopt), ci::Provider::netlify);
  EXPECT_EQ(ci::detect_provider({{"CI", "true"}}, std::nullopt), ci::Provider::generic);
  EXPECT_EQ(ci::detect_provider({{"GITHUB_ACTIONS", "true"}}, "generic"), ci::Provider::generic);
  EXPECT_EQ(ci::detect_provider({}, "netlify"), ci::Provider::netlify);
  expect_usage([] { ci::detect_provider({}, "jenkins"); }, "--provider");
}

TEST(CiEvent, RealOpenedPayload) {
  REQUIRE_SHARED();
  auto ev = ci::parse_github_event("pull_request", payload("opened.payload.json"), "opened.json");
  ASSERT_TRUE(ev.pr_number);
  EXPECT_EQ(*ev.pr_number, 2);
  EXPECT_EQ(ev.action, "opened");
  EXPECT_EQ(ev.head_ref, "changes");
  EXPECT_EQ(ev.base_ref, "master");
  EXPECT_EQ(ev.head_sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
  EXPECT_EQ(ev.repository, "Codertocat/Hello-World");
  EXPECT_FALSE(ev.merged);
  EXPECT_FALSE(ev.fork);
  EXPECT_FALSE(ev.closed());
  ASSERT_TRUE(ev.labels);
  EXPECT_EQ(*ev.labels, std::vector<std::string>{"bug"});
}

TEST(CiEvent, RealPayloadsOfEveryAction) {
  REQUIRE_SHARED();
  for (auto [file, action] :
       {std::pair{"synchronize.payload.json", "synchronize"},
        std::pair{"labeled.payload.json", "labeled"}, std::pair{"closed.payload.json", "closed"},
        std::pair{"reopened.payload.json", "reopened"},
        std::pair{"opened.with-null-body.json", "opened"}}) {
    for (const char* name : {"pull_request", "pull_request_target"}) {
      auto ev = ci::parse_github_event(name, payload(file), file);
      EXPECT_EQ(ev.action, action);
      EXPECT_EQ(ev.pr_number.value_or(0), 2) << file;
    }
  }
  auto closed = ci::parse_github_event("pull_request", payload("closed.payload.json"), "c");
  EXPECT_TRUE(closed.closed());
}

TEST(CiEvent, MergedAndForkCopies) {
  REQUIRE_SHARED();
  auto doc = nlohmann::json::parse(payload("closed.payload.json"));
  doc["pull_request"]["merged"] = true;
  doc["pull_request"]["head"]["repo"]["full_name"] = "someone/Hello-World";
  auto ev = ci::parse_github_event("pull_request_target", doc.dump(), "edited");
  EXPECT_TRUE(ev.merged);
  EXPECT_TRUE(ev.fork);
  doc["pull_request"]["head"]["repo"] = nullptr;  // a deleted fork
  EXPECT_TRUE(ci::parse_github_event("pull_request", doc.dump(), "edited").fork);
}

TEST(CiEvent, OtherEventsHaveNoPullRequest) {
  auto ev = ci::parse_github_event(
      "push", R"({"ref":"refs/heads/main","repository":{"full_name":"o/r"}})", "push.json");
  EXPECT_FALSE(ev.pr_number);
  EXPECT_EQ(ev.repository, "o/r");
}

TEST(CiEvent, HostileGitHubInput) {
  REQUIRE_SHARED();
  std::string good = payload("opened.payload.json");
  expect_usage(
      [&] { ci::parse_github_event("pull_request", good.substr(0, good.size() / 2), "/ev.json"); },
      "cannot parse the GitHub event \"/ev.json\"");
  expect_usage([&] { ci::parse_github_event("pull_request", "", "/ev.json"); }, "cannot parse");
  expect_usage([&] { ci::parse_github_event("pull_request", "[1,2]", "/ev.json"); },
               "not a JSON object");
  expect_usage([&] { ci::parse_github_event("pull_request", "{}", "/ev.json"); },
               "no \"pull_request\"");

  auto doc = nlohmann::json::parse(good);
  doc.erase("number");
  doc["pull_request"].erase("number");
  expect_usage([&] { ci::parse_github_event("pull_request", doc.dump(), "/ev.json"); },
               "no valid pull request number");
  for (auto bad : {nlohmann::json("2"), nlohmann::json(-3), nlohmann::json(0), nlohmann::json(2.5),
                   nlohmann::json(nullptr)}) {
    doc["number"] = bad;
    expect_usage([&] { ci::parse_github_event("pull_request", doc.dump(), "/ev.json"); },
                 "no valid pull request number");
  }
  doc = nlohmann::json::parse(good);
  doc["pull_request"]["head"]["ref"] = 42;
  expect_usage([&] { ci::parse_github_event("pull_request", doc.dump(), "/ev.json"); },
               "pull_request.head.ref\" must be a string");
}

TEST(CiEvent, HostileStringsAreKeptVerbatim) {
  REQUIRE_SHARED();
  auto doc = nlohmann::json::parse(payload("labeled.payload.json"));
  std::string branch = "feat\nreason=closed\n::set-output name=x::y %0A \"q\"";
  doc["pull_request"]["head"]["ref"] = branch;
  doc["pull_request"]["labels"] = nlohmann::json::array(
      {{{"name", "preview-db\ndatabase-url<<EOF"}}, {{"name", "50% off ::warning::"}}});
  auto ev = ci::parse_github_event("pull_request", doc.dump(), "x");
  EXPECT_EQ(ev.head_ref, branch);
  ASSERT_TRUE(ev.labels);
  EXPECT_EQ(ev.labels->size(), 2u);
  EXPECT_EQ((*ev.labels)[0], "preview-db\ndatabase-url<<EOF");
}

TEST(CiEvent, GitHubEventFromEnvironmentReadsTheFile) {
  REQUIRE_SHARED();
  util::TempDir dir;
  auto path = dir.path() / "event.json";
  util::write_file_atomic(path, payload("synchronize.payload.json"));
  auto ev = ci::github_event({{"GITHUB_EVENT_NAME", "pull_request"},
                              {"GITHUB_EVENT_PATH", path.string()},
                              {"GITHUB_REPOSITORY", "Codertocat/Hello-World"}});
  EXPECT_EQ(ev.pr_number.value_or(0), 2);
  expect_usage(
      [] {
        ci::github_event({{"GITHUB_EVENT_NAME", "pull_request"}});
      },
      "GITHUB_EVENT_PATH is not set");
  try {
    ci::github_event({{"GITHUB_EVENT_NAME", "pull_request"},
                      {"GITHUB_EVENT_PATH", (dir.path() / "missing.json").string()}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos);
  }
}

TEST(CiEvent, Netlify) {
  auto ev = ci::netlify_event(
      {{"NETLIFY", "true"},
       {"CONTEXT", "deploy-preview"},
       {"REVIEW_ID", "7"},
       {"PULL_REQUEST", "true"},
       {"HEAD", "feature/x"},
       {"BRANCH", "feature/x"},
       {"COMMIT_REF", "abc123"},
       {"REPOSITORY_URL", "https://x-access-token:ghs_secret@github.com/acme/shop"}});
  EXPECT_EQ(ev.provider, ci::Provider::netlify);
  EXPECT_EQ(ev.pr_number.value_or(0), 7);
  EXPECT_EQ(ev.head_ref, "feature/x");
  EXPECT_EQ(ev.head_sha, "abc123");
  EXPECT_EQ(ev.repository, "acme/shop");

  auto prod =
      ci::netlify_event({{"CONTEXT", "production"}, {"REVIEW_ID", "7"}, {"PULL_REQUEST", "true"}});
  EXPECT_FALSE(prod.pr_number);
  EXPECT_FALSE(ci::netlify_event({{"CONTEXT", "branch-deploy"}, {"BRANCH", "x"}}).pr_number);

  expect_usage(
      [] {
        ci::netlify_event({{"CONTEXT", "deploy-preview"}, {"REVIEW_ID", "abc"}});
      },
      "REVIEW_ID must be a pull request number");
  expect_usage(
      [] {
        ci::netlify_event({{"CONTEXT", "deploy-preview"}, {"REVIEW_ID", "-1"}});
      },
      "REVIEW_ID");
  expect_usage([] { ci::netlify_event({{"CONTEXT", "deploy-preview"}}); }, "without REVIEW_ID");
}

TEST(CiEvent, Labels) {
  EXPECT_EQ(ci::parse_labels(R"(["preview-db", "a,b"])", "PREVIEWDB_LABELS"),
            (std::vector<std::string>{"preview-db", "a,b"}));
  EXPECT_EQ(ci::parse_labels(" preview-db , bug,,", "PREVIEWDB_LABELS"),
            (std::vector<std::string>{"preview-db", "bug"}));
  EXPECT_TRUE(ci::parse_labels("", "x").empty());
  expect_usage([] { ci::parse_labels("[\"unterminated", "PREVIEWDB_LABELS"); }, "PREVIEWDB_LABELS");
  expect_usage([] { ci::parse_labels("[1]", "PREVIEWDB_LABELS"); }, "only strings");
}

TEST(CiEvent, RepositoryFromUrl) {
  EXPECT_EQ(ci::repository_from_url("https://github.com/acme/shop").value_or(""), "acme/shop");
  EXPECT_EQ(ci::repository_from_url("https://tok@github.com/acme/shop.git").value_or(""),
            "acme/shop");
  EXPECT_EQ(ci::repository_from_url("git@github.com:acme/shop.git").value_or(""), "acme/shop");
  EXPECT_EQ(ci::repository_from_url("ssh://git@github.com/acme/shop/").value_or(""), "acme/shop");
  EXPECT_FALSE(ci::repository_from_url("https://github.com/acme"));
  EXPECT_FALSE(ci::repository_from_url("https://github.com/a/b/c"));
  EXPECT_FALSE(ci::repository_from_url("https://github.com/a/b%0A"));
  EXPECT_FALSE(ci::repository_from_url(""));
}

TEST(CiEvent, PrNumber) {
  EXPECT_EQ(ci::parse_pr_number("12", "--pr"), 12);
  expect_usage([] { ci::parse_pr_number("0", "--pr"); }, "--pr");
  expect_usage([] { ci::parse_pr_number("12a", "--pr"); }, "--pr");
  expect_usage([] { ci::parse_pr_number("99999999999999999999999", "--pr"); }, "--pr");
}
