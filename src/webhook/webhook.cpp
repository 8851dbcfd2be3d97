#include "webhook/webhook.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "crypto/hmac.hpp"
#include "crypto/sha256.hpp"

namespace previewdb::webhook {

using nlohmann::json;

namespace {

std::optional<json> parse_object(std::string_view body) {
  auto j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::optional<long long> positive_number(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  auto n = it->get<long long>();
  return n > 0 ? std::optional<long long>(n) : std::nullopt;
}

std::string string_at(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

bool verify_github(std::string_view secret, std::string_view body, std::string_view header) {
  constexpr std::string_view prefix = "sha256=";
  if (secret.empty() || header.substr(0, prefix.size()) != prefix) return false;
  return crypto::equal_constant_time(header.substr(prefix.size()),
                                     crypto::hmac_sha256_hex(secret, body));
}

std::optional<std::string> base64url_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  unsigned int buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '-') {
      v = 62;
    } else if (c == '_') {
      v = 63;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<unsigned int>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

bool verify_netlify(std::string_view secret, std::string_view body, std::string_view jws) {
  if (secret.empty()) return false;
  auto dot1 = jws.find('.');
  if (dot1 == std::string_view::npos) return false;
  auto dot2 = jws.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || jws.find('.', dot2 + 1) != std::string_view::npos) {
    return false;
  }
  // The signature first: nothing of an unsigned token is parsed.
  auto signature = base64url_decode(jws.substr(dot2 + 1));
  if (!signature ||
      !crypto::equal_constant_time(*signature, crypto::hmac_sha256(secret, jws.substr(0, dot2)))) {
    return false;
  }
  auto header = base64url_decode(jws.substr(0, dot1));
  auto payload = base64url_decode(jws.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!header || !payload) return false;
  auto h = parse_object(*header);
  auto p = parse_object(*payload);
  // alg is checked although the HMAC already matched: "none" or another algorithm is never
  // what Netlify sends.
  if (!h || string_at(*h, "alg") != "HS256" || !p || string_at(*p, "iss") != "netlify") {
    return false;
  }
  return crypto::equal_constant_time(string_at(*p, "sha256"), crypto::sha256_hex(body));
}

std::optional<Action> github_action(std::string_view event, std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::nullopt;
  Action a;
  if (event == "ping") {
    a.kind = Action::Kind::ping;
    return a;
  }
  if (event != "pull_request") {
    a.note = "event " + std::string(event) + " is not handled";
    return a;
  }
  auto pr = j->find("pull_request");
  auto repo = j->find("repository");
  if (pr == j->end() || !pr->is_object() || repo == j->end() || !repo->is_object()) {
    return std::nullopt;
  }
  auto number = positive_number(*j, "number");
  if (!number) number = positive_number(*pr, "number");
  a.repository = string_at(*repo, "full_name");
  if (!number || a.repository.empty()) return std::nullopt;
  a.pr = *number;
  std::string action = string_at(*j, "action");
  if (action != "closed") {
    a.note = "pull_request action " + (action.empty() ? std::string("(none)") : action) +
             " needs nothing";
    return a;
  }
  a.kind = Action::Kind::drop;
  return a;
}

std::optional<Action> netlify_action(std::string_view body, std::string_view default_repository) {
  auto j = parse_object(body);
  if (!j) return std::nullopt;
  Action a;
  auto review = positive_number(*j, "review_id");
  if (!review) {
    a.note =
        "a deploy without a pull request (context " +
        (string_at(*j, "context").empty() ? std::string("unknown") : string_at(*j, "context")) +
        ")";
    return a;
  }
  a.pr = *review;
  // https://github.com/OWNER/NAME/pull/N names the repository; other hosts do not.
  std::string url = string_at(*j, "review_url");
  constexpr std::string_view github = "https://github.com/";
  if (url.rfind(github, 0) == 0) {
    auto rest = url.substr(github.size());
    auto pull = rest.find("/pull/");
    if (pull != std::string::npos && std::count(rest.begin(), rest.begin() + pull, '/') == 1) {
      a.repository = rest.substr(0, pull);
    }
  }
  if (a.repository.empty()) a.repository = std::string(default_repository);
  if (a.repository.empty()) {
    a.note = "deploy of pull request #" + std::to_string(a.pr) +
             " names no GitHub repository (set GITHUB_REPOSITORY)";
    return a;
  }
  a.kind = Action::Kind::if_closed;
  return a;
}

bool DeliveryMemory::seen(const std::string& id) {
  std::lock_guard lock(m_mutex);
  if (m_ids.count(id)) return true;
  m_ids.insert(id);
  m_order.push_back(id);
  if (m_order.size() > m_capacity) {
    m_ids.erase(m_order.front());
    m_order.pop_front();
  }
  return false;
}

}  // namespace previewdb::webhook
