#include "util/duration.hpp"

#include <string>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::util {

std::chrono::seconds parse_duration(std::string_view text, BareUnit bare_unit,
                                    std::string_view what) {
  auto fail = [&]() -> Error {
    return usage_error("invalid duration " + util::quoted(text) + " for " + std::string(what),
                       "use a number with a unit: 30s, 10m, 12h, 7d (a bare number means " +
                           std::string(bare_unit == BareUnit::days ? "days" : "seconds") + ")");
  };
  std::string s = trim(text);
  if (s.empty()) throw fail();
  if (auto n = parse_uint(s)) {
    if (*n > 100LL * 365 * 86400) throw fail();
    return std::chrono::seconds(bare_unit == BareUnit::days ? *n * 86400 : *n);
  }
  long long total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i || j - i > 9 || j == s.size()) throw fail();
    long long n = std::stoll(s.substr(i, j - i));
    char unit = static_cast<char>(std::tolower(static_cast<unsigned char>(s[j])));
    long long mult = unit == 's'   ? 1
                     : unit == 'm' ? 60
                     : unit == 'h' ? 3600
                     : unit == 'd' ? 86400
                     : unit == 'w' ? 604800
                                   : 0;
    if (mult == 0) throw fail();
    total += n * mult;
    i = j + 1;
  }
  return std::chrono::seconds(total);
}

std::string format_age(std::chrono::seconds age) {
  long long s = age.count();
  if (s < 0) s = 0;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h " + std::to_string(s % 3600 / 60) + "m";
  return std::to_string(s / 86400) + "d " + std::to_string(s % 86400 / 3600) + "h";
}

}  // namespace previewdb::util
