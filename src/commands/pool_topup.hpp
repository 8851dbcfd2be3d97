// The end of a `ci` or `spawn` run: the warm pool of the source topped up (core/pool.hpp), after
// the run's outputs are written and in the same process (a CI job kills what it leaves behind).
#pragma once

#include <cstddef>
#include <string>

#include "config/config.hpp"
#include "core/lifecycle.hpp"
#include "db/connection.hpp"

namespace previewdb::commands {

// pool_size (--pool, PREVIEWDB_POOL_SIZE, previewdb.json; default 0: no pool), 0-50.
size_t pool_size_setting(const config::Config& cfg);

// Tops up `source`'s pool to `size` members; 0 does nothing. Never fails the run: a failure is a
// warning (the next run tries again).
void top_up_pool_at_end(db::Connection& maintenance, const std::string& source, size_t size,
                        core::CloneStrategy strategy, const std::string& created_by);

}  // namespace previewdb::commands
