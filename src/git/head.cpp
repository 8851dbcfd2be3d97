#include "git/head.hpp"

#include "git/repository.hpp"

namespace previewdb::git {

std::optional<std::string> current_branch(const std::string& start_dir) {
  auto repo = open_repository(start_dir);
  if (!repo) return std::nullopt;
  git_reference* raw = nullptr;
  if (git_repository_head(&raw, repo.get()) != 0) return std::nullopt;  // unborn or broken
  std::unique_ptr<git_reference, decltype(&git_reference_free)> head(raw, &git_reference_free);
  if (!git_reference_is_branch(head.get())) return std::nullopt;  // detached
  return git_reference_shorthand(head.get());
}

}  // namespace previewdb::git
