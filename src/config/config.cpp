#include "config/config.hpp"

#include "util/error.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

extern char** environ;

namespace fs = std::filesystem;
using nlohmann::json;

namespace previewdb::config {

const std::vector<Key>& keys() {
  static const std::vector<Key> table = {
      {"database_url", "database-url", {"DATABASE_URL"}, nullptr},
      {"direct_url", "direct-url", {"DIRECT_URL"}, nullptr},
      {"home", "home", {"PREVIEWDB_HOME"}, nullptr},
      {"user", "user", {"PREVIEWDB_USER"}, nullptr},
      {"protect", "protect", {"PREVIEWDB_PROTECT"}, nullptr},
      {"source", "from", {"PREVIEWDB_SOURCE"}, "dev"},
      {"migrations_dir", "dir", {"PREVIEWDB_MIGRATIONS_DIR"}, "migrations/schema"},
      {"format", "format", {"PREVIEWDB_FORMAT"}, "auto"},
      {"label", "label", {"PREVIEWDB_LABEL"}, "preview-db"},
      {"base_ref", "base-ref", {"PREVIEWDB_BASE_REF"}, "main"},
      {"lock_timeout", "lock-timeout", {"PREVIEWDB_LOCK_TIMEOUT"}, "10m"},
      {"lock_mode", "lock-mode", {"PREVIEWDB_LOCK_MODE"}, "auto"},
      {"statement_timeout", "statement-timeout", {"PREVIEWDB_STATEMENT_TIMEOUT"}, nullptr},
      {"lock_wait_timeout", "lock-wait-timeout", {"PREVIEWDB_LOCK_WAIT_TIMEOUT"}, nullptr},
      {"timeout", "timeout", {"PREVIEWDB_TIMEOUT"}, nullptr},
      {"strategy", "strategy", {"PREVIEWDB_CLONE_STRATEGY"}, "auto"},
      {"migrate_command", "migrate-command", {"PREVIEWDB_MIGRATE_COMMAND"}, nullptr},
      {"on_divergence", "on-divergence", {"PREVIEWDB_ON_DIVERGENCE"}, "reset"},
      {"snapshot_store", "to", {"PREVIEWDB_SNAPSHOT_STORE"}, nullptr},
  };
  return table;
}

std::map<std::string, std::string> process_env() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

namespace {

std::string scalar_to_string(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

}  // namespace

Config Config::load(const std::map<std::string, std::string>& flags,
                    const std::optional<fs::path>& file,
                    const std::map<std::string, std::string>& env) {
  Config c;
  std::optional<fs::path> path = file;
  if (!path) {
    if (auto it = env.find("PREVIEWDB_CONFIG"); it != env.end() && !it->second.empty()) {
      path = it->second;
    } else if (fs::exists("previewdb.json")) {
      path = "previewdb.json";
    }
  }
  if (path) {
    std::string text = util::read_file(*path);
    try {
      c.m_file = json::parse(text);
    } catch (const json::parse_error& e) {
      throw usage_error("cannot parse " + util::quoted(path->string()) + ": " + e.what(),
                        "fix the JSON, or pass --config with another file");
    }
    if (!c.m_file.is_object()) {
      throw usage_error(util::quoted(path->string()) + " must contain a JSON object",
                        "for example {\"protect\": [\"staging\"], \"source\": \"dev\"}");
    }
  }
  for (const auto& key : keys()) {
    std::optional<Value> v;
    if (key.default_value) v = Value{key.default_value, "default"};
    if (c.m_file.contains(key.name)) {
      const json& fv = c.m_file[key.name];
      if (fv.is_array()) {
        for (const auto& item : fv) c.m_lists[key.name].push_back(scalar_to_string(item));
      } else if (!fv.is_null()) {
        v = Value{scalar_to_string(fv), path ? path->filename().string() : "config"};
        // "protect": "a, b" as a string means what PREVIEWDB_PROTECT=a,b means.
        for (auto& item : util::split(v->value, ',')) {
          if (!util::trim(item).empty()) c.m_lists[key.name].push_back(util::trim(item));
        }
      }
    }
    for (const char* e : key.env) {
      if (auto it = env.find(e); it != env.end() && !it->second.empty()) {
        v = Value{it->second, e};
        for (auto& item : util::split(it->second, ',')) {
          if (!util::trim(item).empty()) c.m_lists[key.name].push_back(util::trim(item));
        }
        break;
      }
    }
    if (*key.flag) {
      if (auto it = flags.find(key.flag); it != flags.end()) {
        v = Value{it->second, std::string("--") + key.flag};
        for (auto& item : util::split(it->second, ',')) {
          if (!util::trim(item).empty()) c.m_lists[key.name].push_back(util::trim(item));
        }
      }
    }
    if (v) c.m_values[key.name] = *v;
  }
  return c;
}

std::optional<Value> Config::get(std::string_view name) const {
  if (auto it = m_values.find(name); it != m_values.end()) return it->second;
  return std::nullopt;
}

std::string Config::get_or(std::string_view name, const std::string& fallback) const {
  auto v = get(name);
  return v ? v->value : fallback;
}

std::vector<std::string> Config::get_list(std::string_view name) const {
  if (auto it = m_lists.find(name); it != m_lists.end()) return it->second;
  return {};
}

const json& Config::file_section(std::string_view name) const {
  static const json null_value;
  auto it = m_file.find(std::string(name));
  return it == m_file.end() ? null_value : *it;
}

}  // namespace previewdb::config
