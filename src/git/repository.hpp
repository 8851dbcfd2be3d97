// libgit2 set-up and repository handles shared by src/git/.
#pragma once

#include <git2.h>

#include <memory>
#include <string>

namespace previewdb::git {

// Initialises libgit2 once per process and never shuts it down (other threads may still use it
// while statics are destroyed). Its object cache is off: detection reads each commit once, and
// caching them only costs time (~10% of detection). Objects read are not re-hashed (strict hash
// verification off), as git does not either.
void ensure_init();

// Owning handles for libgit2 objects, each freed with its own function.
template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p) Free(p);
  }
};
using Repository = std::unique_ptr<git_repository, Deleter<git_repository, git_repository_free>>;
using Object = std::unique_ptr<git_object, Deleter<git_object, git_object_free>>;
using Commit = std::unique_ptr<git_commit, Deleter<git_commit, git_commit_free>>;
using Tree = std::unique_ptr<git_tree, Deleter<git_tree, git_tree_free>>;
using Entry = std::unique_ptr<git_tree_entry, Deleter<git_tree_entry, git_tree_entry_free>>;
using Diff = std::unique_ptr<git_diff, Deleter<git_diff, git_diff_free>>;
using Reference = std::unique_ptr<git_reference, Deleter<git_reference, git_reference_free>>;
using Remote = std::unique_ptr<git_remote, Deleter<git_remote, git_remote_free>>;

// The repository at or above dir; nullptr when there is none (last_error() says why).
Repository open_repository(const std::string& dir);

// libgit2's message for the last failed call.
std::string last_error();

}  // namespace previewdb::git
