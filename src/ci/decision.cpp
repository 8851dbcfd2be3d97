#include "ci/decision.hpp"

#include <algorithm>

#include "util/strings.hpp"

namespace previewdb::ci {

Decision decide(const DecisionInput& in) {
  if (!in.pr_number && in.refresh_source) {
    return {Action::refresh_source, Reason::base_branch,
            "a build of the base branch" +
                (in.base_branch.empty() ? std::string() : " " + util::quoted(in.base_branch)) +
                " with --refresh-source: the source database is migrated and snapshotted"};
  }
  if (!in.pr_number) {
    return {Action::none, in.closed ? Reason::closed : Reason::no_changes,
            "not a pull request build: the shared database is used and nothing is migrated"};
  }
  std::string pr = "pull request #" + std::to_string(*in.pr_number);
  if (in.closed) {
    return {Action::drop, Reason::closed, pr + " was closed: its preview database is dropped"};
  }
  if (in.forced) return {Action::preview, Reason::forced, pr + ": preview forced with --force"};
  if (!in.changed_migrations.empty()) {
    size_t n = in.changed_migrations.size();
    return {
        Action::preview, Reason::migrations_changed,
        pr + " changes " + std::to_string(n) + (n == 1 ? " migration file" : " migration files")};
  }
  if (std::find(in.labels.begin(), in.labels.end(), in.label) != in.labels.end()) {
    return {Action::preview, Reason::label, pr + " has the label " + util::quoted(in.label)};
  }
  return {Action::none, Reason::no_changes,
          pr + " changes no migrations: the shared database is used and nothing is migrated"};
}

}  // namespace previewdb::ci
