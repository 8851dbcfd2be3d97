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

// key=value pairs (conninfo or URL query) whose key is_secret_key(): the value becomes ***.
std::string redact_password_params(const std::string& s) {
  std::string out;
  size_t pos = 0;  // copied up to here
  for (size_t eq = s.find('='); eq != std::string::npos; eq = s.find('=', eq + 1)) {
    if (eq < pos) continue;
    size_t key_end = eq;
    while (key_end > pos && is_space(s[key_end - 1])) --key_end;
    size_t key_begin = key_end;
    while (key_begin > pos && is_word(s[key_begin - 1])) --key_begin;
    if (key_begin == key_end ||
        !is_secret_key(std::string_view(s).substr(key_begin, key_end - key_begin)))
      continue;
    size_t i = eq + 1;
    while (i < s.size() && is_space(s[i])) ++i;
    size_t end = i;
    if (end < s.size() && s[end] == '\'') {
      ++end;
      while (end < s.size() && s[end] != '\'') end += s[end] == '\\' ? 2 : 1;
      end = std::min(end + 1, s.size());
    } else {
      while (end < s.size() && !is_space(s[end]) && s[end] != '&') ++end;
    }
    out.append(s, pos, i - pos);
    out += "***";
    pos = end;
    eq = end == 0 ? 0 : end - 1;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

}  // namespace

bool is_secret_key(std::string_view key) {
  std::string k(key);
  for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto ends_with = [&](std::string_view tail) {
    return k.size() >= tail.size() && k.compare(k.size() - tail.size(), tail.size(), tail) == 0;
  };
  // *secret_access_key: AWS_SECRET_ACCESS_KEY in the query of a CockroachDB storage URL.
  return ends_with("password") || ends_with("token") || ends_with("secret") ||
         ends_with("secret_access_key") || k == "api_key" || k == "apikey";
}

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
