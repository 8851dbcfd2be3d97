#include "git/tree.hpp"

#include <git2.h>

#include <memory>

#include "git/changes.hpp"
#include "git/repository.hpp"

namespace previewdb::git {

namespace {

// The tree of a revision; nullptr when it does not resolve.
Tree tree_of(git_repository* repo, const std::string& spec) {
  git_object* raw = nullptr;
  if (git_revparse_single(&raw, repo, spec.c_str()) != 0) return nullptr;
  Object obj(raw);
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, obj.get(), GIT_OBJECT_TREE) != 0) return nullptr;
  return Tree(reinterpret_cast<git_tree*>(peeled));
}

std::string strip_prefix(std::string s, const std::string& prefix) {
  if (s.rfind(prefix, 0) == 0) s.erase(0, prefix.size());
  return s;
}

// <remote>/<base> first (what a PR merges into), then the name as given, as detect_changes does.
Tree base_tree(git_repository* repo, const std::string& base_ref, const std::string& remote) {
  std::string name = strip_prefix(strip_prefix(base_ref, "refs/heads/"), "refs/remotes/");
  if (!remote.empty() && name.rfind(remote + "/", 0) != 0) {
    if (auto t = tree_of(repo, "refs/remotes/" + remote + "/" + name)) return t;
  }
  return tree_of(repo, name);
}

// The object at `path` inside `root` (nullptr when absent); "" is the root itself.
Entry entry_at(git_tree* root, const std::string& path) {
  git_tree_entry* raw = nullptr;
  if (git_tree_entry_bypath(&raw, root, path.c_str()) != 0) return nullptr;
  return Entry(raw);
}

}  // namespace

std::optional<std::filesystem::path> work_tree_root(const std::filesystem::path& start) {
  auto repo = open_repository(start.string());
  if (!repo) return std::nullopt;
  const char* wd = git_repository_workdir(repo.get());
  if (!wd) return std::nullopt;
  std::string root = wd;  // libgit2 ends it with '/'
  if (root.size() > 1 && root.back() == '/') root.pop_back();
  return std::filesystem::path(root);
}

std::optional<std::vector<std::string>> folder_entries(const std::filesystem::path& repository,
                                                       const std::string& base_ref,
                                                       const std::string& folder,
                                                       bool* folder_exists,
                                                       const std::string& remote) {
  auto repo = open_repository(repository.string());
  if (!repo) return std::nullopt;
  Tree root = base_tree(repo.get(), base_ref, remote);
  if (!root) return std::nullopt;
  if (folder_exists) *folder_exists = false;
  std::string f = normalise_path(folder);
  Tree dir;
  if (f.empty()) {
    dir = std::move(root);
  } else {
    Entry e = entry_at(root.get(), f);
    if (!e || git_tree_entry_type(e.get()) != GIT_OBJECT_TREE) return std::vector<std::string>{};
    git_tree* raw = nullptr;
    if (git_tree_lookup(&raw, repo.get(), git_tree_entry_id(e.get())) != 0) {
      return std::vector<std::string>{};
    }
    dir.reset(raw);
  }
  if (folder_exists) *folder_exists = true;
  std::vector<std::string> out;
  size_t n = git_tree_entrycount(dir.get());
  for (size_t i = 0; i < n; ++i)
    out.emplace_back(git_tree_entry_name(git_tree_entry_byindex(dir.get(), i)));
  return out;
}

std::optional<std::optional<std::string>> file_at(const std::filesystem::path& repository,
                                                  const std::string& base_ref,
                                                  const std::string& path,
                                                  const std::string& remote) {
  auto repo = open_repository(repository.string());
  if (!repo) return std::nullopt;
  Tree root = base_tree(repo.get(), base_ref, remote);
  if (!root) return std::nullopt;
  Entry e = entry_at(root.get(), normalise_path(path));
  if (!e || git_tree_entry_type(e.get()) != GIT_OBJECT_BLOB) return std::optional<std::string>{};
  git_blob* raw = nullptr;
  if (git_blob_lookup(&raw, repo.get(), git_tree_entry_id(e.get())) != 0) {
    return std::optional<std::string>{};
  }
  std::unique_ptr<git_blob, Deleter<git_blob, git_blob_free>> blob(raw);
  const char* data = static_cast<const char*>(git_blob_rawcontent(blob.get()));
  return std::optional<std::string>(
      std::string(data, static_cast<size_t>(git_blob_rawsize(blob.get()))));
}

bool exists_at_head(const std::filesystem::path& repository, const std::string& path) {
  auto repo = open_repository(repository.string());
  if (!repo) return false;
  Tree head = tree_of(repo.get(), "HEAD");
  if (!head) return false;
  std::string p = normalise_path(path);
  return p.empty() || entry_at(head.get(), p) != nullptr;
}

std::optional<std::string> remote_head(const std::filesystem::path& repository,
                                       const std::string& remote) {
  auto repo = open_repository(repository.string());
  if (!repo) return std::nullopt;
  git_reference* raw = nullptr;
  std::string name = "refs/remotes/" + remote + "/HEAD";
  if (git_reference_lookup(&raw, repo.get(), name.c_str()) != 0) return std::nullopt;
  Reference ref(raw);
  if (git_reference_type(ref.get()) != GIT_REFERENCE_SYMBOLIC) return std::nullopt;
  std::string target = git_reference_symbolic_target(ref.get());
  std::string prefix = "refs/remotes/" + remote + "/";
  if (target.rfind(prefix, 0) != 0) return std::nullopt;
  return target.substr(prefix.size());
}

std::optional<std::string> remote_url(const std::filesystem::path& repository,
                                      const std::string& remote) {
  auto repo = open_repository(repository.string());
  if (!repo) return std::nullopt;
  git_remote* raw = nullptr;
  if (git_remote_lookup(&raw, repo.get(), remote.c_str()) != 0) return std::nullopt;
  Remote r(raw);
  const char* url = git_remote_url(r.get());
  if (!url) return std::nullopt;
  return std::string(url);
}

}  // namespace previewdb::git
