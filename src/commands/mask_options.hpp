// Wiring shared by every command that takes snapshots ('snapshot', 'ci'): the masking settings
// (mask_rules, exclude_data, require_rules) and PREVIEWDB_MASK_SALT turned into a mask::Spec, and
// the report of what masking changed.
#pragma once

#include <cxxopts.hpp>

#include <nlohmann/json.hpp>
#include <optional>

#include "config/config.hpp"
#include "mask/mask.hpp"

namespace previewdb::commands {

// --mask FILE, --exclude-data TABLE (repeatable), --require-rules.
void add_mask_options(cxxopts::Options& options);

// nullopt when none of the settings is given. Reads and checks the rules file (usage errors name
// it, the rule and the field) and takes the salt from the environment (registered as a secret).
// rules_text: the rules file's contents when the caller read them from elsewhere (ci under an
// untrusted head reads them from the base branch's tree); mask_rules then only names them.
std::optional<mask::Spec> mask_spec(const config::Config& cfg,
                                    const std::optional<std::string>& rules_text = std::nullopt);

// One line per rule and excluded table on stderr.
void log_masking(const mask::Report& report);
nlohmann::json masking_json(const mask::Report& report);

}  // namespace previewdb::commands
