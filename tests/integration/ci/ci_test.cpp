// `previewdb ci` end to end: real PostgreSQL (harness), real git repositories made with the git
// CLI, GitHub pull_request payloads from tests/fixtures, and recorded GitHub API responses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "harness/git_repo.hpp"
#include "harness/harness.hpp"
#include "harness/http_replay.hpp"
#include "migrate/lock.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

using namespace previewdb;
using test::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

using Outputs = std::vector<std::pair<std::string, std::string>>;

// $GITHUB_OUTPUT as the runner reads it: `key<<DELIM` ... `DELIM` blocks (and key=value lines).
Outputs parse_outputs(const std::string& text) {
  Outputs out;
  auto lines = util::split(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& line = lines[i];
    if (line.empty()) continue;
    auto h = line.find("<<");
    if (h == std::string::npos) {
      auto eq = line.find('=');
      out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
      continue;
    }
    std::string key = line.substr(0, h), delim = line.substr(h + 2), value;
    bool first = true;
    for (++i; i < lines.size() && lines[i] != delim; ++i) {
      value += (first ? "" : "\n") + lines[i];
      first = false;
    }
    out.emplace_back(key, value);
  }
  return out;
}

std::map<std::string, std::string> as_map(const Outputs& o) {
  return {o.begin(), o.end()};
}

std::vector<std::string> keys_of(const Outputs& o) {
  std::vector<std::string> k;
  for (auto& [key, v] : o) k.push_back(key);
  return k;
}

const std::vector<std::string> k_keys = {"preview",
                                         "reason",
                                         "database-name",
                                         "database-url",
                                         "created",
                                         "reset",
                                         "migrations-applied",
                                         "snapshot",
                                         "behind",
                                         "behind-migrations",
                                         "snapshots-pruned"};

class Ci : public ::testing::Test {
 protected:
  void SetUp() override {
    server().reset();
    // dev has main's schema, applied by previewdb (so the history matches), then a snapshot.
    test::git(repos.work(), {"checkout", "-q", "main"});
    auto m = run_cli({"migrate", "--database", "dev"}, base_env(), repos.work().string());
    ASSERT_EQ(m.code, 0) << m.all();
    auto s = run_cli({"snapshot"}, base_env(), repos.work().string());
    ASSERT_EQ(s.code, 0) << s.all();
    test::git(repos.work(), {"checkout", "-q", "feature"});
  }
  static test::PgServer& server() { return test::PgServer::shared(); }
  test::Env base_env() { return {{"DATABASE_URL", server().url("postgres")}}; }

  // A copy of a payload, edited: PR number, base main, head feature, labels.
  fs::path event(const std::string& payload, long long number,
                 std::optional<std::vector<std::string>> labels = std::nullopt,
                 const std::function<void(nlohmann::json&)>& edit = {}) {
    auto doc = nlohmann::json::parse(
        util::read_file(test::fixtures_dir() / "github/pull_request" / payload));
    doc["number"] = number;
    doc["pull_request"]["number"] = number;
    doc["pull_request"]["base"]["ref"] = "main";
    doc["pull_request"]["head"]["ref"] = "feature";
    if (labels) {
      doc["pull_request"]["labels"] = nlohmann::json::array();
      for (auto& l : *labels) doc["pull_request"]["labels"].push_back({{"name", l}});
    }
    if (edit) edit(doc);
    fs::path p = files.path() / (payload + "." + std::to_string(++m_events) + ".json");
    util::write_file_atomic(p, doc.dump());
    return p;
  }

  struct GhRun {
    test::CliResult r;
    std::string output, summary, genv;
    Outputs outputs() const { return parse_outputs(output); }
  };
  GhRun github(const fs::path& ev, std::vector<std::string> args = {}, test::Env extra = {},
               const std::string& event_name = "pull_request") {
    std::string n = std::to_string(++m_runs);
    fs::path out = files.path() / ("out" + n), sum = files.path() / ("sum" + n),
             genv = files.path() / ("env" + n);
    test::Env e = base_env();
    e["GITHUB_ACTIONS"] = "true";
    e["GITHUB_EVENT_NAME"] = event_name;
    e["GITHUB_EVENT_PATH"] = ev.string();
    e["GITHUB_OUTPUT"] = out.string();
    e["GITHUB_STEP_SUMMARY"] = sum.string();
    e["GITHUB_ENV"] = genv.string();
    for (auto& [k, v] : extra) e[k] = v;
    args.insert(args.begin(), "ci");
    GhRun g{run_cli(args, e, repos.work().string()), "", "", ""};
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
    EXPECT_THAT(without_mask, Not(HasSubstr(server().password()))) << where;
  }
  void expect_clean(const GhRun& g) {
    expect_no_password(g.r.out, "stdout");
    expect_no_password(g.r.err, "stderr");
    expect_no_password(g.output, "GITHUB_OUTPUT");
    expect_no_password(g.summary, "GITHUB_STEP_SUMMARY");
  }
  bool has_column(const std::string& db, const std::string& column) {
    return server()
               .connect(db)
               .exec(
                   "SELECT 1 FROM information_schema.columns WHERE table_name = 'users' AND "
                   "column_name = $1",
                   {column})
               .rows() == 1;
  }

  test::GitRepos repos;
  util::TempDir files{"previewdb-ci-test-"};
  int m_events = 0, m_runs = 0;
};

}  // namespace

TEST_F(Ci, OpenedCreatesThePreviewWithTheOutputs) {
  auto g = github(event("opened.payload.json", 41), {"--export-env"});
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto o = g.outputs();
  EXPECT_EQ(keys_of(o), k_keys) << g.output;
  auto m = as_map(o);
  EXPECT_EQ(m["preview"], "true");
  EXPECT_EQ(m["reason"], "migrations-changed");
  EXPECT_EQ(m["database-name"], "pr_41");
  EXPECT_EQ(m["created"], "true");
  EXPECT_EQ(m["reset"], "false");
  EXPECT_EQ(m["migrations-applied"], "1");
  EXPECT_THAT(m["snapshot"], HasSubstr("dev"));
  EXPECT_THAT(m["database-url"], HasSubstr("/pr_41"));
  EXPECT_TRUE(has_column("pr_41", "email"));
  EXPECT_FALSE(has_column("dev", "email")) << "the shared database is never migrated";
  EXPECT_THAT(g.summary, HasSubstr("| preview | true |"));
  EXPECT_THAT(g.r.err, HasSubstr("::add-mask::" + server().password()));
  EXPECT_THAT(g.r.err, HasSubstr("::group::"));
  // --export-env hands later steps the full URL (masked by the runner).
  EXPECT_THAT(g.genv, HasSubstr("DATABASE_URL<<"));
  EXPECT_THAT(g.genv, HasSubstr(server().password()));
  expect_clean(g);
}

TEST_F(Ci, SynchronizeAppliesOnlyTheNewMigration) {
  ASSERT_EQ(github(event("opened.payload.json", 42)).r.code, 0);
  repos.commit_file("migrations/schema/0003_add_phone.sql",
                    "ALTER TABLE users ADD COLUMN phone text;\n", "phone");
  auto g = github(event("synchronize.payload.json", 42));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto m = as_map(g.outputs());
  EXPECT_EQ(m["created"], "false");
  EXPECT_EQ(m["reset"], "false");
  EXPECT_EQ(m["migrations-applied"], "1");
  EXPECT_TRUE(has_column("pr_42", "phone"));
  // A re-run is idempotent.
  auto again = github(event("synchronize.payload.json", 42));
  ASSERT_EQ(again.r.code, 0) << again.r.all();
  EXPECT_EQ(as_map(again.outputs())["migrations-applied"], "0");
}

TEST_F(Ci, EditedMigrationResetsThePreview) {
  ASSERT_EQ(github(event("opened.payload.json", 43)).r.code, 0);
  repos.commit_file("migrations/schema/0002_add_email.sql",
                    "ALTER TABLE users ADD COLUMN email_address text;\n", "rename column");
  auto g = github(event("synchronize.payload.json", 43));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto m = as_map(g.outputs());
  EXPECT_EQ(m["reset"], "true");
  EXPECT_EQ(m["migrations-applied"], "1");
  EXPECT_THAT(g.r.err, HasSubstr("diverged"));
  EXPECT_TRUE(has_column("pr_43", "email_address"));
  EXPECT_FALSE(has_column("pr_43", "email"));

  repos.commit_file("migrations/schema/0002_add_email.sql",
                    "ALTER TABLE users ADD COLUMN email2 text;\n", "again");
  auto refused = github(event("synchronize.payload.json", 43), {"--on-divergence", "fail"});
  EXPECT_EQ(refused.r.code, 6) << refused.r.all();
  EXPECT_THAT(refused.r.err, HasSubstr("pr_43 has diverged"));
}

TEST_F(Ci, NoSchemaChangeMeansNoPreview) {
  test::git(repos.work(), {"checkout", "-q", "-b", "docs", "main"});
  repos.commit_file("docs/readme.md", "x\n", "docs");
  auto g = github(event("opened.payload.json", 44, std::vector<std::string>{"bug"}));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto m = as_map(g.outputs());
  EXPECT_EQ(keys_of(g.outputs()), k_keys);
  EXPECT_EQ(m["preview"], "false");
  EXPECT_EQ(m["reason"], "no-changes");
  EXPECT_EQ(m["database-name"], "postgres");
  EXPECT_FALSE(server().database_exists("pr_44"));
  expect_clean(g);
}

TEST_F(Ci, LabelAsksForAPreview) {
  test::git(repos.work(), {"checkout", "-q", "-b", "docs", "main"});
  repos.commit_file("docs/readme.md", "x\n", "docs");
  auto g = github(event("labeled.payload.json", 45, std::vector<std::string>{"bug", "preview-db"}));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto m = as_map(g.outputs());
  EXPECT_EQ(m["preview"], "true");
  EXPECT_EQ(m["reason"], "label");
  EXPECT_EQ(m["migrations-applied"], "0");
  EXPECT_TRUE(server().database_exists("pr_45"));
  auto renamed = github(event("labeled.payload.json", 46, std::vector<std::string>{"preview-db"}),
                        {"--label", "needs-db"});
  EXPECT_EQ(as_map(renamed.outputs())["preview"], "false");
}

TEST_F(Ci, ClosedDropsThePreview) {
  ASSERT_EQ(github(event("opened.payload.json", 47)).r.code, 0);
  ASSERT_TRUE(server().database_exists("pr_47"));
  auto g = github(event("closed.payload.json", 47));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  auto m = as_map(g.outputs());
  EXPECT_EQ(m["preview"], "false");
  EXPECT_EQ(m["reason"], "closed");
  EXPECT_FALSE(server().database_exists("pr_47"));
  EXPECT_THAT(g.r.err, HasSubstr("dropped pr_47"));
  // Closing again (or a PR that never had one) is fine.
  auto again = github(event("closed.payload.json", 47, std::nullopt,
                            [](auto& d) { d["pull_request"]["merged"] = true; }));
  EXPECT_EQ(again.r.code, 0) << again.r.all();
}

TEST_F(Ci, NetlifyRunsTheBuildWithThePreviewUrl) {
  fs::path seen = files.path() / "seen";
  test::Env e = base_env();
  e["NETLIFY"] = "true";
  e["CONTEXT"] = "deploy-preview";
  e["REVIEW_ID"] = "7";
  e["HEAD"] = "feature";
  e["REPOSITORY_URL"] = "https://x-access-token:ghs_netlifysecret123@github.com/acme/shop";
  auto r =
      run_cli({"ci", "--", "sh", "-c", "echo \"$DATABASE_URL\" > " + seen.string() + "; exit 3"}, e,
              repos.work().string());
  EXPECT_EQ(r.code, 3) << r.all();  // the build's exit status
  std::string url = util::read_file(seen);
  EXPECT_THAT(url, HasSubstr("/pr_7"));
  EXPECT_THAT(url, HasSubstr(server().password()));
  EXPECT_THAT(r.all(), Not(HasSubstr("ghs_netlifysecret123")));
  expect_no_password(r.all(), "netlify output");

  e["CONTEXT"] = "production";
  auto prod = run_cli({"ci", "--json"}, e, repos.work().string());
  ASSERT_EQ(prod.code, 0) << prod.all();
  auto j = nlohmann::json::parse(prod.out);
  EXPECT_EQ(j["preview"], false);
  e["CONTEXT"] = "deploy-preview";
  e["REVIEW_ID"] = "abc";
  auto bad = run_cli({"ci"}, e, repos.work().string());
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("REVIEW_ID must be a pull request number"));
}

TEST_F(Ci, NetlifyEnvFile) {
  test::Env e = base_env();
  e["NETLIFY"] = "true";
  e["CONTEXT"] = "deploy-preview";
  e["REVIEW_ID"] = "8";
  fs::path env_file = files.path() / ".env";
  util::write_file_atomic(env_file, "OTHER=1\n");
  auto r = run_cli({"ci", "--env-file", env_file.string()}, e, repos.work().string());
  ASSERT_EQ(r.code, 0) << r.all();
  std::string text = util::read_file(env_file);
  EXPECT_THAT(text, HasSubstr("OTHER=1"));
  EXPECT_THAT(text, HasSubstr("DATABASE_URL="));
  EXPECT_THAT(text, HasSubstr("/pr_8"));
  EXPECT_EQ(fs::status(env_file).permissions() & fs::perms::others_read, fs::perms::none);
}

TEST_F(Ci, ConcurrentRunsForOnePrShareOneDatabase) {
  auto ev = event("opened.payload.json", 50);
  std::vector<int> pids;
  std::vector<fs::path> outs;
  for (int i = 0; i < 8; ++i) {
    test::Env e = base_env();
    if (i % 2 == 0) {
      outs.push_back(files.path() / ("c-out" + std::to_string(i)));
      e["GITHUB_ACTIONS"] = "true";
      e["GITHUB_EVENT_NAME"] = "pull_request";
      e["GITHUB_EVENT_PATH"] = ev.string();
      e["GITHUB_OUTPUT"] = outs.back().string();
    } else {
      e["NETLIFY"] = "true";
      e["CONTEXT"] = "deploy-preview";
      e["REVIEW_ID"] = "50";
      // Netlify names the repository it built (the payload's): the same preview, not another's.
      e["REPOSITORY_URL"] = "https://github.com/acme/shop";
    }
    pids.push_back(test::start_cli({"ci"}, e, repos.work().string()));
  }
  for (int pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a run failed: " << status;
  }
  int created = 0;
  for (const auto& out : outs) {
    auto m = as_map(parse_outputs(util::read_file(out)));
    EXPECT_EQ(m["database-name"], "pr_50");
    created += m["created"] == "true";
  }
  EXPECT_LE(created, 1);
  EXPECT_TRUE(has_column("pr_50", "email"));
}

TEST_F(Ci, ShallowCloneWithoutTheBase) {
  auto shallow = repos.shallow_clone("shallow", "feature");
  test::Env e = base_env();
  auto r = run_cli({"ci", "--provider", "generic", "--pr", "9", "--dry-run"}, e, shallow.string());
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_THAT(r.err, HasSubstr("\"origin/main\" is not in this clone"));
  EXPECT_THAT(r.err, HasSubstr("fetch-depth: 0"));
  EXPECT_THAT(r.err, HasSubstr("git fetch origin main"));
}

TEST_F(Ci, ShallowCloneFallsBackToTheApi) {
  auto shallow = repos.shallow_clone("shallow", "feature");
  test::ReplayServer api(test::ReplayServer::load(test::github_fixture("pr-files-paginated.json")));
  test::Env e = {{"DATABASE_URL", "postgresql://app:unused-password@127.0.0.1:1/postgres"},
                 {"GITHUB_TOKEN", "ghp_integration_token_123456"},
                 {"GITHUB_REPOSITORY", "PyGithub/PyGithub"},
                 {"GITHUB_API_URL", api.url()}};
  // The recorded PR #31 changed files under src/github: that is the migrations path here.
  auto r = run_cli({"ci", "--provider", "generic", "--pr", "31", "--migrations-path", "src/github",
                    "--dry-run", "--json"},
                   e, shallow.string());
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["preview"], true);
  EXPECT_EQ(j["reason"], "migrations-changed");
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_THAT(r.err, HasSubstr("asking the GitHub API"));
  EXPECT_THAT(r.all(), Not(HasSubstr("ghp_integration_token_123456")));
  EXPECT_EQ(api.requests().size(), 3u);

  // The recorded 401, answered for this PR's files: a clear error, no token in it.
  auto recorded = test::ReplayServer::load(test::github_fixture("unauthorized.json"));
  recorded[0].path = "/repos/PyGithub/PyGithub/pulls/28/files?per_page=100";
  test::ReplayServer denied(recorded);
  e["GITHUB_API_URL"] = denied.url();
  auto r401 =
      run_cli({"ci", "--provider", "generic", "--pr", "28", "--dry-run"}, e, shallow.string());
  EXPECT_EQ(r401.code, 1) << r401.all();
  EXPECT_THAT(r401.err, HasSubstr("rejected the token"));
  EXPECT_THAT(r401.err, HasSubstr("pull request #28 of PyGithub/PyGithub"));
  EXPECT_THAT(r401.all(), Not(HasSubstr("ghp_integration_token_123456")));
}

TEST_F(Ci, DryRunTouchesNoDatabase) {
  test::Env e = {{"DATABASE_URL", "postgresql://app:dry-run-password@127.0.0.1:1/postgres"}};
  auto r = run_cli({"ci", "--provider", "generic", "--pr", "12", "--dry-run", "--json"}, e,
                   repos.work().string());
  ASSERT_EQ(r.code, 0) << r.all();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["preview"], true);
  EXPECT_EQ(j["database-name"], "pr_12");
  EXPECT_EQ(j["database-url"], "postgresql://app@127.0.0.1:1/pr_12");
  EXPECT_THAT(r.all(), Not(HasSubstr("dry-run-password")));
}

TEST_F(Ci, HostileEventInput) {
  std::string text = util::read_file(event("opened.payload.json", 60));
  fs::path truncated = files.path() / "truncated.json";
  util::write_file_atomic(truncated, text.substr(0, text.size() / 3));
  auto g = github(truncated);
  EXPECT_EQ(g.r.code, 2);
  EXPECT_THAT(g.r.err, HasSubstr("cannot parse the GitHub event"));
  EXPECT_TRUE(g.output.empty());

  auto no_number = event("opened.payload.json", 60, std::nullopt, [](auto& d) {
    d.erase("number");
    d["pull_request"].erase("number");
  });
  auto g2 = github(no_number);
  EXPECT_EQ(g2.r.code, 2);
  EXPECT_THAT(g2.r.err, HasSubstr("no valid pull request number"));

  // Branch names and labels with newlines, quotes, % and :: cannot add or change outputs.
  test::git(repos.work(), {"checkout", "-q", "-b", "docs", "main"});
  repos.commit_file("docs/readme.md", "x\n", "docs");
  std::string evil = "x\npreview=false\nreason<<EOF\nclosed\nEOF\n::set-output name=a::b %0A \"'";
  auto hostile = event("labeled.payload.json", 61,
                       std::vector<std::string>{evil, "preview-db", "50% ::warning::x"},
                       [&](auto& d) { d["pull_request"]["head"]["ref"] = evil; });
  auto g3 = github(hostile, {"--export-env"});
  ASSERT_EQ(g3.r.code, 0) << g3.r.all();
  EXPECT_EQ(keys_of(g3.outputs()), k_keys) << g3.output;
  auto m = as_map(g3.outputs());
  EXPECT_EQ(m["preview"], "true");
  EXPECT_EQ(m["reason"], "label");
  EXPECT_EQ(m["database-name"], "pr_61");
  expect_clean(g3);
}

TEST_F(Ci, MigrateCommandRunsUnderTheLockWithThePreviewUrl) {
  fs::path seen = files.path() / "migrator-saw";
  auto g = github(event("opened.payload.json", 62),
                  {"--migrate-command", "echo \"$DATABASE_URL\" > " + seen.string()});
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_THAT(util::read_file(seen), HasSubstr("/pr_62"));
  EXPECT_FALSE(has_column("pr_62", "email")) << "the team's migrator ran instead of ours";
  EXPECT_EQ(as_map(g.outputs())["preview"], "true");
  expect_clean(g);
}

TEST_F(Ci, ConcurrentRunsOnADivergedPreviewResetItOnce) {
  ASSERT_EQ(github(event("opened.payload.json", 52)).r.code, 0);
  repos.commit_file("migrations/schema/0002_add_email.sql",
                    "ALTER TABLE users ADD COLUMN email_address text;\n", "edit an applied one");
  auto ev = event("synchronize.payload.json", 52);
  // A migration holds pr_52's migration lock while the runs start. Checked without that lock,
  // every run saw the diverged preview and reset it, killing this session and each other's runs.
  auto holder = server().connect("pr_52");
  std::string key = std::to_string(migrate::k_advisory_key);
  holder.exec("SELECT pg_advisory_lock(" + key + ")");
  std::vector<int> pids;
  std::vector<fs::path> outs;
  for (int i = 0; i < 8; ++i) {
    outs.push_back(files.path() / ("d-out" + std::to_string(i)));
    test::Env e = base_env();
    e["GITHUB_ACTIONS"] = "true";
    e["GITHUB_EVENT_NAME"] = "pull_request";
    e["GITHUB_EVENT_PATH"] = ev.string();
    e["GITHUB_OUTPUT"] = outs.back().string();
    pids.push_back(test::start_cli({"ci"}, e, repos.work().string()));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // let them reach the lock
  bool held_to_the_end = true;
  try {
    holder.exec("SELECT pg_advisory_unlock(" + key + ")");
  } catch (const std::exception&) {
    held_to_the_end = false;  // a DROP ... WITH (FORCE) ended the session
  }
  for (int pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a run failed: " << status;
  }
  int resets = 0, applied = 0;
  for (const auto& out : outs) {
    auto m = as_map(parse_outputs(util::read_file(out)));
    EXPECT_EQ(m["database-name"], "pr_52");
    resets += m["reset"] == "true";
    applied += std::stoi(m["migrations-applied"]);
  }
  // The first run to get the preview re-creates and migrates it; the others find it current.
  EXPECT_TRUE(held_to_the_end) << "a run reset the preview while a migration held its lock";
  EXPECT_EQ(resets, 1);
  EXPECT_EQ(applied, 1);
  auto history = server().connect("pr_52").exec(
      "SELECT id, count(*) FROM _previewdb.schema_migrations GROUP BY id ORDER BY id");
  ASSERT_EQ(history.rows(), 2) << "0001 from the snapshot, the edited 0002";
  for (int i = 0; i < history.rows(); ++i) {
    EXPECT_EQ(history.get_int(i, 1), 1) << history.get(i, 0) << " recorded more than once";
  }
  EXPECT_TRUE(has_column("pr_52", "email_address"));
  EXPECT_FALSE(has_column("pr_52", "email"));
}

TEST(CiArguments, AStrayCommandWithoutDoubleDashIsRefused) {
  auto r = previewdb::test::run_cli(
      {"ci", "--dry-run", "--provider", "generic", "--pr", "3", "npm", "run", "build"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("unexpected argument \"npm\" for 'previewdb ci'"));
  EXPECT_THAT(r.err, ::testing::HasSubstr("previewdb ci [options] -- npm"));
}

TEST_F(Ci, FirstRunOnAServerWithoutASnapshotTakesOne) {
  // Drop the fixture's snapshot: a fresh server where dev has main's schema and nothing else.
  auto conn = server().connect();
  auto snaps = conn.exec("SELECT datname FROM pg_database WHERE datname LIKE 'snap_dev_%'");
  for (int i = 0; i < snaps.rows(); ++i) {
    conn.exec("ALTER DATABASE " + conn.quote_ident(snaps.get(i, 0)) + " IS_TEMPLATE false");
    conn.exec("DROP DATABASE " + conn.quote_ident(snaps.get(i, 0)));
  }
  auto g = github(event("opened.payload.json", 61));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_THAT(g.r.err, HasSubstr("no snapshot of 'dev' yet: taking one"));
  auto m = as_map(g.outputs());
  EXPECT_EQ(m["preview"], "true");
  EXPECT_EQ(m["database-name"], "pr_61");
  EXPECT_EQ(m["migrations-applied"], "1");
  EXPECT_THAT(m["snapshot"], HasSubstr("snap_dev_"));
  // The next PR reuses it rather than taking another.
  auto g2 = github(event("opened.payload.json", 62));
  ASSERT_EQ(g2.r.code, 0) << g2.r.all();
  EXPECT_THAT(g2.r.err, Not(HasSubstr("taking one")));
  EXPECT_EQ(as_map(g2.outputs())["snapshot"], m["snapshot"]);
}

TEST_F(Ci, GenericRunRecordsTheCheckedOutBranch) {
  auto r = run_cli({"ci", "--provider", "generic", "--pr", "63", "--base-ref", "main"}, base_env(),
                   repos.work().string());
  ASSERT_EQ(r.code, 0) << r.all();
  auto list = nlohmann::json::parse(run_cli({"list", "--json"}, base_env()).out);
  bool found = false;
  for (const auto& d : list) {
    if (d["name"] != "pr_63") continue;
    found = true;
    EXPECT_EQ(d["branch"], "feature");
    EXPECT_EQ(d["pr_number"], 63);
  }
  EXPECT_TRUE(found);
}
