// Workflow-command and newline injection through the event (issue 7 item 12): a branch name, an
// action and a migration file name carrying "\n::error::pwned" never start a line of stderr,
// stdout or the step summary, and never add an output.
#include "ci_flow.hpp"

using namespace previewdb;
using test::ciflow::CiFlow;
using test::ciflow::GhRun;
using ::testing::HasSubstr;

namespace {

constexpr const char* k_payload = "\n::error::pwned";

void expect_no_injected_line(const std::string& text, const std::string& where) {
  for (const auto& line : util::split(text, '\n')) {
    auto first = line.find_first_not_of(" \t|");
    if (first == std::string::npos) continue;
    EXPECT_NE(line.substr(first, 14), "::error::pwned") << where << ": " << line;
  }
}

void expect_no_injection(const GhRun& g) {
  expect_no_injected_line(g.r.out, "stdout");
  expect_no_injected_line(g.r.err, "stderr");
  expect_no_injected_line(g.summary, "step summary");
  for (const auto& [k, v] : g.outputs()) EXPECT_EQ(k.find("pwned"), std::string::npos) << k;
}

class CiInjection : public CiFlow {
 protected:
  std::filesystem::path hostile_event(long long number, const std::string& action) {
    auto p = pr_event(number, "main", action);
    auto doc = nlohmann::json::parse(util::read_file(p));
    doc["pull_request"]["head"]["ref"] = std::string("feature") + k_payload;
    return write_event(doc);
  }
};

}  // namespace

TEST_F(CiInjection, BranchNameAndMigrationFileNameInARealPreview) {
  prepare_dev();
  // git allows a newline in a file name: the PR adds one as a migration.
  commit_on("feature", std::string("migrations/schema/0003_x") + k_payload + ".sql",
            "CREATE TABLE x (id int);");
  auto g = github(hostile_event(71, "synchronize"), {"-v"});
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["database-name"], "pr_71");
  expect_no_injection(g);
  // The preview's status and history tables print the same file name.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"status", "--database", "pr_71", "--dir", "migrations/schema"},
           {"history", "--database", "pr_71"}}) {
    auto r = cli(args, {{"GITHUB_ACTIONS", "true"}});
    EXPECT_EQ(r.code, 0) << args[0] << "\n" << r.all();
    EXPECT_THAT(r.out, HasSubstr("0003_x")) << args[0];
    expect_no_injected_line(r.out, args[0] + " stdout");
    expect_no_injected_line(r.err, args[0] + " stderr");
  }
}

TEST_F(CiInjection, UnknownActionIsPrintedNeutralised) {
  auto g = github(hostile_event(72, std::string("opened") + k_payload), {"--dry-run"});
  EXPECT_THAT(g.r.all() + g.summary, HasSubstr("pwned"));  // printed, neutralised
  expect_no_injection(g);
}
