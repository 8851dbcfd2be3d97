#include "crypto/sha256.hpp"

#include <openssl/evp.h>

#include <memory>

#include "util/error.hpp"

namespace previewdb::crypto {

namespace {

std::string to_hex(const unsigned char* digest, unsigned int len) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace

struct Sha256::Impl {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
  if (!m_impl->ctx || EVP_DigestInit_ex(m_impl->ctx.get(), EVP_sha256(), nullptr) != 1)
    throw Error(ExitCode::failure, "OpenSSL SHA-256 failed");
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::string_view data) {
  if (EVP_DigestUpdate(m_impl->ctx.get(), data.data(), data.size()) != 1)
    throw Error(ExitCode::failure, "OpenSSL SHA-256 failed");
}

std::string Sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(m_impl->ctx.get(), digest, &len) != 1)
    throw Error(ExitCode::failure, "OpenSSL SHA-256 failed");
  return to_hex(digest, len);
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex_digest();
}

}  // namespace previewdb::crypto
