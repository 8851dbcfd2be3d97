#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ci/event.hpp"
#include "harness/harness.hpp"
#include "util/error.hpp"
#include "util/files.hpp"

using namespace previewdb;

namespace {

// GitHub pull_request payloads: the repository's own (tests/fixtures, always) and the real ones
// GitHub documents (../shared, an extra case that skips visibly when missing). What each source's
// opened payload says, for the assertions below.
struct PayloadSource {
  std::string name;
  long long number;
  std::string head_ref, base_ref, head_sha, repository;
  std::vector<std::pair<std::string, std::string>> actions;  // file, action
};

const PayloadSource k_fixtures{"fixtures",
                               7,
                               "feature/orders",
                               "main",
                               "6dcb09b5b57875f334f61aebed695e2e4193db5e",
                               "acme/shop",
                               {{"synchronize.payload.json", "synchronize"},
                                {"labeled.payload.json", "labeled"},
                                {"closed.payload.json", "closed"},
                                {"reopened.payload.json", "reopened"},
                                {"closed-merged.payload.json", "closed"},
                                {"opened-from-fork.payload.json", "opened"}}};
const PayloadSource k_shared{"shared",
                             2,
                             "changes",
                             "master",
                             "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
                             "Codertocat/Hello-World",
                             {{"synchronize.payload.json", "synchronize"},
                              {"labeled.payload.json", "labeled"},
                              {"closed.payload.json", "closed"},
                              {"reopened.payload.json", "reopened"},
                              {"opened.with-null-body.json", "opened"}}};

class CiPayload : public ::testing::TestWithParam<PayloadSource> {
 protected:
  void SetUp() override {
    if (GetParam().name == "shared" && !test::shared_dir()) {
      GTEST_SKIP() << test::k_skip_shared << "../shared is missing: no real GitHub payloads";
    }
  }
  std::string payload(const std::string& name) const {
    auto dir =
        GetParam().name == "shared" ? *test::shared_dir() / "fixtures" : test::fixtures_dir();
    return util::read_file(dir / "github" / "pull_request" / name);
  }
  long long number() const { return GetParam().number; }
};

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

TEST_P(CiPayload, OpenedPayload) {
  const auto& want = GetParam();
  auto ev = ci::parse_github_event("pull_request", payload("opened.payload.json"), "opened.json");
  ASSERT_TRUE(ev.pr_number);
  EXPECT_EQ(*ev.pr_number, want.number);
  EXPECT_EQ(ev.action, "opened");
  EXPECT_EQ(ev.head_ref, want.head_ref);
  EXPECT_EQ(ev.base_ref, want.base_ref);
  EXPECT_EQ(ev.head_sha, want.head_sha);
  EXPECT_EQ(ev.repository, want.repository);
  EXPECT_FALSE(ev.merged);
  EXPECT_FALSE(ev.fork);
  EXPECT_FALSE(ev.closed());
  ASSERT_TRUE(ev.labels);
  EXPECT_EQ(*ev.labels, std::vector<std::string>{"bug"});
}

TEST_P(CiPayload, PayloadsOfEveryAction) {
  for (const auto& [file, action] : GetParam().actions) {
    for (const char* name : {"pull_request", "pull_request_target"}) {
      auto ev = ci::parse_github_event(name, payload(file), file);
      EXPECT_EQ(ev.action, action);
      EXPECT_EQ(ev.pr_number.value_or(0), number()) << file;
    }
  }
  auto closed = ci::parse_github_event("pull_request", payload("closed.payload.json"), "c");
  EXPECT_TRUE(closed.closed());
}

TEST_P(CiPayload, MergedAndForkCopies) {
  auto doc = nlohmann::json::parse(payload("closed.payload.json"));
  doc["pull_request"]["merged"] = true;
  doc["pull_request"]["head"]["repo"]["full_name"] = "someone/Hello-World";
  auto ev = ci::parse_github_event("pull_request_target", doc.dump(), "edited");
  EXPECT_TRUE(ev.merged);
  EXPECT_TRUE(ev.fork);
  doc["pull_request"]["head"]["repo"] = nullptr;  // a deleted fork
  EXPECT_TRUE(ci::parse_github_event("pull_request", doc.dump(), "edited").fork);
}

// The repository's own merged and fork payloads, unedited.
TEST(CiEvent, MergedAndForkFixtures) {
  auto dir = test::fixtures_dir() / "github" / "pull_request";
  auto merged = ci::parse_github_event(
      "pull_request", util::read_file(dir / "closed-merged.payload.json"), "closed-merged");
  EXPECT_TRUE(merged.closed());
  EXPECT_TRUE(merged.merged);
  EXPECT_FALSE(merged.fork);
  auto closed = ci::parse_github_event("pull_request", util::read_file(dir / "closed.payload.json"),
                                       "closed");
  EXPECT_TRUE(closed.closed());
  EXPECT_FALSE(closed.merged);
  auto fork = ci::parse_github_event(
      "pull_request_target", util::read_file(dir / "opened-from-fork.payload.json"), "fork");
  EXPECT_TRUE(fork.fork);
  EXPECT_EQ(fork.repository, "acme/shop");
  EXPECT_EQ(fork.labels.value_or(std::vector<std::string>{"?"}), std::vector<std::string>{});
}

TEST(CiEvent, OtherEventsHaveNoPullRequest) {
  auto ev = ci::parse_github_event(
      "push", R"({"ref":"refs/heads/main","repository":{"full_name":"o/r"}})", "push.json");
  EXPECT_FALSE(ev.pr_number);
  EXPECT_EQ(ev.repository, "o/r");
}

TEST_P(CiPayload, HostileGitHubInput) {
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

TEST_P(CiPayload, HostileStringsAreKeptVerbatim) {
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

TEST_P(CiPayload, GitHubEventFromEnvironmentReadsTheFile) {
  util::TempDir dir;
  auto path = dir.path() / "event.json";
  util::write_file_atomic(path, payload("synchronize.payload.json"));
  auto ev = ci::github_event({{"GITHUB_EVENT_NAME", "pull_request"},
                              {"GITHUB_EVENT_PATH", path.string()},
                              {"GITHUB_REPOSITORY", GetParam().repository}});
  EXPECT_EQ(ev.pr_number.value_or(0), number());
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

INSTANTIATE_TEST_SUITE_P(CiEvent, CiPayload, ::testing::Values(k_fixtures, k_shared),
                         [](const auto& param_info) { return param_info.param.name; });

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
