// The storage URL CockroachDB's BACKUP, RESTORE and SHOW BACKUPS read an s3:// location from
// (CockroachDB docs, "Use Cloud Storage": s3://BUCKET/PATH?AUTH=...&AWS_ACCESS_KEY_ID=...). The
// cluster's nodes talk to S3, not previewdb, so the credentials travel in the URL's query: the
// statement that carries it must only ever be shown redacted (db::exec_redacted).
#pragma once

#include <string>

#include "storage/store.hpp"

namespace previewdb::storage {

// s3://BUCKET/PATH with, in this order: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN when options carry credentials (AWS_* or the *_COCKROACH_BACKUP names),
// else AUTH=implicit (the cluster's own credentials); AWS_ENDPOINT for a custom endpoint;
// AWS_REGION. Values are percent-encoded (RFC 3986 unreserved characters kept), and every secret
// value, as written and as encoded, is registered with util::register_secret. `path` is appended
// to the URL's own path ("snap_dev_20261121_120000": one collection per snapshot). Error(usage)
// for anything but s3://BUCKET[/PREFIX].
std::string cockroach_storage_url(const std::string& s3_url, const std::string& path,
                                  const StoreOptions& options);

}  // namespace previewdb::storage
