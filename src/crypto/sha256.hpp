// SHA-256 through OpenSSL's EVP interface.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace previewdb::crypto {

// Lowercase hex SHA-256 of the bytes (the checksum Prisma stores for migration.sql).
std::string sha256_hex(std::string_view data);

// Incremental SHA-256 for streams (backup archives): update() any number of times, then
// hex_digest() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(std::string_view data);
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace previewdb::crypto
