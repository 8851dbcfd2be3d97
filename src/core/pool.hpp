// The warm pool: ready clones of the latest snapshot of a source, made before they are needed
// (by `ci` and `spawn` at the end of a run, never by a detached process), so that a spawn takes
// one by `ALTER DATABASE ... RENAME` instead of paying for a clone.
//
// Members are managed databases (registry kind `pool`, the snapshot and source recorded) named
// previewdb_pool_<snapshot>_<k>, a prefix no spawn may use. They take no connections
// (ALLOW_CONNECTIONS false), so a rename never finds a session on one. A member is claimed under
// its own name lock (previewdb:spawn:<member>, taken with try: two spawns never get the same
// member, and a drop of the member waits for the claim); the rename, the connections, the comment
// and the registry row change in one transaction. Members of an older snapshot are never handed
// out: the next top-up drops them and clones fresh ones.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "core/metadata.hpp"
#include "core/registry.hpp"
#include "db/connection.hpp"

namespace previewdb::core {

inline constexpr std::string_view k_pool_prefix = "previewdb_pool_";

// True for a name under the pool's prefix (reserved: spawn refuses it as a requested name).
bool is_pool_name(std::string_view name);
// "previewdb_pool_<snapshot>_<k>"; a long snapshot name is cut and given a hash so the result
// fits 63 bytes.
std::string pool_member_name(const std::string& snapshot, int k);
// The lock one top-up of `source`'s pool holds (taken with try: a second run leaves it alone).
std::string pool_topup_lock_key(const std::string& source);

// The pool of `source` as it stands: members of its latest snapshot (fresh, by name) and of
// older ones or none left (stale); `latest` is empty when the source has no snapshot.
struct PoolState {
  std::string latest;
  std::vector<DatabaseInfo> fresh;
  std::vector<DatabaseInfo> stale;
};
PoolState pool_state(const std::vector<DatabaseInfo>& all, const std::string& source);
// Every member, of any source.
std::vector<DatabaseInfo> pool_members(const std::vector<DatabaseInfo>& all);

struct TopUpRequest {
  std::string source = "dev";
  size_t size = 0;  // wanted members of the latest snapshot
  CloneStrategy strategy = CloneStrategy::automatic;
  std::string created_by;
};
struct TopUpResult {
  std::string snapshot;  // the latest snapshot ("" when there is none: nothing done)
  size_t created = 0;
  size_t dropped = 0;  // stale members replaced
  size_t fresh = 0;    // members of the latest snapshot afterwards
  bool busy = false;   // another run was topping up this pool: left to it
};
// Drops the stale members of `source`'s pool (skipping one being handed out) and clones the latest
// snapshot until `size` members of it exist, each built under a temporary name (registered,
// dropped on failure) and renamed when complete. Fresh members beyond `size` are kept.
TopUpResult top_up_pool(db::Connection& maintenance, const TopUpRequest& request);

// Called by spawn under the name lock of `name` (which does not exist): renames a fresh member of
// `snapshot` (the latest of meta.source's pool) to `name`, allows connections, writes `meta`
// (created_at and snapshot filled in) to its comment and registry row, all in one transaction.
// nullopt when no member could be taken (none, all being claimed, or one in use: the server's
// bounded wait, then the next); the caller then clones.
std::optional<std::string> take_from_pool(db::Connection& maintenance, const std::string& source,
                                          const std::string& snapshot, const std::string& name,
                                          const Metadata& meta);
// The same from a list the caller read under that name lock (list_databases): no catalog read
// unless the pool has a member to take (each member is re-checked under its own lock).
std::optional<std::string> take_from_pool(db::Connection& maintenance,
                                          const std::vector<DatabaseInfo>& all,
                                          const std::string& source, const std::string& snapshot,
                                          const std::string& name, const Metadata& meta);

}  // namespace previewdb::core
