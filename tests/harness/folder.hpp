// A folder a test writes files into (a migrations history, say), removed with the object.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "util/files.hpp"

namespace previewdb::test {

class Folder {
 public:
  explicit Folder(const std::string& prefix = "previewdb-test-") : m_dir(prefix) {}
  std::string path() const { return m_dir.path().string(); }
  const std::filesystem::path& dir() const { return m_dir.path(); }
  // Writes `content` to `rel` (parent folders created), byte for byte.
  Folder& file(const std::string& rel, const std::string& content) {
    auto p = m_dir.path() / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return *this;
  }

 private:
  util::TempDir m_dir;
};

}  // namespace previewdb::test
