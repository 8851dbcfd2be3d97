#include "util/url.hpp"

#include <cctype>

#include "util/strings.hpp"

namespace previewdb::util {

namespace {

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

const char* k_encode_hint =
    "percent-encode '@', '/', '?', ':' and '%' inside the user name and password (%40, %2F, %3F, "
    "%3A, %25)";

}  // namespace

bool looks_like_url(std::string_view s) {
  auto sep = s.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  for (size_t i = 0; i < sep; ++i) {
    char c = s[i];
    bool ok = std::isalpha(static_cast<unsigned char>(c)) ||
              (i > 0 &&
               (std::isdigit(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.'));
    if (!ok) return false;
  }
  return true;
}

std::optional<UrlParts> split_url(std::string_view s) {
  if (!looks_like_url(s)) return std::nullopt;
  UrlParts out;
  auto sep = s.find("://");
  out.scheme = std::string(s.substr(0, sep));
  std::string_view rest = s.substr(sep + 3);
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (auto at = authority.find('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    out.user = std::string(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) out.password = std::string(userinfo.substr(colon + 1));
  }
  out.hosts = std::string(authority);
  if (!tail.empty() && tail[0] == '/') {
    auto q = tail.find('?');
    out.path = std::string(tail.substr(1, q == std::string_view::npos ? q : q - 1));
    tail = q == std::string_view::npos ? std::string_view() : tail.substr(q);
  }
  if (!tail.empty() && tail[0] == '?') out.query = std::string(tail.substr(1));
  return out;
}

bool is_valid_port(std::string_view s) {
  if (s.empty() || s.size() > 5 || !is_all_digits(s)) return false;
  int n = std::stoi(std::string(s));
  return n >= 1 && n <= 65535;
}

std::optional<std::string> url_problem(std::string_view s) {
  if (s.size() > k_max_url_bytes) {
    return "it is " + std::to_string(s.size()) + " bytes long; at most " +
           std::to_string(k_max_url_bytes) + " are accepted";
  }
  if (!looks_like_url(s)) return std::nullopt;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 >= s.size() || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) {
      return "it has a '%' at byte " + std::to_string(i + 1) +
             " that is not followed by two hex digits (write a literal '%' as %25)";
    }
  }
  std::string_view rest = s.substr(s.find("://") + 3);
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  auto at = authority.find('@');
  if (at != std::string_view::npos && authority.find('@', at + 1) != std::string_view::npos) {
    return std::string("it has more than one '@' before the host; ") + k_encode_hint;
  }
  std::string_view path = tail.substr(0, tail.find('?'));
  if (path.find('@') != std::string_view::npos) {
    return std::string("it has an '@' after the host (in the database name); ") + k_encode_hint;
  }
  std::string_view query = tail.size() > path.size() ? tail.substr(path.size() + 1) : "";
  if (at == std::string_view::npos && query.find('@') != std::string_view::npos &&
      authority.find(':') != std::string_view::npos && path.empty()) {
    return std::string("it looks like a password with an unescaped '?' or '/'; ") + k_encode_hint;
  }
  std::string_view hosts = at == std::string_view::npos ? authority : authority.substr(at + 1);
  for (const auto& host : split(hosts, ',')) {
    std::string_view h = host;
    if (!h.empty() && h[0] == '[') {
      auto close = h.find(']');
      if (close == std::string_view::npos) return "it has an IPv6 host without its closing ']'";
      h = h.substr(close + 1);
      if (h.empty()) continue;
      if (h[0] != ':') return "it has text after an IPv6 host's ']' that is not a :port";
    }
    auto colon = h.rfind(':');
    if (colon == std::string_view::npos) continue;
    std::string_view port = h.substr(colon + 1);
    if (port.empty()) continue;
    if (!is_valid_port(port)) {
      // Not quoted: with an unescaped '/' or '?' in the password, this "port" is part of it.
      return "its port is not a number from 1 to 65535 (or a password holds an unescaped '/' or "
             "'?'; " +
             std::string(k_encode_hint) + ")";
    }
  }
  return std::nullopt;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() + 0 && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace previewdb::util
