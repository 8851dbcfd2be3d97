// The s3:// store: AWS S3 and S3-compatible servers (MinIO, R2, Ceph) over libcurl (net), with
// requests signed here (sigv4). Objects stream both ways: writes as multipart uploads whose part
// size grows (memory bounded by one part), reads as ranged GETs. Manifests (*.json) carry an
// HMAC-SHA-256 under the store's manifest key; a snapshot is visible only once its manifest is
// written, after its archive.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "storage/store.hpp"

namespace previewdb::storage {

// rest: "BUCKET/PREFIX" or "BUCKET/PREFIX/<id>.dump". Error(usage) for a bad bucket, missing
// credentials or manifest key.
std::unique_ptr<SnapshotStore> open_s3_store(const std::string& rest, const StoreOptions& options);

// The size of part `part_number` (1-based): `base` for the first 1,000 parts, doubling every
// 1,000 after, so 10,000 parts hold over 1,000 x base x 1,023 bytes; never above 5 GiB.
std::uint64_t s3_part_size(std::uint64_t base, int part_number);

// A manifest (a JSON object) with an "hmac" member: HMAC-SHA-256 under key of the object's
// name and its canonical JSON without "hmac". Binding the name stops a valid manifest from being
// copied under another name.
std::string sign_manifest(const std::string& name, const std::string& json_text,
                          const std::string& key);
enum class ManifestCheck { ok, unsigned_manifest, bad_hmac, not_json };
struct CheckedManifest {
  ManifestCheck status = ManifestCheck::not_json;
  std::string text;  // the manifest without its "hmac" (when ok)
};
CheckedManifest check_manifest(const std::string& name, const std::string& json_text,
                               const std::string& key);

}  // namespace previewdb::storage
