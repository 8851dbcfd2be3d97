// HMAC-SHA-256 and raw SHA-256 through OpenSSL: the primitives of AWS Signature Version 4 and of
// signed manifests.
#pragma once

#include <string>
#include <string_view>

namespace previewdb::crypto {

// The 32 raw bytes of HMAC-SHA-256(key, data).
std::string hmac_sha256(std::string_view key, std::string_view data);
// The 32 raw bytes of SHA-256(data).
std::string sha256_raw(std::string_view data);
// Lowercase hex of raw bytes.
std::string to_hex(std::string_view bytes);
// Compares in time independent of where the strings differ (MACs, signatures).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace previewdb::crypto
