// The PR-close webhook: signature checks (GitHub's X-Hub-Signature-256, Netlify's
// X-Webhook-Signature JWS), what a verified delivery asks for, and the memory of recent
// deliveries. Plain values in, plain values out: `webhook serve` and `webhook verify` wire them.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace previewdb::webhook {

// GitHub's payload cap (25 MB); a bigger body is refused with 413 before it is read into memory.
inline constexpr std::size_t k_max_body = 25u * 1000u * 1000u;

// True when header is "sha256=<hex HMAC-SHA256 of body with secret>" (compared in constant time).
bool verify_github(std::string_view secret, std::string_view body, std::string_view header);

// True when jws is a compact JWS "header.payload.signature" signed HS256 with secret, whose
// header says alg HS256, whose payload has iss "netlify" and a sha256 claim equal to the
// SHA-256 (hex) of body.
bool verify_netlify(std::string_view secret, std::string_view body, std::string_view jws);

// What a verified delivery asks for.
struct Action {
  enum class Kind {
    ping,       // GitHub's ping: answer, nothing else
    drop,       // pull_request closed: drop the repository's preview of pr
    if_closed,  // a Netlify deploy: drop the preview only if GitHub says the PR is closed
    ignore,     // nothing to do; `note` says why
  };
  Kind kind = Kind::ignore;
  std::string repository;  // "owner/name"
  long long pr = 0;
  std::string note;
};

// A GitHub delivery (X-GitHub-Event, body). nullopt when the body is malformed: not a JSON
// object, or a pull_request event without a positive number or repository.full_name.
std::optional<Action> github_action(std::string_view event, std::string_view body);

// A Netlify deploy notification. The repository comes from review_url
// (https://github.com/OWNER/NAME/pull/N), else default_repository. nullopt when malformed.
std::optional<Action> netlify_action(std::string_view body, std::string_view default_repository);

// The last `capacity` delivery ids (X-GitHub-Delivery): a signature has no timestamp, so a
// recorded `closed` delivery could be sent again after the PR was reopened. Thread-safe.
class DeliveryMemory {
 public:
  explicit DeliveryMemory(std::size_t capacity = 10000) : m_capacity(capacity) {}
  // True when id was seen before; otherwise remembers it and returns false.
  bool seen(const std::string& id);

 private:
  std::size_t m_capacity;
  std::mutex m_mutex;
  std::deque<std::string> m_order;
  std::set<std::string, std::less<>> m_ids;
};

// base64url (RFC 4648 section 5, padding optional) to bytes; nullopt on a character outside
// the alphabet or an impossible length.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace previewdb::webhook
