#include "net/http.hpp"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <thread>

#include "util/error.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

namespace previewdb::net {

namespace {

void ensure_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct BodySink {
  std::string* body;
  size_t max;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  // A GitHub page is at most a few MB, an S3 range a part; refuse anything absurd rather than
  // fill memory.
  if (sink->body->size() + size * n > sink->max) return 0;
  sink->body->append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (after a redirect or 100-continue): forget the last one
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = util::to_lower(util::trim(line.substr(0, colon)));
    std::string value = util::trim(line.substr(colon + 1));
    auto [it, inserted] = headers->emplace(name, value);
    if (!inserted) it->second += ", " + value;
  }
  return size * n;
}

struct Attempt {
  CURLcode code = CURLE_OK;
  std::string error;
  HttpResponse response;
};

// Every option is checked: a libcurl without CURLOPT_PROTOCOLS_STR (older than 7.85) must fail
// loudly, not quietly allow every protocol.
template <typename T>
void set_option(CURL* h, CURLoption option, const char* name, T value) {
  CURLcode rc = curl_easy_setopt(h, option, value);
  if (rc != CURLE_OK) {
    throw Error(ExitCode::failure,
                std::string("cannot set libcurl option ") + name + ": " + curl_easy_strerror(rc));
  }
}

Attempt attempt_once(const HttpRequest& req) {
  Attempt a;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw Error(ExitCode::failure, "cannot initialise libcurl");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> list(nullptr, &curl_slist_free_all);
  auto headers = req.headers;
  // No "Expect: 100-continue" round trip for a body: the API answers the whole request at once.
  if (!req.body.empty()) headers.emplace_back("Expect", "");
  for (const auto& [name, value] : headers) {
    curl_slist* next =
        curl_slist_append(list.get(), (value.empty() ? name + ":" : name + ": " + value).c_str());
    if (!next) throw Error(ExitCode::failure, "cannot build HTTP headers");
    list.release();
    list.reset(next);
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* h = curl.get();
  BodySink sink{&a.response.body, req.max_response};
  if (req.method == "HEAD") {
    set_option(h, CURLOPT_NOBODY, "CURLOPT_NOBODY", 1L);
  } else if (req.method != "GET") {
    set_option(h, CURLOPT_CUSTOMREQUEST, "CURLOPT_CUSTOMREQUEST", req.method.c_str());
  }
  set_option(h, CURLOPT_URL, "CURLOPT_URL", req.url.c_str());
  if (!req.body.empty() || req.method == "POST" || req.method == "PATCH" || req.method == "PUT") {
    set_option(h, CURLOPT_POSTFIELDSIZE_LARGE, "CURLOPT_POSTFIELDSIZE_LARGE",
               static_cast<curl_off_t>(req.body.size()));
    set_option(h, CURLOPT_POSTFIELDS, "CURLOPT_POSTFIELDS", req.body.data());
    // A redirect must not turn the write into a GET, nor repeat it elsewhere.
    set_option(h, CURLOPT_POSTREDIR, "CURLOPT_POSTREDIR", static_cast<long>(CURL_REDIR_POST_ALL));
  }
  set_option(h, CURLOPT_HTTPHEADER, "CURLOPT_HTTPHEADER", list.get());
  set_option(h, CURLOPT_USERAGENT, "CURLOPT_USERAGENT", "previewdb/" PREVIEWDB_VERSION);
  set_option(h, CURLOPT_NOSIGNAL, "CURLOPT_NOSIGNAL", 1L);
  set_option(h, CURLOPT_TIMEOUT, "CURLOPT_TIMEOUT", static_cast<long>(req.timeout.count()));
  set_option(h, CURLOPT_CONNECTTIMEOUT, "CURLOPT_CONNECTTIMEOUT",
             static_cast<long>(req.connect_timeout.count()));
  set_option(h, CURLOPT_PROTOCOLS_STR, "CURLOPT_PROTOCOLS_STR", "http,https");
  set_option(h, CURLOPT_REDIR_PROTOCOLS_STR, "CURLOPT_REDIR_PROTOCOLS_STR", "http,https");
  // GitHub answers 301 for renamed repositories. curl drops a custom Authorization header when
  // a redirect leaves the host, so the token never follows it elsewhere.
  set_option(h, CURLOPT_FOLLOWLOCATION, "CURLOPT_FOLLOWLOCATION", req.follow_redirects ? 1L : 0L);
  set_option(h, CURLOPT_MAXREDIRS, "CURLOPT_MAXREDIRS", 5L);
  if (req.accept_compressed) set_option(h, CURLOPT_ACCEPT_ENCODING, "CURLOPT_ACCEPT_ENCODING", "");
  set_option(h, CURLOPT_ERRORBUFFER, "CURLOPT_ERRORBUFFER", errbuf);
  set_option(h, CURLOPT_WRITEFUNCTION, "CURLOPT_WRITEFUNCTION", on_body);
  set_option(h, CURLOPT_WRITEDATA, "CURLOPT_WRITEDATA", &sink);
  set_option(h, CURLOPT_HEADERFUNCTION, "CURLOPT_HEADERFUNCTION", on_header);
  set_option(h, CURLOPT_HEADERDATA, "CURLOPT_HEADERDATA", &a.response.headers);
  a.code = curl_easy_perform(h);
  if (a.code != CURLE_OK) {
    a.error = errbuf[0] ? errbuf : curl_easy_strerror(a.code);
    return a;
  }
  if (CURLcode rc = curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a.response.status);
      rc != CURLE_OK) {
    throw Error(ExitCode::failure,
                std::string("cannot read the HTTP status from libcurl: ") + curl_easy_strerror(rc));
  }
  return a;
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  auto it = headers.find(util::to_lower(name));
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

HttpResponse http_get(const HttpRequest& request, const RetryPolicy& retry) {
  HttpRequest get = request;
  get.method = "GET";
  return http_send(get, retry);
}

HttpResponse http_send(const HttpRequest& request, const RetryPolicy& retry) {
  ensure_init();
  auto backoff = retry.initial_backoff;
  int attempts = request.method == "POST" && !retry.retry_post ? 1 : std::max(1, retry.attempts);
  for (int i = 1;; ++i) {
    Attempt a = attempt_once(request);
    bool network_error = a.code != CURLE_OK;
    bool server_error = !network_error && (a.response.status >= 500 ||
                                           (retry.retry_throttled && a.response.status == 429));
    if (!network_error && !server_error) {
      a.response.attempts = i;
      return a.response;
    }
    std::string why = network_error ? a.error : "HTTP " + std::to_string(a.response.status);
    if (i >= attempts) {
      if (network_error) {
        throw Error(ExitCode::connection,
                    "cannot reach " + util::redact_url(request.url) + ": " + util::scrub(why) +
                        " (after " + std::to_string(i) + (i == 1 ? " try)" : " tries)"),
                    {request.unreachable_hint});
      }
      a.response.attempts = i;
      return a.response;
    }
    util::log::debug(request.method + " " + util::redact_url(request.url) + " failed (" + why +
                     "); retrying in " + std::to_string(backoff.count()) + " ms");
    std::this_thread::sleep_for(backoff);
    backoff = std::chrono::milliseconds(static_cast<long long>(backoff.count() * retry.factor));
  }
}

std::optional<std::string> next_link(std::string_view header) {
  // <url>; rel="next", <url>; rel="last"  (rel may be unquoted or list several relations)
  size_t pos = 0;
  while (pos < header.size()) {
    size_t lt = header.find('<', pos);
    if (lt == std::string_view::npos) break;
    size_t gt = header.find('>', lt);
    if (gt == std::string_view::npos) break;
    std::string url(header.substr(lt + 1, gt - lt - 1));
    size_t end = header.find('<', gt);
    std::string params(header.substr(
        gt + 1, end == std::string_view::npos ? std::string_view::npos : end - gt - 1));
    for (auto& part : util::split(params, ';')) {
      std::string p = util::trim(part);
      if (p.rfind("rel=", 0) != 0) continue;
      std::string rel = p.substr(4);
      if (!rel.empty() && rel.front() == '"') rel = rel.substr(1);
      while (!rel.empty() && (rel.back() == '"' || rel.back() == ',')) rel.pop_back();
      for (auto& r : util::split(rel, ' ')) {
        if (util::to_lower(r) == "next") return url;
      }
    }
    if (end == std::string_view::npos) break;
    pos = end;
  }
  return std::nullopt;
}

std::string origin_of(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  auto end = url.find_first_of("/?#", scheme + 3);
  std::string authority(url.substr(
      scheme + 3, end == std::string_view::npos ? std::string_view::npos : end - scheme - 3));
  if (auto at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
  return util::to_lower(url.substr(0, scheme)) + "://" + util::to_lower(authority);
}

}  // namespace previewdb::net
