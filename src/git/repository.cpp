#include "git/repository.hpp"

#include <mutex>

namespace previewdb::git {

void ensure_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 0);
    // previewdb only reads local repositories. libgit2 re-hashes every object it reads (SHA-1
    // with collision detection) to check it against its name; git does not when it reads, and
    // on a merge base 50,000 commits back that check is ~20% of detection (bench/README.md).
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
  });
}

Repository open_repository(const std::string& dir) {
  ensure_init();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, dir.c_str(), 0, nullptr) != 0) return nullptr;
  return Repository(raw);
}

std::string last_error() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

}  // namespace previewdb::git
