#include "storage/sigv4.hpp"

#include <algorithm>
#include <ctime>

#include "crypto/hmac.hpp"
#include "util/strings.hpp"

namespace previewdb::storage {

std::string uri_encode(std::string_view text, bool encode_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    bool unreserved = std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (c == '/' && !encode_slash)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [k, v] : query) encoded.emplace_back(uri_encode(k, true), uri_encode(v, true));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string amz_date(long long unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

namespace {

// Header values: leading/trailing spaces trimmed, inner runs of spaces as one.
std::string canonical_value(std::string_view v) {
  std::string t = util::trim(v);
  std::string out;
  bool space = false;
  for (char c : t) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

SigV4Signature sign_v4(const SigV4Request& req, const AwsCredentials& creds,
                       const std::string& region, const std::string& service,
                       const std::string& date) {
  // Headers: lowercase names, sorted; repeated names joined by ','.
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [k, v] : req.headers)
    headers.emplace_back(util::to_lower(k), canonical_value(v));
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers, signed_headers;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers.pop_back();  // the '\n'
      canonical_headers += "," + headers[i].second + "\n";
      continue;
    }
    canonical_headers += headers[i].first + ":" + headers[i].second + "\n";
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += headers[i].first;
  }
  SigV4Signature s;
  s.signed_headers = signed_headers;
  s.canonical_request = req.method + "\n" + (req.path.empty() ? "/" : req.path) + "\n" +
                        canonical_query(req.query) + "\n" + canonical_headers + "\n" +
                        signed_headers + "\n" + req.payload_hash;
  std::string day = date.substr(0, 8);
  std::string scope = day + "/" + region + "/" + service + "/aws4_request";
  s.string_to_sign = "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n" +
                     crypto::to_hex(crypto::sha256_raw(s.canonical_request));
  std::string key = crypto::hmac_sha256("AWS4" + creds.secret_access_key, day);
  key = crypto::hmac_sha256(key, region);
  key = crypto::hmac_sha256(key, service);
  key = crypto::hmac_sha256(key, "aws4_request");
  s.signature = crypto::to_hex(crypto::hmac_sha256(key, s.string_to_sign));
  s.authorization = "AWS4-HMAC-SHA256 Credential=" + creds.access_key_id + "/" + scope +
                    ", SignedHeaders=" + signed_headers + ", Signature=" + s.signature;
  return s;
}

}  // namespace previewdb::storage
