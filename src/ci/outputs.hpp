// What a `previewdb ci` run reports, and the formats CI systems read it in: $GITHUB_OUTPUT (with
// a random heredoc delimiter, so no value can inject another key), workflow commands
// (::add-mask::, ::group::), the $GITHUB_STEP_SUMMARY table, dotenv files and one JSON object.
#pragma once

#include "util/workflow_commands.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace previewdb::ci {

enum class Reason { migrations_changed, label, forced, no_changes, closed, base_branch };
// "migrations-changed", "label", "forced", "no-changes", "closed", "base-branch"
std::string to_string(Reason r);

// The facts of one run.
struct Facts {
  bool preview = false;
  Reason reason = Reason::no_changes;
  std::string database_name;  // pr_<N> when preview, else the shared database's name
  std::string database_url;   // never with a password (db::url_for_database(..., false))
  bool created = false;
  bool pooled = false;  // created by taking a member of the warm pool (--json "pooled")
  bool reset = false;
  bool dropped = false;  // closed PR: the preview was dropped
  // nullopt: unknown (a --migrate-command whose tool's history previewdb cannot read); printed
  // as "unknown" (outputs, summary) and null (JSON).
  std::optional<long long> migrations_applied = 0;
  std::string snapshot;
  bool dry_run = false;  // a plan: nothing was touched
  std::string message;   // one sentence for people ("pr_12 created from snapshot ...")
  // Applied migrations that the branch does not have yet (merged to the base branch after it
  // branched off): the PR is behind, not diverged.
  std::vector<std::string> behind;
  long long snapshots_pruned = 0;  // base-branch run: snapshots dropped beyond --keep-snapshots
  // A run that failed after the decision: the scrubbed message and the exit code.
  std::optional<std::string> error;
  int exit_code = 0;
  // --report: the report's Markdown (ci/report.hpp), appended to the step summary; and what was
  // done with the PR comment ("created", "updated", "unchanged", "deleted", "none", "failed"; ""
  // when no comment was asked for) and how many findings it has, for --json.
  std::optional<std::string> report;
  std::string report_comment;
  size_t report_findings = 0;
};

// The output keys, in this order: preview, reason, database-name, database-url, created, reset,
// migrations-applied, snapshot, behind, behind-migrations, snapshots-pruned; then error and
// exit-code when the run failed.
std::vector<std::pair<std::string, std::string>> output_pairs(const Facts& facts);

// The $GITHUB_OUTPUT text for pairs: every value as `key<<DELIM\nvalue\nDELIM\n` with a fresh
// random delimiter that occurs in no value. make_delimiter is for tests (default: random).
std::string github_output_text(const std::vector<std::pair<std::string, std::string>>& pairs,
                               const std::function<std::string()>& make_delimiter = {});

// Workflow commands (escaped; see util/workflow_commands.hpp).
using util::workflow::add_mask_command;
using util::workflow::endgroup_command;
using util::workflow::group_command;

// A short Markdown table for $GITHUB_STEP_SUMMARY; `|` and newlines in values are escaped. The
// report, when there is one, follows the table.
std::string step_summary_markdown(const Facts& facts);

// Text from data made safe for a Markdown table cell or line: `|`, backticks and `<`/`>` escaped
// (no HTML, no hidden comment), newlines as <br>.
std::string markdown_cell(std::string_view s);

// `KEY=value` lines for a dotenv file / $GITHUB_ENV. Values with newlines use the heredoc form
// for $GITHUB_ENV (github=true); for dotenv they are double-quoted with escapes.
std::string dotenv_text(const std::vector<std::pair<std::string, std::string>>& vars);
std::string github_env_text(const std::vector<std::pair<std::string, std::string>>& vars,
                            const std::function<std::string()>& make_delimiter = {});

// The facts as one JSON object (the same keys as the outputs, with typed values; the newer ones
// spelled behind, behind_migrations (an array), snapshots_pruned, pooled, error, exit_code), plus
// "dropped", "dry_run" and "message"; with --report, "report": {"findings", "comment"}.
nlohmann::json to_json(const Facts& facts);

}  // namespace previewdb::ci
