// HMAC-SHA-256, raw SHA-256 and constant-time comparison through OpenSSL: webhook signatures,
// AWS Signature Version 4 and signed manifests.
#pragma once

#include <string>
#include <string_view>

namespace previewdb::crypto {

// The 32 raw bytes of HMAC-SHA-256(key, data).
std::string hmac_sha256(std::string_view key, std::string_view data);
// Lowercase hex of hmac_sha256 (GitHub's X-Hub-Signature-256 after "sha256=").
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// The 32 raw bytes of SHA-256(data).
std::string sha256_raw(std::string_view data);
// Lowercase hex of raw bytes.
std::string to_hex(std::string_view bytes);
// a == b in time that depends only on the lengths (CRYPTO_memcmp), so a forger learns nothing
// from how long a wrong MAC or signature took to refuse.
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace previewdb::crypto
