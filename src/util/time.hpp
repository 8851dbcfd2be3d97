// Wall-clock time as ISO-8601 UTC text, the form stored in database metadata.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace previewdb::util {

using SystemTime = std::chrono::system_clock::time_point;

std::string to_iso8601(SystemTime t);  // "2026-11-21T12:00:00Z"
std::optional<SystemTime> parse_iso8601(std::string_view s);
// "20261121_120000": for names that sort by time.
std::string compact_timestamp(SystemTime t);

}  // namespace previewdb::util
