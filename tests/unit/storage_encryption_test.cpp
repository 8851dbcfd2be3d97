// Archive encryption (storage/encryption): AES-256-GCM in authenticated chunks. Every tampering
// the format must catch: wrong key, truncation (mid-chunk, a dropped last chunk), reordered
// chunks, a chunk spliced from another archive, a flipped bit, data after the last chunk.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/encryption.hpp"
#include "util/error.hpp"

using namespace previewdb;
using storage::Decryptor;
using storage::Encryptor;

namespace {

const storage::EncryptionKey k_key =
    storage::parse_encryption_key(std::string(64, 'a'), "test");  // 0xaa x 32
const storage::EncryptionKey k_other = storage::parse_encryption_key(std::string(64, 'b'), "test");
constexpr size_t k_chunk = 100;
constexpr size_t k_header = 36;

std::string data(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>('a' + i * 7 % 26);
  return s;
}

std::string encrypt(const std::string& plain, const storage::EncryptionKey& key = k_key) {
  Encryptor e(key, k_chunk);
  std::string out;
  // In uneven pieces, as a stream arrives.
  for (size_t i = 0; i < plain.size(); i += 37) e.update(plain.substr(i, 37), out);
  e.finish(out);
  return out;
}

std::string decrypt(const std::string& sealed, const storage::EncryptionKey& key = k_key) {
  Decryptor d(key, "test.dump");
  std::string out;
  for (size_t i = 0; i < sealed.size(); i += 41) d.update(sealed.substr(i, 41), out);
  d.finish(out);
  return out;
}

// The header and each framed chunk (length prefix included).
struct Parts {
  std::string header;
  std::vector<std::string> chunks;
  std::string join() const {
    std::string s = header;
    for (const auto& c : chunks) s += c;
    return s;
  }
};
Parts split(const std::string& sealed) {
  Parts p;
  p.header = sealed.substr(0, k_header);
  size_t pos = k_header;
  while (pos < sealed.size()) {
    size_t len = 0;
    for (size_t i = 0; i < 4; ++i) len = (len << 8) | static_cast<unsigned char>(sealed[pos + i]);
    p.chunks.push_back(sealed.substr(pos, 4 + len));
    pos += 4 + len;
  }
  return p;
}

std::string refused(const std::string& sealed, const storage::EncryptionKey& key = k_key) {
  try {
    decrypt(sealed, key);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::refused);
    return e.what();
  }
  ADD_FAILURE() << "decryption succeeded";
  return "";
}

TEST(Encryption, RoundTripsAnySize) {
  for (size_t n :
       {size_t{0}, size_t{1}, k_chunk - 1, k_chunk, k_chunk + 1, 5 * k_chunk, size_t{1234}}) {
    SCOPED_TRACE(n);
    std::string plain = data(n);
    std::string sealed = encrypt(plain);
    EXPECT_TRUE(storage::looks_encrypted(sealed));
    // No plaintext run survives (20 bytes never match random ciphertext by chance).
    if (n >= 20) {
      EXPECT_EQ(sealed.find(plain.substr(0, 20)), std::string::npos);
    }
    EXPECT_EQ(decrypt(sealed), plain);
  }
  // Two encryptions of the same data differ (a random archive id, its own key).
  EXPECT_NE(encrypt(data(300)), encrypt(data(300)));
}

TEST(Encryption, AWrongKeyIsNamedBeforeAnyChunk) {
  auto why = refused(encrypt(data(300)), k_other);
  EXPECT_NE(why.find("not with the key given (" + k_other.id + ")"), std::string::npos) << why;
  EXPECT_NE(why.find(k_key.id), std::string::npos) << why;
}

TEST(Encryption, TruncationIsRefused) {
  std::string sealed = encrypt(data(450));
  auto mid = refused(sealed.substr(0, sealed.size() - 10));
  EXPECT_NE(mid.find("truncated in the middle of chunk"), std::string::npos) << mid;
  auto parts = split(sealed);
  ASSERT_EQ(parts.chunks.size(), 5u);
  parts.chunks.pop_back();  // the last chunk dropped: a clean cut at a chunk boundary
  auto dropped = refused(parts.join());
  EXPECT_NE(dropped.find("chunks after chunk 3 are missing"), std::string::npos) << dropped;
  EXPECT_NE(refused(sealed.substr(0, k_header)).find("no last chunk"), std::string::npos);
  EXPECT_NE(refused(sealed.substr(0, 10)).find("no complete header"), std::string::npos);
}

TEST(Encryption, ReorderedChunksAreRefused) {
  auto parts = split(encrypt(data(450)));
  std::swap(parts.chunks[1], parts.chunks[2]);
  auto why = refused(parts.join());
  EXPECT_NE(why.find("chunk 1 fails authentication"), std::string::npos) << why;
}

TEST(Encryption, AChunkFromAnotherArchiveIsRefused) {
  auto a = split(encrypt(data(450)));
  auto b = split(encrypt(data(450)));  // same key, same data, another archive
  a.chunks[2] = b.chunks[2];
  auto why = refused(a.join());
  EXPECT_NE(why.find("chunk 2 fails authentication"), std::string::npos) << why;
  // Another archive's header in front of this one's chunks: every chunk is bound to it.
  a = split(encrypt(data(450)));
  a.header = b.header;
  EXPECT_NE(refused(a.join()).find("chunk 0 fails authentication"), std::string::npos);
}

TEST(Encryption, AFlippedBitOrDataAfterTheLastChunkIsRefused) {
  std::string sealed = encrypt(data(450));
  std::string flipped = sealed;
  flipped[k_header + 4 + 10] ^= 1;
  EXPECT_NE(refused(flipped).find("chunk 0 fails authentication"), std::string::npos);
  // A whole archive followed by a chunk of another: the last-chunk mark gives it away.
  auto parts = split(sealed);
  parts.chunks.push_back(parts.chunks[0]);
  auto why = refused(parts.join());
  EXPECT_NE(why.find("data follows its last chunk"), std::string::npos) << why;
  // The marked last chunk moved before another: its index gives it away.
  parts = split(sealed);
  std::swap(parts.chunks[3], parts.chunks[4]);
  EXPECT_NE(refused(parts.join()).find("chunk 3 fails authentication"), std::string::npos);
}

TEST(Encryption, KeysAreHexOrBase64Of32Bytes) {
  auto hex = storage::parse_encryption_key(
      "  000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", "env");
  auto b64 = storage::parse_encryption_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "env");
  EXPECT_EQ(hex.bytes, b64.bytes);
  EXPECT_EQ(hex.id, b64.id);
  EXPECT_EQ(hex.id.size(), 16u);
  for (const std::string& bad : std::vector<std::string>{"", "abc", std::string(62, 'a'),
                                                         std::string(64, 'g'), "AAECAwQ="}) {
    try {
      storage::parse_encryption_key(bad, "PREVIEWDB_ENCRYPTION_KEY");
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::usage);
      EXPECT_NE(std::string(e.what()).find("PREVIEWDB_ENCRYPTION_KEY"), std::string::npos);
    }
  }
}

}  // namespace
