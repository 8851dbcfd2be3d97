// What a CI run does with an existing (or just created) preview database, decided from plain
// facts: which applied migrations are merely *behind* (merged to the base branch after the PR
// branched off) and which mean the preview *diverged* from the branch, and whether to migrate,
// reset it from the snapshot, or refuse. Pure: no git, no network, no database.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace previewdb::ci {

// One migration as the preview's history and the branch's folder see it (migrate::status).
struct MigrationFact {
  enum class State { applied, pending, changed, failed, missing };
  std::string id;
  State state = State::applied;
  bool out_of_order = false;  // pending, sorting before the newest applied one
  std::string file_checksum;  // changed: the branch's file (makes the reset cause specific)
};

struct PreviewFacts {
  std::vector<MigrationFact> migrations;
  // The entries of the migrations folder on the base branch (files, or folders for Prisma);
  // nullopt when unknown. Needed only when some applied migration is missing from the branch.
  std::optional<std::vector<std::string>> base_entries;
  std::string base_ref;             // the base branch's name (for messages)
  bool created = false;             // the preview was just cloned from the snapshot
  bool fail_on_divergence = false;  // --on-divergence fail
  std::string recorded_cause;       // the cause the preview was last reset (or refused) for
};

struct Divergence {
  std::string id;
  std::string why;
};

enum class PreviewStep { migrate, reset, refuse };

struct PreviewPlan {
  PreviewStep step = PreviewStep::migrate;
  std::vector<std::string> behind;  // applied, on the base branch, not on the branch
  // The branch's pending migrations applied out of order: sorting before the newest applied one,
  // or (by id) before a migration the preview is behind on.
  std::vector<std::string> out_of_order;
  std::vector<Divergence> divergences;
  std::string cause;    // one stable line per divergence; recorded when resetting or refusing
  std::string message;  // follows the preview's name: "pr_12 " + message
  std::vector<std::string> hints;
};

// True when some applied migration is missing from the branch: the base branch's entries are
// needed to tell behind from diverged.
bool needs_base_entries(const std::vector<MigrationFact>& migrations);

// True when a folder entry ("0003_x.sql", "1_x.up.sql", "20240101_x/" for Prisma) is the
// migration with this id (the readers' ids: file name without .sql / .up.sql, or folder name).
bool entry_is_migration(const std::string& entry, const std::string& id);

// The rules (docs/CI.md "Behind and diverged"):
// - an applied migration missing from the branch but on the base branch: behind (not diverged);
// - diverged: an applied file whose checksum differs, a failed migration, or an applied migration
//   in neither the branch nor the base branch;
// - nothing diverged: migrate (the branch's pending ones, out of order allowed);
// - diverged: refuse with --on-divergence fail; refuse when the preview was just cloned (the
//   snapshot itself carries the cause) or was already reset for this very cause; else reset.
// Throws Error(usage) when the base branch's entries are needed but unknown.
PreviewPlan plan_preview(const PreviewFacts& facts);

}  // namespace previewdb::ci
