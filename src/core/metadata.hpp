// The JSON comment on every database previewdb creates (COMMENT ON DATABASE):
//   {"tool":"previewdb","kind":"pr|personal|snapshot","created_at":"...Z","created_by":"...",
//    "pr_number":N|null,"branch":"..."|null,"snapshot":"..."|null}
// Snapshots also carry "source". A database without such a comment is unmanaged.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace previewdb::core {

enum class Kind { pr, personal, snapshot };

std::string to_string(Kind kind);

struct Metadata {
  Kind kind = Kind::personal;
  std::string created_at;  // ISO-8601 UTC
  std::string created_by;
  std::optional<long long> pr_number;
  std::optional<std::string> branch;
  std::optional<std::string> snapshot;  // the snapshot a clone was made from
  std::optional<std::string> source;    // snapshots: the database they were taken of
};

std::string to_comment(const Metadata& m);

// nullopt for anything that is not previewdb's own well-formed comment (absent, malformed JSON,
// another tool's JSON, wrong types): such databases are unmanaged. Never throws.
std::optional<Metadata> parse_comment(std::string_view comment);

}  // namespace previewdb::core
