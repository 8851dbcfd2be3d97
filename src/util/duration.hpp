// Durations as users write them: "30s", "10m", "12h", "7d", "1h30m".
#pragma once

#include <chrono>
#include <string_view>

namespace previewdb::util {

enum class BareUnit { seconds, days };

// Parses a duration; a bare number is in bare_unit (seconds for timeouts, days for --older-than).
// Throws Error(usage) naming `what` (e.g. "--older-than") with the accepted forms.
std::chrono::seconds parse_duration(std::string_view text, BareUnit bare_unit,
                                    std::string_view what);

// "3d 4h", "12m", "45s": short, for tables.
std::string format_age(std::chrono::seconds age);

}  // namespace previewdb::util
