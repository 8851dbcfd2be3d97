#include "ci/preview_policy.hpp"

#include <algorithm>
#include <set>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::ci {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool needs_base_entries(const std::vector<MigrationFact>& migrations) {
  return std::any_of(migrations.begin(), migrations.end(),
                     [](const auto& m) { return m.state == MigrationFact::State::missing; });
}

bool entry_is_migration(const std::string& entry, const std::string& id) {
  std::string e = entry;
  while (!e.empty() && e.back() == '/') e.pop_back();
  if (e == id) return true;
  for (const char* suffix : {".up.sql", ".sql"}) {
    if (ends_with(e, suffix) && e.substr(0, e.size() - std::string(suffix).size()) == id) {
      return true;
    }
  }
  return false;
}

PreviewPlan plan_preview(const PreviewFacts& f) {
  PreviewPlan plan;
  using State = MigrationFact::State;
  if (needs_base_entries(f.migrations) && !f.base_entries) {
    std::string base = f.base_ref.empty() ? std::string("the base branch")
                                          : "the base branch " + util::quoted(f.base_ref);
    Error e(ExitCode::usage,
            "cannot tell whether the preview is behind the base branch or diverged from it: " +
                base + " is not in this clone, so its migrations are unknown");
    // A wrong base name is the first thing to rule out (a `master` repository, a release branch).
    e.with_hint(
        "pass --base-ref with the branch the pull request merges into" +
        (f.base_ref.empty() ? std::string() : ", if it is not " + util::quoted(f.base_ref)));
    e.with_hint(
        "in GitHub Actions, check out with full history: actions/checkout with 'fetch-depth: 0' "
        "(or set GITHUB_TOKEN so that previewdb asks the GitHub API)");
    throw e;
  }
  std::vector<std::string> cause_lines;
  std::set<std::string> seen;  // a migration can be missing from two history tables
  for (const auto& m : f.migrations) {
    if (!seen.insert(m.id).second) continue;
    switch (m.state) {
      case State::applied:
        break;
      case State::pending:
        if (m.out_of_order) plan.out_of_order.push_back(m.id);
        break;
      case State::changed:
        plan.divergences.push_back(
            {m.id,
             "applied with another checksum than the branch's file (edited after it was "
             "applied, e.g. in a rebase)"});
        cause_lines.push_back(m.id + " changed " + m.file_checksum);
        break;
      case State::failed:
        plan.divergences.push_back({m.id, "failed part-way when it was applied"});
        cause_lines.push_back(m.id + " failed");
        break;
      case State::missing: {
        const auto& base = *f.base_entries;
        bool on_base = std::any_of(base.begin(), base.end(), [&](const std::string& e) {
          return entry_is_migration(e, m.id);
        });
        if (on_base) {
          plan.behind.push_back(m.id);
        } else {
          plan.divergences.push_back(
              {m.id,
               "applied, but in neither the branch nor the base branch (renamed or removed "
               "in the pull request?)"});
          cause_lines.push_back(m.id + " missing");
        }
        break;
      }
    }
  }
  std::sort(plan.behind.begin(), plan.behind.end());
  // The branch's pending migrations that sort before one it is behind are applied after it.
  if (!plan.behind.empty()) {
    for (const auto& m : f.migrations) {
      if (m.state == State::pending && m.id < plan.behind.back() &&
          std::find(plan.out_of_order.begin(), plan.out_of_order.end(), m.id) ==
              plan.out_of_order.end()) {
        plan.out_of_order.push_back(m.id);
      }
    }
  }
  plan.cause = util::join(cause_lines, "\n");
  if (plan.divergences.empty()) {
    plan.step = PreviewStep::migrate;
    plan.message = "the preview's history agrees with the branch";
    if (!plan.behind.empty()) {
      plan.message += "; it is " + std::to_string(plan.behind.size()) +
                      " migration(s) behind the base branch (" + util::join(plan.behind, ", ") +
                      ")";
      plan.hints.push_back("merge the base branch into the pull request to test them together");
    }
    return plan;
  }
  std::vector<std::string> named;
  for (const auto& d : plan.divergences) named.push_back(d.id + ": " + d.why);
  std::string list = util::join(named, "; ");
  if (f.fail_on_divergence) {
    plan.step = PreviewStep::refuse;
    plan.message = "has diverged from the branch's migrations: " + list;
    plan.hints.push_back(
        "--on-divergence reset re-creates the preview from the snapshot; or restore the files");
  } else if (f.created || (!f.recorded_cause.empty() && f.recorded_cause == plan.cause)) {
    plan.step = PreviewStep::refuse;
    plan.message = std::string("has diverged from the branch's migrations") +
                   (f.created ? ", and so has the snapshot it was just cloned from"
                              : " for the cause it was already re-created for") +
                   ": " + list;
    plan.hints.push_back(
        "a migration that is already in the snapshot must not be edited or removed: restore it "
        "and add a new migration instead, then push");
    plan.hints.push_back(
        "if the base branch changed it on purpose, refresh the snapshot (previewdb ci "
        "--refresh-source on the base branch, or 'previewdb snapshot') and re-run the job");
  } else {
    plan.step = PreviewStep::reset;
    plan.message = "has diverged from the branch's migrations (" + list +
                   "): re-creating it from the snapshot";
  }
  return plan;
}

}  // namespace previewdb::ci
