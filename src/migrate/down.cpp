// 'migrate down' planning (which migrations, whether each has a down) and 'resolve' (marks
// without running). The down runs themselves go through the runner (runner.cpp).
#include "migrate/down.hpp"

#include <algorithm>

#include "migrate/reader_common.hpp"
#include "migrate/readers.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::migrate {

namespace {

bool all_of_chars(const std::string& s, std::string_view chars) {
  return !s.empty() && s.find_first_not_of(chars) == std::string::npos;
}

// "1.01" and "1.1" and "1" == "1.0": numeric part by part (Flyway); plain digits compare as
// numbers ("000010" == "10").
bool same_version(const std::string& a, const std::string& b) {
  auto pa = util::split(a, '.'), pb = util::split(b, '.');
  for (size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    std::string x = i < pa.size() ? pa[i] : "0", y = i < pb.size() ? pb[i] : "0";
    if (!all_of_chars(x, "0123456789") || !all_of_chars(y, "0123456789")) return false;
    if (detail::compare_numeric(x, y) != 0) return false;
  }
  return true;
}

bool is_applied(const MigrationStatus& s) {
  return (s.state == State::applied || s.state == State::changed) && !s.repeatable;
}

std::string dir_of(const std::string& display_path) {
  return fs::path(display_path).parent_path().generic_string();
}

std::string joined(const std::string& dir, const std::string& file) {
  return dir.empty() ? file : dir + "/" + file;
}

}  // namespace

const Migration* find_migration(const MigrationSet& set, const std::string& name) {
  for (const auto& m : set.migrations) {
    if (m.id == name) return &m;
  }
  for (const auto& m : set.migrations) {
    if (!m.repeatable && !m.version.empty() && m.version == name) return &m;
  }
  std::string v = name;
  if (set.format == Format::flyway && !v.empty() && (v[0] == 'V' || v[0] == 'v')) v.erase(0, 1);
  std::replace(v.begin(), v.end(), '_', '.');
  if (!all_of_chars(v, "0123456789.")) return nullptr;
  for (const auto& m : set.migrations) {
    if (m.repeatable || !all_of_chars(m.version, "0123456789.")) continue;
    if (same_version(m.version, v)) return &m;
  }
  return nullptr;
}

std::string expected_down(Format format, const Migration& m) {
  std::string dir = dir_of(m.display_path);
  switch (format) {
    case Format::golang_migrate:
      return joined(dir, m.id + ".down.sql");
    case Format::dbmate:
      return "a '-- migrate:down' section in " + m.display_path;
    case Format::flyway: {
      std::string desc = m.name;
      std::replace(desc.begin(), desc.end(), ' ', '_');
      return joined(dir, "U" + m.version + "__" + desc + ".sql");
    }
    case Format::prisma:
      return joined(dir, "rollback.sql") + " (or down.sql)";
    case Format::plain:
      return joined(dir, m.id + ".down.sql") + " (or " + m.id + ".rollback.sql)";
    case Format::drizzle:
    case Format::drizzle1:
      break;
  }
  return "a down migration";
}

std::vector<const Migration*> plan_down(const MigrationSet& set, const StatusReport& status,
                                        std::optional<size_t> steps,
                                        const std::optional<std::string>& to,
                                        std::vector<std::string>& warnings) {
  if (!steps && !to) {
    throw usage_error("'migrate down' needs --steps N or --to VERSION: nothing was undone",
                      "--steps 1 undoes the newest applied migration; --to 0 undoes all of them");
  }
  if (steps && to) {
    throw usage_error("--steps and --to cannot be used together", "pass one of them");
  }
  if (steps && *steps == 0) {
    throw usage_error("--steps must be at least 1", "--steps 1 undoes the newest migration");
  }
  std::vector<size_t> applied;  // folder indices, oldest first
  for (size_t i = 0; i < set.migrations.size(); ++i) {
    if (is_applied(status.migrations[i])) applied.push_back(i);
  }
  // Everything after `first` (a folder index) is undone.
  size_t first = 0;
  if (to) {
    if (all_of_chars(*to, "0")) {
      first = 0;
    } else {
      const Migration* target = find_migration(set, *to);
      if (!target) {
        std::vector<std::string> ids;
        for (const auto& m : set.migrations) ids.push_back(m.id);
        Error e(ExitCode::usage, "--to " + util::quoted(*to) + ": no migration " +
                                     util::quoted(*to) + " in " + set.dir.string() +
                                     ": nothing was undone");
        if (auto guess = util::did_you_mean(*to, ids)) {
          e.with_hint("did you mean " + util::quoted(*guess) + "?");
        }
        e.with_hint(
            "--to takes a migration's id or version (the database keeps it); --to 0 "
            "undoes every migration");
        throw e;
      }
      size_t t = static_cast<size_t>(target - set.migrations.data());
      if (!is_applied(status.migrations[t])) {
        throw usage_error("--to " + util::quoted(*to) + ": " + target->id + " is not applied (" +
                              std::string(state_name(status.migrations[t].state)) +
                              "): nothing was undone",
                          "'previewdb status' lists the applied migrations");
      }
      first = t + 1;
    }
  } else {
    if (*steps > applied.size()) {
      throw usage_error(
          "--steps " + std::to_string(*steps) + ": only " + std::to_string(applied.size()) +
              " migration(s) are applied to " + status.database + ": nothing was undone",
          applied.empty()
              ? "there is nothing to undo"
              : "--steps " + std::to_string(applied.size()) + " (or --to 0) undoes all of them");
    }
    first = *steps == 0 ? set.migrations.size() : applied[applied.size() - *steps];
  }
  std::vector<const Migration*> plan;
  for (size_t k = applied.size(); k-- > 0;) {
    if (applied[k] >= first) plan.push_back(&set.migrations[applied[k]]);
  }
  // A failed migration above the target is half-applied: undoing around it guesses.
  for (size_t i = first; i < set.migrations.size(); ++i) {
    const auto& s = status.migrations[i];
    if (s.state != State::failed) continue;
    Error e(ExitCode::refused, "migration " + util::quoted(s.id) +
                                   " failed and is recorded as failed: 'migrate down' does not "
                                   "undo around it; nothing was undone");
    e.with_hint("make the database consistent by hand, then 'previewdb resolve --rolled-back " +
                s.id + "' (or '--applied " + s.id + "'), and run 'previewdb migrate down' again");
    throw e;
  }
  for (size_t i = set.migrations.size(); i < status.migrations.size(); ++i) {
    warnings.push_back("migration " + status.migrations[i].id +
                       " is recorded in the database but has no file: 'migrate down' cannot "
                       "undo it and leaves it recorded");
  }
  for (const Migration* m : plan) {
    size_t i = static_cast<size_t>(m - set.migrations.data());
    if (status.migrations[i].state == State::changed) {
      warnings.push_back(m->display_path +
                         " changed since it was applied: its down may not "
                         "match what the database has");
    }
  }
  // Every down must exist before anything runs.
  for (const Migration* m : plan) {
    if (m->down) continue;
    if (!m->down_error.empty()) {
      throw usage_error("migration " + util::quoted(m->id) + " has a down that cannot be used: " +
                            m->down_error + "; nothing was undone",
                        "fix the down file, or undo fewer migrations");
    }
    throw usage_error("migration " + util::quoted(m->id) + " has no down migration (expected " +
                          expected_down(set.format, *m) + "): nothing was undone",
                      "write it, or undo only the migrations after it (--to " + m->id + ")");
  }
  return plan;
}

ResolveReport resolve(const ResolveOptions& r) {
  const MigrateOptions& o = r.base;
  ResolveReport report;
  report.mark = r.mark == Mark::applied ? "applied" : "rolled-back";
  MigrationSet set = read_migrations({o.dir, o.format, o.placeholders});
  report.format = std::string(format_name(set.format));
  const Migration* m = find_migration(set, r.name);
  if (!m) {
    std::vector<std::string> ids;
    for (const auto& x : set.migrations) ids.push_back(x.id);
    Error e(ExitCode::usage, "no migration " + util::quoted(r.name) + " in " + o.dir.string() +
                                 ": nothing was marked");
    if (auto guess = util::did_you_mean(r.name, ids)) {
      e.with_hint("did you mean " + util::quoted(*guess) + "?");
    }
    e.with_hint("pass the migration's directory or file name (without .sql), or its version");
    throw e;
  }
  report.id = m->id;
  auto conn = db::Connection::open({.conninfo = o.target.conninfo,
                                    .dbname = o.target.dbname,
                                    .busy_retry = o.target.busy_retry});
  report.database = conn.description();
  std::string schema = conn.exec("SELECT coalesce(current_schema(), 'public')").get(0, 0);
  auto tool = make_tool_history(set.format, schema);
  LockMode mode = o.lock_mode;
  if (mode == LockMode::automatic) {
    mode = looks_like_pooler(o.target.conninfo) ? LockMode::table : LockMode::advisory;
  }
  auto locks =
      acquire_migration_locks(conn,
                              {.mode = mode,
                               .timeout = o.lock_timeout,
                               .conninfo = o.target.conninfo,
                               .dbname = o.target.dbname,
                               .database_label = "database " + util::quoted(conn.database())},
                              set.format, schema);
  report.lock_mode = locks.mode() == LockMode::table ? "table" : "advisory";
  create_own_table(conn);
  if (tool) tool->create(conn);
  auto applied = load_applied(conn, set, tool.get());
  for (const auto& w : applied.warnings) {
    util::log::warn(w);
    report.warnings.push_back(w);
  }
  StatusReport st = compare(set, applied);
  size_t index = static_cast<size_t>(m - set.migrations.data());
  const MigrationStatus& s = st.migrations[index];
  report.previous_state = std::string(state_name(s.state));
  std::vector<std::string> sql;
  report.tables.push_back(k_own_table);
  if (r.mark == Mark::applied) {
    if (s.state == State::applied || s.state == State::changed) {
      Error e(ExitCode::refused, "migration " + util::quoted(m->id) +
                                     " is already recorded as applied to " + report.database +
                                     ": nothing was marked");
      e.with_hint(
          "'previewdb status' shows it; 'resolve --applied' is for a migration you "
          "applied by hand");
      throw e;
    }
    RecordInfo info{.duration_ms = 0, .applied_by = o.applied_by};
    sql.push_back(record_own(conn, *m, set.format, info));
    if (tool) {
      for (auto& x : tool->record(conn, *m, info)) sql.push_back(std::move(x));
      report.tables.push_back(tool->table());
    }
  } else {
    if (s.state == State::pending) {
      Error e(ExitCode::refused, "migration " + util::quoted(m->id) +
                                     " cannot be marked rolled back: it was never applied to " +
                                     report.database + "; nothing was marked");
      e.with_hint("'previewdb status' shows it as pending");
      throw e;
    }
    if (s.state != State::failed) {
      Error e(ExitCode::refused, "migration " + util::quoted(m->id) +
                                     " cannot be marked rolled back: it is applied, not failed; "
                                     "nothing was marked");
      e.with_hint(
          "as with 'prisma migrate resolve', only a failed migration can be marked "
          "rolled back; 'previewdb migrate down --to <the one before it>' undoes an "
          "applied one");
      throw e;
    }
    const Migration* previous = nullptr;
    for (size_t i = index; i-- > 0;) {
      if (is_applied(st.migrations[i])) {
        previous = &set.migrations[i];
        break;
      }
    }
    sql.push_back(unrecord_own(conn, *m));
    auto tool_sql = tool_rolled_back_sql(conn, set.format, schema, *m, previous);
    if (!tool_sql.empty() && tool) report.tables.push_back(tool->table());
    for (auto& x : tool_sql) sql.push_back(std::move(x));
  }
  std::string text = "BEGIN;\n";
  for (const auto& x : sql) text += x + ";\n";
  conn.exec(text + "COMMIT");
  util::log::info("marked " + m->id + " " + report.mark + " in " + util::join(report.tables, ", "));
  return report;
}

nlohmann::json to_json(const DownReport& r) {
  nlohmann::json j;
  j["database"] = r.database;
  j["format"] = r.format;
  j["dry_run"] = r.dry_run;
  j["undone"] = r.undone;
  j["undone_count"] = r.undone.size();
  j["remaining"] = r.remaining;
  j["lock_mode"] = r.lock_mode;
  j["warnings"] = r.warnings;
  j["migrations"] = nlohmann::json::array();
  for (const auto& run : r.runs) {
    j["migrations"].push_back({{"id", run.id},
                               {"file", run.file},
                               {"statements", run.statements},
                               {"mode", run.mode},
                               {"duration_ms", run.duration_ms}});
  }
  return j;
}

nlohmann::json to_json(const ResolveReport& r) {
  return {{"database", r.database},
          {"format", r.format},
          {"migration", r.id},
          {"mark", r.mark},
          {"previous_state", r.previous_state},
          {"tables", r.tables},
          {"lock_mode", r.lock_mode},
          {"warnings", r.warnings}};
}

std::string format_down_plan(const DownReport& r) {
  if (r.undone.empty()) return "nothing to undo on " + r.database + "\n";
  std::string out = "would undo " + std::to_string(r.undone.size()) + " migration" +
                    (r.undone.size() == 1 ? "" : "s") + " on " + r.database + " (" +
                    std::to_string(r.remaining) + " stay applied), newest first:\n";
  size_t i = 0;
  for (const auto& run : r.runs) {
    out += "  " + std::to_string(++i) + ". " + run.id + "  (" + run.file + ", " +
           std::to_string(run.statements) + " statement" + (run.statements == 1 ? "" : "s") + ", " +
           run.mode + (run.mode_reason.empty() ? "" : ": " + run.mode_reason) + ")\n";
  }
  return out;
}

}  // namespace previewdb::migrate
