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
std::optional<mask::Spec> mask_spec(const config::Config& cfg);

// One line per rule and excluded table on stderr.
void log_masking(const mask::Report& report);
nlohmann::json masking_json(const mask::Report& report);

}  // namespace previewdb::commands
