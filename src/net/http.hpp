// HTTP over libcurl: one RAII handle per request, timeouts, and retries with exponential backoff
// on network errors and 5xx answers (never on 4xx: those will not change by retrying; 429 only
// when the policy says so, for S3's throttling; a POST only when the policy says it may be
// repeated, as S3's are, never a GitHub comment's, which may have been made before the answer
// was lost).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace previewdb::net {

struct RetryPolicy {
  int attempts = 4;  // total tries, the first included
  std::chrono::milliseconds initial_backoff{500};
  double factor = 2.0;
  bool retry_throttled = false;  // also retry 429 Too Many Requests
  bool retry_post = false;       // POST too (S3's are safe to repeat; GitHub's comments are not)
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, PATCH, DELETE
  std::string url;
  std::string body;  // sent with PUT, POST and PATCH (with the caller's Content-Type header)
  std::vector<std::pair<std::string, std::string>> headers;  // name, value
  std::chrono::seconds timeout{30};
  std::chrono::seconds connect_timeout{10};
  size_t max_response = 64u * 1024 * 1024;  // a longer answer fails the attempt
  bool follow_redirects = true;
  bool accept_compressed = true;  // ask for gzip/deflate and decode it
  std::string unreachable_hint = "check the network, or the API URL (GITHUB_API_URL)";
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercase names; repeated headers joined by ", "
  std::string body;
  int attempts = 1;  // how many tries it took
  std::optional<std::string> header(std::string_view name) const;
};

// GETs url. Network failures after the last attempt throw Error(connection) naming the redacted
// URL and curl's reason; a 5xx after the last attempt is returned for the caller to report.
HttpResponse http_get(const HttpRequest& request, const RetryPolicy& retry = {});
// Sends request (its method and body) with the same retries as http_get; a POST is tried once
// unless retry.retry_post.
HttpResponse http_send(const HttpRequest& request, const RetryPolicy& retry = {});

// The URL of rel="next" in an RFC 8288 Link header (GitHub pagination), or nullopt.
std::optional<std::string> next_link(std::string_view link_header);

// "https://api.github.com:443/x" -> "https://api.github.com:443": scheme and authority, lowercased.
std::string origin_of(std::string_view url);

}  // namespace previewdb::net
