#include "harness/git_repo.hpp"

#include <stdexcept>

#include "util/subprocess.hpp"

namespace fs = std::filesystem;

namespace previewdb::test {

std::string git(const fs::path& dir, const std::vector<std::string>& args) {
  util::ProcessSpec spec;
  spec.argv = {"git",
               "-c",
               "init.defaultBranch=main",
               "-c",
               "protocol.file.allow=always",
               "-c",
               "commit.gpgsign=false"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.cwd = dir.string();
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  spec.env = {{"GIT_AUTHOR_NAME", "Test"},    {"GIT_AUTHOR_EMAIL", "test@example.com"},
              {"GIT_COMMITTER_NAME", "Test"}, {"GIT_COMMITTER_EMAIL", "test@example.com"},
              {"GIT_CONFIG_NOSYSTEM", "1"},   {"GIT_CONFIG_GLOBAL", "/dev/null"},
              {"GIT_TERMINAL_PROMPT", "0"}};
  auto r = util::run_process(spec);
  if (!r.ok()) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    throw std::runtime_error("git" + cmd + " failed in " + dir.string() + ": " + r.err);
  }
  return r.out;
}

GitRepos::GitRepos() {
  // A test that runs the CLI without DATABASE_URL starts the embedded server in the work tree's
  // .previewdb: the server's user must reach it, or its files go to /var/tmp and outlive the test.
  fs::permissions(m_tmp.path(), fs::perms(0755));
  m_origin = m_tmp.path() / "origin.git";
  m_work = m_tmp.path() / "work";
  git(m_tmp.path(), {"init", "--bare", "-q", m_origin.string()});
  git(m_tmp.path(), {"clone", "-q", m_origin.string(), m_work.string()});
  git(m_work, {"symbolic-ref", "HEAD", "refs/heads/main"});
  commit_file("migrations/schema/0001_init.sql",
              "CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);\n",
              "initial schema");
  commit_file("README.md", "demo\n", "readme");
  push("main");
  git(m_work, {"checkout", "-q", "-b", "feature"});
  commit_file("migrations/schema/0002_add_email.sql", "ALTER TABLE users ADD COLUMN email text;\n",
              "add email");
  commit_file("README.md", "demo with email\n", "docs");
  push("feature");
}

void GitRepos::commit_file(const std::string& path, const std::string& content,
                           const std::string& message) {
  fs::path p = m_work / path;
  fs::create_directories(p.parent_path());
  util::write_file_atomic(p, content);
  git(m_work, {"add", "--", path});
  git(m_work, {"commit", "-q", "-m", message});
}

fs::path GitRepos::shallow_clone(const std::string& name, const std::string& branch) {
  fs::path dest = m_tmp.path() / name;
  git(m_tmp.path(), {"clone", "-q", "--depth", "1", "--branch", branch, "--single-branch",
                     "file://" + m_origin.string(), dest.string()});
  return dest;
}

void GitRepos::push(const std::string& branch) {
  git(m_work, {"push", "-q", "origin", branch});
}

}  // namespace previewdb::test
