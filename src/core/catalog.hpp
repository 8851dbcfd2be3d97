// The databases on a server, with previewdb's metadata, grouped as users see them.
#pragma once

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
  bool managed() const { return meta.has_value(); }
};

enum class Group { production, development, pr_preview, personal, snapshot, other, pool };
std::string to_string(Group g);  // "Production", "Development", "PR previews", ..., "Warm pool"

// Every database but template0/template1, sorted by name, with the registry's facts (opening the
// registry, pruning stale rows and adopting legacy previews first). with_sizes costs a stat per
// database.
std::vector<DatabaseInfo> list_databases(db::Connection& conn, bool with_sizes = false);
std::optional<DatabaseInfo> find_database(db::Connection& conn, const std::string& name);

// Snapshots of `source` (registered ones: a comment makes nothing a snapshot), newest first.
std::vector<DatabaseInfo> snapshots_of(const std::vector<DatabaseInfo>& all,
                                       const std::string& source);

}  // namespace previewdb::core
