// Connection URLs (scheme://user:password@host:port/path?query), split in one linear pass with no
// regular expressions, and checked for what different parsers would read differently. Knows URL
// syntax, nothing of previewdb.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace previewdb::util {

// Longer URLs or conninfo strings are refused: nothing legitimate comes close.
inline constexpr size_t k_max_url_bytes = 8192;

struct UrlParts {
  std::string scheme;                   // "postgresql"
  std::optional<std::string> user;      // as written (percent-encoded)
  std::optional<std::string> password;  // as written (percent-encoded)
  std::string hosts;                    // "h1:5432,[::1]:5433"
  std::string path;                     // after the first '/', before '?'
  std::string query;                    // after '?'
};

// True for "scheme://...".
bool looks_like_url(std::string_view s);

// Splits a URL at the first '@' of its authority; nullopt when s is not scheme://... No checks.
std::optional<UrlParts> split_url(std::string_view s);

// Why a connection URL must be refused: over k_max_url_bytes, a '%' not followed by two hex
// digits, an '@', '/' or '?' in the password left unescaped (the URL then splits differently in
// different parsers), a port that is not a number in 1-65535. The reason never quotes the input
// (it may hold a password). nullopt when the URL is unambiguous. Key=value strings are only
// checked for their length.
std::optional<std::string> url_problem(std::string_view s);

// Decodes %XX escapes (invalid ones are kept as written).
std::string percent_decode(std::string_view s);

// True when s is a decimal port number in 1-65535.
bool is_valid_port(std::string_view s);

}  // namespace previewdb::util
