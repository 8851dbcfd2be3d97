// Shared by the ci_*_test.cpp files of the repository flows: a real server (harness), real git
// repositories (GitRepos: origin + work, `main` with migrations/schema/0001_init.sql, `feature`
// adding 0002_add_email.sql), event payloads written here in the shape GitHub documents, and a
// GitHub Actions run that collects $GITHUB_OUTPUT, the step summary and $GITHUB_ENV.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/git_repo.hpp"
#include "harness/harness.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace previewdb::test::ciflow {

namespace fs = std::filesystem;
using ::previewdb::test::Env;
using ::previewdb::test::git;

// $GITHUB_OUTPUT as the runner reads it: `key<<DELIM` ... `DELIM` blocks (and key=value lines).
inline std::map<std::string, std::string> parse_outputs(const std::string& text) {
  std::map<std::string, std::string> out;
  auto lines = util::split(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& line = lines[i];
    if (line.empty()) continue;
    auto h = line.find("<<");
    if (h == std::string::npos) {
      auto eq = line.find('=');
      out[line.substr(0, eq)] = line.substr(eq + 1);
      continue;
    }
    std::string key = line.substr(0, h), delim = line.substr(h + 2), value;
    bool first = true;
    for (++i; i < lines.size() && lines[i] != delim; ++i) {
      value += (first ? "" : "\n") + lines[i];
      first = false;
    }
    out[key] = value;
  }
  return out;
}

struct GhRun {
  CliResult r;
  std::string output, summary, genv;
  std::map<std::string, std::string> outputs() const { return parse_outputs(output); }
};

class CiFlow : public ::testing::Test {
 protected:
  void SetUp() override { server().reset(); }
  static PgServer& server() { return PgServer::shared(); }
  Env base_env() { return {{"DATABASE_URL", server().url("postgres")}}; }

  // Runs previewdb in the work tree (or cwd).
  CliResult cli(const std::vector<std::string>& args, Env extra = {}, const fs::path& cwd = {}) {
    Env e = base_env();
    for (auto& [k, v] : extra) e[k] = v;
    return run_cli(args, e, (cwd.empty() ? repos.work() : cwd).string());
  }

  // On `main`: apply its migrations to dev and snapshot it, then back to `feature`.
  void prepare_dev(const std::vector<std::string>& migrate_args = {}) {
    git(repos.work(), {"checkout", "-q", "main"});
    std::vector<std::string> args = {"migrate", "--database", "dev"};
    args.insert(args.end(), migrate_args.begin(), migrate_args.end());
    auto m = cli(args);
    ASSERT_EQ(m.code, 0) << m.all();
    auto s = cli({"snapshot"});
    ASSERT_EQ(s.code, 0) << s.all();
    git(repos.work(), {"checkout", "-q", "feature"});
  }

  // Commits a file on a branch (pushed), leaving `feature` checked out.
  void commit_on(const std::string& branch, const std::string& path, const std::string& content) {
    git(repos.work(), {"checkout", "-q", branch});
    repos.commit_file(path, content, "change " + path);
    repos.push(branch);
    git(repos.work(), {"checkout", "-q", "feature"});
  }

  // A pull_request webhook payload (the fields previewdb reads, as GitHub documents them).
  fs::path pr_event(long long number, const std::string& base = "main",
                    const std::string& action = "synchronize", bool fork = false) {
    nlohmann::json doc = {
        {"action", action},
        {"number", number},
        {"pull_request",
         {{"number", number},
          {"state", action == "closed" ? "closed" : "open"},
          {"merged", false},
          {"labels", nlohmann::json::array()},
          {"head",
           {{"ref", "feature"},
            {"sha", "0123456789abcdef0123456789abcdef01234567"},
            {"repo", {{"full_name", fork ? "someone/shop" : "octo-org/shop"}}}}},
          {"base",
           {{"ref", base},
            {"sha", "89abcdef0123456789abcdef0123456789abcdef"},
            {"repo", {{"full_name", "octo-org/shop"}}}}}}},
        {"repository", {{"full_name", "octo-org/shop"}, {"default_branch", base}}}};
    return write_event(doc);
  }

  // A push webhook payload.
  fs::path push_event(const std::string& branch, const std::string& default_branch = "main") {
    nlohmann::json doc = {
        {"ref", "refs/heads/" + branch},
        {"before", "0000000000000000000000000000000000000000"},
        {"after", "0123456789abcdef0123456789abcdef01234567"},
        {"repository", {{"full_name", "octo-org/shop"}, {"default_branch", default_branch}}}};
    return write_event(doc);
  }

  fs::path write_event(const nlohmann::json& doc) {
    fs::path p = files.path() / ("event" + std::to_string(++m_events) + ".json");
    util::write_file_atomic(p, doc.dump());
    return p;
  }

  GhRun github(const fs::path& ev, std::vector<std::string> args = {}, Env extra = {},
               const std::string& event_name = "pull_request", const fs::path& cwd = {}) {
    std::string n = std::to_string(++m_runs);
    fs::path out = files.path() / ("out" + n), sum = files.path() / ("sum" + n),
             genv = files.path() / ("env" + n);
    Env e = base_env();
    e["GITHUB_ACTIONS"] = "true";
    e["GITHUB_EVENT_NAME"] = event_name;
    e["GITHUB_EVENT_PATH"] = ev.string();
    e["GITHUB_REPOSITORY"] = "octo-org/shop";
    e["GITHUB_OUTPUT"] = out.string();
    e["GITHUB_STEP_SUMMARY"] = sum.string();
    e["GITHUB_ENV"] = genv.string();
    for (auto& [k, v] : extra) e[k] = v;
    args.insert(args.begin(), "ci");
    GhRun g{run_cli(args, e, (cwd.empty() ? repos.work() : cwd).string()), "", "", ""};
    g.output = util::read_file_if_exists(out).value_or("");
    g.summary = util::read_file_if_exists(sum).value_or("");
    g.genv = util::read_file_if_exists(genv).value_or("");
    return g;
  }

  // Nothing shows the password but the ::add-mask:: command that hides it.
  void expect_no_password(const std::string& text, const std::string& where) {
    std::string without_mask;
    for (auto& line : util::split(text, '\n')) {
      if (line.rfind("::add-mask::", 0) != 0) without_mask += line + "\n";
    }
    EXPECT_THAT(without_mask, ::testing::Not(::testing::HasSubstr(server().password()))) << where;
  }
  void expect_clean(const GhRun& g) {
    expect_no_password(g.r.out, "stdout");
    expect_no_password(g.r.err, "stderr");
    expect_no_password(g.output, "GITHUB_OUTPUT");
    expect_no_password(g.summary, "GITHUB_STEP_SUMMARY");
  }

  std::string scalar(const std::string& db, const std::string& sql) {
    auto conn = server().connect(db);
    auto r = conn.exec(sql);
    return r.rows() ? r.get(0, 0) : std::string();
  }

  GitRepos repos;
  util::TempDir files{"previewdb-ciflow-"};
  int m_events = 0, m_runs = 0;
};

}  // namespace previewdb::test::ciflow
