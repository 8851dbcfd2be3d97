// The databases on a server, with previewdb's metadata, grouped as users see them.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/metadata.hpp"
#include "db/connection.hpp"

namespace previewdb::core {

struct DatabaseInfo {
  std::string name;
  // From the registry (never from the comment); nullopt: unmanaged. Kind::build: a temporary
  // database of a build in progress or interrupted, to become build_target.
  std::optional<Metadata> meta;
  long long oid = 0;
  std::string owner;  // the owning role's name (datdba)
  std::optional<std::string> build_target;
  bool is_template = false;
  bool allow_connections = true;
  long long size_bytes = -1;  // -1 when we may not read it
  // Set when size_bytes was measured earlier and cached (an estimate): when, ISO-8601 UTC, and
  // how long ago. Unset: measured by this call.
  std::optional<std::string> size_as_of;
  std::optional<std::chrono::seconds> size_age;
  bool managed() const { return meta.has_value(); }
};

enum class Group { production, development, pr_preview, personal, snapshot, other, pool };
std::string to_string(Group g);  // "Production", "Development", "PR previews", ..., "Warm pool"

// Every database but template0/template1, sorted by name, with the registry's facts (opening the
// registry, pruning stale rows and adopting legacy previews first). with_sizes: unmanaged
// databases are measured now; managed ones show the size cached in the registry (measured when
// previewdb made them, or by an earlier call), measured now when there is none or it is older
// than k_size_max_age (at most k_size_refresh_budget of those per call, oldest first).
// exact_sizes measures every database now (a walk of each one's directory: slow with many).
std::vector<DatabaseInfo> list_databases(db::Connection& conn, bool with_sizes = false,
                                         bool exact_sizes = false);
inline constexpr std::chrono::seconds k_size_max_age{600};
inline constexpr size_t k_size_refresh_budget = 100;

// A managed database's cached size: its oid and the cache's age (nullopt: none cached).
struct CachedSize {
  long long oid = 0;
  std::optional<std::chrono::seconds> age;
};
// Which of them to measure again: every one without a cached size, then those older than
// max_age, oldest first, at most `budget` of the latter.
std::vector<long long> sizes_to_measure(const std::vector<CachedSize>& cached,
                                        std::chrono::seconds max_age, size_t budget);
std::optional<DatabaseInfo> find_database(db::Connection& conn, const std::string& name);

// Snapshots of `source` (registered ones: a comment makes nothing a snapshot), newest first.
std::vector<DatabaseInfo> snapshots_of(const std::vector<DatabaseInfo>& all,
                                       const std::string& source);

}  // namespace previewdb::core
