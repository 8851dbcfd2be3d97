// The lint rules on labelled snippets (tests/fixtures/lint/*.sql, first line "-- expect: ids"),
// the context across files, ignore comments, grading by size and the output shapes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness/harness.hpp"
#include "lint/lint.hpp"
#include "migrate/splitter.hpp"

using namespace previewdb;
namespace fs = std::filesystem;

namespace {

lint::Source source(const std::string& file, const std::string& text) {
  lint::Source s;
  s.file = file;
  s.text = text;
  s.statements = migrate::split_statements(text).statements;
  return s;
}

std::vector<std::string> ids(const std::vector<lint::Finding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) out.push_back(f.rule);
  return out;
}

std::vector<lint::Finding> lint_text(const std::string& text) {
  lint::Context context;
  return lint::lint(source("m.sql", text), context);
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(LintSnippets, EachSnippetYieldsItsExpectedRules) {
  fs::path dir = test::fixtures_dir() / "lint";
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".sql") continue;
    ++files;
    std::string text = read(e.path());
    std::string first = text.substr(0, text.find('\n'));
    ASSERT_EQ(first.rfind("-- expect:", 0), 0u) << e.path() << " has no expect line";
    std::vector<std::string> expected;
    std::istringstream words(first.substr(10));
    for (std::string w; words >> w;) {
      if (w != "none") expected.push_back(w);
    }
    for (const auto& id : expected) {
      EXPECT_NE(lint::find_rule(id), nullptr) << e.path() << ": unknown rule " << id;
    }
    EXPECT_EQ(ids(lint_text(text)), expected) << e.path().filename();
  }
  EXPECT_GE(files, 15);
}

TEST(Lint, FindingsCarryFileLineSeverityAndHint) {
  auto f = lint_text("SET lock_timeout = '1s';\n\nCREATE INDEX i ON t (a);\n");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].file, "m.sql");
  EXPECT_EQ(f[0].line, 3);
  EXPECT_EQ(f[0].severity, lint::Severity::warning);
  EXPECT_EQ(f[0].table, "public.t");
  EXPECT_EQ(f[0].message,
            "CREATE INDEX \"i\" on public.t without CONCURRENTLY blocks writes while it builds");
  EXPECT_EQ(f[0].hint, "CREATE INDEX CONCURRENTLY, in a migration that runs outside a transaction");
}

TEST(Lint, ATableCreatedInAnEarlierFileOfTheRunIsNew) {
  lint::Context context;
  auto first =
      lint::lint(source("1.sql", "CREATE TABLE app.t (id bigint PRIMARY KEY, a text);"), context);
  EXPECT_TRUE(first.empty());
  auto second = lint::lint(
      source("2.sql", "CREATE INDEX t_a ON app.t (a);\nALTER TABLE app.t ALTER a TYPE int;"),
      context);
  EXPECT_TRUE(second.empty()) << ids(second).size();
  // Another schema's table of the same name is not new.
  auto third = lint::lint(source("3.sql", "CREATE INDEX t_a ON t (a);"), context);
  EXPECT_EQ(ids(third), (std::vector<std::string>{"index-not-concurrent"}));
}

TEST(Lint, ARenamedNewTableStaysNewAndADroppedOneIsNoLongerKnown) {
  auto f = lint_text(
      "CREATE TABLE a (id bigint);\nALTER TABLE a RENAME TO b;\nCREATE INDEX ON b (id);\n"
      "DROP TABLE b;\nSET lock_timeout = '1s';\nCREATE INDEX ON b (id);\n");
  EXPECT_EQ(ids(f), (std::vector<std::string>{"index-not-concurrent"}));
  EXPECT_EQ(f[0].line, 6);
}

TEST(Lint, DbmateRunsTheFileInATransaction) {
  lint::Context context;
  auto s = source("db/migrations/1_idx.sql", "CREATE INDEX CONCURRENTLY i ON t (a);");
  s.runs_in_transaction = true;
  EXPECT_EQ(ids(lint::lint(s, context)), (std::vector<std::string>{"concurrently-in-transaction"}));
  s.runs_in_transaction = false;
  EXPECT_TRUE(lint::lint(s, context).empty());
}

TEST(Lint, IgnoreCommentsNameRulesOnlyInComments) {
  EXPECT_EQ(lint::ignored_rules("-- previewdb:ignore a-b, c d\n"),
            (std::set<std::string>{"a-b", "c", "d"}));
  EXPECT_TRUE(lint::ignored_rules("SELECT '-- previewdb:ignore x'").empty());
  EXPECT_EQ(lint::ignored_rules("SELECT 'it''s' -- previewdb:ignore x"),
            (std::set<std::string>{"x"}));
  // A comment that names another rule does not hide this one.
  auto f = lint_text("-- previewdb:ignore truncate\nSET lock_timeout = '1s';\nDELETE FROM t;");
  EXPECT_EQ(ids(f), (std::vector<std::string>{"delete-without-where"}));
}

TEST(Lint, AFileThatDoesNotParseIsAFinding) {
  lint::Context context;
  auto s = source("m.sql", "SELECT 1;\nCREATE TABLE (;\n");
  s.syntax_error = migrate::split_statements(s.text).error;
  ASSERT_TRUE(s.syntax_error);
  auto f = lint::lint(s, context);
  ASSERT_EQ(ids(f), (std::vector<std::string>{"syntax-error"}));
  EXPECT_EQ(f[0].line, 2);
  EXPECT_EQ(f[0].message, "syntax error at or near \"(\"");
}

TEST(LintGrade, SizesGradeLockFindingsOnly) {
  auto f = lint_text(
      "CREATE INDEX a_i ON small (x);\nCREATE INDEX b_i ON mid (x);\nCREATE INDEX c_i ON big "
      "(x);\nCREATE INDEX d_i ON unknown (x);\nDELETE FROM small;\nCREATE INDEX e_i ON fat (x);");
  ASSERT_EQ(f.size(), 6u);
  auto tables = lint::tables_to_measure(f);
  EXPECT_EQ(tables, (std::set<std::string>{"public.small", "public.mid", "public.big",
                                           "public.unknown", "public.fat"}));
  std::map<std::string, lint::TableSize> sizes = {
      {"public.small", {8192, 12}},
      {"public.mid", {50LL << 20, 200'000}},
      {"public.big", {5LL << 30, 12'000'000}},
      {"public.fat", {2LL << 30, -1}},  // never analysed: bytes decide
  };
  lint::grade(f, sizes);
  auto by_line = [&](int line, const std::string& rule) -> const lint::Finding& {
    for (const auto& x : f) {
      if (x.line == line && x.rule == rule) return x;
    }
    throw std::runtime_error("no finding");
  };
  EXPECT_EQ(by_line(1, "index-not-concurrent").severity, lint::Severity::info);
  EXPECT_EQ(by_line(1, "index-not-concurrent").ungraded, lint::Severity::warning);
  EXPECT_EQ(by_line(2, "index-not-concurrent").severity, lint::Severity::warning);
  EXPECT_FALSE(by_line(2, "index-not-concurrent").ungraded);
  EXPECT_EQ(by_line(3, "index-not-concurrent").severity, lint::Severity::error);
  EXPECT_EQ(by_line(4, "index-not-concurrent").severity, lint::Severity::warning);
  EXPECT_FALSE(by_line(4, "index-not-concurrent").size);
  EXPECT_EQ(by_line(6, "index-not-concurrent").severity, lint::Severity::error);
  // Data loss is not graded by size: 12 deleted rows are still deleted.
  EXPECT_EQ(by_line(5, "delete-without-where").severity, lint::Severity::error);
  EXPECT_FALSE(by_line(5, "delete-without-where").size);
  auto text = lint::format_text(f, 1);
  EXPECT_NE(text.find("m.sql:3: error [index-not-concurrent] CREATE INDEX \"c_i\" on public.big "
                      "without CONCURRENTLY blocks writes while it builds [public.big: ~12000000 "
                      "rows, 5.0 GB, warning graded error]\n"),
            std::string::npos)
      << text;
}

TEST(LintOutput, JsonHasStableKeys) {
  auto f = lint_text("SET lock_timeout = '1s';\nTRUNCATE t;");
  auto j = lint::to_json(f, 1);
  EXPECT_EQ(j["files"], 1);
  ASSERT_EQ(j["findings"].size(), 1u);
  const auto& x = j["findings"][0];
  for (const char* k : {"rule", "severity", "file", "line", "message", "hint", "table", "rows",
                        "bytes", "rule_severity"}) {
    EXPECT_TRUE(x.contains(k)) << k;
  }
  EXPECT_EQ(x["rule"], "truncate");
  EXPECT_EQ(x["severity"], "error");
  EXPECT_EQ(x["line"], 2);
  EXPECT_EQ(x["table"], "public.t");
  EXPECT_TRUE(x["rows"].is_null());
  EXPECT_EQ(j["summary"], (nlohmann::json{{"errors", 1}, {"warnings", 0}, {"info", 0}}));
}

TEST(LintOutput, AnnotationsAreEscapedWorkflowCommands) {
  lint::Context context;
  auto f = lint::lint(source("db/a,b:c.sql",
                             "CREATE TABLE t (a timestamp);\nDELETE FROM x;\n"
                             "CREATE TABLE u (b varchar(3));"),
                      context);
  auto a = lint::annotations(f);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0],
            "::warning file=db/a%2Cb%3Ac.sql,line=1,title=previewdb lint%3A "
            "timestamp-without-time-zone::column public.t.a is timestamp without time zone (hint: "
            "use timestamptz (timestamp with time zone))\n");
  EXPECT_EQ(a[1].rfind("::error file=db/a%2Cb%3Ac.sql,line=2,", 0), 0u) << a[1];
  EXPECT_EQ(a[2].rfind("::notice file=db/a%2Cb%3Ac.sql,line=3,", 0), 0u) << a[2];
}

TEST(LintOutput, FailOnLevels) {
  auto f = lint_text("CREATE TABLE t (a timestamp);");  // one warning
  EXPECT_FALSE(lint::fails(f, lint::Severity::error));
  EXPECT_TRUE(lint::fails(f, lint::Severity::warning));
  EXPECT_FALSE(lint::fails(f, std::nullopt));
  EXPECT_EQ(lint::format_text({}, 2), "no findings in 2 files\n");
}

TEST(LintSchemaSource, AChangedSchemaWithoutANewMigrationIsAFinding) {
  using C = std::vector<lint::ChangedPath>;
  auto f = lint::missing_migration(C{{"prisma/schema.prisma", 'M'}}, "prisma/schema.prisma",
                                   "prisma/migrations");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->rule, "schema-change-without-migration");
  EXPECT_EQ(f->severity, lint::Severity::error);
  EXPECT_EQ(f->message,
            "prisma/schema.prisma changed but no migration was added under prisma/migrations");
  EXPECT_FALSE(lint::missing_migration(
      C{{"prisma/schema.prisma", 'M'}, {"prisma/migrations/20240101_x/migration.sql", 'A'}},
      "prisma/schema.prisma", "prisma/migrations/"));
  // Editing an old migration is not adding one.
  EXPECT_TRUE(lint::missing_migration(
      C{{"prisma/schema.prisma", 'M'}, {"prisma/migrations/20240101_x/migration.sql", 'M'}},
      "prisma/schema.prisma", "prisma/migrations"));
  EXPECT_FALSE(
      lint::missing_migration(C{{"src/app.ts", 'M'}}, "prisma/schema.prisma", "prisma/migrations"));
  // A folder of schema files (Drizzle's src/db/schema/).
  EXPECT_TRUE(
      lint::missing_migration(C{{"src/db/schema/users.ts", 'M'}}, "src/db/schema", "drizzle"));
}

TEST(LintRules, EveryRuleHasAnIdMessageAndFix) {
  std::set<std::string> seen;
  for (const auto& r : lint::rules()) {
    EXPECT_TRUE(seen.insert(std::string(r.id)).second) << r.id;
    EXPECT_FALSE(r.what.empty());
    EXPECT_FALSE(r.fix.empty());
  }
  EXPECT_GE(seen.size(), 20u);
}

TEST(Lint, UnusualTreesYieldNoFalseFindingAndNoCrash) {
  auto f = lint_text(
      "SET lock_timeout = '1s';\n"
      "ALTER TABLE t ADD CONSTRAINT c CHECK (lower(a) IS NOT NULL) NOT VALID;\n"
      "DROP FUNCTION IF EXISTS f(int) CASCADE;\n"
      "CREATE TABLE s AS SELECT 1 AS x;\n"
      "CREATE INDEX ON s (x);\n"
      "ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n"
      "WITH d AS (DELETE FROM q RETURNING *) SELECT count(*) FROM d;\n");
  // The CHECK on an expression is no NOT NULL proof for a; DROP FUNCTION ... CASCADE is a cascade;
  // the table created by CREATE TABLE AS is new. (DELETE inside WITH: not looked into.)
  EXPECT_EQ(ids(f), (std::vector<std::string>{"drop-cascade", "set-not-null"}));
}

TEST(Lint, ARunnerThatSetsLockTimeoutNeedsNoSetInTheFile) {
  lint::Context context;
  context.runner_sets_lock_timeout = true;
  auto f = lint::lint(source("m.sql", "ALTER TABLE t RENAME COLUMN a TO b;"), context);
  EXPECT_EQ(ids(f), (std::vector<std::string>{"rename-column"}));
}
