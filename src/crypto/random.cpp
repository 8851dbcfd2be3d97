#include "crypto/random.hpp"

#include <openssl/rand.h>

#include <stdexcept>

namespace previewdb::crypto {

std::string random_hex(size_t n_bytes) {
  std::string raw(n_bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n_bytes)) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

}  // namespace previewdb::crypto
