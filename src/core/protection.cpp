#include "core/protection.hpp"

#include <algorithm>

namespace previewdb::core {

namespace {
const std::vector<std::string> k_builtin = {"dev",       "prod",      "production",
                                            "defaultdb", "postgres",  "system",
                                            "template0", "template1", "previewdb_registry"};
}

Protection::Protection(std::vector<std::string> extra) : m_names(std::move(extra)) {}

bool Protection::is_builtin(const std::string& name) const {
  return std::find(k_builtin.begin(), k_builtin.end(), name) != k_builtin.end();
}

std::optional<std::string> Protection::reason(const std::string& name,
                                              const std::vector<DatabaseInfo>& all) const {
  if (is_builtin(name)) return "a built-in protected name";
  if (std::find(m_names.begin(), m_names.end(), name) != m_names.end()) {
    return "protected by configuration (--protect / PREVIEWDB_PROTECT / previewdb.json)";
  }
  for (const auto& d : all) {
    if (d.meta && d.meta->kind == Kind::snapshot && d.meta->source == name) {
      return "the source of snapshot " + d.name;
    }
  }
  return std::nullopt;
}

Group Protection::group_of(const DatabaseInfo& db) const {
  if (db.meta) {
    switch (db.meta->kind) {
      case Kind::pr:
        return Group::pr_preview;
      case Kind::personal:
        return Group::personal;
      case Kind::snapshot:
        return Group::snapshot;
      case Kind::build:
        return Group::other;
      case Kind::pool:
        return Group::pool;
    }
  }
  if (db.name == "prod" || db.name == "production" || db.name == "defaultdb") {
    return Group::production;
  }
  if (db.name == "dev" || db.name == "development" || db.name == "staging") {
    return Group::development;
  }
  return Group::other;
}

}  // namespace previewdb::core
