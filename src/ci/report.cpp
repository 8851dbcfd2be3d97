#include "ci/report.hpp"

#include <algorithm>
#include <cctype>

#include "ci/outputs.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::ci {

namespace {

int rank(std::string_view severity) {
  if (severity == "error") return 2;
  if (severity == "warning") return 1;
  return 0;
}

std::string plural(size_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The diff section comes from another module as Markdown: it may not carry a hidden comment
// (a second marker would confuse the next run's search) nor end without a newline.
std::string sanitized_section(std::string text) {
  const std::string open = "<!--";
  for (size_t pos = text.find(open); pos != std::string::npos; pos = text.find(open, pos + 4)) {
    text.replace(pos, 1, "&lt;");
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text + "\n";
}

std::string findings_headline(const std::vector<ReportFinding>& findings, size_t migrations) {
  size_t errors = 0, warnings = 0, infos = 0;
  for (const auto& f : findings) {
    int r = rank(f.severity);
    (r == 2 ? errors : r == 1 ? warnings : infos)++;
  }
  std::string in = plural(migrations, "migration", "migrations");
  if (findings.empty()) return "no findings in " + in;
  return plural(findings.size(), "finding", "findings") + " in " + in + ": " +
         plural(errors, "error", "errors") + ", " + plural(warnings, "warning", "warnings") + ", " +
         std::to_string(infos) + " info";
}

std::string lint_section(const ReportInput& in) {
  std::string out = "#### Lint: " + findings_headline(in.findings, in.migrations_linted) + "\n";
  if (in.findings.empty()) return out;
  // Most severe first; within a level, in file order (the order lint found them).
  std::vector<const ReportFinding*> sorted;
  for (const auto& f : in.findings) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return rank(a->severity) > rank(b->severity);
  });
  out += "\n| severity | rule | where | finding |\n|---|---|---|---|\n";
  size_t listed = 0;
  for (const auto* f : sorted) {
    if (listed == k_max_listed_findings) break;
    ++listed;
    std::string finding = f->message;
    if (!f->size.empty()) finding += " (" + f->size + ")";
    std::string cell = markdown_cell(finding);
    if (!f->hint.empty()) cell += "<br>hint: " + markdown_cell(f->hint);
    out += "| " + markdown_cell(f->severity) + " | " + markdown_cell(f->rule) + " | " +
           markdown_cell(f->file + ":" + std::to_string(f->line)) + " | " + cell + " |\n";
  }
  if (sorted.size() > listed) {
    out += "\n…and " + std::to_string(sorted.size() - listed) +
           " more: run `previewdb lint --pending --database` on the preview for all of them.\n";
  }
  return out;
}

}  // namespace

ReportKinds parse_report_kinds(const std::vector<std::string>& items, const std::string& origin) {
  ReportKinds kinds;
  std::vector<std::string> unknown;
  for (const auto& raw : items) {
    std::string item = util::to_lower(util::trim(raw));
    if (item.empty()) continue;
    if (item == "diff")
      kinds.diff = true;
    else if (item == "lint")
      kinds.lint = true;
    else
      unknown.push_back(util::quoted(util::trim(raw)));
  }
  if (!unknown.empty()) {
    throw usage_error("unknown report kind" + std::string(unknown.size() == 1 ? " " : "s ") +
                          util::join(unknown, ", ") + " (from " + origin + ")",
                      "use diff, lint or both: --report diff,lint");
  }
  return kinds;
}

std::optional<FailLevel> parse_fail_level(const std::string& value, const std::string& origin) {
  std::string v = util::to_lower(util::trim(value));
  if (v == "never") return std::nullopt;
  if (v == "warning") return FailLevel::warning;
  if (v == "error") return FailLevel::error;
  throw usage_error("invalid fail-on " + util::quoted(value) + " (from " + origin + ")",
                    "use error, warning or never");
}

bool report_fails(const std::vector<ReportFinding>& findings, std::optional<FailLevel> level) {
  if (!level) return false;
  int at_least = *level == FailLevel::error ? 2 : 1;
  return std::any_of(findings.begin(), findings.end(),
                     [&](const ReportFinding& f) { return rank(f.severity) >= at_least; });
}

std::string report_marker(const std::string& identity) {
  // The identity is a validated database name; anything else cannot close the comment early.
  std::string id;
  for (char c : identity) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') id += c;
  }
  return "<!-- previewdb:report " + id + " -->";
}

bool is_report_comment(std::string_view body, const std::string& identity) {
  std::string marker = report_marker(identity);
  if (body.substr(0, marker.size()) != marker) return false;
  return body.size() == marker.size() || body[marker.size()] == '\n' || body[marker.size()] == '\r';
}

Report compose_report(const ReportInput& in) {
  Report r;
  bool diff_shown = in.diff && in.diff_section && !util::trim(*in.diff_section).empty();
  bool lint_shown = in.lint && !in.findings.empty();
  r.has_content = diff_shown || lint_shown;
  if (!r.has_content) {
    std::string why;
    if (in.lint)
      why = "no lint findings in " + plural(in.migrations_linted, "migration", "migrations");
    if (in.diff) why += std::string(why.empty() ? "" : ", ") + "no schema difference to show";
    r.summary = "#### previewdb report: nothing to review (" + why + ")\n";
    return r;
  }
  std::string body =
      "### previewdb: what this pull request changes in " + markdown_cell(in.identity) + "\n\n";
  if (in.diff) {
    body += diff_shown ? sanitized_section(*in.diff_section)
                       : "#### Schema diff\n\nNo schema difference to show.\n";
    body += "\n";
  }
  if (in.lint) body += lint_section(in);
  if (body.size() > k_max_comment_bytes) {
    // Cut at a line boundary; GitHub refuses longer comments altogether.
    size_t cut = body.rfind('\n', k_max_comment_bytes - 200);
    body = body.substr(0, cut == std::string::npos ? 0 : cut) +
           "\n\n…cut here: the report is longer than a comment may be; the step summary of the "
           "run has all of it.\n";
  }
  r.summary = body;
  r.comment = report_marker(in.identity) + "\n" + body;
  return r;
}

CommentPlan plan_comment(const std::vector<net::IssueComment>& comments, const Report& report,
                         const std::string& identity) {
  CommentPlan plan;
  const net::IssueComment* ours = nullptr;
  for (const auto& c : comments) {
    if (!is_report_comment(c.body, identity)) continue;
    if (!ours) {
      ours = &c;
    } else {
      plan.extra.push_back(c.id);
    }
  }
  if (report.has_content) {
    if (ours) {
      plan.action = CommentAction::update;
      plan.id = ours->id;
      plan.unchanged = ours->body == report.comment;
    } else {
      plan.action = CommentAction::create;
    }
  } else if (ours) {
    plan.action = CommentAction::remove;
    plan.id = ours->id;
  }
  return plan;
}

std::string to_string(CommentAction action) {
  switch (action) {
    case CommentAction::none:
      return "none";
    case CommentAction::create:
      return "created";
    case CommentAction::update:
      return "updated";
    case CommentAction::remove:
      return "deleted";
  }
  return "none";
}

}  // namespace previewdb::ci
