#include "git/user.hpp"

#include "git/repository.hpp"

namespace previewdb::git {

std::optional<std::string> config_user_name(const std::string& start_dir) {
  ensure_init();
  // The repository's configuration (which includes the global one), else the global/system one.
  git_config* raw = nullptr;
  if (auto repo = open_repository(start_dir)) {
    if (git_repository_config_snapshot(&raw, repo.get()) != 0) raw = nullptr;
  }
  if (!raw) {
    git_config* def = nullptr;
    if (git_config_open_default(&def) == 0) {
      if (git_config_snapshot(&raw, def) != 0) raw = nullptr;
      git_config_free(def);
    }
  }
  if (!raw) return std::nullopt;
  std::unique_ptr<git_config, decltype(&git_config_free)> cfg(raw, &git_config_free);
  const char* value = nullptr;
  if (git_config_get_string(&value, cfg.get(), "user.name") == 0 && value && *value) return value;
  return std::nullopt;
}

}  // namespace previewdb::git
