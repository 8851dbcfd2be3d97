// previewdb diff FROM TO: compare two schemas (databases, or migrations folders applied to a
// scratch database); previewdb drift [DB]: a database against the migrations it has applied.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "commands/commands.hpp"
#include "commands/common.hpp"
#include "commands/migrate_options.hpp"
#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "core/scratch.hpp"
#include "db/connection.hpp"
#include "migrate/migrate.hpp"
#include "schema/schema.hpp"
#include "util/error.hpp"
#include "util/interrupt.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/workflow_commands.hpp"

namespace fs = std::filesystem;

namespace previewdb::commands {

namespace {

// One side of a diff, as the user named it.
struct Side {
  bool folder = false;
  std::string argument;  // as given
  std::string conninfo;  // a URL side: its URL (else the configured server's)
  bool url = false;
  std::string dbname;  // a database side
  fs::path dir;        // a folder side
};

bool is_url(const std::string& s) {
  return s.rfind("postgres://", 0) == 0 || s.rfind("postgresql://", 0) == 0;
}

// db:NAME / dir:PATH force the kind; a postgres:// URL is a database; an argument containing '/'
// or naming an existing folder is a folder; anything else is a database on the configured server.
Side parse_side(const std::string& arg, const char* which) {
  Side s;
  s.argument = arg;
  std::string rest = arg;
  bool forced_db = false, forced_dir = false;
  if (arg.rfind("db:", 0) == 0) {
    forced_db = true, rest = arg.substr(3);
  } else if (arg.rfind("dir:", 0) == 0) {
    forced_dir = true, rest = arg.substr(4);
  } else if (!is_url(arg)) {
    // A word and a colon that is no known prefix: a typo of db:/dir:, not a name.
    auto colon = arg.find(':');
    if (colon != std::string::npos && colon > 0 && arg.find('/') == std::string::npos &&
        std::all_of(arg.begin(), arg.begin() + static_cast<long>(colon),
                    [](char c) { return std::isalpha(static_cast<unsigned char>(c)); })) {
      throw usage_error(std::string(which) + " " + util::quoted(arg) + " has an unknown prefix " +
                            util::quoted(arg.substr(0, colon + 1)),
                        "use db:NAME for a database or dir:PATH for a migrations folder");
    }
  }
  if (rest.empty()) {
    throw usage_error(std::string(which) + " " + util::quoted(arg) + " names nothing",
                      "use db:NAME for a database or dir:PATH for a migrations folder");
  }
  if (forced_dir || (!forced_db && !is_url(rest) &&
                     (rest.find('/') != std::string::npos || fs::is_directory(rest)))) {
    s.folder = true;
    s.dir = rest;
    if (!fs::is_directory(s.dir)) {
      throw usage_error(
          std::string(which) + ": migrations folder " + util::quoted(rest) + " does not exist",
          fs::exists(s.dir) ? "name a folder of migrations, not a file"
                            : "check the path; use db:" + rest + " for a database of that name");
    }
    return s;
  }
  if (is_url(rest)) {
    // A password in an argument is visible to every user of the machine (ps).
    if (db::parse_conninfo(rest).get("password")) {
      throw usage_error(std::string(which) + " must not contain a password: other users can read " +
                            "process arguments (ps)",
                        "put the password in PGPASSWORD or ~/.pgpass and pass the URL without it");
    }
    db::register_conninfo_secrets(rest);
    s.url = true;
    s.conninfo = rest;
    s.dbname = db::parse_conninfo(rest).get("dbname").value_or("");
    return s;
  }
  s.dbname = rest;
  return s;
}

// Scratch databases being built, for the interrupt handler (another thread).
struct Scratches {
  std::mutex mutex;
  std::string conninfo;  // the server's, for a connection of the handler's own
  std::set<std::string> names;
};

// What the folder sides need: the configured server, its maintenance connection (the janitor
// runs once), the signal guard that drops scratch databases on SIGINT/SIGTERM/SIGHUP.
class FolderBuilder {
 public:
  FolderBuilder(const config::Config& cfg, const cxxopts::ParseResult& parsed, Target target)
      : m_target(std::move(target)),
        m_lock_timeout(lock_timeout_setting(cfg)),
        m_format(cfg.get_string("format")),
        m_placeholders(placeholders(cfg, parsed)) {}

  schema::Catalog build(const fs::path& dir, const std::optional<std::set<std::string>>& only,
                        const schema::ReadOptions& read) {
    if (!m_maintenance) {
      m_scratches = std::make_shared<Scratches>();
      m_scratches->conninfo = m_target.conninfo;
      auto scratches = m_scratches;
      m_guard.emplace([scratches](int) {
        std::lock_guard lock(scratches->mutex);
        if (scratches->names.empty()) return;
        auto conn = db::Connection::open(
            {.conninfo = scratches->conninfo, .dbname = core::k_registry_database});
        for (const auto& name : scratches->names) core::drop_temporary(conn, name);
        util::log::warn("interrupted: removed the scratch database");
      });
      m_maintenance.emplace(connect_maintenance(m_target, m_lock_timeout));
      core::require_createdb(*m_maintenance);
      core::remove_stale_temporaries(*m_maintenance);
    }
    schema::Catalog catalog;
    std::string name;
    try {
      core::ScratchDatabase scratch(*m_maintenance, "previewdb diff");
      name = scratch.name();
      {
        std::lock_guard lock(m_scratches->mutex);
        m_scratches->names.insert(name);
      }
      util::log::info("applying " + dir.string() + " to a scratch database (" + name + ")");
      migrate::MigrateOptions o;
      o.target = {m_target.conninfo, name, m_lock_timeout};
      o.dir = dir;
      o.format = m_format;
      o.placeholders = m_placeholders;
      o.lock_timeout = m_lock_timeout;
      o.only = only;
      o.applied_by = "previewdb diff";
      try {
        migrate::migrate(o);
      } catch (Error& e) {
        e.with_hint("the migrations of " + util::quoted(dir.string()) +
                    " must apply to an empty database for diff and drift to compare them");
        throw;
      }
      auto conn = db::Connection::open({.conninfo = m_target.conninfo, .dbname = name});
      catalog = schema::read_catalog(conn, read);
    } catch (...) {
      // The scratch database is gone by now (its destructor ran): the handler may forget it.
      forget(name);
      throw;
    }
    forget(name);
    catalog.source = "folder " + util::quoted(dir.string());
    return catalog;
  }

 private:
  void forget(const std::string& name) {
    std::lock_guard lock(m_scratches->mutex);
    m_scratches->names.erase(name);
  }
  Target m_target;
  std::chrono::milliseconds m_lock_timeout;
  std::string m_format;
  std::map<std::string, std::string> m_placeholders;
  std::shared_ptr<Scratches> m_scratches;
  // Declared before the connection: destroyed after it, so a signal during the last drop is
  // still handled.
  std::optional<util::InterruptGuard> m_guard;
  std::optional<db::Connection> m_maintenance;
};

schema::Catalog read_database(const std::string& conninfo, const std::string& dbname,
                              const schema::ReadOptions& read, const std::string& label) {
  auto conn = db::Connection::open({.conninfo = conninfo, .dbname = dbname});
  auto catalog = schema::read_catalog(conn, read);
  catalog.source = label;
  return catalog;
}

void print_diff(const schema::Diff& diff, const cxxopts::ParseResult& parsed,
                const nlohmann::json& extra = nlohmann::json::object()) {
  if (parsed.count("json")) {
    auto j = schema::to_json(diff);
    j.update(extra);
    std::cout << j.dump(2) << "\n";
  } else if (parsed.count("sql")) {
    std::cout << util::workflow::neutralize_commands(schema::render_sql(diff));
  } else if (parsed.count("markdown")) {
    std::cout << util::workflow::neutralize_commands(schema::render_markdown(diff));
  } else {
    std::cout << util::workflow::neutralize_commands(schema::render_text(diff));
  }
  std::cout << std::flush;
}

void add_output_options(cxxopts::Options& options) {
  options.add_options("Output")("json", "print the differences as JSON on stdout")(
      "sql", "print a best-effort DDL patch from FROM to TO (review it before running it)")(
      "markdown", "print Markdown (for a CI step summary or a pull request comment)")(
      "include-tool-tables",
      "also compare previewdb's schema (_previewdb) and the migration tools' history tables");
}

void check_one_output(const cxxopts::ParseResult& parsed) {
  int n = static_cast<int>(parsed.count("json") + parsed.count("sql") + parsed.count("markdown"));
  if (n > 1) throw usage_error("--json, --sql and --markdown exclude each other", "pick one");
}

}  // namespace

int run_diff(const Args& args) {
  cxxopts::Options options(args[0],
                           "Compare two schemas: databases (name or URL) or migrations folders");
  add_common_options(options);
  add_output_options(options);
  options.add_options("Folders")(
      "format",
      "format of a migrations folder: auto, prisma, drizzle, drizzle1, golang-migrate, "
      "dbmate, flyway or plain (default auto)",
      cxxopts::value<std::string>(),
      "FORMAT")("placeholder", "Flyway placeholder value (repeatable)",
                cxxopts::value<std::vector<std::string>>(),
                "KEY=VALUE")("sides", "FROM and TO", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"sides"});
  options.positional_help("FROM TO");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  check_one_output(*parsed);
  std::vector<std::string> sides;
  if (parsed->count("sides")) sides = (*parsed)["sides"].as<std::vector<std::string>>();
  if (sides.size() != 2) {
    throw usage_error("diff needs FROM and TO (got " + std::to_string(sides.size()) + ")",
                      "for example: previewdb diff dev pr_12, or previewdb diff "
                      "migrations/schema db:pr_12");
  }
  auto cfg = load_config(*parsed);
  Side from = parse_side(sides[0], "FROM"), to = parse_side(sides[1], "TO");
  schema::ReadOptions read{.ignore_tool_tables = parsed->count("include-tool-tables") == 0};

  std::optional<Target> target;
  auto server = [&]() -> const Target& {
    if (!target) target = resolve_target(cfg);
    return *target;
  };
  std::optional<FolderBuilder> builder;
  auto catalog = [&](const Side& s) {
    if (s.folder) {
      if (!builder) builder.emplace(cfg, *parsed, server());
      return builder->build(s.dir, std::nullopt, read);
    }
    if (s.url) {
      return read_database(s.conninfo, s.dbname, read,
                           "database " + util::quoted(util::redact_url(s.conninfo)));
    }
    return read_database(server().conninfo, s.dbname, read, "database " + util::quoted(s.dbname));
  };
  schema::Catalog a, b;
  if (!from.folder && !to.folder) {
    // Two servers (or two sessions) work at once: half the time for big schemas. The configured
    // server is resolved (the local one started) here, once, and only when a name needs it.
    if (!from.url || !to.url) server();
    auto later = std::async(std::launch::async, [&] { return catalog(to); });
    a = catalog(from);
    b = later.get();
  } else {
    a = catalog(from);
    b = catalog(to);
  }
  auto diff = schema::compare(a, b);
  print_diff(diff, *parsed);
  return diff.equal() ? 0 : static_cast<int>(ExitCode::pending);
}

int run_drift(const Args& args) {
  cxxopts::Options options(
      args[0], "Compare a database with the migrations it has applied (changes made by hand)");
  add_common_options(options);
  add_folder_options(options);
  add_output_options(options);
  options.add_options("Drift")("exit-code", "exit 9 when the database drifted")(
      "db", "the database (default: the target's, as for status)", cxxopts::value<std::string>());
  options.parse_positional({"db"});
  options.positional_help("[DB]");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  check_one_output(*parsed);
  if (parsed->count("db") && parsed->count("database")) {
    throw usage_error("name the database once: DB or --database",
                      "previewdb drift pr_12 (or --database pr_12)");
  }
  auto cfg = load_config(*parsed);
  migrate::Target db = migration_target(cfg, *parsed);
  Target server = resolve_target(cfg, /*prefer_direct=*/true);
  if (parsed->count("db")) {
    Side s = parse_side((*parsed)["db"].as<std::string>(), "DB");
    if (s.folder) {
      throw usage_error("drift compares a database with its migrations: " +
                            util::quoted(s.argument) + " is a folder",
                        "pass the folder with --dir and the database as DB");
    }
    if (s.url) server.conninfo = db.conninfo = s.conninfo;
    db.dbname = s.dbname;
  }
  fs::path dir = cfg.get_path("migrations_dir");
  schema::ReadOptions read{.ignore_tool_tables = parsed->count("include-tool-tables") == 0};

  // What the database has applied, as status sees it (a changed file counts: it was applied,
  // and the difference it makes is drift too).
  migrate::StatusOptions so;
  so.target = db;
  so.dir = dir;
  so.format = cfg.get_string("format");
  so.placeholders = placeholders(cfg, *parsed);
  auto status = migrate::status(so);
  std::set<std::string> applied;
  for (const auto& m : status.migrations) {
    if (m.state == migrate::State::applied || m.state == migrate::State::changed)
      applied.insert(m.id);
  }
  auto conn = db::Connection::open({.conninfo = db.conninfo, .dbname = db.dbname});
  std::string name = conn.database();
  auto actual = schema::read_catalog(conn, read);
  FolderBuilder builder(cfg, *parsed, server);
  auto expected = builder.build(dir, applied, read);
  expected.source = "migrations " + util::quoted(dir.string()) + " (" +
                    std::to_string(applied.size()) + " applied)";
  auto diff = schema::compare(expected, actual);
  print_diff(diff, *parsed,
             {{"drift", !diff.equal()},
              {"database", name},
              {"migrations_dir", dir.string()},
              {"applied", applied.size()}});
  if (parsed->count("exit-code") && !diff.equal()) return static_cast<int>(ExitCode::pending);
  return 0;
}

}  // namespace previewdb::commands
