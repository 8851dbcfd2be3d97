#include "util/redact.hpp"

#include <algorithm>
#include <mutex>
#include <regex>
#include <vector>

namespace previewdb::util {

namespace {

std::mutex g_mutex;
std::vector<std::string>& secrets() {
  static std::vector<std::string> list;
  return list;
}

}  // namespace

void register_secret(std::string_view secret) {
  // Very short strings would scrub ordinary words; libpq passwords of 1-3 chars are not secret
  // enough to be worth mangling every log line for.
  if (secret.size() < 4) return;
  std::lock_guard lock(g_mutex);
  auto& list = secrets();
  if (std::find(list.begin(), list.end(), secret) == list.end()) list.emplace_back(secret);
  // Longest first, so that a secret containing another is replaced whole.
  std::sort(list.begin(), list.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
}

std::string scrub(std::string_view text) {
  std::string out(text);
  std::lock_guard lock(g_mutex);
  for (const auto& s : secrets()) {
    for (size_t pos = out.find(s); pos != std::string::npos; pos = out.find(s, pos + 3)) {
      out.replace(pos, s.size(), "***");
    }
  }
  return out;
}

std::string redact_url(std::string_view input) {
  std::string s(input);
  // scheme://user:password@host -> scheme://user:***@host ; scheme://token@host -> scheme://***@
  static const std::regex userinfo_with_password(
      R"(([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@/\s]*@)");
  static const std::regex http_token(R"((https?://)[^:/@\s]+@)");
  static const std::regex kv_password(R"((\bpassword\s*=\s*)('([^'\\]|\\.)*'|[^\s&]+))",
                                      std::regex::icase);
  s = std::regex_replace(s, userinfo_with_password, "$1:***@");
  s = std::regex_replace(s, http_token, "$1***@");
  s = std::regex_replace(s, kv_password, "$1***");
  return scrub(s);
}

}  // namespace previewdb::util
