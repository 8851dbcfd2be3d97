// Configuration, with one precedence written once:
//   defaults < previewdb.json < environment (PREVIEWDB_*, DATABASE_URL, ...) < flags.
// Every value remembers where it came from, so messages can say "(from DATABASE_URL)".
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace previewdb::config {

struct Value {
  std::string value;
  std::string origin;  // "default", "previewdb.json", "DATABASE_URL", "--database-url"
};

// One row per setting: its flag, environment variable(s) and config-file key.
struct Key {
  const char* name;              // also the previewdb.json key
  const char* flag;              // without dashes; "" when there is none
  std::vector<const char*> env;  // first set wins
  const char* default_value;     // nullptr: no default
};
const std::vector<Key>& keys();

class Config {
 public:
  // flags: the flags the user actually gave (flag name -> value). file: --config, else
  // $PREVIEWDB_CONFIG, else ./previewdb.json when it exists. env: lookup (getenv in production).
  static Config load(const std::map<std::string, std::string>& flags,
                     const std::optional<std::filesystem::path>& file,
                     const std::map<std::string, std::string>& env);

  std::optional<Value> get(std::string_view name) const;
  std::string get_or(std::string_view name, const std::string& fallback) const;
  // A list setting: JSON array in the file, comma list in the environment, repeated flag.
  // All layers are merged (protection only ever grows).
  std::vector<std::string> get_list(std::string_view name) const;
  // Free-form file sections (e.g. "placeholders"); null when absent.
  const nlohmann::json& file_section(std::string_view name) const;

 private:
  std::map<std::string, Value, std::less<>> m_values;
  std::map<std::string, std::vector<std::string>, std::less<>> m_lists;
  nlohmann::json m_file = nlohmann::json::object();
};

// The process environment as a map (commands call this; domain code receives plain values).
std::map<std::string, std::string> process_env();

}  // namespace previewdb::config
