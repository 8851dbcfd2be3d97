// Configuration, with one precedence written once:
//   defaults < previewdb.json < environment (PREVIEWDB_*, DATABASE_URL, ...) < flags.
// Every value remembers where it came from, so messages can say "(from DATABASE_URL)".
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/duration.hpp"
#include "util/error.hpp"

namespace previewdb::config {

struct Value {
  std::string value;
  std::string origin;  // "default", "previewdb.json", "DATABASE_URL", "--database-url"
};

// How a setting's text is read; the typed getter must match the setting's row.
enum class Type { string, duration, path, boolean, integer, list };

// One row per setting: its flag, environment variable(s), config-file key, type and default. The
// one place where defaults are written: commands ask the getters, never restate them.
struct Key {
  const char* name;              // also the previewdb.json key
  const char* flag;              // without dashes; "" when there is none
  std::vector<const char*> env;  // first set wins
  const char* default_value;     // nullptr: no default
  Type type = Type::string;
};
const std::vector<Key>& keys();

class Config {
 public:
  // flags: the flags the user actually gave (flag name -> value). file: --config, else
  // $PREVIEWDB_CONFIG, else ./previewdb.json when it exists. env: lookup (getenv in production).
  // table: the settings (keys() in production; unit tests pass their own).
  static Config load(const std::map<std::string, std::string>& flags,
                     const std::optional<std::filesystem::path>& file,
                     const std::map<std::string, std::string>& env,
                     const std::vector<Key>& table = keys());

  // The value and its origin; the table's default ("default") when no layer set it.
  std::optional<Value> get(std::string_view name) const;

  // Typed getters. get_* return the value or the table's default; they throw std::logic_error
  // for a setting without a default that nobody set (use find_* for those) and for a setting
  // whose row has another type. find_* return nullopt when unset and without default. Bad and
  // empty values are Error(usage) naming the setting, the value and its origin:
  //   invalid lock_timeout "abc" (from PREVIEWDB_LOCK_TIMEOUT): not a duration
  // A string setting may be empty; get_string of an unset one without default is "".
  std::string get_string(std::string_view name) const;
  std::chrono::seconds get_duration(std::string_view name,
                                    util::BareUnit bare_unit = util::BareUnit::seconds) const;
  std::optional<std::chrono::seconds> find_duration(
      std::string_view name, util::BareUnit bare_unit = util::BareUnit::seconds) const;
  std::filesystem::path get_path(std::string_view name) const;
  std::optional<std::filesystem::path> find_path(std::string_view name) const;
  // true/false, yes/no, on/off, 1/0 (any case).
  bool get_bool(std::string_view name) const;
  std::optional<bool> find_bool(std::string_view name) const;
  // A decimal integer within [min, max].
  long long get_int(std::string_view name, long long min, long long max) const;
  std::optional<long long> find_int(std::string_view name, long long min, long long max) const;
  // A list setting: JSON array in the file, comma list in the environment, repeated flag.
  // All layers are merged (protection only ever grows).
  std::vector<std::string> get_list(std::string_view name) const;

  // Free-form file sections (e.g. "placeholders"); null when absent.
  const nlohmann::json& file_section(std::string_view name) const;

 private:
  const Key& key(std::string_view name, Type type) const;
  // The value of a typed setting, refusing an empty one; nullopt when unset without default.
  std::optional<Value> typed(std::string_view name, Type type) const;

  std::vector<Key> m_table;
  std::map<std::string, Value, std::less<>> m_values;
  std::map<std::string, std::vector<std::string>, std::less<>> m_lists;
  nlohmann::json m_file = nlohmann::json::object();
};

// "invalid <setting> <"value"> (from <origin>): <reason>" as Error(usage) with the hint.
Error invalid_setting(std::string_view name, const Value& v, const std::string& reason,
                      const std::string& hint);

// The process environment as a map (commands call this; domain code receives plain values).
std::map<std::string, std::string> process_env();

}  // namespace previewdb::config
