// SHA-256 through OpenSSL's EVP interface.
#pragma once

#include <string>
#include <string_view>

namespace previewdb::crypto {

// Lowercase hex SHA-256 of the bytes (the checksum Prisma stores for migration.sql).
std::string sha256_hex(std::string_view data);

}  // namespace previewdb::crypto
