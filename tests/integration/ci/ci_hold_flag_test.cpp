// Issue 14: `ci --hold` keeps the preview marked in use (core::hold_database, the lock `hold` and
// `ci -- CMD` take) from inside the run that made it, after writing its outputs, until stdin
// closes or the process is ended: no moment between `ci` ending and a separate `hold` starting in
// which a cleanup could drop the preview. The Netlify build plugin runs it from onPreBuild to
// onEnd.
#include <signal.h>

#include "harness/cli_process.hpp"
#include "integration/ci/ci_flow.hpp"

using namespace previewdb;
using namespace previewdb::test::ciflow;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class CiHoldFlag : public CiFlow {
 protected:
  // A Netlify deploy preview for pull request `pr` of the work tree's `feature` branch.
  Env netlify(const std::string& context = "deploy-preview", const std::string& pr = "51") {
    Env e = base_env();
    e["NETLIFY"] = "true";
    e["CONTEXT"] = context;
    e["REVIEW_ID"] = pr;
    e["HEAD"] = "feature";
    e["BRANCH"] = "feature";
    return e;
  }
  // Starts `previewdb ARGS` with pipes on its stdin and stdout.
  std::unique_ptr<util::StreamingProcess> start(const std::vector<std::string>& args,
                                                const Env& env) {
    return std::make_unique<util::StreamingProcess>(
        test::cli_spec(args, env, repos.work().string()), /*feed_stdin=*/true,
        /*read_stdout=*/true);
  }
  // The child's stdout up to and including `line` (or to its end when it never comes).
  static std::string read_until(util::StreamingProcess& p, const std::string& line) {
    std::string out;
    char buf[4096];
    while (out.find("\n" + line + "\n") == std::string::npos &&
           out.rfind(line + "\n", 0) == std::string::npos) {
      size_t n = p.read(buf, sizeof buf);
      if (n == 0) break;
      out.append(buf, n);
    }
    return out;
  }
  bool exists(const std::string& name) {
    return scalar("postgres", "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'") ==
           "1";
  }
};

TEST_F(CiHoldFlag, CleanupKeepsThePreviewWhileCiHoldsItAndDropsItAfterwards) {
  prepare_dev();
  auto ci = start({"ci", "--provider", "netlify", "--json", "--hold"}, netlify());
  std::string out = read_until(*ci, "holding pr_51");
  auto marker = out.find("holding pr_51\n");
  ASSERT_NE(marker, std::string::npos) << out << ci->wait().err;
  // stdout: the outcome (one JSON document, flushed), then the line the caller waits for.
  auto j = nlohmann::json::parse(out.substr(0, marker));
  EXPECT_EQ(j["preview"], true);
  EXPECT_EQ(j["database-name"], "pr_51");
  EXPECT_EQ(j["created"], true);
  EXPECT_TRUE(exists("pr_51"));

  // Held by the run itself: a cleanup (nightly, --closed-prs) keeps it and names the holder.
  auto kept = cli({"cleanup", "pr_51", "--yes"});
  EXPECT_EQ(kept.code, 6) << kept.all();
  EXPECT_THAT(kept.err, HasSubstr("kept pr_51"));
  EXPECT_THAT(kept.err, HasSubstr("previewdb ci --hold (pid " + std::to_string(ci->pid()) + ")"));
  EXPECT_TRUE(exists("pr_51"));

  // The build's end (the plugin's onEnd) closes stdin: the hold ends, the run exits 0.
  ci->close_stdin();
  const auto& r = ci->wait();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("released pr_51"));
  expect_no_password(out + r.err, "ci --hold output");
  auto dropped = cli({"cleanup", "pr_51", "--yes"});
  EXPECT_EQ(dropped.code, 0) << dropped.all();
  EXPECT_FALSE(exists("pr_51"));
}

TEST_F(CiHoldFlag, SigtermEndsTheHold) {
  prepare_dev();
  auto ci = start({"ci", "--provider", "netlify", "--hold"}, netlify());
  std::string out = read_until(*ci, "holding pr_51");
  ASSERT_THAT(out, HasSubstr("holding pr_51\n")) << ci->wait().err;
  // Without --json: the key=value outputs come first.
  EXPECT_THAT(out, HasSubstr("database-name=pr_51\n"));
  EXPECT_EQ(cli({"cleanup", "pr_51", "--yes"}).code, 6);
  ::kill(ci->pid(), SIGTERM);
  ci->wait();
  auto dropped = cli({"cleanup", "pr_51", "--yes"});
  EXPECT_EQ(dropped.code, 0) << dropped.all();
  EXPECT_FALSE(exists("pr_51"));
}

TEST_F(CiHoldFlag, WithoutAPreviewThereIsNothingToHold) {
  prepare_dev();
  // A production build makes no preview: the outcome, then exit at once (no "holding" line).
  auto ci = start({"ci", "--provider", "netlify", "--json", "--hold"}, netlify("production"));
  std::string out = read_until(*ci, "holding");
  const auto& r = ci->wait();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(out, Not(HasSubstr("holding")));
  EXPECT_EQ(nlohmann::json::parse(out)["preview"], false);
}

TEST_F(CiHoldFlag, HoldWithABuildCommandOrADryRunIsAUsageError) {
  auto both = cli({"ci", "--provider", "netlify", "--hold", "--", "true"}, netlify());
  EXPECT_EQ(both.code, 2) << both.all();
  EXPECT_THAT(both.err, HasSubstr("--hold and a build command after '--' both hold the preview"));
  auto plan = cli({"ci", "--provider", "netlify", "--hold", "--dry-run"}, netlify());
  EXPECT_EQ(plan.code, 2) << plan.all();
  EXPECT_THAT(plan.err, HasSubstr("--hold holds the preview a run made, and --dry-run makes none"));
  EXPECT_FALSE(exists("pr_51"));
}

}  // namespace
