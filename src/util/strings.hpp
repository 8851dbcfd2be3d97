// String helpers with no previewdb knowledge.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace previewdb::util {

std::string trim(std::string_view s);
std::string to_lower(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
bool is_all_digits(std::string_view s);
// Parses a non-negative decimal integer that fits in int64; nullopt for anything else.
std::optional<long long> parse_uint(std::string_view s);
// Closest candidate by edit distance, when it is close enough to be a plausible typo.
std::optional<std::string> did_you_mean(std::string_view word,
                                        const std::vector<std::string>& candidates);
// Quotes a string for display in a message: "name" with control characters escaped.
std::string quoted(std::string_view s);
// s with control characters escaped as quoted() does, without the quotes: for table cells and
// other values printed one per line (a newline in data must not start a new line).
std::string printable(std::string_view s);
// True when the bytes are valid UTF-8.
bool is_valid_utf8(std::string_view s);
// Percent-encodes everything but RFC 3986 unreserved characters (and '/' when keep_slash).
std::string url_encode(std::string_view s, bool keep_slash = false);

// A size for people: "512 B", "1.2 kB", "3.4 MB" (powers of 1024, pg_size_pretty's unit names).
std::string human_bytes(double bytes);

}  // namespace previewdb::util
