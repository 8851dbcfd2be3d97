#include "git/user.hpp"

#include <git2.h>

#include <memory>

namespace previewdb::git {

std::optional<std::string> config_user_name(const std::string& start_dir) {
  git_libgit2_init();
  std::optional<std::string> result;
  {
    git_repository* repo_raw = nullptr;
    git_config* cfg_raw = nullptr;
    if (git_repository_open_ext(&repo_raw, start_dir.c_str(), 0, nullptr) == 0) {
      std::unique_ptr<git_repository, decltype(&git_repository_free)> repo(repo_raw,
                                                                           &git_repository_free);
      if (git_repository_config_snapshot(&cfg_raw, repo.get()) != 0) cfg_raw = nullptr;
    }
    if (!cfg_raw) {
      git_config* def = nullptr;
      if (git_config_open_default(&def) == 0) {
        if (git_config_snapshot(&cfg_raw, def) != 0) cfg_raw = nullptr;
        git_config_free(def);
      }
    }
    std::unique_ptr<git_config, decltype(&git_config_free)> cfg(cfg_raw, &git_config_free);
    const char* value = nullptr;
    if (cfg && git_config_get_string(&value, cfg.get(), "user.name") == 0 && value && *value) {
      result = value;
    }
  }
  git_libgit2_shutdown();
  return result;
}

}  // namespace previewdb::git
