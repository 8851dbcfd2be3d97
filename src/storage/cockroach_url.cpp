#include "storage/cockroach_url.hpp"

#include "util/error.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

namespace previewdb::storage {

std::string cockroach_storage_url(const std::string& s3_url, const std::string& path,
                                  const StoreOptions& options) {
  const std::string scheme = "s3://";
  if (s3_url.rfind(scheme, 0) != 0) {
    throw usage_error("CockroachDB snapshots need an s3:// store, not " + util::quoted(s3_url),
                      "pass --to s3://BUCKET/PREFIX (CockroachDB's BACKUP writes there itself)");
  }
  std::string rest = s3_url.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string bucket = rest.substr(0, rest.find('/'));
  if (bucket.empty() || rest.find_first_of("?#") != std::string::npos) {
    throw usage_error("invalid s3:// store " + util::quoted(util::redact_url(s3_url)),
                      "write it as s3://BUCKET/PREFIX, without a query");
  }
  if (!path.empty()) rest += "/" + path;
  std::string url = scheme + util::url_encode(rest, /*keep_slash=*/true);
  std::vector<std::pair<std::string, std::string>> query;
  const auto& creds = options.s3_credentials;
  if (!creds.access_key_id.empty() && !creds.secret_access_key.empty()) {
    query.emplace_back("AWS_ACCESS_KEY_ID", creds.access_key_id);
    query.emplace_back("AWS_SECRET_ACCESS_KEY", creds.secret_access_key);
    if (!creds.session_token.empty()) query.emplace_back("AWS_SESSION_TOKEN", creds.session_token);
  } else {
    query.emplace_back("AUTH", "implicit");
  }
  if (!options.s3_endpoint.empty()) query.emplace_back("AWS_ENDPOINT", options.s3_endpoint);
  if (!options.s3_region.empty()) query.emplace_back("AWS_REGION", options.s3_region);
  char sep = '?';
  for (const auto& [key, value] : query) {
    std::string encoded = util::url_encode(value);
    if (key == "AWS_ACCESS_KEY_ID" || key == "AWS_SECRET_ACCESS_KEY" ||
        key == "AWS_SESSION_TOKEN") {
      util::register_secret(value);
      util::register_secret(encoded);
    }
    url += sep + key + "=" + encoded;
    sep = '&';
  }
  return url;
}

}  // namespace previewdb::storage
