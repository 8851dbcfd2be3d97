// Comparing a folder with the history tables (status), previewdb's history, and the shapes in
// which both are shown (tables for people, JSON for programs).
#include <algorithm>

#include "migrate/migrate.hpp"
#include "migrate/readers.hpp"
#include "util/strings.hpp"

namespace previewdb::migrate {

std::string_view state_name(State state) {
  switch (state) {
    case State::applied:
      return "applied";
    case State::pending:
      return "pending";
    case State::changed:
      return "changed";
    case State::missing:
      return "missing";
    case State::failed:
      return "failed";
  }
  return "?";
}

size_t StatusReport::count(State state) const {
  return static_cast<size_t>(std::count_if(migrations.begin(), migrations.end(),
                                           [&](const auto& m) { return m.state == state; }));
}

bool StatusReport::has_out_of_order() const {
  return std::any_of(migrations.begin(), migrations.end(),
                     [](const auto& m) { return m.out_of_order; });
}

bool StatusReport::needs_attention() const {
  return count(State::pending) + count(State::changed) + count(State::failed) > 0;
}

bool StatusReport::diverged() const {
  return count(State::changed) + count(State::failed) + count(State::missing) > 0 ||
         has_out_of_order();
}

StatusReport compare(const MigrationSet& set, const AppliedSet& applied) {
  StatusReport report;
  report.format = std::string(format_name(set.format));
  report.dir = set.dir.generic_string();
  report.warnings = set.warnings;
  for (const auto& w : applied.warnings) report.warnings.push_back(w);
  int newest_applied = -1;
  for (const auto& m : set.migrations) {
    MigrationStatus s;
    s.id = m.id;
    s.name = m.name;
    s.file = m.display_path;
    s.repeatable = m.repeatable;
    s.statements = m.statements.size();
    s.file_checksum = m.checksum;
    auto it = applied.by_id.find(m.id);
    if (it == applied.by_id.end()) {
      s.state = State::pending;
    } else {
      const Applied& a = it->second;
      s.applied_at = a.finished_at.empty() ? a.started_at : a.finished_at;
      s.duration_ms = a.duration_ms;
      s.recorded_in = a.source;
      bool differs = (!a.checksum.empty() && a.checksum != m.checksum) ||
                     (a.flyway_checksum && *a.flyway_checksum != m.flyway_checksum);
      s.recorded_checksum =
          a.checksum.empty() && a.flyway_checksum ? std::to_string(*a.flyway_checksum) : a.checksum;
      if (a.failed) {
        s.state = State::failed;
        s.error = a.error;
        s.what_to_do =
            "it failed part-way outside a transaction: bring the database to the state before "
            "(or after) it by hand, then run 'previewdb migrate' to retry it; a preview database "
            "can simply be re-created";
      } else if (differs && m.repeatable) {
        s.state = State::pending;  // Flyway re-applies a changed repeatable
      } else if (differs) {
        s.state = State::changed;
        s.what_to_do =
            "the file changed after it was applied: restore it, or re-create the database; "
            "'previewdb migrate --allow-changed' proceeds anyway";
      } else {
        s.state = State::applied;
      }
    }
    if (!m.repeatable && (s.state == State::applied || s.state == State::changed)) {
      newest_applied = static_cast<int>(report.migrations.size());
    }
    report.migrations.push_back(std::move(s));
  }
  for (int i = 0; i < newest_applied; ++i) {
    auto& s = report.migrations[static_cast<size_t>(i)];
    if (s.state == State::pending && !s.repeatable) {
      s.out_of_order = true;
      s.what_to_do = "it sorts before the newest applied migration (" +
                     report.migrations[static_cast<size_t>(newest_applied)].id +
                     "), as after a rebase: 'previewdb migrate' applies it with a warning, "
                     "--strict-order refuses";
    }
  }
  for (const auto& [id, a] : applied.missing) {
    MigrationStatus s;
    s.id = id;
    s.name = a.name;
    s.state = State::missing;
    s.applied_at = a.finished_at.empty() ? a.started_at : a.finished_at;
    s.duration_ms = a.duration_ms;
    s.recorded_in = a.source;
    s.error = a.error;
    s.what_to_do = "recorded in " + a.source +
                   " but no file in the folder has this id: was it renamed or removed (a "
                   "rebase)? Restore it, or re-create the database";
    report.migrations.push_back(std::move(s));
  }
  return report;
}

StatusReport status(const StatusOptions& options) {
  auto set = read_migrations({options.dir, options.format, options.placeholders});
  auto conn = db::Connection::open({.conninfo = options.target.conninfo,
                                    .dbname = options.target.dbname,
                                    .busy_retry = options.target.busy_retry});
  auto schema = conn.exec("SELECT coalesce(current_schema(), 'public')").get(0, 0);
  auto tool = make_tool_history(set.format, schema);
  auto report = compare(set, load_applied(conn, set, tool.get()));
  report.database = conn.description();
  return report;
}

std::vector<HistoryEntry> history(const HistoryOptions& options) {
  auto conn = db::Connection::open({.conninfo = options.target.conninfo,
                                    .dbname = options.target.dbname,
                                    .busy_retry = options.target.busy_retry});
  return read_own_history(conn, options.limit);
}

namespace {

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

std::string format_ms(std::optional<long long> ms) {
  if (!ms) return "";
  if (*ms < 1000) return std::to_string(*ms) + "ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(*ms) / 1000.0);
  return buf;
}

}  // namespace

std::string format_status(const StatusReport& r) {
  std::string out = "database: " + r.database + "\nfolder:   " + r.dir + " (" + r.format + ")\n\n";
  size_t width = 9;
  for (const auto& m : r.migrations) width = std::max(width, m.id.size());
  width = std::min<size_t>(width, 60);
  out += pad("STATE", 10) + pad("MIGRATION", width + 2) + pad("APPLIED", 22) + "DURATION\n";
  for (const auto& m : r.migrations) {
    std::string state(state_name(m.state));
    if (m.out_of_order) state += "*";
    out += pad(state, 10) + pad(m.id, width + 2) + pad(m.applied_at, 22) +
           format_ms(m.duration_ms) + "\n";
  }
  std::vector<std::string> counts;
  for (State s : {State::applied, State::pending, State::changed, State::missing, State::failed}) {
    if (size_t n = r.count(s))
      counts.push_back(std::to_string(n) + " " + std::string(state_name(s)));
  }
  out += "\n" + (counts.empty() ? std::string("no migrations") : util::join(counts, ", ")) + "\n";
  for (const auto& m : r.migrations) {
    if (m.what_to_do.empty()) continue;
    out += "\n" + std::string(state_name(m.state)) + (m.out_of_order ? " (out of order)" : "") +
           ": " + m.id + "\n  " + m.what_to_do + "\n";
    if (!m.error.empty()) out += "  error: " + m.error + "\n";
    if (m.state == State::changed) {
      out += "  recorded checksum " + m.recorded_checksum + ", file " + m.file_checksum + "\n";
    }
  }
  return out;
}

std::string format_history(const std::vector<HistoryEntry>& entries) {
  if (entries.empty()) return "no migrations recorded by previewdb in this database\n";
  size_t width = 9;
  for (const auto& e : entries) width = std::max(width, e.id.size());
  width = std::min<size_t>(width, 60);
  std::string out = pad("FINISHED", 22) + pad("MIGRATION", width + 2) + pad("STATUS", 9) +
                    pad("DURATION", 10) + "BY\n";
  for (const auto& e : entries) {
    out += pad(e.finished_at.empty() ? e.started_at : e.finished_at, 22) + pad(e.id, width + 2) +
           pad(e.status, 9) + pad(format_ms(e.duration_ms), 10) + e.applied_by + "\n";
  }
  return out;
}

std::string format_plan(const MigrateReport& r) {
  std::string out;
  if (r.applied.empty()) {
    return "nothing to apply to " + r.database + ": " + std::to_string(r.skipped) +
           " migrations already applied\n";
  }
  out = "would apply " + std::to_string(r.applied.size()) + " migration" +
        (r.applied.size() == 1 ? "" : "s") + " to " + r.database + " (" +
        std::to_string(r.skipped) + " already applied), in this order:\n";
  size_t i = 0;
  for (const auto& run : r.runs) {
    out += "  " + std::to_string(++i) + ". " + run.id + "  (" + std::to_string(run.statements) +
           " statement" + (run.statements == 1 ? "" : "s") + ", " + run.mode +
           (run.mode_reason.empty() ? "" : ": " + run.mode_reason) + ")\n";
  }
  return out;
}

nlohmann::json to_json(const StatusReport& r) {
  nlohmann::json j;
  j["database"] = r.database;
  j["format"] = r.format;
  j["dir"] = r.dir;
  j["diverged"] = r.diverged();
  j["needs_attention"] = r.needs_attention();
  nlohmann::json counts = nlohmann::json::object();
  for (State s : {State::applied, State::pending, State::changed, State::missing, State::failed}) {
    counts[std::string(state_name(s))] = r.count(s);
  }
  j["counts"] = counts;
  j["migrations"] = nlohmann::json::array();
  for (const auto& m : r.migrations) {
    nlohmann::json e;
    e["id"] = m.id;
    e["name"] = m.name;
    e["file"] = m.file.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.file);
    e["state"] = state_name(m.state);
    e["out_of_order"] = m.out_of_order;
    e["applied_at"] = m.applied_at.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.applied_at);
    e["duration_ms"] = m.duration_ms ? nlohmann::json(*m.duration_ms) : nlohmann::json(nullptr);
    e["recorded_in"] =
        m.recorded_in.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.recorded_in);
    e["statements"] = m.statements;
    if (m.repeatable) e["repeatable"] = true;
    if (!m.error.empty()) e["error"] = m.error;
    if (m.state == State::changed) {
      e["recorded_checksum"] = m.recorded_checksum;
      e["file_checksum"] = m.file_checksum;
    }
    if (!m.what_to_do.empty()) e["what_to_do"] = m.what_to_do;
    j["migrations"].push_back(e);
  }
  j["warnings"] = r.warnings;
  return j;
}

nlohmann::json to_json(const MigrateReport& r) {
  nlohmann::json j;
  j["database"] = r.database;
  j["format"] = r.format;
  j["dry_run"] = r.dry_run;
  j["applied"] = r.applied;
  j["applied_count"] = r.applied_count();
  j["skipped"] = r.skipped;
  j["lock_mode"] = r.lock_mode;
  if (!r.tool_locks.empty()) j["tool_locks"] = r.tool_locks;
  j["warnings"] = r.warnings;
  j["migrations"] = nlohmann::json::array();
  for (const auto& run : r.runs) {
    j["migrations"].push_back({{"id", run.id},
                               {"file", run.file},
                               {"statements", run.statements},
                               {"mode", run.mode},
                               {"duration_ms", run.duration_ms}});
  }
  if (r.command_exit_code) {
    j["command_exit_code"] = *r.command_exit_code;
    j["applied_known"] = r.applied_known;  // read from the tool's own history table
  }
  return j;
}

nlohmann::json to_json(const std::vector<HistoryEntry>& entries) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& e : entries) {
    j.push_back({{"id", e.id},
                 {"name", e.name},
                 {"format", e.format},
                 {"checksum", e.checksum},
                 {"status", e.status},
                 {"started_at", e.started_at},
                 {"finished_at",
                  e.finished_at.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.finished_at)},
                 {"duration_ms", e.duration_ms},
                 {"statements", e.statements},
                 {"applied_by", e.applied_by},
                 {"error", e.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.error)}});
  }
  return j;
}

}  // namespace previewdb::migrate
