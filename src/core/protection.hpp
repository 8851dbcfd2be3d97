// Databases that are never dropped or overwritten: dev, prod, defaultdb, postgres, system,
// template0, template1, previewdb_registry, anything configured (--protect / config), and any
// snapshot's source.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/catalog.hpp"

namespace previewdb::core {

class Protection {
 public:
  explicit Protection(std::vector<std::string> extra = {});
  // The reason `name` is protected ("built-in", "configured", "source of snapshot X"), or nullopt.
  std::optional<std::string> reason(const std::string& name,
                                    const std::vector<DatabaseInfo>& all) const;
  bool is_builtin(const std::string& name) const;
  Group group_of(const DatabaseInfo& db) const;

 private:
  std::vector<std::string> m_names;
};

}  // namespace previewdb::core
