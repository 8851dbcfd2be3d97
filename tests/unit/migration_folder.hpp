// A migrations folder a unit test writes, read with the real readers (no server).
#pragma once

#include <map>
#include <string>

#include "harness/folder.hpp"
#include "migrate/readers.hpp"

namespace previewdb::test {

class MigrationFolder {
 public:
  const std::filesystem::path& path() const { return m_dir.dir(); }
  MigrationFolder& file(const std::string& rel, const std::string& content) {
    m_dir.file(rel, content);
    return *this;
  }
  migrate::MigrationSet read(const std::string& format = "auto",
                             std::map<std::string, std::string> placeholders = {}) const {
    return migrate::read_migrations({m_dir.dir(), format, placeholders});
  }

 private:
  Folder m_dir{"previewdb-migrations-"};
};

}  // namespace previewdb::test
