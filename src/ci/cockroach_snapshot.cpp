#include "ci/cockroach_snapshot.hpp"

namespace previewdb::ci {

CockroachSnapshotPlan plan_cockroach_snapshot(const std::optional<std::string>& store_url,
                                              const std::string& source,
                                              const std::optional<std::string>& newest_backup,
                                              bool masking) {
  CockroachSnapshotPlan plan;
  if (!store_url || store_url->rfind("s3://", 0) != 0) {
    plan.message =
        std::string(
            "CockroachDB has no template databases: previews are RESTOREd from a BACKUP "
            "in an s3:// snapshot store, and ") +
        (store_url ? "the configured store is not s3://" : "no snapshot store is configured");
    plan.hints = {
        "set snapshot_store in previewdb.json (or PREVIEWDB_SNAPSHOT_STORE) to "
        "s3://BUCKET/PREFIX: backups of " +
            source + " go to s3://BUCKET/PREFIX/" + source + " and ci restores the newest",
        "or take one yourself with 'previewdb snapshot " + source +
            " --to s3://BUCKET/PREFIX' and spawn with 'previewdb spawn --snapshot "
            "s3://BUCKET/PREFIX/" +
            source + "'"};
    return plan;
  }
  if (masking) {
    plan.message =
        "masking rules apply, but a CockroachDB BACKUP copies every row as it is: previewdb "
        "cannot mask it";
    plan.hints = {"mask " + source +
                  " itself before it is backed up, or remove the masking rules for this "
                  "CockroachDB cluster"};
    return plan;
  }
  if (!newest_backup) {
    plan.step = CockroachSnapshotStep::take_first;
    return plan;
  }
  plan.step = CockroachSnapshotStep::restore_newest;
  plan.snapshot = *newest_backup;
  return plan;
}

}  // namespace previewdb::ci
