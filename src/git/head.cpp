#include "git/head.hpp"

#include <git2.h>

#include <memory>

namespace previewdb::git {

std::optional<std::string> current_branch(const std::string& start_dir) {
  git_libgit2_init();
  std::optional<std::string> result;
  {
    git_repository* repo_raw = nullptr;
    if (git_repository_open_ext(&repo_raw, start_dir.c_str(), 0, nullptr) == 0) {
      std::unique_ptr<git_repository, decltype(&git_repository_free)> repo(repo_raw,
                                                                           &git_repository_free);
      git_reference* head_raw = nullptr;
      if (git_repository_head(&head_raw, repo.get()) == 0) {
        std::unique_ptr<git_reference, decltype(&git_reference_free)> head(head_raw,
                                                                           &git_reference_free);
        if (git_reference_is_branch(head.get())) result = git_reference_shorthand(head.get());
      }
    }
  }
  git_libgit2_shutdown();
  return result;
}

}  // namespace previewdb::git
