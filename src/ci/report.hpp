// What a pull request changes in the database, as `previewdb ci --report diff,lint` tells it: the
// lint findings for the PR's migrations and the schema diff between the snapshot and the preview,
// composed as Markdown for the step summary and for one PR comment (found again by a hidden
// marker, updated in place, removed when there is nothing to say). Plain values in: the findings
// arrive already converted (ci does not depend on lint) and the diff section already rendered.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/github.hpp"

namespace previewdb::ci {

// The parts of a report (--report diff,lint; PREVIEWDB_REPORT; "report" in previewdb.json).
struct ReportKinds {
  bool diff = false;
  bool lint = false;
  bool any() const { return diff || lint; }
};
// Parses the listed kinds ("diff", "lint", case-insensitive, blanks ignored); throws a usage
// error naming every unknown one and where it came from (`origin`).
ReportKinds parse_report_kinds(const std::vector<std::string>& items, const std::string& origin);

// One lint finding, as plain values.
struct ReportFinding {
  std::string severity;  // "error", "warning" or "info"
  std::string rule;      // "index-not-concurrent"
  std::string file;      // display path
  int line = 0;
  std::string message;
  std::string hint;
  std::string size;  // "public.users: ~12 rows, 16 KiB" when graded by the preview, else ""
};

// --fail-on for the report: error, warning or never (nullopt level).
enum class FailLevel { warning, error };
// "error", "warning" or "never" (nullopt); throws a usage error naming `origin` otherwise.
std::optional<FailLevel> parse_fail_level(const std::string& value, const std::string& origin);
// True when a finding is at least `level`.
bool report_fails(const std::vector<ReportFinding>& findings, std::optional<FailLevel> level);

struct ReportInput {
  std::string identity;  // the preview's name: part of the hidden marker
  bool lint = false;     // lint was asked for
  std::vector<ReportFinding> findings;
  size_t migrations_linted = 0;             // the PR's migrations (added or changed)
  bool diff = false;                        // the diff was asked for
  std::optional<std::string> diff_section;  // Markdown; nullopt or blank: nothing to show
};

struct Report {
  bool has_content = false;  // a finding or a diff to show: the PR comment exists
  std::string summary;       // Markdown for $GITHUB_STEP_SUMMARY (one line when nothing to say)
  std::string comment;       // the PR comment's body, starting with the marker; "" when nothing
};

// "<!-- previewdb:report IDENTITY -->": the first line of previewdb's comment for one preview.
std::string report_marker(const std::string& identity);
// True when body is previewdb's report comment for `identity` (it starts with the marker).
bool is_report_comment(std::string_view body, const std::string& identity);

// GitHub refuses comments over 65536 characters; the report stays under this.
inline constexpr size_t k_max_comment_bytes = 60000;
// At most this many findings are listed; the rest are counted.
inline constexpr size_t k_max_listed_findings = 50;

Report compose_report(const ReportInput& input);

// What to do with the PR comment, from the PR's comments as listed and the report.
enum class CommentAction { none, create, update, remove };
struct CommentPlan {
  CommentAction action = CommentAction::none;
  long long id = 0;              // the comment to update or remove
  std::vector<long long> extra;  // further marked comments (a race, an old bug): removed
  bool unchanged = false;        // update: the body is already the report's (no call needed)
};
// The first comment carrying the marker is the one: updated in place when there is something to
// say (unchanged when identical), removed when not; created only when absent and needed.
CommentPlan plan_comment(const std::vector<net::IssueComment>& comments, const Report& report,
                         const std::string& identity);
std::string to_string(CommentAction action);  // "none", "created", "updated", "deleted"

}  // namespace previewdb::ci
