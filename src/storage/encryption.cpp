#include "storage/encryption.hpp"

#include <nlohmann/json.hpp>

#include "crypto/aead.hpp"
#include "crypto/hmac.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::storage {

namespace {

constexpr size_t k_key_id_bytes = 8;
constexpr size_t k_archive_id_bytes = 16;
constexpr size_t k_header_bytes = 8 + k_key_id_bytes + k_archive_id_bytes + 4;

std::string be32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 3; i >= 0; --i, v >>= 8) s[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}
std::uint32_t read_be32(std::string_view s) {
  std::uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}
std::string nonce_for(std::uint64_t index) {
  std::string n(crypto::k_gcm_nonce_bytes, '\0');
  for (int i = 11; i >= 4; --i, index >>= 8)
    n[static_cast<size_t>(i)] = static_cast<char>(index & 0xff);
  return n;
}
std::string aad_for(const std::string& header, std::uint64_t index, bool last) {
  std::string a = header;
  for (int i = 7; i >= 0; --i) a += static_cast<char>((index >> (8 * i)) & 0xff);
  a += last ? '\1' : '\0';
  return a;
}
std::string subkey_for(const std::string& key, std::string_view archive_id) {
  return crypto::hmac_sha256(key, "previewdb-archive-key" + std::string(archive_id));
}
std::string raw_key_id(const std::string& key) {
  return crypto::sha256_raw("previewdb-key-id\n" + key).substr(0, k_key_id_bytes);
}

std::optional<std::string> from_hex(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    int v = 0;
    for (size_t j = 0; j < 2; ++j) {
      char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i + j])));
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                                                          : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    out += static_cast<char>(v);
  }
  return out;
}

std::optional<std::string> from_base64(std::string_view s) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : s) {
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad) return std::nullopt;
    auto pos = alphabet.find(c);
    if (c == '-') pos = 62;  // URL-safe alphabet too
    if (c == '_') pos = 63;
    if (pos == std::string::npos) return std::nullopt;
    buf = (buf << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace

EncryptionKey parse_encryption_key(std::string_view text, const std::string& origin) {
  std::string t = util::trim(text);
  std::optional<std::string> bytes;
  if (t.size() == 64) bytes = from_hex(t);
  if (!bytes) bytes = from_base64(t);
  if (!bytes || bytes->size() != crypto::k_gcm_key_bytes) {
    throw usage_error("the encryption key from " + origin + " is not 32 bytes in hex or base64",
                      "make one with 'openssl rand -hex 32' and keep it in a secret store");
  }
  return {*bytes, crypto::to_hex(raw_key_id(*bytes))};
}

bool looks_encrypted(std::string_view first) {
  return first.substr(0, k_encryption_magic.size()) == k_encryption_magic;
}

Encryptor::Encryptor(const EncryptionKey& key, size_t chunk) : m_chunk(chunk) {
  std::string archive_id = crypto::random_bytes(k_archive_id_bytes);
  m_header = std::string(k_encryption_magic) + raw_key_id(key.bytes) + archive_id +
             be32(static_cast<std::uint32_t>(chunk));
  m_key = subkey_for(key.bytes, archive_id);
}

void Encryptor::seal(bool last, std::string& out) {
  std::string sealed =
      crypto::aes256gcm_seal(m_key, nonce_for(m_index), aad_for(m_header, m_index, last), m_buf);
  out += be32(static_cast<std::uint32_t>(sealed.size()));
  out += sealed;
  ++m_index;
  m_buf.clear();
}

void Encryptor::update(std::string_view input, std::string& out) {
  if (!m_header_written) {
    out += m_header;
    m_header_written = true;
  }
  while (!input.empty()) {
    size_t n = std::min(input.size(), m_chunk - m_buf.size());
    m_buf.append(input.data(), n);
    input.remove_prefix(n);
    // A full chunk is sealed only once more data follows: the last one must carry the flag.
    if (m_buf.size() == m_chunk && !input.empty()) seal(false, out);
  }
}

void Encryptor::finish(std::string& out) {
  update({}, out);
  seal(true, out);
}

Decryptor::Decryptor(const EncryptionKey& key, std::string what)
    : m_key(key), m_what(std::move(what)) {}

void Decryptor::fail(const std::string& why, const std::string& hint) const {
  throw Error(ExitCode::refused, "encrypted archive " + m_what + ": " + why + "; nothing restored",
              {hint.empty() ? "take a new snapshot or backup; do not trust this one" : hint});
}

std::optional<std::string> Decryptor::open(const std::string& sealed, std::uint64_t index,
                                           bool last) const {
  return crypto::aes256gcm_open(m_subkey, nonce_for(index), aad_for(m_header, index, last), sealed);
}

void Decryptor::parse_header() {
  m_header = m_buf.substr(0, k_header_bytes);
  m_buf.erase(0, k_header_bytes);
  if (!looks_encrypted(m_header)) fail("it does not start with previewdb's encryption header");
  std::string key_id = m_header.substr(8, k_key_id_bytes);
  if (key_id != raw_key_id(m_key.bytes)) {
    fail("it was encrypted with the key " + crypto::to_hex(key_id) + ", not with the key given (" +
             m_key.id + ")",
         "give the key it was written with (PREVIEWDB_ENCRYPTION_KEY or --encryption-key-file)");
  }
  m_subkey = subkey_for(m_key.bytes, m_header.substr(8 + k_key_id_bytes, k_archive_id_bytes));
  m_chunk = read_be32(m_header.substr(8 + k_key_id_bytes + k_archive_id_bytes));
  if (m_chunk == 0 || m_chunk > (64u << 20)) fail("its header names an invalid chunk size");
  m_have_header = true;
}

void Decryptor::update(std::string_view input, std::string& out) {
  m_buf.append(input);
  if (!m_have_header) {
    if (m_buf.size() < k_header_bytes) return;
    parse_header();
  }
  for (;;) {
    if (m_pending && !m_buf.empty()) {
      auto plain = open(*m_pending, m_index, false);
      if (!plain) {
        if (open(*m_pending, m_index, true)) fail("data follows its last chunk");
        fail("chunk " + std::to_string(m_index) +
             " fails authentication: it was changed, reordered, or taken from another archive");
      }
      out += *plain;
      ++m_index;
      m_pending.reset();
    }
    if (m_pending || m_buf.size() < 4) return;
    std::uint32_t len = read_be32(m_buf);
    if (len < crypto::k_gcm_tag_bytes || len > m_chunk + crypto::k_gcm_tag_bytes)
      fail("chunk " + std::to_string(m_index) + " has an invalid length");
    if (m_buf.size() < 4 + len) return;
    m_pending = m_buf.substr(4, len);
    m_buf.erase(0, 4 + len);
  }
}

void Decryptor::finish(std::string& out) {
  if (!m_have_header) fail("it is truncated (no complete header)");
  if (!m_buf.empty()) fail("it is truncated in the middle of chunk " + std::to_string(m_index));
  if (!m_pending) fail("it is truncated: it has no last chunk");
  auto plain = open(*m_pending, m_index, true);
  if (!plain) {
    if (open(*m_pending, m_index, false))
      fail("it is truncated: chunks after chunk " + std::to_string(m_index) + " are missing");
    fail("chunk " + std::to_string(m_index) +
         " fails authentication: it was changed, reordered, or taken from another archive");
  }
  out += *plain;
  m_pending.reset();
}

namespace {

class EncryptingArchiveWriter : public ArchiveWriter {
 public:
  EncryptingArchiveWriter(std::unique_ptr<ArchiveWriter> inner, const EncryptionKey& key)
      : m_inner(std::move(inner)), m_enc(key), m_key_id(key.id) {}
  void write(std::string_view data) override {
    m_enc.update(data, m_out);
    flush();
  }
  void finish() override {
    m_enc.finish(m_out);
    flush();
    m_inner->finish();
  }
  void publish(const std::string& id, const std::string& metadata_json) override {
    auto j = nlohmann::json::parse(metadata_json, nullptr, false);
    if (!j.is_object()) j = nlohmann::json::object();
    j["encryption"] = {{"cipher", "AES-256-GCM"}, {"key_id", m_key_id}};
    m_inner->publish(id, j.dump());
  }
  void unpublish() override { m_inner->unpublish(); }

 private:
  void flush() {
    if (m_out.empty()) return;
    m_inner->write(m_out);
    m_out.clear();
  }
  std::unique_ptr<ArchiveWriter> m_inner;
  Encryptor m_enc;
  std::string m_key_id, m_out;
};

class EncryptingObjectWriter : public ObjectWriter {
 public:
  EncryptingObjectWriter(std::unique_ptr<ObjectWriter> inner, const EncryptionKey& key)
      : m_inner(std::move(inner)), m_enc(key) {}
  void write(std::string_view data) override {
    m_enc.update(data, m_out);
    m_inner->write(m_out);
    m_out.clear();
  }
  void commit() override {
    m_enc.finish(m_out);
    m_inner->write(m_out);
    m_out.clear();
    m_inner->commit();
  }

 private:
  std::unique_ptr<ObjectWriter> m_inner;
  Encryptor m_enc;
  std::string m_out;
};

class DecryptingReader : public ObjectReader {
 public:
  DecryptingReader(std::unique_ptr<ObjectReader> inner, std::string prefix,
                   const EncryptionKey& key, const std::string& what)
      : m_inner(std::move(inner)), m_dec(key, what) {
    m_dec.update(prefix, m_out);
  }
  size_t read(char* buf, size_t size) override {
    std::string in(1 << 16, '\0');
    while (m_off >= m_out.size()) {
      if (m_done) return 0;
      m_out.clear();
      m_off = 0;
      size_t n = m_inner->read(in.data(), in.size());
      if (n == 0) {
        m_dec.finish(m_out);
        m_done = true;
      } else {
        m_dec.update(std::string_view(in.data(), n), m_out);
      }
    }
    size_t n = std::min(size, m_out.size() - m_off);
    std::copy_n(m_out.data() + m_off, n, buf);
    m_off += n;
    return n;
  }

 private:
  std::unique_ptr<ObjectReader> m_inner;
  Decryptor m_dec;
  std::string m_out;
  size_t m_off = 0;
  bool m_done = false;
};

// Gives back bytes read ahead to look at the header, then the rest of inner.
class PrefixedReader : public ObjectReader {
 public:
  PrefixedReader(std::string prefix, std::unique_ptr<ObjectReader> inner)
      : m_prefix(std::move(prefix)), m_inner(std::move(inner)) {}
  size_t read(char* buf, size_t size) override {
    if (m_off < m_prefix.size()) {
      size_t n = std::min(size, m_prefix.size() - m_off);
      std::copy_n(m_prefix.data() + m_off, n, buf);
      m_off += n;
      return n;
    }
    return m_inner->read(buf, size);
  }

 private:
  std::string m_prefix;
  size_t m_off = 0;
  std::unique_ptr<ObjectReader> m_inner;
};

}  // namespace

std::unique_ptr<ArchiveWriter> encrypting_writer(std::unique_ptr<ArchiveWriter> inner,
                                                 const EncryptionKey& key) {
  return std::make_unique<EncryptingArchiveWriter>(std::move(inner), key);
}

std::unique_ptr<ObjectWriter> encrypting_writer(std::unique_ptr<ObjectWriter> inner,
                                                const EncryptionKey& key) {
  return std::make_unique<EncryptingObjectWriter>(std::move(inner), key);
}

std::unique_ptr<ObjectReader> decrypting_reader(std::unique_ptr<ObjectReader> inner,
                                                const std::optional<EncryptionKey>& key,
                                                const std::string& what) {
  std::string prefix;
  char buf[64];
  while (prefix.size() < k_encryption_magic.size()) {
    size_t n = inner->read(buf, k_encryption_magic.size() - prefix.size());
    if (n == 0) break;
    prefix.append(buf, n);
  }
  if (!looks_encrypted(prefix)) return std::make_unique<PrefixedReader>(prefix, std::move(inner));
  if (!key) {
    throw usage_error(what + " is encrypted",
                      "give its key in PREVIEWDB_ENCRYPTION_KEY or with --encryption-key-file");
  }
  return std::make_unique<DecryptingReader>(std::move(inner), prefix, *key, what);
}

}  // namespace previewdb::storage
