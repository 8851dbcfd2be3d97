// The JSON comment on every database previewdb creates (COMMENT ON DATABASE):
//   {"tool":"previewdb","kind":"pr|personal|snapshot","created_at":"...Z","created_by":"...",
//    "pr_number":N|null,"branch":"..."|null,"snapshot":"..."|null}
// Snapshots also carry "source" (and "masked": true, "mask_rules_sha256" when masked), previews of
// a known repository "repository". The comment is for people and for the original format only: what
// previewdb manages is decided by the registry (core/registry.hpp), never by a comment, which any
// owner of a database can write.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace previewdb::core {

// build: a database still being built under a temporary name (or left by an interrupted build).
// pool: a ready clone of the latest snapshot of a source, waiting in the warm pool (core/pool.hpp)
// to be handed out by rename.
enum class Kind { pr, personal, snapshot, build, pool };

std::string to_string(Kind kind);

struct Metadata {
  Kind kind = Kind::personal;
  std::string created_at;  // ISO-8601 UTC
  std::string created_by;
  std::optional<long long> pr_number;
  std::optional<std::string> branch;
  std::optional<std::string> snapshot;    // the snapshot a clone was made from
  std::optional<std::string> source;      // snapshots: the database they were taken of
  std::optional<std::string> repository;  // previews: owner/name of the repository, if known
  // Snapshots taken with masking (docs/MASKING.md): the SHA-256 of the rules; "masked": true.
  std::optional<std::string> mask_rules_sha256;
};

std::string to_comment(const Metadata& m);

// nullopt for anything that is not previewdb's own well-formed comment (absent, malformed JSON,
// another tool's JSON, wrong types): such databases are unmanaged. Never throws.
std::optional<Metadata> parse_comment(std::string_view comment);

}  // namespace previewdb::core
