// AWS Signature Version 4 for S3 requests, computed here (HMAC-SHA-256 from crypto) rather than
// by libcurl: Debian 12's libcurl mishandles the canonical form. Pure functions over plain
// values, so the published test vectors can drive them.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace previewdb::storage {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty: none
};

struct SigV4Request {
  std::string method;  // "GET"
  // The path as sent: each segment already URI-encoded once (S3 paths are neither normalised
  // nor encoded twice).
  std::string path;
  // Query parameters, not encoded: the canonical form encodes and sorts them.
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign (host and x-amz-date included); names in any case, values as sent.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-date"
  std::string signature;       // hex
  std::string authorization;   // the Authorization header's value
};

// Signs a request for `service` in `region` at amz_date ("20150830T123600Z").
SigV4Signature sign_v4(const SigV4Request& request, const AwsCredentials& credentials,
                       const std::string& region, const std::string& service,
                       const std::string& amz_date);

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters kept, everything else
// %XX (uppercase); '/' kept unless encode_slash.
std::string uri_encode(std::string_view text, bool encode_slash);

// The canonical query string: names and values encoded, sorted by name then value.
std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query);

// "20150830T123600Z" for a time in seconds since the epoch (UTC).
std::string amz_date(long long unix_seconds);

}  // namespace previewdb::storage
