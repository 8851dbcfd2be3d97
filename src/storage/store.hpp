// Archive stores: where pg_dump archives (of snapshots) live so they can move between servers.
// Chosen by URL scheme from one table (file://, s3://). Below core and snapshot: both use it
// (spawn restores an archive, snapshot writes one), so neither depends on the other for it.
#pragma once

#include <sys/types.h>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "storage/sigv4.hpp"

namespace previewdb::storage {

// A 32-byte archive encryption key (storage/encryption.hpp) and its id, a hash prefix safe to
// print and to keep in manifests.
struct EncryptionKey {
  std::string bytes;
  std::string id;  // 16 hex characters
};

// What a store needs besides its URL: plain values the command resolved (domain code never
// reads the environment). Only s3:// uses them today.
struct StoreOptions {
  std::string s3_endpoint;  // AWS_ENDPOINT_URL: a custom endpoint, addressed path-style
  std::string s3_region = "us-east-1";
  AwsCredentials s3_credentials;
  std::uint64_t s3_part_size = 8u << 20;  // the first parts; grows so 10,000 parts never cap
  // Multipart uploads under the prefix older than this were left by a killed run: aborted when
  // the next writer opens the store.
  std::chrono::seconds s3_sweep_after = std::chrono::hours(24);
  // HMAC-SHA-256 key of manifests (PREVIEWDB_MANIFEST_KEY); required by s3://.
  std::string manifest_key;
  // PREVIEWDB_ENCRYPTION_KEY / --encryption-key-file: encrypts with --encrypt, decrypts restores.
  std::optional<EncryptionKey> encryption_key;
};

// An archive written as a stream whose name is decided at the end (snapshots are named last).
// Destroyed while unpublished, it leaves nothing behind.
class ArchiveWriter {
 public:
  virtual ~ArchiveWriter() = default;
  virtual void write(std::string_view data) = 0;
  // All data written: stored, not yet visible.
  virtual void finish() = 0;
  // Visible as `id`, with its metadata written last (a reader never sees one without the other).
  virtual void publish(const std::string& id, const std::string& metadata_json) = 0;
  // Undoes publish (the id was taken meanwhile); publish may be called again.
  virtual void unpublish() = 0;
};
// A named object being written to a store. Nothing under its name exists until commit(): a
// writer destroyed without commit (an error, a killed dump) leaves no object that looks complete.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual void write(std::string_view data) = 0;
  // Makes the object visible under its name (atomically: temp + rename).
  virtual void commit() = 0;
};

class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Up to size bytes; 0 at the end.
  virtual size_t read(char* buf, size_t size) = 0;
};

// A snapshot archive in a store, from its metadata.
struct ArchiveInfo {
  std::string id;
  std::string source;
  std::string created_at;  // ISO 8601 UTC
  std::uint64_t size = 0;
  // Masked before it was dumped (the snapshot's metadata: "masked", "mask_rules_sha256").
  std::optional<std::string> mask_rules_sha256;
};

struct StoreObject {
  std::string name;
  std::uint64_t size = 0;
  std::chrono::system_clock::time_point modified;
};

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;
  // Stores archive (a pg_dump custom-format file) as `id`, with its metadata JSON beside it.
  virtual void put(const std::string& id, const std::filesystem::path& archive,
                   const std::string& metadata_json) = 0;
  // A local path to the archive `id` ("latest": the newest). May download into scratch.
  virtual std::filesystem::path fetch(const std::string& id,
                                      const std::filesystem::path& scratch) = 0;
  // Removes the archive `id` and its metadata (nothing when absent).
  virtual void remove(const std::string& id) = 0;
  // Archive ids, oldest first.
  virtual std::vector<std::string> list() = 0;
  // The archives with their metadata (those without readable metadata are left out).
  virtual std::vector<ArchiveInfo> archives() = 0;
  // The newest archive taken of `source` (by its metadata's creation time), never one of another
  // source; nullopt when there is none.
  virtual std::optional<std::string> latest_of(const std::string& source) = 0;
  // Generic objects (backups and their manifests). The store is private: a folder is created
  // 0700 with a .gitignore of "*", objects are 0600. Names are plain file names ([A-Za-z0-9._-],
  // not starting with '.'); Error(usage) otherwise. Errors name the store and the OS's reason.
  virtual std::unique_ptr<ObjectWriter> create_object(const std::string& name) = 0;
  // nullptr when there is no such object.
  virtual std::unique_ptr<ObjectReader> open_object(const std::string& name) = 0;
  // Committed objects (no temporaries), by name.
  virtual std::vector<StoreObject> list_objects() = 0;
  // Removes an object; false when it was not there.
  virtual bool remove_object(const std::string& name) = 0;
  // A local file holding the object when the store has one (file://), for tools that need a
  // path; nullopt otherwise.
  virtual std::optional<std::filesystem::path> local_path(const std::string& name) const = 0;

  // The store's URL, safe to print.
  virtual std::string describe() const = 0;

  // Streams an archive into the store; `hint` is the id it will probably get.
  virtual std::unique_ptr<ArchiveWriter> begin_archive(const std::string& hint) = 0;
  // The archive `id` as a stream, its manifest checked (Error(refused) when its HMAC does not
  // match; a stream whose size or SHA-256 differs from the manifest throws at its end).
  virtual std::unique_ptr<ObjectReader> open_archive(const std::string& id) = 0;
  // Capability: archives are remote (restored as a stream, with --no-owner --no-acl: whoever
  // can write the bucket must not choose owners or grants), not local files.
  virtual bool remote() const = 0;
};

// file://DIR or file://DIR/<id>.dump, s3://BUCKET/PREFIX or s3://BUCKET/PREFIX/<id>.dump.
// Throws Error(usage) for unknown schemes, bad URLs and missing s3:// settings.
std::unique_ptr<SnapshotStore> open_store(const std::string& url, const StoreOptions& options = {});
// A store URL from what a user typed: a folder path ("./backups", "/var/backups") becomes
// file://PATH; anything with a scheme is kept.
std::string store_url_from(const std::string& path_or_url);

// An archive's snapshot metadata (core::to_comment's JSON) says whether it was masked: the rules'
// hash, or nullopt for an unmasked archive (or metadata that is not an object).
std::optional<std::string> mask_hash_of(const nlohmann::json& metadata);
// The whole object as text (manifests; at most max_bytes); nullopt when absent.
std::optional<std::string> read_object_text(SnapshotStore& store, const std::string& name,
                                            size_t max_bytes = 1 << 20);
// Writes a small object atomically.
void write_object_text(SnapshotStore& store, const std::string& name, std::string_view text);

// The pid in a writer's temporary name (".NAME.partial-PID"); nullopt for any other file name.
// A file store removes those whose process is gone when it next writes.
std::optional<pid_t> stale_partial_pid(const std::string& file_name);

// The object a URL names: "<id>" for file://DIR/<id>.dump, "latest" for file://DIR.
std::string store_object_id(const std::string& url);

// pg_dump -Fc of dbname into path; pg_restore of an archive into an existing empty dbname.
// The connection reaches the child through libpq environment variables, never its argv.
void dump_archive(const std::string& conninfo, const std::string& dbname,
                  const std::filesystem::path& path);
void restore_archive(const std::string& conninfo, const std::string& dbname,
                     const std::filesystem::path& archive);
// Streams an archive from a store into pg_restore (--no-owner --no-acl) into an existing empty
// dbname, decrypting it (with key) when it is encrypted. A damaged or tampered stream fails the
// restore (the caller drops the half-restored database); no unauthenticated byte reaches
// pg_restore.
void restore_stream(const std::string& conninfo, const std::string& dbname, SnapshotStore& store,
                    const std::string& id, const std::optional<EncryptionKey>& key = std::nullopt);
// True when the archive `id` in the store is encrypted (its first bytes).
bool archive_encrypted(SnapshotStore& store, const std::string& id);
// pg_dump -Fc of dbname streamed into writer (no temporary file).
void dump_to(const std::string& conninfo, const std::string& dbname, ArchiveWriter& writer);

// pg_dump -Fc source | pg_restore -d target: an online copy that needs no exclusive access.
void copy_online(const std::string& conninfo, const std::string& source, const std::string& target);

}  // namespace previewdb::storage
