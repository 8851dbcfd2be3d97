#include "dryrun/findings.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::dryrun {

namespace {

// Lock modes that block writers (INSERT/UPDATE/DELETE take ROW EXCLUSIVE, which these conflict
// with): a deploy feels them.
bool blocks_writes(const std::string& mode) {
  return mode == "ShareLock" || mode == "ShareRowExclusiveLock" || mode == "ExclusiveLock" ||
         mode == "AccessExclusiveLock";
}

std::string rows_text(long long n) {
  return std::to_string(n) + (n == 1 ? " row" : " rows");
}

int rank(Severity s) {
  switch (s) {
    case Severity::failure:
      return 0;
    case Severity::data_loss:
      return 1;
    case Severity::warning:
      return 2;
    case Severity::info:
      return 3;
  }
  return 4;
}

}  // namespace

std::string_view severity_name(Severity s) {
  switch (s) {
    case Severity::info:
      return "info";
    case Severity::warning:
      return "warning";
    case Severity::data_loss:
      return "data-loss";
    case Severity::failure:
      return "failure";
  }
  return "info";
}

std::vector<Finding> classify(const MigrationObservation& o) {
  std::vector<Finding> out;
  auto add = [&](std::string kind, Severity severity, std::string table, std::string column,
                 std::optional<long long> rows, std::string message) {
    out.push_back({std::move(kind), severity, o.id, std::move(table), std::move(column), rows,
                   std::move(message)});
  };
  std::map<long long, const TableState*> after;
  for (const auto& t : o.after) after[t.oid] = &t;

  for (const auto& b : o.before) {
    auto it = after.find(b.oid);
    if (it == after.end()) {
      add("table-dropped", b.rows > 0 ? Severity::data_loss : Severity::warning, b.name, "", b.rows,
          "table " + b.name + " dropped with " + rows_text(b.rows));
      continue;
    }
    const TableState& a = *it->second;
    std::set<std::string> now(a.columns.begin(), a.columns.end());
    for (const auto& c : b.columns) {
      if (now.count(c)) continue;
      add("column-dropped", b.rows > 0 ? Severity::data_loss : Severity::warning, b.name, c, b.rows,
          "column " + b.name + "." + c + " dropped with " + rows_text(b.rows));
    }
    long long deleted = 0;
    if (auto d = o.deleted.find(b.oid); d != o.deleted.end()) deleted = d->second;
    bool rewritten = a.relfilenode != b.relfilenode;
    if (rewritten && a.rows == 0 && b.rows > 0 && deleted == 0) {
      // A new, empty file without a DELETE: TRUNCATE (also from a DO block or a function).
      add("table-truncated", Severity::data_loss, b.name, "", b.rows,
          "table " + b.name + " truncated: " + rows_text(b.rows) + " removed");
      continue;
    }
    if (deleted > 0) {
      add("rows-deleted", Severity::data_loss, b.name, "", deleted,
          rows_text(deleted) + " deleted from " + b.name + " (" + std::to_string(b.rows) +
              " before, " + std::to_string(a.rows) + " after)");
    }
    if (rewritten) {
      add("table-rewritten", Severity::warning, b.name, "", b.rows,
          "table " + b.name + " rewritten (new relfilenode; " + rows_text(b.rows) +
              " copied under its lock)");
    }
  }
  for (const auto& t : o.type_changes) {
    if (t.changed_rows > 0) {
      add("lossy-type-change", Severity::data_loss, t.table, t.column, t.changed_rows,
          "column " + t.table + "." + t.column + " changed from " + t.from + " to " + t.to + ": " +
              rows_text(t.changed_rows) + " of " + std::to_string(t.rows) + " change value");
    } else if (t.changed_rows < 0) {
      add("type-change", Severity::warning, t.table, t.column, std::nullopt,
          "column " + t.table + "." + t.column + " changed from " + t.from + " to " + t.to +
              ": could not compare the old values with the new ones (no cast back)");
    } else {
      add("type-change", Severity::info, t.table, t.column, 0,
          "column " + t.table + "." + t.column + " changed from " + t.from + " to " + t.to +
              ": every value survives the cast");
    }
  }
  for (const auto& l : o.locks) {
    bool blocking = blocks_writes(l.mode);
    add("lock", blocking ? Severity::warning : Severity::info, l.table, "", std::nullopt,
        l.mode + " on " + l.table + " held " + std::to_string(l.held_ms) + " ms " +
            (l.sampled ? "(sampled while line " + std::to_string(l.statement_line) +
                             " ran outside a transaction)"
                       : "(from line " + std::to_string(l.statement_line) + " to the commit)") +
            (blocking ? ": blocks writes meanwhile" : ""));
  }
  if (o.failure) {
    const Failure& f = *o.failure;
    if (f.failing_rows) {
      std::string what = f.constraint.empty() ? "the new constraint" : "constraint " + f.constraint;
      if (!f.column.empty() && f.constraint.empty()) what = "NOT NULL on " + f.column;
      add("constraint-fails", Severity::failure, f.table, f.column, f.failing_rows,
          what + " fails on " + rows_text(*f.failing_rows) + " of " +
              (f.table.empty() ? "the table" : f.table) +
              (f.constraint_definition.empty() ? "" : " (" + f.constraint_definition + ")"));
    }
    add("migration-failed", Severity::failure, f.table, f.column, std::nullopt,
        "fails at line " + std::to_string(f.line) + ": " + f.message +
            (f.sqlstate.empty() ? "" : " (SQLSTATE " + f.sqlstate + ")"));
  }
  std::stable_sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) {
    return rank(a.severity) < rank(b.severity);
  });
  return out;
}

FailOn parse_fail_on(const std::string& text) {
  std::string t = util::to_lower(text);
  if (t == "data-loss" || t == "data_loss") return FailOn::data_loss;
  if (t == "warning") return FailOn::warning;
  if (t == "never") return FailOn::never;
  throw usage_error("invalid --fail-on " + util::quoted(text),
                    "use --fail-on data-loss (the default), warning or never");
}

bool has_data_loss(const std::vector<Finding>& findings) {
  return std::any_of(findings.begin(), findings.end(),
                     [](const Finding& f) { return f.severity == Severity::data_loss; });
}

bool needs_review(const std::vector<Finding>& findings, FailOn fail_on) {
  if (fail_on == FailOn::never) return false;
  int worst = fail_on == FailOn::warning ? rank(Severity::warning) : rank(Severity::data_loss);
  return std::any_of(findings.begin(), findings.end(),
                     [&](const Finding& f) { return rank(f.severity) <= worst; });
}

nlohmann::json to_json(const DryRunReport& r) {
  nlohmann::json j;
  j["database"] = r.database;
  j["clone"] = {{"method", r.clone_method}, {"duration_ms", r.clone_ms}, {"space", r.space_check}};
  j["skipped"] = r.skipped;
  j["warnings"] = r.warnings;
  j["migrations"] = nlohmann::json::array();
  for (const auto& m : r.migrations) {
    nlohmann::json mj{{"id", m.id},
                      {"file", m.file},
                      {"mode", m.mode},
                      {"statements", m.statements},
                      {"duration_ms", m.duration_ms},
                      {"rows_affected", m.rows_affected},
                      {"failed", m.failure.has_value()}};
    std::map<long long, const TableState*> after;
    for (const auto& t : m.after) after[t.oid] = &t;
    mj["tables_rewritten"] = nlohmann::json::array();
    for (const auto& b : m.before) {
      auto it = after.find(b.oid);
      if (it != after.end() && it->second->relfilenode != b.relfilenode) {
        mj["tables_rewritten"].push_back(b.name);
      }
    }
    mj["locks_measured"] = m.locks_measured;
    mj["locks_sampled"] = m.locks_sampled;
    mj["locks"] = nlohmann::json::array();
    for (const auto& l : m.locks) {
      mj["locks"].push_back({{"table", l.table},
                             {"mode", l.mode},
                             {"held_ms", l.held_ms},
                             {"line", l.statement_line},
                             {"sampled", l.sampled}});
    }
    if (m.failure) {
      mj["error"] = {{"line", m.failure->line},
                     {"sqlstate", m.failure->sqlstate},
                     {"message", m.failure->message}};
    }
    j["migrations"].push_back(std::move(mj));
  }
  j["findings"] = nlohmann::json::array();
  for (const auto& f : r.findings) {
    nlohmann::json fj{{"kind", f.kind},
                      {"severity", std::string(severity_name(f.severity))},
                      {"migration", f.migration},
                      {"message", f.message}};
    if (!f.table.empty()) fj["table"] = f.table;
    if (!f.column.empty()) fj["column"] = f.column;
    if (f.rows) fj["rows"] = *f.rows;
    j["findings"].push_back(std::move(fj));
  }
  j["data_loss"] = has_data_loss(r.findings);
  return j;
}

std::string format_report(const DryRunReport& r) {
  std::ostringstream out;
  out << "dry run of " << r.migrations.size() << " pending migration"
      << (r.migrations.size() == 1 ? "" : "s") << " on a clone of " << r.database << " ("
      << r.clone_method << ", " << r.clone_ms << " ms)\n";
  for (const auto& m : r.migrations) {
    out << "\n"
        << util::printable(m.id) << " (" << util::printable(m.file) << ", " << m.mode
        << "): " << m.statements << " statement" << (m.statements == 1 ? "" : "s") << ", "
        << m.duration_ms << " ms, " << m.rows_affected << " rows affected"
        << (m.failure ? ", FAILED" : "") << "\n";
    if (m.locks_sampled) {
      out << "  locks: sampled from a second session (runs outside a transaction; very short "
             "locks may be missed)\n";
    } else if (!m.locks_measured) {
      out << "  locks: not measured (runs outside a transaction)\n";
    }
    for (const auto& f : classify(m)) {
      out << "  " << severity_name(f.severity) << ": " << util::printable(f.message) << "\n";
    }
  }
  if (r.migrations.empty()) {
    out << "nothing pending: " << r.skipped << " migration" << (r.skipped == 1 ? "" : "s")
        << " already applied\n";
  }
  size_t loss = 0, warn = 0, fail = 0;
  for (const auto& f : r.findings) {
    loss += f.severity == Severity::data_loss;
    warn += f.severity == Severity::warning;
    fail += f.severity == Severity::failure;
  }
  out << "\n"
      << loss << " data loss, " << fail << " failure, " << warn << " warning finding"
      << (loss + fail + warn == 1 ? "" : "s") << "; the target was not changed\n";
  return out.str();
}

}  // namespace previewdb::dryrun
