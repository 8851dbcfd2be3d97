// AES-256-GCM through OpenSSL's EVP interface: authenticated encryption of one message.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace previewdb::crypto {

inline constexpr size_t k_gcm_key_bytes = 32;
inline constexpr size_t k_gcm_nonce_bytes = 12;
inline constexpr size_t k_gcm_tag_bytes = 16;

// Ciphertext followed by the 16-byte tag. key: 32 bytes, nonce: 12 bytes (never reused under
// one key). aad is authenticated, not encrypted.
std::string aes256gcm_seal(std::string_view key, std::string_view nonce, std::string_view aad,
                           std::string_view plaintext);
// The plaintext, or nullopt when the tag does not match (wrong key, changed data or aad).
std::optional<std::string> aes256gcm_open(std::string_view key, std::string_view nonce,
                                          std::string_view aad, std::string_view sealed);

// n bytes from OpenSSL's CSPRNG.
std::string random_bytes(size_t n);

}  // namespace previewdb::crypto
