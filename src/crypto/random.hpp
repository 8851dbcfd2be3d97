// Random tokens from OpenSSL's CSPRNG.
#pragma once

#include <cstddef>
#include <string>

namespace previewdb::crypto {

// Random lowercase hex of n bytes of entropy (OpenSSL RAND_bytes); throws when it fails.
std::string random_hex(size_t n_bytes);

}  // namespace previewdb::crypto
