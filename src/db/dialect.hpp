// What kind of server we talk to, and what it can do. PostgreSQL is implemented; CockroachDB
// (BACKUP/RESTORE instead of template databases) slots in here as another dialect later.
#pragma once

#include <string>

#include "db/connection.hpp"

namespace previewdb::db {

enum class ServerKind { postgres, cockroach };

struct ServerInfo {
  ServerKind kind = ServerKind::postgres;
  std::string version;  // "15.18", "v23.1.11"
};

// Classifies the text of SELECT version().
ServerInfo classify_version(const std::string& version_text);

// Capabilities differ by dialect; callers test flags, never the kind.
struct Dialect {
  const char* name;
  bool template_databases;  // CREATE DATABASE ... TEMPLATE (snapshots as frozen templates)
  bool clone_strategy;      // CREATE DATABASE ... STRATEGY (PostgreSQL 15+)
  bool comment_on_database;
  bool supported;
};

// Asks the server; throws Error(connection) with a hint for a server previewdb cannot manage yet.
const Dialect& dialect_of(Connection& conn);
const Dialect& dialect_for(const ServerInfo& info, int server_version_num);

}  // namespace previewdb::db
