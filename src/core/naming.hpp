// Database naming rules: pr_<N>, dev_<user>_<feature>; lowercase letters, digits, '_' and '-',
// at most 63 bytes (PostgreSQL's NAMEDATALEN - 1). Checked before any SQL runs.
#pragma once

#include <string>
#include <string_view>

namespace previewdb::core {

inline constexpr size_t k_max_name_bytes = 63;

// Throws Error(usage) naming `what` and the value, and saying what is allowed.
void validate_name(std::string_view name, std::string_view what = "database name");

// "pr_12". Throws Error(usage) for a number <= 0.
std::string pr_database_name(long long pr_number);

// The preview of pull request `pr` of `repository` ("owner/name"; empty when unknown), named by
// `name_template` with {pr}, {repo} and {owner} ({repo}/{owner} lowercased, other characters
// -> '_'); an empty template gives pr_<N>. The result is validated like every name. Throws
// Error(usage), naming `setting`, for a template without {pr}, an unknown placeholder, {repo} or
// {owner} with no repository known, or a result that is not a valid name.
std::string preview_database_name(std::string_view name_template, long long pr_number,
                                  std::string_view repository,
                                  std::string_view setting = "--name-template");

// "dev_<user>_<feature>", validated (feature and the whole name).
std::string personal_database_name(std::string_view user, std::string_view feature);

// A user name from git/$USER made fit for a name: lowercase, other characters -> '_', runs of
// '_' collapsed, trimmed. Empty input or nothing usable left -> throws Error(usage).
std::string normalise_user(std::string_view raw);

}  // namespace previewdb::core
