#include "commands/mask_options.hpp"

#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

namespace previewdb::commands {

void add_mask_options(cxxopts::Options& options) {
  // clang-format off
  options.add_options()
      ("mask", "mask the copy with the rules in this JSON file before it is frozen "
       "(docs/MASKING.md)", cxxopts::value<std::string>(), "FILE")
      ("exclude-data", "keep TABLE's schema but none of its rows in the snapshot (repeatable)",
       cxxopts::value<std::vector<std::string>>(), "TABLE")
      ("require-rules", "refuse (exit 6) when a column that looks like personal data has no "
       "masking rule", cxxopts::value<std::string>()->implicit_value("true"), "BOOL");
  // clang-format on
}

std::optional<mask::Spec> mask_spec(const config::Config& cfg,
                                    const std::optional<std::string>& rules_text) {
  auto file = cfg.find_path("mask_rules");
  auto exclude = cfg.get_list("exclude_data");
  bool require = cfg.get_bool("require_rules");
  if (!file && exclude.empty() && !require) return std::nullopt;
  mask::Spec spec;
  if (file) {
    spec.origin = file->string();
    spec.rules =
        mask::parse_rules(rules_text ? *rules_text : util::read_file(*file, 16 << 20), spec.origin);
  }
  for (const auto& t : exclude) spec.exclude_data.push_back(mask::parse_table(t, "--exclude-data"));
  spec.require_rules = require;
  auto env = config::process_env();
  if (auto it = env.find("PREVIEWDB_MASK_SALT"); it != env.end() && !it->second.empty()) {
    util::register_secret(it->second);
    spec.salt = it->second;
  }
  mask::check_salt(spec);
  spec.rules_sha256 = mask::spec_hash(spec.rules, spec.exclude_data);
  return spec;
}

void log_masking(const mask::Report& report) {
  for (const auto& e : report.excluded) {
    util::log::info("masking: " + util::printable(e.table.label()) + " emptied (--exclude-data, " +
                    std::to_string(e.rows) + " rows removed)");
  }
  for (const auto& r : report.rules) {
    util::log::info("masking: " + util::printable(r.rule.label()) + " " +
                    mask::to_string(r.rule.function) + ": " + std::to_string(r.rows) +
                    " rows changed");
  }
}

nlohmann::json masking_json(const mask::Report& report) {
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& r : report.rules) {
    rules.push_back({{"schema", r.rule.schema},
                     {"table", r.rule.table},
                     {"column", r.rule.column},
                     {"function", mask::to_string(r.rule.function)},
                     {"rows", r.rows}});
  }
  nlohmann::json excluded = nlohmann::json::array();
  for (const auto& e : report.excluded) {
    excluded.push_back({{"schema", e.table.schema}, {"table", e.table.table}, {"rows", e.rows}});
  }
  return {{"rules", rules}, {"excluded", excluded}};
}

}  // namespace previewdb::commands
