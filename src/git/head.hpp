// What HEAD points at, read with libgit2.
#pragma once

#include <optional>
#include <string>

namespace previewdb::git {

// The short name of the branch HEAD is on ("feature/orders"); nullopt when detached, unborn,
// or not in a repository.
std::optional<std::string> current_branch(const std::string& start_dir = ".");

}  // namespace previewdb::git
