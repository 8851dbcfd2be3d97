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
      {"home", "home", {"PREVIEWDB_HOME"}, nullptr, Type::path},
      {"user", "user", {"PREVIEWDB_USER"}, nullptr},
      {"protect", "protect", {"PREVIEWDB_PROTECT"}, nullptr, Type::list},
      {"source", "from", {"PREVIEWDB_SOURCE"}, "dev"},
      {"migrations_dir", "dir", {"PREVIEWDB_MIGRATIONS_DIR"}, "migrations/schema", Type::path},
      {"format", "format", {"PREVIEWDB_FORMAT"}, "auto"},
      {"label", "label", {"PREVIEWDB_LABEL"}, "preview-db"},
      {"base_ref", "base-ref", {"PREVIEWDB_BASE_REF"}, "main"},
      {"lock_timeout", "lock-timeout", {"PREVIEWDB_LOCK_TIMEOUT"}, "10m", Type::duration},
      {"lock_mode", "lock-mode", {"PREVIEWDB_LOCK_MODE"}, "auto"},
      {"statement_timeout",
       "statement-timeout",
       {"PREVIEWDB_STATEMENT_TIMEOUT"},
       nullptr,
       Type::duration},
      {"lock_wait_timeout",
       "lock-wait-timeout",
       {"PREVIEWDB_LOCK_WAIT_TIMEOUT"},
       nullptr,
       Type::duration},
      {"timeout", "timeout", {"PREVIEWDB_TIMEOUT"}, nullptr, Type::duration},
      {"strategy", "strategy", {"PREVIEWDB_CLONE_STRATEGY"}, "auto"},
      {"migrate_command", "migrate-command", {"PREVIEWDB_MIGRATE_COMMAND"}, nullptr},
      {"on_divergence", "on-divergence", {"PREVIEWDB_ON_DIVERGENCE"}, "reset"},
      {"snapshot_store", "to", {"PREVIEWDB_SNAPSHOT_STORE"}, nullptr},
      {"refresh_source", "refresh-source", {"PREVIEWDB_REFRESH_SOURCE"}, "false", Type::boolean},
      {"keep_snapshots", "keep-snapshots", {"PREVIEWDB_KEEP_SNAPSHOTS"}, "5", Type::integer},
      {"name_template", "name-template", {"PREVIEWDB_NAME_TEMPLATE"}, nullptr},
      {"migrate_url", "migrate-url", {"PREVIEWDB_MIGRATE_URL"}, nullptr},
      {"backup_store", "store", {"BACKUP_DIR", "PREVIEWDB_BACKUP_DIR"}, "./backups"},
      {"backup_level", "level", {"PREVIEWDB_BACKUP_LEVEL"}, "3", Type::integer},
      {"max_backups", "keep", {"MAX_BACKUPS", "PREVIEWDB_MAX_BACKUPS"}, "7", Type::integer},
      {"backup_keep_days", "keep-days", {"PREVIEWDB_BACKUP_KEEP_DAYS"}, nullptr, Type::integer},
      {"lint_fail_on", "fail-on", {"PREVIEWDB_LINT_FAIL_ON"}, "error"},
      {"schema_source", "schema-source", {"PREVIEWDB_SCHEMA_SOURCE"}, nullptr, Type::path},
      // ci --report / --pr-comment / --fail-on (the lane "report"; ci's --fail-on is its own
      // setting: lint's default is error, the report never fails a build unless asked).
      {"report", "report", {"PREVIEWDB_REPORT"}, nullptr, Type::list},
      {"pr_comment", "pr-comment", {"PREVIEWDB_PR_COMMENT"}, "false", Type::boolean},
      {"report_fail_on", "fail-on", {"PREVIEWDB_REPORT_FAIL_ON"}, "never"},
      // webhook: the shared secret, never a flag (ps shows flags)
      {"webhook_secret", "", {"PREVIEWDB_WEBHOOK_SECRET"}, nullptr},
      {"webhook_secret_file", "", {"PREVIEWDB_WEBHOOK_SECRET_FILE"}, nullptr, Type::path},
      // s3:// stores. Credentials and keys are never settings (no file key): only the
      // environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, PREVIEWDB_MANIFEST_KEY, ...).
      {"s3_endpoint", "", {"AWS_ENDPOINT_URL", "PREVIEWDB_S3_ENDPOINT"}, nullptr},
      {"s3_region", "", {"AWS_REGION", "AWS_DEFAULT_REGION"}, "us-east-1"},
      {"s3_part_size_mb", "", {"PREVIEWDB_S3_PART_SIZE_MB"}, "8", Type::integer},
      {"s3_sweep_after", "", {"PREVIEWDB_S3_SWEEP_AFTER"}, "24h", Type::duration},
      // Archive encryption (the key itself only from PREVIEWDB_ENCRYPTION_KEY or a key file).
      {"encrypt", "encrypt", {"PREVIEWDB_ENCRYPT"}, "false", Type::boolean},
      // The warm pool (ci, spawn): ready clones of the latest snapshot kept at the end of a run.
      {"pool_size", "pool", {"PREVIEWDB_POOL_SIZE"}, "0", Type::integer},
      // safe-migrate: the backup's kind (auto, template, archive) and a server (a login that may
      // create databases) for its clones and records when the target's role may not.
      // (No flag here: --backup is also other commands' positional; safe-migrate reads its own.)
      {"safe_migrate_backup", "", {"PREVIEWDB_SAFE_MIGRATE_BACKUP"}, "auto"},
      {"scratch_url", "scratch-url", {"PREVIEWDB_SCRATCH_URL"}, nullptr},
      // PII masking of every snapshot previewdb takes (docs/MASKING.md; the salt only from
      // PREVIEWDB_MASK_SALT).
      {"mask_rules", "mask", {"PREVIEWDB_MASK_RULES"}, nullptr, Type::path},
      {"exclude_data", "exclude-data", {"PREVIEWDB_EXCLUDE_DATA"}, nullptr, Type::list},
      {"require_rules", "require-rules", {"PREVIEWDB_REQUIRE_RULES"}, "false", Type::boolean},
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
                    const std::map<std::string, std::string>& env, const std::vector<Key>& table) {
  Config c;
  c.m_table = table;
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
  for (const auto& key : c.m_table) {
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

Error invalid_setting(std::string_view name, const Value& v, const std::string& reason,
                      const std::string& hint) {
  return usage_error("invalid " + std::string(name) + " " + util::quoted(v.value) + " (from " +
                         v.origin + "): " + reason,
                     hint);
}

const Key& Config::key(std::string_view name, Type type) const {
  for (const auto& k : m_table) {
    if (name == k.name) {
      if (k.type != type) {
        throw std::logic_error("setting " + std::string(name) + " is read with another type");
      }
      return k;
    }
  }
  throw std::logic_error("no setting " + std::string(name) + " in the configuration table");
}

std::optional<Value> Config::typed(std::string_view name, Type type) const {
  const Key& k = key(name, type);
  auto v = get(name);
  if (v && util::trim(v->value).empty()) {
    std::string hint = k.default_value
                           ? "leave it out for the default (" + std::string(k.default_value) + ")"
                           : "give a value or leave it out";
    throw usage_error("empty " + std::string(name) + " (from " + v->origin + ")", hint);
  }
  return v;
}

namespace {

template <typename T>
T required(std::optional<T> v, std::string_view name) {
  if (!v) {
    throw std::logic_error("setting " + std::string(name) +
                           " has no default: read it with find_*, not get_*");
  }
  return *v;
}

}  // namespace

std::string Config::get_string(std::string_view name) const {
  key(name, Type::string);
  auto v = get(name);
  return v ? v->value : std::string();
}

std::optional<std::chrono::seconds> Config::find_duration(std::string_view name,
                                                          util::BareUnit bare_unit) const {
  auto v = typed(name, Type::duration);
  if (!v) return std::nullopt;
  try {
    return util::parse_duration(v->value, bare_unit, name);
  } catch (const Error& e) {
    throw invalid_setting(name, *v, "not a duration",
                          e.hints().empty() ? std::string() : e.hints().front());
  }
}

std::chrono::seconds Config::get_duration(std::string_view name, util::BareUnit bare_unit) const {
  return required(find_duration(name, bare_unit), name);
}

std::optional<fs::path> Config::find_path(std::string_view name) const {
  auto v = typed(name, Type::path);
  if (!v) return std::nullopt;
  if (v->value.find('\0') != std::string::npos) {
    throw invalid_setting(name, *v, "a path cannot contain a NUL byte", "");
  }
  return fs::path(v->value);
}

fs::path Config::get_path(std::string_view name) const {
  return required(find_path(name), name);
}

std::optional<bool> Config::find_bool(std::string_view name) const {
  auto v = typed(name, Type::boolean);
  if (!v) return std::nullopt;
  std::string t = util::to_lower(util::trim(v->value));
  if (t == "true" || t == "yes" || t == "on" || t == "1") return true;
  if (t == "false" || t == "no" || t == "off" || t == "0") return false;
  throw invalid_setting(name, *v, "not a boolean", "use true or false");
}

bool Config::get_bool(std::string_view name) const {
  return required(find_bool(name), name);
}

std::optional<long long> Config::find_int(std::string_view name, long long min,
                                          long long max) const {
  auto v = typed(name, Type::integer);
  if (!v) return std::nullopt;
  std::string t = util::trim(v->value);
  bool negative = !t.empty() && t[0] == '-';
  auto n = util::parse_uint(negative ? t.substr(1) : t);
  std::string range = "a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  if (!n) throw invalid_setting(name, *v, "not a whole number", "use " + range);
  long long value = negative ? -*n : *n;
  if (value < min || value > max) throw invalid_setting(name, *v, "out of range", "use " + range);
  return value;
}

long long Config::get_int(std::string_view name, long long min, long long max) const {
  return required(find_int(name, min, max), name);
}

std::vector<std::string> Config::get_list(std::string_view name) const {
  key(name, Type::list);
  if (auto it = m_lists.find(name); it != m_lists.end()) return it->second;
  return {};
}

const json& Config::file_section(std::string_view name) const {
  static const json null_value;
  auto it = m_file.find(std::string(name));
  return it == m_file.end() ? null_value : *it;
}

}  // namespace previewdb::config
