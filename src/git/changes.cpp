#include "git/changes.hpp"

#include "git/repository.hpp"

#include <git2.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::git {

namespace {

std::string oid_text(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

// Resolves a revision to a commit; nullptr when it does not exist.
Commit resolve_commit(git_repository* repo, const std::string& spec) {
  git_object* raw = nullptr;
  if (git_revparse_single(&raw, repo, spec.c_str()) != 0) return nullptr;
  Object obj(raw);
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, obj.get(), GIT_OBJECT_COMMIT) != 0) return nullptr;
  return Commit(reinterpret_cast<git_commit*>(peeled));
}

std::string strip_prefix(std::string s, std::string_view prefix) {
  if (s.rfind(prefix, 0) == 0) s.erase(0, prefix.size());
  return s;
}

BaseUnavailable missing_base(const ChangeQuery& q, bool shallow, std::string what) {
  BaseUnavailable u;
  u.shallow = shallow;
  u.message = std::move(what);
  if (shallow) {
    u.message += " (this is a shallow clone)";
    u.hints.push_back(
        "in GitHub Actions, check out with full history: actions/checkout with 'fetch-depth: 0'");
  }
  u.hints.push_back("or fetch the base branch first: git fetch origin " + q.base_ref);
  return u;
}

}  // namespace

std::string normalise_path(std::string path) {
  while (path.rfind("./", 0) == 0) path.erase(0, 2);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == ".") path.clear();
  return path;
}

bool under_paths(const std::string& path, const std::vector<std::string>& paths) {
  for (const auto& raw : paths) {
    std::string p = normalise_path(raw);
    if (p.empty()) return true;
    if (path == p) return true;
    if (path.size() > p.size() && path.compare(0, p.size(), p) == 0 && path[p.size()] == '/') {
      return true;
    }
  }
  return false;
}

ChangeResult detect_changes(const ChangeQuery& q) {
  Repository repo = open_repository(q.repository.string());
  if (!repo) {
    std::string why = last_error();
    Error e = usage_error(
        "cannot open the git repository at " + util::quoted(q.repository.string()) + ": " + why,
        "run previewdb ci inside the checked-out repository");
    // libgit2 1.5 reports a repository owned by another user (a container running as root on
    // the runner's checkout) as a missing safe.directory setting.
    if (why.find("safe.directory") != std::string::npos || why.find("owned") != std::string::npos) {
      std::string path = std::filesystem::absolute(q.repository).lexically_normal().string();
      if (path.size() > 1 && path.back() == '/') path.pop_back();  // git matches the exact path
      e.with_hint(
          "the repository belongs to another user; allow it with: git config --global "
          "--add safe.directory " +
          path);
    }
    throw e;
  }
  bool shallow = git_repository_is_shallow(repo.get()) == 1;

  Commit head = resolve_commit(repo.get(), q.head);
  if (!head) {
    throw usage_error("cannot resolve " + util::quoted(q.head) + " in " +
                          util::quoted(q.repository.string()) + ": " + last_error(),
                      "check out the pull request's branch before running previewdb ci");
  }

  // origin/<base> first (what the PR merges into), then the name as given (a tag, a SHA, a
  // local branch) so that generic CI can pass anything git understands.
  std::string base_name = strip_prefix(strip_prefix(q.base_ref, "refs/heads/"), "refs/remotes/");
  std::vector<std::string> candidates;
  if (!q.remote.empty() && base_name.rfind(q.remote + "/", 0) != 0) {
    candidates.push_back("refs/remotes/" + q.remote + "/" + base_name);
  }
  candidates.push_back(base_name);
  Commit base;
  std::string base_used;
  for (const auto& c : candidates) {
    if ((base = resolve_commit(repo.get(), c))) {
      base_used = c;
      break;
    }
  }
  if (!base) {
    return {std::nullopt,
            missing_base(q, shallow,
                         "the base branch " + util::quoted(q.remote + "/" + base_name) +
                             " is not in this clone")};
  }

  git_oid merge_base;
  int rc =
      git_merge_base(&merge_base, repo.get(), git_commit_id(head.get()), git_commit_id(base.get()));
  // In a shallow clone the walk stops at missing parents: libgit2 reports that as "object not
  // found"; both mean the fetched history is too short, which the user can fix.
  if (rc == GIT_ENOTFOUND || (rc != 0 && shallow)) {
    return {std::nullopt,
            missing_base(q, shallow,
                         "HEAD and " + util::quoted(base_used) +
                             " share no history in this clone, so the changes of the branch "
                             "cannot be computed")};
  }
  if (rc != 0) {
    throw Error(ExitCode::failure, "cannot compute the merge base of HEAD and " +
                                       util::quoted(base_used) + ": " + last_error());
  }
  Commit base_commit;
  {
    git_commit* c = nullptr;
    if (git_commit_lookup(&c, repo.get(), &merge_base) != 0) {
      // A shallow boundary can name a merge base whose commit object is not present.
      return {std::nullopt,
              missing_base(q, shallow,
                           "the merge base " + oid_text(&merge_base) + " is not in this clone")};
    }
    base_commit.reset(c);
  }

  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, base_commit.get()) != 0) {
    throw Error(ExitCode::failure,
                "cannot read the tree of " + oid_text(&merge_base) + ": " + last_error());
  }
  Tree old_tree(raw_tree);
  if (git_commit_tree(&raw_tree, head.get()) != 0) {
    throw Error(ExitCode::failure, "cannot read the tree of HEAD: " + last_error());
  }
  Tree new_tree(raw_tree);

  std::vector<std::string> specs;
  for (const auto& p : q.paths) {
    std::string n = normalise_path(p);
    if (!n.empty()) specs.push_back(n);
  }
  std::vector<char*> spec_ptrs;
  for (auto& s : specs) spec_ptrs.push_back(s.data());
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  // Literal prefixes, not globs: a directory named "schema[1]" must not become a pattern.
  opts.flags = GIT_DIFF_DISABLE_PATHSPEC_MATCH;
  opts.pathspec.strings = spec_ptrs.data();
  opts.pathspec.count = spec_ptrs.size();
  git_diff* raw_diff = nullptr;
  if (git_diff_tree_to_tree(&raw_diff, repo.get(), old_tree.get(), new_tree.get(), &opts) != 0) {
    throw Error(ExitCode::failure,
                "cannot diff " + oid_text(&merge_base) + " and HEAD: " + last_error());
  }
  Diff diff(raw_diff);

  Changes out;
  out.base_commit = oid_text(git_commit_id(base.get()));
  out.merge_base = oid_text(&merge_base);
  out.head_commit = oid_text(git_commit_id(head.get()));
  size_t n = git_diff_num_deltas(diff.get());
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* d = git_diff_get_delta(diff.get(), i);
    ChangedFile f;
    f.path = d->status == GIT_DELTA_DELETED ? d->old_file.path : d->new_file.path;
    switch (d->status) {
      case GIT_DELTA_ADDED:
        f.status = 'A';
        break;
      case GIT_DELTA_DELETED:
        f.status = 'D';
        break;
      case GIT_DELTA_RENAMED:
        f.status = 'R';
        break;
      case GIT_DELTA_TYPECHANGE:
        f.status = 'T';
        break;
      default:
        f.status = 'M';
        break;
    }
    // DISABLE_PATHSPEC_MATCH compares prefixes: "migrations/schema" would also match
    // "migrations/schema_old/x"; keep only whole path components.
    if (specs.empty() || under_paths(f.path, specs)) out.files.push_back(std::move(f));
  }
  std::sort(out.files.begin(), out.files.end(),
            [](const ChangedFile& a, const ChangedFile& b) { return a.path < b.path; });
  return {std::move(out), std::nullopt};
}

}  // namespace previewdb::git
