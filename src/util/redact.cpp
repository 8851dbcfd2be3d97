#include "util/redact.hpp"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <vector>

#include "util/url.hpp"

namespace previewdb::util {

namespace {

std::mutex g_mutex;
std::vector<std::string>& secrets() {
  static std::vector<std::string> list;
  return list;
}

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}
bool is_word(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}
bool scheme_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
}

// scheme://user:password@host -> scheme://user:***@host; https://token@host -> https://***@host.
// The userinfo runs to the LAST '@' of the URL (up to whitespace), so that a password with an
// unescaped '@', '/' or '?' is hidden whole rather than split.
std::string redact_userinfo(const std::string& s) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t sep = s.find("://", pos);
    if (sep == std::string::npos) break;
    size_t scheme_begin = sep;
    while (scheme_begin > pos && scheme_char(s[scheme_begin - 1])) --scheme_begin;
    size_t begin = sep + 3;
    size_t token_end = begin;
    while (token_end < s.size() && !is_space(s[token_end])) ++token_end;
    size_t at = s.rfind('@', token_end == 0 ? 0 : token_end - 1);
    out.append(s, pos, begin - pos);
    if (scheme_begin == sep || at == std::string::npos || at < begin) {
      pos = begin;
      continue;
    }
    std::string userinfo = s.substr(begin, at - begin);
    std::string scheme = s.substr(scheme_begin, sep - scheme_begin);
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto colon = userinfo.find(':');
    if (colon != std::string::npos) {
      out += userinfo.substr(0, colon) + ":***";
    } else if (scheme == "http" || scheme == "https") {
      out += "***";
    } else {
      out += userinfo;
    }
    pos = at;  // the '@' and what follows are copied on the next round
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// password=..., sslpassword=... (key=value conninfo or URL query) -> password=***.
std::string redact_password_params(const std::string& s) {
  std::string out;
  std::string lower = s;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t pos = 0;
  while (true) {
    size_t hit = lower.find("password", pos);
    if (hit == std::string::npos) break;
    size_t key_begin = hit;
    if (hit >= 3 && lower.compare(hit - 3, 3, "ssl") == 0) key_begin = hit - 3;
    size_t i = hit + 8;
    bool word_start = key_begin == 0 || !is_word(s[key_begin - 1]);
    while (i < s.size() && is_space(s[i])) ++i;
    if (!word_start || i >= s.size() || s[i] != '=') {
      out.append(s, pos, hit + 8 - pos);
      pos = hit + 8;
      continue;
    }
    ++i;
    while (i < s.size() && is_space(s[i])) ++i;
    out.append(s, pos, i - pos);
    size_t end = i;
    if (end < s.size() && s[end] == '\'') {
      ++end;
      while (end < s.size() && s[end] != '\'') end += s[end] == '\\' ? 2 : 1;
      end = std::min(end + 1, s.size());
    } else {
      while (end < s.size() && !is_space(s[end]) && s[end] != '&') ++end;
    }
    out += "***";
    pos = end;
  }
  out.append(s, pos, std::string::npos);
  return out;
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

std::vector<std::string> registered_secrets() {
  std::lock_guard lock(g_mutex);
  return secrets();
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
  // Linear scans only: a regular expression here recursed per character and crashed on long
  // input. Anything over the URL limit is not shown at all.
  if (input.size() > k_max_url_bytes * 2) {
    return "(" + std::to_string(input.size()) + " bytes, not shown)";
  }
  return scrub(redact_password_params(redact_userinfo(std::string(input))));
}

}  // namespace previewdb::util
