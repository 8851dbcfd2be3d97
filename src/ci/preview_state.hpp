// What previewdb remembers inside a preview database between CI runs: the cause it was last
// reset (or refused) for, so that the same cause never resets it twice in a row. Kept in
// previewdb's own schema of the preview, so it goes away with the preview and a reset.
#pragma once

#include <string>

#include "db/connection.hpp"

namespace previewdb::ci {

// "" when none was recorded.
std::string read_reset_cause(db::Connection& preview);
void record_reset_cause(db::Connection& preview, const std::string& cause);

}  // namespace previewdb::ci
