#include "crypto/aead.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "util/error.hpp"

namespace previewdb::crypto {

namespace {

using Ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

Ctx new_ctx() {
  Ctx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!ctx) throw Error(ExitCode::failure, "cannot create an OpenSSL cipher context");
  return ctx;
}

void check_sizes(std::string_view key, std::string_view nonce) {
  if (key.size() != k_gcm_key_bytes || nonce.size() != k_gcm_nonce_bytes)
    throw std::logic_error("AES-256-GCM needs a 32-byte key and a 12-byte nonce");
}

}  // namespace

std::string aes256gcm_seal(std::string_view key, std::string_view nonce, std::string_view aad,
                           std::string_view plaintext) {
  check_sizes(key, nonce);
  auto ctx = new_ctx();
  std::string out(plaintext.size() + k_gcm_tag_bytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0, total = 0;
  bool ok =
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce)) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), o, &len, bytes(plaintext), static_cast<int>(plaintext.size())) ==
          1;
  total = len;
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), o + total, &len) == 1;
  total += len;
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, k_gcm_tag_bytes, o + total) == 1;
  if (!ok) throw Error(ExitCode::failure, "AES-256-GCM encryption failed (OpenSSL)");
  return out;
}

std::optional<std::string> aes256gcm_open(std::string_view key, std::string_view nonce,
                                          std::string_view aad, std::string_view sealed) {
  check_sizes(key, nonce);
  if (sealed.size() < k_gcm_tag_bytes) return std::nullopt;
  std::string_view cipher = sealed.substr(0, sealed.size() - k_gcm_tag_bytes);
  std::string tag(sealed.substr(cipher.size()));
  auto ctx = new_ctx();
  std::string out(cipher.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), o, &len, bytes(cipher), static_cast<int>(cipher.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, k_gcm_tag_bytes, tag.data()) != 1) {
    throw Error(ExitCode::failure, "AES-256-GCM decryption failed (OpenSSL)");
  }
  int total = len;
  if (EVP_DecryptFinal_ex(ctx.get(), o + total, &len) != 1) return std::nullopt;
  out.resize(static_cast<size_t>(total + len));
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw Error(ExitCode::failure, "cannot read random bytes (OpenSSL RAND_bytes)");
  return out;
}

}  // namespace previewdb::crypto
