// HTTP over libcurl: one RAII handle per request, timeouts, and retries with exponential backoff
// on network errors and 5xx answers (never on 4xx: those will not change by retrying; never for a
// POST, which may have been carried out before the answer was lost).
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
};

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PATCH, DELETE
  std::string url;
  std::string body;  // sent when not empty (with the caller's Content-Type header)
  std::vector<std::pair<std::string, std::string>> headers;  // name, value
  std::chrono::seconds timeout{30};
  std::chrono::seconds connect_timeout{10};
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
// The same for request.method; a POST is tried once (it is not idempotent).
HttpResponse http_request(const HttpRequest& request, const RetryPolicy& retry = {});

// The URL of rel="next" in an RFC 8288 Link header (GitHub pagination), or nullopt.
std::optional<std::string> next_link(std::string_view link_header);

// "https://api.github.com:443/x" -> "https://api.github.com:443": scheme and authority, lowercased.
std::string origin_of(std::string_view url);

}  // namespace previewdb::net
