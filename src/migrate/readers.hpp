// Migration folder readers, one per tool, and the auto-detection that picks one.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "migrate/migration.hpp"

namespace previewdb::migrate {

struct ReadOptions {
  std::filesystem::path dir;  // as the user wrote it (messages show paths under it)
  std::string format = "auto";
  std::map<std::string, std::string> placeholders;  // Flyway ${name} values
};

// Reads dir and returns its migrations in the tool's own order. Throws Error(usage) naming the
// folder or file for: a missing or empty folder, an unknown format, unreadable or non-UTF-8
// files, duplicate versions, a journal entry without its file, a missing placeholder value.
MigrationSet read_migrations(const ReadOptions& options);

// Which tool wrote dir; nullopt when it holds nothing previewdb recognises.
std::optional<Format> detect_format(const std::filesystem::path& dir);

}  // namespace previewdb::migrate
