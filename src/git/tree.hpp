// Reading a branch's tree without checking it out: the repository's root, the entries of a folder
// on the base branch (origin/<base>), one file's contents there, origin/HEAD and the origin URL.
// libgit2, no git binary. A base branch that is not in the clone is an expected outcome (nullopt).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace previewdb::git {

// The work tree's root for any directory inside it; nullopt outside a repository (or bare).
std::optional<std::filesystem::path> work_tree_root(const std::filesystem::path& start);

// The names of the entries directly inside `folder` (relative to the root, "" for the root) at
// <remote>/<base_ref> (else base_ref as git understands it). nullopt: the base is not in this
// clone. A folder missing there gives an empty list with *folder_exists = false.
std::optional<std::vector<std::string>> folder_entries(const std::filesystem::path& repository,
                                                       const std::string& base_ref,
                                                       const std::string& folder,
                                                       bool* folder_exists = nullptr,
                                                       const std::string& remote = "origin");

// The contents of a file at <remote>/<base_ref>. nullopt: the base is not in this clone;
// an empty optional inside: the file does not exist there.
std::optional<std::optional<std::string>> file_at(const std::filesystem::path& repository,
                                                  const std::string& base_ref,
                                                  const std::string& path,
                                                  const std::string& remote = "origin");

// True when `path` (a file or folder, relative to the root) exists in HEAD's tree.
bool exists_at_head(const std::filesystem::path& repository, const std::string& path);

// The branch refs/remotes/<remote>/HEAD points at ("main"); nullopt when it is not set
// (actions/checkout does not create it).
std::optional<std::string> remote_head(const std::filesystem::path& repository,
                                       const std::string& remote = "origin");

// The remote's URL as configured; nullopt when there is no such remote.
std::optional<std::string> remote_url(const std::filesystem::path& repository,
                                      const std::string& remote = "origin");

}  // namespace previewdb::git
