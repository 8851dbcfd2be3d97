// Minimal dotenv editing that keeps every other line as it was.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace previewdb::util {

// The value of KEY in a dotenv text (handles `export `, quotes); nullopt when absent.
std::optional<std::string> dotenv_get(const std::string& text, const std::string& key);
// Sets KEY=value (replacing the first definition, appending otherwise); nullopt removes it.
std::string dotenv_set(const std::string& text, const std::string& key,
                       const std::optional<std::string>& value);
// Quotes a value for a dotenv file when it needs it.
std::string dotenv_quote(const std::string& value);

}  // namespace previewdb::util
