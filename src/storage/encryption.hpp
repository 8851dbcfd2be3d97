// Client-side encryption of archives (--encrypt): AES-256-GCM in authenticated chunks, streamed.
//
//   header  "PDBENC1\n" | key id (8 bytes) | archive id (16 random bytes) | chunk size (u32 BE)
//   chunks  u32 BE sealed length | AES-256-GCM(ciphertext | tag)
//
// Each archive is sealed under its own key, HMAC-SHA-256(key, "previewdb-archive-key" | archive
// id), so chunk nonces (the chunk index) never repeat under one key. Each chunk's additional data
// is the header, its index and a last-chunk flag: a chunk changed, reordered, dropped from the end
// or taken from another archive fails authentication.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "storage/store.hpp"

namespace previewdb::storage {

inline constexpr size_t k_encryption_chunk = 1 << 20;
inline constexpr std::string_view k_encryption_magic = "PDBENC1\n";

// 64 hex characters or base64 of 32 bytes (surrounding whitespace ignored). Error(usage) naming
// origin ("PREVIEWDB_ENCRYPTION_KEY", "--encryption-key-file FILE") otherwise; never quotes it.
EncryptionKey parse_encryption_key(std::string_view text, const std::string& origin);

// True when data starts like an encrypted archive.
bool looks_encrypted(std::string_view first_bytes);

class Encryptor {
 public:
  explicit Encryptor(const EncryptionKey& key, size_t chunk = k_encryption_chunk);
  // Appends what is ready (the header first) to out.
  void update(std::string_view input, std::string& out);
  // The last chunk (marked as such; empty when the data ended on a chunk boundary).
  void finish(std::string& out);

 private:
  void seal(bool last, std::string& out);
  std::string m_key, m_header, m_buf;
  size_t m_chunk;
  std::uint64_t m_index = 0;
  bool m_header_written = false;
};

class Decryptor {
 public:
  // what names the archive in errors.
  Decryptor(const EncryptionKey& key, std::string what);
  // Appends authenticated plaintext to out (one chunk behind: the last one is known only at the
  // end). Error(refused) naming the chunk when one fails authentication, for a wrong key, etc.
  void update(std::string_view input, std::string& out);
  // Error(refused) when the archive is truncated or its last chunk is missing.
  void finish(std::string& out);

 private:
  [[noreturn]] void fail(const std::string& why, const std::string& hint = "") const;
  std::optional<std::string> open(const std::string& sealed, std::uint64_t index, bool last) const;
  void parse_header();
  EncryptionKey m_key;
  std::string m_what, m_buf, m_header, m_subkey;
  std::optional<std::string> m_pending;  // a complete chunk not yet known to be the last
  std::uint64_t m_index = 0;
  size_t m_chunk = 0;
  bool m_have_header = false;
};

// Encrypts everything written to inner; publish adds {"encryption": {"cipher", "key_id"}} to the
// metadata.
std::unique_ptr<ArchiveWriter> encrypting_writer(std::unique_ptr<ArchiveWriter> inner,
                                                 const EncryptionKey& key);
std::unique_ptr<ObjectWriter> encrypting_writer(std::unique_ptr<ObjectWriter> inner,
                                                const EncryptionKey& key);
// Decrypts inner when it is encrypted (key required: Error(usage) naming how to give it),
// passes it through otherwise.
std::unique_ptr<ObjectReader> decrypting_reader(std::unique_ptr<ObjectReader> inner,
                                                const std::optional<EncryptionKey>& key,
                                                const std::string& what);

}  // namespace previewdb::storage
