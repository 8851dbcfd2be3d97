// libgit2 set-up and repository handles shared by src/git/.
#pragma once

#include <git2.h>

#include <memory>
#include <string>

namespace previewdb::git {

// Initialises libgit2 once per process and never shuts it down (other threads may still use it
// while statics are destroyed). Its object cache is off: detection reads each commit once, and
// caching them only costs time (~10% of detection).
void ensure_init();

struct RepositoryFree {
  void operator()(git_repository* r) const { git_repository_free(r); }
};
using Repository = std::unique_ptr<git_repository, RepositoryFree>;

// The repository at or above dir; nullptr when there is none (last_error() says why).
Repository open_repository(const std::string& dir);

// libgit2's message for the last failed call.
std::string last_error();

}  // namespace previewdb::git
