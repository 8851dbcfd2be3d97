// Which files a branch changes under some paths, the way `git diff --name-only base...HEAD -- p`
// answers it: the merge base of origin/<base> and HEAD, then a tree-to-tree diff restricted to
// the paths. libgit2, no git binary. A missing base (shallow clone) is an expected outcome.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace previewdb::git {

struct ChangeQuery {
  std::filesystem::path repository = ".";  // any directory inside the work tree
  std::string base_ref = "main";           // branch name; looked up as <remote>/<base_ref> first
  std::string remote = "origin";
  std::string head = "HEAD";
  std::vector<std::string> paths = {"migrations/schema/"};  // relative to the repository root
};

struct ChangedFile {
  std::string path;  // the new path (the old one for deletions)
  char status;       // 'A' added, 'M' modified, 'D' deleted, 'R' renamed, 'T' type change
  bool operator==(const ChangedFile&) const = default;
};

struct Changes {
  std::vector<ChangedFile> files;  // sorted by path
  std::string base_commit;         // what base_ref resolved to
  std::string merge_base;
  std::string head_commit;
};

// Why the base could not be used: missing ref (shallow or single-branch checkout), or no merge
// base in the fetched history. The message and hints name the fix.
struct BaseUnavailable {
  std::string message;
  std::vector<std::string> hints;
  bool shallow = false;
};

struct ChangeResult {
  std::optional<Changes> changes;
  std::optional<BaseUnavailable> unavailable;
  bool ok() const { return changes.has_value(); }
};

// Detects changes. Not a repository, or a HEAD that does not resolve -> Error(usage) naming the
// directory; a base that is not there or shares no history with HEAD -> result.unavailable.
ChangeResult detect_changes(const ChangeQuery& query);

// True when path is under one of the paths (as given to --migrations-path; "./" and a trailing
// "/" are ignored): used for the API fallback's file list too.
bool under_paths(const std::string& path, const std::vector<std::string>& paths);

// "migrations/schema/" -> "migrations/schema": the form compared and given to libgit2.
std::string normalise_path(std::string path);

}  // namespace previewdb::git
