#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include <map>

#include "ci/decision.hpp"
#include "ci/outputs.hpp"
#include "util/error.hpp"

using namespace previewdb;
using ::testing::HasSubstr;

namespace {

// Parses $GITHUB_OUTPUT the way the runner does (actions/runner SetOutputFileCommand): lines
// `key=value`, or `key<<DELIM` ... `DELIM`.
std::vector<std::pair<std::string, std::string>> parse_github_file(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  auto next_line = [&](std::string& line) {
    if (pos >= text.size()) return false;
    size_t nl = text.find('\n', pos);
    line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    return true;
  };
  std::string line;
  while (next_line(line)) {
    if (line.empty()) continue;
    auto heredoc = line.find("<<");
    auto eq = line.find('=');
    if (heredoc != std::string::npos && (eq == std::string::npos || heredoc < eq)) {
      std::string key = line.substr(0, heredoc), delim = line.substr(heredoc + 2), value, l;
      bool first = true, closed = false;
      while (next_line(l)) {
        if (l == delim) {
          closed = true;
          break;
        }
        value += (first ? "" : "\n") + l;
        first = false;
      }
      EXPECT_TRUE(closed) << "unterminated heredoc for " << key;
      out.emplace_back(key, value);
    } else {
      out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
    }
  }
  return out;
}

ci::Facts hostile_facts() {
  ci::Facts f;
  f.preview = true;
  f.reason = ci::Reason::label;
  f.database_name = "pr_12";
  f.database_url = "postgresql://app@db:5432/pr_12";
  f.created = true;
  f.migrations_applied = 2;
  // What an attacker controls ends up in the snapshot/message only through names, but the
  // writer must not trust any value.
  f.snapshot = "snap\npreview=false\nreason<<EOF\nx\nEOF\n::add-mask::x %0A";
  f.message = "branch \"feat|x\"\n| injected | row |";
  return f;
}

}  // namespace

TEST(CiOutputs, ExactKeysInOrder) {
  auto pairs = ci::output_pairs(ci::Facts{});
  std::vector<std::string> keys;
  for (auto& [k, v] : pairs) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"preview", "reason", "database-name", "database-url",
                                            "created", "reset", "migrations-applied", "snapshot",
                                            "behind", "behind-migrations", "snapshots-pruned"}));
  EXPECT_EQ(pairs[0].second, "false");
  EXPECT_EQ(pairs[1].second, "no-changes");
}

TEST(CiOutputs, ReasonsSpelledAsDocumented) {
  EXPECT_EQ(ci::to_string(ci::Reason::migrations_changed), "migrations-changed");
  EXPECT_EQ(ci::to_string(ci::Reason::label), "label");
  EXPECT_EQ(ci::to_string(ci::Reason::forced), "forced");
  EXPECT_EQ(ci::to_string(ci::Reason::no_changes), "no-changes");
  EXPECT_EQ(ci::to_string(ci::Reason::closed), "closed");
}

TEST(CiOutputs, HeredocWithRandomDelimiterCannotBeInjected) {
  auto facts = hostile_facts();
  std::string text = ci::github_output_text(ci::output_pairs(facts));
  auto parsed = parse_github_file(text);
  auto expected = ci::output_pairs(facts);
  EXPECT_EQ(parsed, expected);  // exactly the keys, values round-trip verbatim
  // Each delimiter is fresh.
  EXPECT_NE(text.find("<<ghadelimiter_"), std::string::npos);
  auto first = text.substr(text.find("<<") + 2, text.find('\n') - text.find("<<") - 2);
  EXPECT_EQ(text.find("<<" + first, text.find('\n')), std::string::npos);
}

TEST(CiOutputs, DelimiterFoundInValueIsReplaced) {
  int calls = 0;
  auto gen = [&] { return ++calls == 1 ? std::string("EOF") : std::string("SAFE"); };
  std::string text = ci::github_output_text({{"snapshot", "a\nEOF\nb"}}, gen);
  EXPECT_EQ(text, "snapshot<<SAFE\na\nEOF\nb\nSAFE\n");
  auto always_eof = [] { return std::string("EOF"); };
  EXPECT_THROW(ci::github_output_text({{"snapshot", "EOF"}}, always_eof), Error);
  EXPECT_THROW(ci::github_output_text({{"bad\nkey", "v"}}, always_eof), Error);
}

TEST(CiOutputs, WorkflowCommandsEscapeData) {
  EXPECT_EQ(ci::add_mask_command("p%ss\nword"), "::add-mask::p%25ss%0Aword\n");
  EXPECT_EQ(ci::group_command("migrate pr_1\n::error::x"), "::group::migrate pr_1%0A::error::x\n");
  EXPECT_EQ(ci::endgroup_command(), "::endgroup::\n");
}

TEST(CiOutputs, StepSummaryEscapesPipesAndNewlines) {
  std::string md = ci::step_summary_markdown(hostile_facts());
  EXPECT_NE(md.find("| preview | true |"), std::string::npos) << md;
  EXPECT_NE(md.find("| reason | label |"), std::string::npos);
  EXPECT_NE(md.find("feat\\|x"), std::string::npos);
  EXPECT_EQ(md.find("\n| injected"), std::string::npos) << md;
  // Every table line has exactly three unescaped pipes.
  size_t pos = md.find("|---|---|\n") + 10;
  while (pos < md.size() && md[pos] == '|') {
    size_t end = md.find('\n', pos);
    std::string row = md.substr(pos, end - pos);
    int pipes = 0;
    for (size_t i = 0; i < row.size(); ++i)
      pipes += row[i] == '|' && (i == 0 || row[i - 1] != '\\');
    EXPECT_EQ(pipes, 3) << row;
    pos = end + 1;
  }
  ci::Facts plan;
  plan.dry_run = true;
  EXPECT_NE(ci::step_summary_markdown(plan).find("plan"), std::string::npos);
}

TEST(CiOutputs, Dotenv) {
  EXPECT_EQ(ci::dotenv_text({{"DATABASE_URL", "postgresql://u:p@h/pr_1"}}),
            "DATABASE_URL=postgresql://u:p@h/pr_1\n");
  EXPECT_EQ(ci::dotenv_text({{"X", "a b\n\"$c\""}}), "X=\"a b\\n\\\"\\$c\\\"\"\n");
}

TEST(CiOutputs, GithubEnvUsesHeredoc) {
  auto text = ci::github_env_text({{"DATABASE_URL", "postgresql://u:p@h/pr_1"}},
                                  [] { return std::string("END"); });
  EXPECT_EQ(text, "DATABASE_URL<<END\npostgresql://u:p@h/pr_1\nEND\n");
}

TEST(CiOutputs, Json) {
  auto j = ci::to_json(hostile_facts());
  EXPECT_EQ(j["preview"], true);
  EXPECT_EQ(j["reason"], "label");
  EXPECT_EQ(j["database-name"], "pr_12");
  EXPECT_EQ(j["migrations-applied"], 2);
  EXPECT_EQ(j["created"], true);
  // The keys added with the base-branch flow are spelled with '_' in JSON (behind_migrations).
  for (auto [k, v] : ci::output_pairs(ci::Facts{})) {
    if (k == "behind-migrations" || k == "snapshots-pruned")
      std::replace(k.begin(), k.end(), '-', '_');
    EXPECT_TRUE(j.contains(k)) << k;
  }
}

TEST(CiDecision, Order) {
  ci::DecisionInput in;
  EXPECT_EQ(ci::decide(in).action, ci::Action::none);  // no PR
  in.pr_number = 12;
  EXPECT_EQ(ci::decide(in).reason, ci::Reason::no_changes);
  EXPECT_FALSE(ci::decide(in).preview());
  in.labels = {"bug", "preview-db"};
  EXPECT_EQ(ci::decide(in).reason, ci::Reason::label);
  in.label = "needs-db";
  EXPECT_EQ(ci::decide(in).reason, ci::Reason::no_changes);
  in.changed_migrations = {"migrations/schema/0002.sql"};
  EXPECT_EQ(ci::decide(in).reason, ci::Reason::migrations_changed);
  EXPECT_TRUE(ci::decide(in).preview());
  in.forced = true;
  EXPECT_EQ(ci::decide(in).reason, ci::Reason::forced);
  in.closed = true;
  EXPECT_EQ(ci::decide(in).action, ci::Action::drop);
  EXPECT_EQ(ci::decide(in).reason, ci::Reason::closed);
}

TEST(CiOutputs, UnknownAppliedCountIsSaidNotZero) {
  // --migrate-command with a tool whose history previewdb cannot read (issue 8 §6).
  ci::Facts f;
  f.preview = true;
  f.migrations_applied = std::nullopt;
  std::map<std::string, std::string> pairs;
  for (auto& [k, v] : ci::output_pairs(f)) pairs[k] = v;
  EXPECT_EQ(pairs["migrations-applied"], "unknown");
  EXPECT_TRUE(ci::to_json(f)["migrations-applied"].is_null());
  EXPECT_THAT(ci::step_summary_markdown(f), HasSubstr("| migrations applied | unknown |"));
  f.migrations_applied = 0;
  EXPECT_EQ(ci::to_json(f)["migrations-applied"], 0);
}
