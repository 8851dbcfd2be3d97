// Lint sources from a migrations folder, shared by `previewdb lint` and `previewdb ci --report
// lint`: the up part of each migration, with each file's own line numbers.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "lint/lint.hpp"
#include "migrate/migration.hpp"

namespace previewdb::commands {

// The migrations of `set` (only those whose id is in only_ids, when given) as lint sources.
std::vector<lint::Source> lint_sources(const migrate::MigrationSet& set,
                                       const std::set<std::string>* only_ids);

}  // namespace previewdb::commands
