// previewdb lint: the lint rules over migration files or a migrations folder, optionally graded
// by the real table sizes of a database, and the "schema changed without a migration" check.
#include <filesystem>
#include <iostream>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/lint_sources.hpp"
#include "commands/migrate_options.hpp"
#include "db/connection.hpp"
#include "git/changes.hpp"
#include "git/tree.hpp"
#include "lint/lint.hpp"
#include "migrate/readers.hpp"
#include "migrate/splitter.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/workflow_commands.hpp"

namespace fs = std::filesystem;

namespace previewdb::commands {

namespace {

std::optional<lint::Severity> fail_level(const config::Config& cfg) {
  auto v = cfg.get("lint_fail_on");
  std::string level = util::to_lower(cfg.get_string("lint_fail_on"));
  if (level == "never") return std::nullopt;
  auto s = lint::parse_severity(level);
  if (!s || *s == lint::Severity::info) {
    throw usage_error("invalid fail-on " + util::quoted(level) + " (from " + v->origin + ")",
                      "use error, warning or never");
  }
  return s;
}

// Plain SQL files named on the command line.
std::vector<lint::Source> read_files(const std::vector<std::string>& files) {
  std::vector<lint::Source> out;
  for (const auto& f : files) {
    if (fs::is_directory(f)) {
      throw usage_error(util::quoted(f) + " is a folder", "lint a folder with --dir " + f);
    }
    lint::Source s;
    s.file = f;
    s.text = util::read_file(f);
    if (!util::is_valid_utf8(s.text)) {
      throw usage_error(util::quoted(f) + " is not valid UTF-8", "save the file as UTF-8");
    }
    auto split = migrate::split_statements(s.text);
    s.statements = std::move(split.statements);
    s.syntax_error = std::move(split.error);
    out.push_back(std::move(s));
  }
  return out;
}

// The branch's changes against the base, as `ci` detects them; the schema source and the
// migrations folder relative to the repository root.
std::optional<lint::Finding> check_schema_source(const config::Config& cfg, const fs::path& source,
                                                 const fs::path& migrations_dir) {
  auto root = git::work_tree_root(fs::current_path());
  if (!root) {
    throw usage_error("--schema-source needs a git repository: " +
                          util::quoted(fs::current_path().string()) + " is not inside one",
                      "run previewdb lint from the repository's work tree");
  }
  auto relative = [&](const fs::path& p) {
    return fs::weakly_canonical(fs::absolute(p)).lexically_relative(fs::weakly_canonical(*root));
  };
  std::string schema = relative(source).generic_string();
  std::string migrations = relative(migrations_dir).generic_string();
  if (!fs::exists(source)) {
    throw usage_error("schema source " + util::quoted(source.string()) + " does not exist",
                      "pass the file that describes the schema, e.g. prisma/schema.prisma");
  }
  git::ChangeQuery q;
  q.repository = *root;
  q.base_ref = cfg.get_string("base_ref");
  q.paths = {schema, migrations};
  auto result = git::detect_changes(q);
  if (!result.ok()) {
    Error e(ExitCode::usage,
            "cannot compare " + schema + " with the base branch: " + result.unavailable->message);
    for (const auto& h : result.unavailable->hints) e.with_hint(h);
    throw e;
  }
  std::vector<lint::ChangedPath> changes;
  for (const auto& f : result.changes->files) changes.push_back({f.path, f.status});
  return lint::missing_migration(changes, schema, migrations);
}

}  // namespace

int run_lint(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Find statements in migrations that lock or rewrite tables, break running code or "
      "lose data");
  add_common_options(options);
  add_folder_options(options);
  options.add_options("Lint")("files", "SQL files to lint (default: the migrations folder)",
                              cxxopts::value<std::vector<std::string>>(), "FILES")(
      "pending", "lint only the migrations the database has not applied (needs a database)")(
      "json", "print the findings as JSON on stdout")(
      "fail-on",
      "exit 9 when a finding at this level exists: error, warning or never (default "
      "error)",
      cxxopts::value<std::string>(),
      "LEVEL")("schema-source",
               "a schema file (prisma/schema.prisma): fail when the branch changes it "
               "without adding a migration",
               cxxopts::value<std::string>(),
               "PATH")("base-ref", "base branch for --schema-source (default main)",
                       cxxopts::value<std::string>(), "BRANCH");
  options.add_options("Lint")(
      "lock-wait-timeout",
      "the lock_timeout 'previewdb migrate' sets (no missing-lock-timeout findings then)",
      cxxopts::value<std::string>(), "T");
  options.parse_positional({"files"});
  options.positional_help("[FILES...]");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  auto level = fail_level(cfg);
  bool pending = parsed->count("pending") > 0;
  bool files_given = parsed->count("files") > 0;
  if (files_given && (parsed->count("dir") || pending)) {
    throw usage_error(
        std::string("files cannot be combined with ") + (pending ? "--pending" : "--dir"),
        "lint either the named files or a migrations folder");
  }
  fs::path dir = cfg.get_path("migrations_dir");

  std::optional<db::Connection> conn;
  if (pending || parsed->count("database")) {
    auto target = migration_target(cfg, *parsed);
    conn = db::Connection::open({.conninfo = target.conninfo, .dbname = target.dbname});
  }

  std::vector<lint::Source> sources;
  if (files_given) {
    sources = read_files((*parsed)["files"].as<std::vector<std::string>>());
  } else {
    auto set =
        migrate::read_migrations({dir, cfg.get_string("format"), placeholders(cfg, *parsed)});
    for (const auto& w : set.warnings) util::log::warn(w);
    if (pending) {
      migrate::StatusOptions so;
      so.target = migration_target(cfg, *parsed);
      so.dir = dir;
      so.format = cfg.get_string("format");
      so.placeholders = placeholders(cfg, *parsed);
      auto report = migrate::status(so);
      std::set<std::string> ids;
      for (const auto& m : report.migrations) {
        if (m.state == migrate::State::pending) ids.insert(m.id);
      }
      sources = lint_sources(set, &ids);
    } else {
      sources = lint_sources(set, nullptr);
    }
  }

  // Named files and pending migrations run together: what one creates is new to the next. A
  // whole folder is its history: each migration ran on its own, against tables full of data.
  bool one_run = files_given || pending;
  lint::Context fresh;
  auto lock_wait = cfg.find_duration("lock_wait_timeout");
  fresh.runner_sets_lock_timeout = lock_wait && lock_wait->count() > 0;
  lint::Context context = fresh;
  std::vector<lint::Finding> findings;
  for (const auto& s : sources) {
    if (!one_run) context = fresh;
    auto f = lint::lint(s, context);
    findings.insert(findings.end(), std::make_move_iterator(f.begin()),
                    std::make_move_iterator(f.end()));
  }
  if (conn) lint::grade(findings, lint::table_sizes(*conn, lint::tables_to_measure(findings)));
  if (auto source = cfg.find_path("schema_source")) {
    if (auto f = check_schema_source(cfg, *source, dir)) findings.insert(findings.begin(), *f);
  }

  if (parsed->count("json")) {
    std::cout << lint::to_json(findings, sources.size()).dump(2) << "\n";
  } else {
    std::cout << util::workflow::neutralize_commands(lint::format_text(findings, sources.size()));
  }
  std::cout << std::flush;
  auto env = config::process_env();
  if (env.count("GITHUB_ACTIONS") && env["GITHUB_ACTIONS"] == "true") {
    for (auto a : lint::annotations(findings)) {
      if (!a.empty() && a.back() == '\n') a.pop_back();  // command() ends the line
      util::log::command(a);
    }
  }
  return lint::fails(findings, level) ? static_cast<int>(ExitCode::pending) : 0;
}

// A migrations folder through migrate's readers: the up part only, lines as in each file.
std::vector<lint::Source> lint_sources(const migrate::MigrationSet& set,
                                       const std::set<std::string>* only_ids) {
  std::vector<lint::Source> out;
  for (const auto& m : set.migrations) {
    if (only_ids && !only_ids->count(m.id)) continue;
    lint::Source s;
    s.file = m.display_path;
    s.text = util::read_file(m.path);
    s.statements = m.statements;
    s.syntax_error = m.syntax_error;
    // dbmate wraps each migration in a transaction unless told otherwise.
    s.runs_in_transaction =
        set.format == migrate::Format::dbmate && m.mode_reason != "dbmate option transaction:false";
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace previewdb::commands
