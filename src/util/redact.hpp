// Keeps secrets out of every log line, error and output.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace previewdb::util {

// True for parameter names that hold secrets: *password (password, sslpassword), *token,
// *secret, *secret_access_key (AWS_SECRET_ACCESS_KEY in a CockroachDB storage URL), api_key
// (Prisma Accelerate). Case-insensitive.
bool is_secret_key(std::string_view key);

// Remembers a secret (password, token); scrub() replaces it everywhere from now on.
void register_secret(std::string_view secret);

// The secrets registered so far (for ::add-mask:: and tests).
std::vector<std::string> registered_secrets();

// Replaces every registered secret in text with "***".
std::string scrub(std::string_view text);

// A URL or libpq key/value string with its password (and any URL userinfo token) replaced by
// "***": "postgresql://u:***@h/db", "host=h password=*** dbname=d", "https://***@github.com/o/r";
// sslpassword= likewise. Linear in the input's length; very long input is not shown at all.
std::string redact_url(std::string_view url_or_conninfo);

}  // namespace previewdb::util
