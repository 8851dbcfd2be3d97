// Whether a run needs a preview database, and why. Pure: no git, no network, no database.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ci/event.hpp"
#include "ci/outputs.hpp"

namespace previewdb::ci {

struct DecisionInput {
  std::optional<long long> pr_number;           // nullopt: not a pull request build
  bool closed = false;                          // the PR was closed (merged or not)
  bool forced = false;                          // --force
  std::vector<std::string> changed_migrations;  // files under the migrations paths
  std::vector<std::string> labels;
  std::string label = "preview-db";  // the label that asks for a preview
  // Not a PR: a build of the base branch (push to the default branch, Netlify production, or
  // generic) with --refresh-source: migrate the source database and snapshot it.
  bool refresh_source = false;
  std::string base_branch;  // for the explanation
};

enum class Action { none, preview, drop, refresh_source };

struct Decision {
  Action action = Action::none;
  Reason reason = Reason::no_changes;
  std::string explanation;  // one sentence for the log and the summary
  bool preview() const { return action == Action::preview; }
};

// closed -> drop; not a PR -> refresh_source when asked for on the base branch, else none; --force
// -> forced; migrations changed -> migrations-changed; the label -> label; otherwise no-changes
// (the shared database is used, nothing is migrated).
Decision decide(const DecisionInput& in);

}  // namespace previewdb::ci
