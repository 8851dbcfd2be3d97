// Swapping a complete database in for a name: the replacement (a restored backup, a template
// clone, any database built under a temporary name) takes the name, the original is kept as
// <name>_before_restore_<YYYYMMDD_HHMMSS>. Both renames, the carry-over of what a new database
// would lose (owner, database-level grants, ALTER DATABASE ... SET settings, connection limit,
// comment) and the registry's rows change in one transaction on the maintenance connection:
// a failed or killed swap leaves both databases as they were.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/metadata.hpp"
#include "core/protection.hpp"
#include "db/connection.hpp"

namespace previewdb::core {

// ---- names -------------------------------------------------------------------------------------

inline constexpr const char* k_before_restore_infix = "_before_restore_";
// "<name>_before_restore_<timestamp>" (timestamp YYYYMMDD_HHMMSS); a name too long for
// PostgreSQL's 63 bytes is cut and given 8 hex digits of its hash, so it stays unique.
std::string before_restore_name(const std::string& name, const std::string& timestamp);
// True for names before_restore_name makes (the infix followed by YYYYMMDD_HHMMSS at the end).
bool is_before_restore_name(const std::string& name);

// ---- sessions ----------------------------------------------------------------------------------

struct SessionInfo {
  int pid = 0;
  std::string user;
  std::string application;
  std::string client;  // address, "local" for a Unix socket
};
// Sessions connected to `database` (this session excluded).
std::vector<SessionInfo> sessions_on(db::Connection& conn, const std::string& database);
// The sessions still connected to `database` after waiting up to `grace` for them to go (a client
// that has just disconnected is listed until its server process exits); empty: idle.
std::vector<SessionInfo> idle_or_sessions(db::Connection& conn, const std::string& database,
                                          std::chrono::milliseconds grace);
// "pid 123 (user app, application \"psql\", client 10.0.0.5)", joined by "; ".
std::string describe_sessions(const std::vector<SessionInfo>& sessions);

// ---- what a new database would lose ------------------------------------------------------------

struct DatabaseGrant {
  std::optional<std::string> grantee;  // nullopt: PUBLIC
  std::string privilege;               // CONNECT, CREATE, TEMPORARY
  bool grantable = false;
};
struct DatabaseSetting {
  std::optional<std::string> role;  // nullopt: every role (ALTER DATABASE ... SET)
  std::string name;
  std::string value;  // as pg_db_role_setting keeps it (a list GUC flattened: "\"$user\", public")
};
struct DatabaseProperties {
  long long oid = 0;
  std::string owner;
  long long owner_oid = 0;
  bool default_acl = true;  // datacl IS NULL: the owner's and PUBLIC's defaults
  std::vector<DatabaseGrant> grants;
  std::vector<DatabaseSetting> settings;
  std::optional<std::string> comment;
  int connection_limit = -1;
  std::string encoding, collate, ctype;  // for building a replacement like it
};
// nullopt when there is no such database.
std::optional<DatabaseProperties> read_properties(db::Connection& conn,
                                                  const std::string& database);
// Gives `database` the owner, grants, settings, connection limit and comment of `props`
// (replacing its own). Transactional: runs inside the caller's transaction when there is one.
void apply_properties(db::Connection& conn, const std::string& database,
                      const DatabaseProperties& props);
// `value` of a setting as SQL for ALTER DATABASE ... SET name TO <here>: list settings
// (search_path, DateStyle, temp_tablespaces, *_preload_libraries) element by element, others as
// one literal. Exposed for tests.
std::string setting_value_sql(const db::Connection& conn, const std::string& name,
                              const std::string& value);

// ---- the swap ----------------------------------------------------------------------------------

struct SwapRequest {
  std::string target;       // N: the name that gets the replacement (must exist)
  std::string replacement;  // X: complete, idle (nobody connected), e.g. a previewdb_tmp_* build
  std::string timestamp;    // YYYYMMDD_HHMMSS, for the kept original's name
  // Close the sessions connected to N (and X) instead of refusing.
  bool terminate_sessions = false;
  // The registry row of X's build (Registry::begin_build); it is finished as N when the original
  // N was managed (registered) and owned by previewdb's role, removed otherwise (a swap never
  // makes a user's database previewdb's). nullopt: X has no row (the caller keeps its own).
  std::optional<long long> replacement_row;
  // With a protection: a protected N is refused unless allow_protected.
  const Protection* protection = nullptr;
  bool allow_protected = false;
  // Who swapped, recorded for the kept original ("previewdb restore").
  std::string created_by = "previewdb restore";
};

struct SwapResult {
  std::string kept_as;                  // N_before_restore_T
  bool kept_managed = false;            // registered, so `cleanup` removes it
  std::string kept_owner;               // the original's owner
  std::vector<SessionInfo> terminated;  // sessions closed (terminate_sessions)
};

// Swaps X in for N under N's name lock (previewdb:spawn:N; session locks nest, so a caller may
// hold it already). Refuses (Error(refused)) while N or X has sessions, naming them, unless
// terminate_sessions; while a running build holds N (hold_database); for a protected N without
// allow_protected. Error(not_found) when N or X does not exist. The kept original is registered
// (kind personal, so `cleanup` may drop it) when it is owned by previewdb's role; one owned by
// another role stays unmanaged (cleanup --include-unmanaged). Nothing is changed on failure.
SwapResult swap_database(db::Connection& maintenance, const SwapRequest& request);

}  // namespace previewdb::core
