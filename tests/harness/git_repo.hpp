// Real git repositories for tests, made with the git CLI: a `main` branch with
// migrations/schema/0001_*.sql pushed to a bare `origin`, and a PR branch adding 0002_*.sql.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "util/files.hpp"

namespace previewdb::test {

// Runs git in dir with a fixed identity and no user/system configuration; throws with git's
// stderr when it fails. Returns stdout.
std::string git(const std::filesystem::path& dir, const std::vector<std::string>& args);

class GitRepos {
 public:
  // <tmp>/origin.git (bare), <tmp>/work cloned from it with `main` holding
  // migrations/schema/0001_init.sql, and a branch `feature` (checked out) that adds
  // migrations/schema/0002_add_email.sql and touches README.md.
  GitRepos();
  const std::filesystem::path& work() const { return m_work; }
  const std::filesystem::path& origin() const { return m_origin; }
  const std::filesystem::path& root() const { return m_tmp.path(); }

  // Writes a file in the work tree and commits it on the current branch.
  void commit_file(const std::string& path, const std::string& content, const std::string& message);
  // A clone of origin with `git clone --depth 1 --branch <branch> --single-branch` (what
  // actions/checkout does by default): origin/main is absent.
  std::filesystem::path shallow_clone(const std::string& name, const std::string& branch);
  // Pushes the current branch of the work tree to origin.
  void push(const std::string& branch);

 private:
  util::TempDir m_tmp{"previewdb-git-"};
  std::filesystem::path m_origin, m_work;
};

}  // namespace previewdb::test
