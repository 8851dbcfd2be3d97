// The user's git identity, from the git configuration (libgit2).
#pragma once

#include <optional>
#include <string>

namespace previewdb::git {

// user.name from the repository at (or above) `start_dir`, else the global/system config.
std::optional<std::string> config_user_name(const std::string& start_dir = ".");

}  // namespace previewdb::git
