#include "storage/s3.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "crypto/hmac.hpp"
#include "crypto/random.hpp"
#include "crypto/sha256.hpp"
#include "net/http.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace previewdb::storage {

namespace {

constexpr const char* k_snapshot_manifest_format = "previewdb-snapshot-archive-1";
constexpr std::uint64_t k_min_part = 5u << 20;  // S3's smallest part (but the last)
constexpr std::uint64_t k_max_part = 5ull << 30;
constexpr int k_max_parts = 10000;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_manifest(const std::string& name) {
  return ends_with(name, ".json");
}

std::string xml_unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    static const std::pair<std::string_view, char> entities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool done = false;
    for (const auto& [e, c] : entities) {
      if (s.substr(i, e.size()) == e) {
        out += c;
        i += e.size() - 1;
        done = true;
        break;
      }
    }
    if (!done) out += '&';
  }
  return out;
}

// The contents of every <tag>...</tag> in xml (S3's answers are flat enough for this).
std::vector<std::string> xml_all(std::string_view xml, const std::string& tag) {
  std::vector<std::string> out;
  std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    size_t start = pos + open.size();
    size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    out.emplace_back(xml.substr(start, end - start));
    pos = end + close.size();
  }
  return out;
}

std::string xml_first(std::string_view xml, const std::string& tag) {
  auto all = xml_all(xml, tag);
  return all.empty() ? std::string() : xml_unescape(all.front());
}

std::optional<std::chrono::system_clock::time_point> parse_s3_time(std::string text) {
  // "2026-11-30T01:02:03.000Z": without the fraction for parse_iso8601.
  if (auto dot = text.find('.'); dot != std::string::npos) {
    auto z = text.find('Z', dot);
    text = text.substr(0, dot) + (z == std::string::npos ? "Z" : "Z");
  }
  return util::parse_iso8601(text);
}

bool valid_bucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  return std::all_of(b.begin(), b.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  });
}

bool valid_prefix(const std::string& p) {
  for (const auto& seg : util::split(p, '/')) {
    if (seg.empty() || seg == "." || seg == "..") return false;
    for (char c : seg) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
        return false;
    }
  }
  return true;
}

struct Request {
  std::string method = "GET";
  std::string key;  // the full key; empty for the bucket itself
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;  // signed too
  std::string body;
  std::vector<long> accept;  // statuses besides 2xx the caller handles
  size_t max_response = 16u << 20;
};

// Signs and sends requests for one bucket. Errors name the store and S3's code, never a
// credential (they are registered secrets too).
class S3Client {
 public:
  S3Client(std::string bucket, StoreOptions options, std::string url)
      : m_bucket(std::move(bucket)), m_options(std::move(options)), m_url(std::move(url)) {
    if (!m_options.s3_endpoint.empty()) {
      std::string e = m_options.s3_endpoint;
      while (!e.empty() && e.back() == '/') e.pop_back();
      m_base = e;
      auto scheme = e.find("://");
      m_host = scheme == std::string::npos ? e : e.substr(scheme + 3);
      if (auto slash = m_host.find('/'); slash != std::string::npos) {
        m_path_prefix = m_host.substr(slash);
        m_host = m_host.substr(0, slash);
      }
      m_path_style = true;
    } else {
      m_host = m_bucket + ".s3." + m_options.s3_region + ".amazonaws.com";
      m_base = "https://" + m_host;
    }
  }

  // By value: a part's body is moved through to libcurl, never copied.
  net::HttpResponse send(Request r) const {
    std::string path = m_path_prefix;
    if (m_path_style) path += "/" + m_bucket;
    if (!r.key.empty()) path += "/" + uri_encode(r.key, false);
    if (path.empty()) path = "/";
    std::string date = amz_date(std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
    SigV4Request sr;
    sr.method = r.method;
    sr.path = path;
    sr.query = r.query;
    sr.payload_hash = crypto::to_hex(crypto::sha256_raw(r.body));
    sr.headers = r.headers;
    sr.headers.emplace_back("host", m_host);
    sr.headers.emplace_back("x-amz-date", date);
    sr.headers.emplace_back("x-amz-content-sha256", sr.payload_hash);
    if (!m_options.s3_credentials.session_token.empty())
      sr.headers.emplace_back("x-amz-security-token", m_options.s3_credentials.session_token);
    auto sig = sign_v4(sr, m_options.s3_credentials, m_options.s3_region, "s3", date);

    net::HttpRequest hr;
    hr.method = r.method;
    std::string q = canonical_query(r.query);
    // m_base ends with the endpoint's own path (m_path_prefix).
    hr.url = m_base + path.substr(m_path_prefix.size()) + (q.empty() ? "" : "?" + q);
    hr.headers = sr.headers;
    hr.headers.emplace_back("Authorization", sig.authorization);
    hr.headers.emplace_back("Expect", "");
    if (r.method == "PUT" || r.method == "POST")
      hr.headers.emplace_back("Content-Type", "application/octet-stream");
    hr.body = std::move(r.body);
    hr.timeout = std::chrono::seconds(600);
    hr.max_response = r.max_response;
    hr.follow_redirects = false;
    hr.accept_compressed = false;
    hr.unreachable_hint = "check the network and the endpoint (AWS_ENDPOINT_URL, s3_endpoint)";
    net::RetryPolicy retry;
    retry.attempts = 5;
    retry.initial_backoff = std::chrono::milliseconds(200);
    retry.retry_throttled = true;
    // S3's POSTs (start and complete a multipart upload) may be repeated: a lost answer to a
    // start leaves an upload the sweep aborts; completing twice completes once.
    retry.retry_post = true;
    auto resp = net::http_send(hr, retry);
    if (resp.status >= 200 && resp.status < 300) return resp;
    if (std::find(r.accept.begin(), r.accept.end(), resp.status) != r.accept.end()) return resp;
    throw failure(r, resp);
  }

  const std::string& bucket() const { return m_bucket; }
  const StoreOptions& options() const { return m_options; }

 private:
  Error failure(const Request& r, const net::HttpResponse& resp) const {
    std::string code = xml_first(resp.body, "Code");
    std::string message = xml_first(resp.body, "Message");
    std::string what = r.method + " " + m_url + (r.key.empty() ? "" : " (" + r.key + ")");
    std::string why = "HTTP " + std::to_string(resp.status) + (code.empty() ? "" : " " + code) +
                      (message.empty() ? "" : ": " + message);
    why = util::scrub(util::printable(why.substr(0, 500)));
    std::vector<std::string> hints;
    if (resp.status == 403) {
      hints.push_back(
          "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_COCKROACH_BACKUP "
          "and AWS_SECRET_ACCESS_KEY_COCKROACH_BACKUP), AWS_REGION and the bucket's policy");
    } else if (resp.status == 404 && code == "NoSuchBucket") {
      hints.push_back("create the bucket " + m_bucket + " first, or fix the URL");
    } else if (resp.status >= 500 || resp.status == 429) {
      hints.push_back("the server kept failing after " + std::to_string(resp.attempts) +
                      " tries; run again later");
    }
    return Error(ExitCode::failure, "S3 request " + what + " failed: " + why, hints);
  }

  std::string m_bucket;
  StoreOptions m_options;
  std::string m_url;
  std::string m_base, m_host, m_path_prefix;
  bool m_path_style = false;
};

class StringReader : public ObjectReader {
 public:
  explicit StringReader(std::string text) : m_text(std::move(text)) {}
  size_t read(char* buf, size_t size) override {
    size_t n = std::min(size, m_text.size() - m_pos);
    std::copy_n(m_text.data() + m_pos, n, buf);
    m_pos += n;
    return n;
  }

 private:
  std::string m_text;
  size_t m_pos = 0;
};

// An object read as ranged GETs of one part each: memory bounded, every range retried alone.
class RangedReader : public ObjectReader {
 public:
  RangedReader(const S3Client& client, std::string key, std::uint64_t chunk)
      : m_client(client), m_key(std::move(key)), m_chunk(chunk) {}

  // False when the object does not exist.
  bool fetch_next() {
    if (m_total && m_pos >= *m_total) return false;
    Request r;
    r.key = m_key;
    r.headers.emplace_back(
        "range", "bytes=" + std::to_string(m_pos) + "-" + std::to_string(m_pos + m_chunk - 1));
    r.accept = {404, 416};
    r.max_response = m_chunk + (1u << 20);
    auto resp = m_client.send(r);
    if (resp.status == 404) {
      if (m_pos == 0) return false;
      throw Error(ExitCode::failure, "object " + m_key + " disappeared while it was read");
    }
    if (resp.status == 416) {  // an empty object
      m_total = m_pos;
      m_buf.clear();
      m_off = 0;
      return true;
    }
    if (resp.status == 206) {
      auto range = resp.header("content-range").value_or("");
      auto slash = range.rfind('/');
      auto total =
          slash == std::string::npos ? std::nullopt : util::parse_uint(range.substr(slash + 1));
      if (!total) {
        throw Error(ExitCode::failure, "S3 answered a range of " + m_key +
                                           " without its total size (Content-Range " +
                                           util::quoted(util::printable(range)) + ")");
      }
      m_total = *total;
    } else {
      m_total = m_pos + resp.body.size();  // the server ignored Range: the whole object
    }
    m_buf = std::move(resp.body);
    m_off = 0;
    m_pos += m_buf.size();
    return true;
  }

  size_t read(char* buf, size_t size) override {
    while (m_off >= m_buf.size()) {
      if (m_total && m_pos >= *m_total) return 0;
      if (!fetch_next()) return 0;
      if (m_buf.empty()) return 0;
    }
    size_t n = std::min(size, m_buf.size() - m_off);
    std::copy_n(m_buf.data() + m_off, n, buf);
    m_off += n;
    return n;
  }

 private:
  const S3Client& m_client;
  std::string m_key;
  std::uint64_t m_chunk;
  std::uint64_t m_pos = 0;
  std::optional<std::uint64_t> m_total;
  std::string m_buf;
  size_t m_off = 0;
};

// Checks an archive's size and SHA-256 against its manifest as it streams: the end of the stream
// throws when they differ, so a restore fed by it fails.
class VerifyingReader : public ObjectReader {
 public:
  VerifyingReader(std::unique_ptr<ObjectReader> inner, std::uint64_t size, std::string sha256,
                  std::string what)
      : m_inner(std::move(inner)),
        m_size(size),
        m_sha256(std::move(sha256)),
        m_what(std::move(what)) {}
  size_t read(char* buf, size_t size) override {
    size_t n = m_inner->read(buf, size);
    if (n > 0) {
      m_seen += n;
      m_sha.update(std::string_view(buf, n));
      if (m_seen > m_size) fail("is longer than its manifest says");
      return n;
    }
    if (m_seen != m_size)
      fail("is " + std::to_string(m_seen) + " bytes, its manifest says " + std::to_string(m_size));
    if (!crypto::equal_constant_time(m_sha.hex_digest(), m_sha256))
      fail("does not match the SHA-256 in its manifest");
    return 0;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw Error(ExitCode::refused, "archive " + m_what + " " + why + ": refusing to restore it",
                {"take a new snapshot; someone or something changed this one"});
  }
  std::unique_ptr<ObjectReader> m_inner;
  std::uint64_t m_size;
  std::string m_sha256, m_what;
  std::uint64_t m_seen = 0;
  crypto::Sha256 m_sha;
};

// An object written as a multipart upload started at the first full part (a small object is one
// PUT). Destroyed before commit: the upload is aborted.
class MultipartWriter : public ObjectWriter {
 public:
  MultipartWriter(const S3Client& client, std::string key, std::string name)
      : m_client(client), m_key(std::move(key)), m_name(std::move(name)) {}
  ~MultipartWriter() override {
    if (m_committed || m_upload_id.empty()) return;
    try {
      Request r;
      r.method = "DELETE";
      r.key = m_key;
      r.query = {{"uploadId", m_upload_id}};
      r.accept = {404};
      m_client.send(r);
    } catch (const std::exception& e) {
      util::log::warn("could not abort the incomplete upload of " + m_key + " (" + e.what() +
                      "); the next run sweeps it");
    }
  }

  void write(std::string_view data) override {
    while (!data.empty()) {
      std::uint64_t want = s3_part_size(m_client.options().s3_part_size, m_part + 1);
      if (m_buf.capacity() < want) m_buf.reserve(want);  // one allocation per part, no doubling
      size_t room = static_cast<size_t>(want - m_buf.size());
      size_t n = std::min(room, data.size());
      m_buf.append(data.data(), n);
      data.remove_prefix(n);
      if (m_buf.size() >= want) upload_part();
    }
  }

  void commit() override {
    if (m_upload_id.empty()) {
      Request r;
      r.method = "PUT";
      r.key = m_key;
      r.body = is_manifest(m_name) ? sign_manifest(m_name, m_buf, m_client.options().manifest_key)
                                   : m_buf;
      m_client.send(r);
    } else {
      if (!m_buf.empty()) upload_part();
      std::string xml = "<CompleteMultipartUpload>";
      for (size_t i = 0; i < m_etags.size(); ++i) {
        xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + m_etags[i] +
               "</ETag></Part>";
      }
      xml += "</CompleteMultipartUpload>";
      Request r;
      r.method = "POST";
      r.key = m_key;
      r.query = {{"uploadId", m_upload_id}};
      r.body = xml;
      auto resp = m_client.send(r);
      // S3 may answer 200 with an error in the body when completing fails late.
      if (resp.body.find("<Error>") != std::string::npos) {
        throw Error(ExitCode::failure, "S3 could not complete the upload of " + m_key + ": " +
                                           util::printable(xml_first(resp.body, "Code")));
      }
    }
    m_committed = true;
  }

  std::uint64_t size() const { return m_size; }

 private:
  void upload_part() {
    if (is_manifest(m_name)) {
      throw Error(ExitCode::failure, "manifest " + m_name + " is larger than one part");
    }
    if (m_upload_id.empty()) {
      Request r;
      r.method = "POST";
      r.key = m_key;
      r.query = {{"uploads", ""}};
      auto resp = m_client.send(r);
      m_upload_id = xml_first(resp.body, "UploadId");
      if (m_upload_id.empty())
        throw Error(ExitCode::failure, "S3 started no multipart upload for " + m_key);
    }
    if (m_part + 1 > k_max_parts) {
      throw Error(ExitCode::failure, "object " + m_key + " needs more than 10,000 parts");
    }
    Request r;
    r.method = "PUT";
    r.key = m_key;
    r.query = {{"partNumber", std::to_string(m_part + 1)}, {"uploadId", m_upload_id}};
    std::uint64_t size = m_buf.size();
    r.body = std::move(m_buf);
    auto resp = m_client.send(std::move(r));
    auto etag = resp.header("etag");
    if (!etag)
      throw Error(ExitCode::failure, "S3 answered part " + std::to_string(m_part + 1) + " of " +
                                         m_key + " without an ETag");
    m_etags.push_back(*etag);
    m_size += size;
    ++m_part;
    m_buf.clear();
  }

  const S3Client& m_client;
  std::string m_key, m_name;
  std::string m_upload_id;
  std::string m_buf;
  std::vector<std::string> m_etags;
  int m_part = 0;
  std::uint64_t m_size = 0;
  bool m_committed = false;
};

class S3Store;

class S3ArchiveWriter : public ArchiveWriter {
 public:
  S3ArchiveWriter(S3Store& store, std::string archive_name);
  ~S3ArchiveWriter() override;
  void write(std::string_view data) override {
    m_sha.update(data);
    m_size += data.size();
    m_writer->write(data);
  }
  void finish() override {
    m_writer->commit();
    m_finished = true;
    m_digest = m_sha.hex_digest();
  }
  void publish(const std::string& id, const std::string& metadata_json) override;
  void unpublish() override;

 private:
  S3Store& m_store;
  std::string m_archive;
  std::unique_ptr<MultipartWriter> m_writer;
  crypto::Sha256 m_sha;
  std::uint64_t m_size = 0;
  std::string m_digest;
  bool m_finished = false;
  std::string m_published;
};

class S3Store : public SnapshotStore {
 public:
  S3Store(std::string bucket, std::string prefix, StoreOptions options)
      : m_prefix(std::move(prefix)),
        m_url("s3://" + bucket + "/" + m_prefix),
        m_client(bucket, std::move(options), m_url) {
    if (!m_url.empty() && m_url.back() == '/') m_url.pop_back();
  }

  std::string describe() const override { return m_url; }
  bool remote() const override { return true; }
  const S3Client& client() const { return m_client; }
  std::string key(const std::string& name) const { return m_prefix + name; }

  void put(const std::string& id, const fs::path& archive, const std::string& meta) override {
    auto w = begin_archive(id);
    std::ifstream in(archive, std::ios::binary);
    std::string buf(1 << 20, '\0');
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      if (in.gcount() > 0) w->write(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
    }
    w->finish();
    w->publish(id, meta);
  }

  fs::path fetch(const std::string& id, const fs::path& scratch) override {
    std::string wanted = id == "latest" ? newest_id() : id;
    auto reader = open_archive(wanted);
    fs::path out = scratch / (wanted + ".dump");
    std::ofstream f(out, std::ios::binary | std::ios::trunc);
    std::string buf(1 << 20, '\0');
    while (size_t n = reader->read(buf.data(), buf.size()))
      f.write(buf.data(), static_cast<std::streamsize>(n));
    if (!f) throw Error(ExitCode::failure, "cannot write " + util::quoted(out.string()));
    return out;
  }

  void remove(const std::string& id) override {
    auto manifest = snapshot_manifest(id, /*required=*/false);
    remove_object_key(key(id + ".json"));
    if (manifest) remove_object_key(key(manifest->value("archive", "")));
  }

  std::vector<std::string> list() override {
    std::vector<std::string> ids;
    for (const auto& [id, m] : snapshot_manifests()) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  std::vector<ArchiveInfo> archives() override {
    std::vector<ArchiveInfo> out;
    for (const auto& [id, m] : snapshot_manifests()) {
      out.push_back({id, m.value("source", ""), m.value("created_at", ""),
                     m.value("size", std::uint64_t{0}),
                     mask_hash_of(m.value("metadata", nlohmann::json::object()))});
    }
    std::sort(out.begin(), out.end(),
              [](const ArchiveInfo& a, const ArchiveInfo& b) { return a.id < b.id; });
    return out;
  }

  std::optional<std::string> latest_of(const std::string& source) override {
    std::optional<std::string> best;
    std::string best_time;
    for (const auto& [id, m] : snapshot_manifests()) {
      if (m.value("source", "") != source) continue;
      std::string created = m.value("created_at", "");
      if (!best || created > best_time || (created == best_time && id > *best)) {
        best = id;
        best_time = created;
      }
    }
    return best;
  }

  std::unique_ptr<ObjectWriter> create_object(const std::string& name) override {
    check_name(name);
    sweep_once();
    return std::make_unique<MultipartWriter>(m_client, key(name), name);
  }

  std::unique_ptr<ObjectReader> open_object(const std::string& name) override {
    check_name(name);
    if (is_manifest(name)) {
      auto text = read_manifest(name);
      if (!text) return nullptr;
      return std::make_unique<StringReader>(*text);
    }
    auto reader =
        std::make_unique<RangedReader>(m_client, key(name), m_client.options().s3_part_size);
    if (!reader->fetch_next()) return nullptr;
    return reader;
  }

  std::vector<StoreObject> list_objects() override {
    std::vector<StoreObject> out;
    std::string token;
    for (;;) {
      Request r;
      r.key = "";
      r.query = {{"list-type", "2"}, {"prefix", m_prefix}};
      if (!token.empty()) r.query.emplace_back("continuation-token", token);
      auto resp = m_client.send(r);
      for (const auto& c : xml_all(resp.body, "Contents")) {
        std::string k = xml_first(c, "Key");
        if (k.rfind(m_prefix, 0) != 0) continue;
        std::string name = k.substr(m_prefix.size());
        if (!valid_name(name)) continue;
        StoreObject o;
        o.name = name;
        o.size = util::parse_uint(xml_first(c, "Size")).value_or(0);
        o.modified = parse_s3_time(xml_first(c, "LastModified"))
                         .value_or(std::chrono::system_clock::time_point{});
        out.push_back(std::move(o));
      }
      if (xml_first(resp.body, "IsTruncated") != "true") break;
      token = xml_first(resp.body, "NextContinuationToken");
      if (token.empty()) break;
    }
    std::sort(out.begin(), out.end(),
              [](const StoreObject& a, const StoreObject& b) { return a.name < b.name; });
    return out;
  }

  bool remove_object(const std::string& name) override {
    check_name(name);
    Request head;
    head.method = "HEAD";
    head.key = key(name);
    head.accept = {404};
    if (m_client.send(head).status == 404) return false;
    remove_object_key(key(name));
    return true;
  }

  std::optional<fs::path> local_path(const std::string&) const override { return std::nullopt; }

  std::unique_ptr<ArchiveWriter> begin_archive(const std::string& hint) override {
    sweep_once();
    std::string base = valid_name(hint) ? hint : "archive";
    return std::make_unique<S3ArchiveWriter>(*this, base + "." + crypto::random_hex(4) + ".dump");
  }

  std::unique_ptr<ObjectReader> open_archive(const std::string& id) override {
    std::string wanted = id == "latest" ? newest_id() : id;
    auto m = snapshot_manifest(wanted, /*required=*/true);
    std::string archive = m->value("archive", "");
    if (!valid_name(archive)) {
      throw Error(ExitCode::refused,
                  "manifest " + wanted + ".json in " + m_url + " names no valid archive");
    }
    auto reader =
        std::make_unique<RangedReader>(m_client, key(archive), m_client.options().s3_part_size);
    if (!reader->fetch_next()) {
      throw Error(ExitCode::not_found, "the archive of snapshot " + wanted + " is missing from " +
                                           m_url + " (" + archive + ")");
    }
    return std::make_unique<VerifyingReader>(std::move(reader), m->value("size", std::uint64_t{0}),
                                             m->value("sha256", ""), wanted + " in " + m_url);
  }

  // The manifest's text without its HMAC; nullopt when absent. Error(refused) when it is not
  // signed with the store's key.
  std::optional<std::string> read_manifest(const std::string& name) const {
    Request r;
    r.key = key(name);
    r.accept = {404};
    r.max_response = 1u << 20;
    auto resp = m_client.send(r);
    if (resp.status == 404) return std::nullopt;
    auto checked = check_manifest(name, resp.body, m_client.options().manifest_key);
    switch (checked.status) {
      case ManifestCheck::ok:
        return checked.text;
      case ManifestCheck::unsigned_manifest:
        throw Error(ExitCode::refused,
                    "manifest " + name + " in " + m_url + " has no HMAC: refusing to trust it",
                    {"only previewdb with PREVIEWDB_MANIFEST_KEY set writes manifests others may "
                     "restore; remove it, or take a new snapshot or backup"});
      case ManifestCheck::bad_hmac:
        throw Error(ExitCode::refused,
                    "manifest " + name + " in " + m_url +
                        " fails its HMAC check (PREVIEWDB_MANIFEST_KEY): refusing to trust it",
                    {"someone with write access to the bucket changed or planted it, or the key "
                     "differs from the one it was written with"});
      case ManifestCheck::not_json:
        break;
    }
    throw Error(ExitCode::refused, "manifest " + name + " in " + m_url + " is not valid JSON");
  }

  void write_manifest(const std::string& name, const std::string& text) {
    Request r;
    r.method = "PUT";
    r.key = key(name);
    r.body = sign_manifest(name, text, m_client.options().manifest_key);
    m_client.send(r);
  }

  void remove_object_key(const std::string& k) const {
    Request r;
    r.method = "DELETE";
    r.key = k;
    r.accept = {404};
    m_client.send(r);
  }

 private:
  static bool valid_name(const std::string& name) {
    if (name.empty() || name.size() > 200 || name[0] == '.') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
  }
  static void check_name(const std::string& name) {
    if (!valid_name(name)) {
      throw usage_error("invalid object name " + util::quoted(name),
                        "names use letters, digits, '.', '_' and '-' and do not start with '.'");
    }
  }

  std::optional<json> snapshot_manifest(const std::string& id, bool required) const {
    auto text = read_manifest(id + ".json");
    if (!text) {
      if (!required) return std::nullopt;
      throw Error(ExitCode::not_found, "no snapshot archive " + id + " in " + m_url,
                  {"list them with 'previewdb snapshot list --store " + m_url + "'"});
    }
    auto j = json::parse(*text, nullptr, false);
    if (!j.is_object() || j.value("format", "") != k_snapshot_manifest_format) {
      if (!required) return std::nullopt;
      throw Error(ExitCode::not_found, id + ".json in " + m_url + " is not a snapshot manifest");
    }
    return j;
  }

  // Every snapshot manifest that verifies; the others are named in a warning and skipped, so a
  // planted one can never become "latest".
  std::vector<std::pair<std::string, json>> snapshot_manifests() {
    std::vector<std::pair<std::string, json>> out;
    for (const auto& o : list_objects()) {
      if (!is_manifest(o.name)) continue;
      std::string id = o.name.substr(0, o.name.size() - 5);
      try {
        auto text = read_manifest(o.name);
        if (!text) continue;
        auto j = json::parse(*text, nullptr, false);
        if (j.is_object() && j.value("format", "") == k_snapshot_manifest_format)
          out.emplace_back(id, j);
      } catch (const Error& e) {
        if (e.code() != ExitCode::refused) throw;
        util::log::warn(std::string(e.what()) + "; skipped");
      }
    }
    return out;
  }

  std::string newest_id() {
    auto all = list();
    if (all.empty()) {
      throw Error(ExitCode::not_found, "no snapshot archive found in " + m_url,
                  {"create one with 'previewdb snapshot --to " + m_url + "'"});
    }
    return all.back();
  }

  // Multipart uploads a killed run left (older than s3_sweep_after) are aborted before this run
  // writes: they cost storage and are never completed.
  void sweep_once() {
    if (m_swept) return;
    m_swept = true;
    Request r;
    r.query = {{"uploads", ""}, {"prefix", m_prefix}};
    auto resp = m_client.send(r);
    auto now = std::chrono::system_clock::now();
    for (const auto& u : xml_all(resp.body, "Upload")) {
      std::string k = xml_first(u, "Key"), id = xml_first(u, "UploadId");
      auto initiated = parse_s3_time(xml_first(u, "Initiated"));
      if (k.rfind(m_prefix, 0) != 0 || id.empty()) continue;
      if (initiated && now - *initiated < m_client.options().s3_sweep_after) continue;
      Request abort;
      abort.method = "DELETE";
      abort.key = k;
      abort.query = {{"uploadId", id}};
      abort.accept = {404};
      m_client.send(abort);
      util::log::info("aborted an incomplete upload of " + util::printable(k) + " in " + m_url +
                      " started " + util::printable(xml_first(u, "Initiated")) +
                      " (left by an interrupted run)");
    }
  }

  std::string m_prefix;
  std::string m_url;
  S3Client m_client;
  bool m_swept = false;
};

S3ArchiveWriter::S3ArchiveWriter(S3Store& store, std::string archive_name)
    : m_store(store), m_archive(std::move(archive_name)) {
  m_writer = std::make_unique<MultipartWriter>(store.client(), store.key(m_archive), m_archive);
}

S3ArchiveWriter::~S3ArchiveWriter() {
  if (!m_published.empty() || !m_finished) return;  // unfinished: the writer aborts its upload
  try {
    m_store.remove_object_key(m_store.key(m_archive));
  } catch (const std::exception& e) {
    util::log::warn("could not remove the unpublished archive " + m_archive + ": " + e.what());
  }
}

void S3ArchiveWriter::publish(const std::string& id, const std::string& metadata_json) {
  if (!m_finished) throw std::logic_error("publish before finish");
  json meta = json::parse(metadata_json, nullptr, false);
  json m = {{"format", k_snapshot_manifest_format},
            {"id", id},
            {"archive", m_archive},
            {"size", m_size},
            {"sha256", m_digest},
            {"source", meta.is_object() ? meta.value("source", "") : ""},
            {"created_at", meta.is_object() ? meta.value("created_at", "") : ""},
            {"metadata", meta.is_object() ? meta : json::object()}};
  m_store.write_manifest(id + ".json", m.dump());
  m_published = id;
}

void S3ArchiveWriter::unpublish() {
  if (m_published.empty()) return;
  m_store.remove_object_key(m_store.key(m_published + ".json"));
  m_published.clear();
}

}  // namespace

std::uint64_t s3_part_size(std::uint64_t base, int part_number) {
  std::uint64_t size = std::max(base, k_min_part);
  for (int doubling = (part_number - 1) / 1000; doubling > 0 && size < k_max_part; --doubling)
    size *= 2;
  return std::min(size, k_max_part);
}

std::string sign_manifest(const std::string& name, const std::string& text,
                          const std::string& key) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) throw Error(ExitCode::failure, "manifest " + name + " is not a JSON object");
  j.erase("hmac");
  // dump() of the object without "hmac" is canonical: nlohmann's objects keep keys sorted.
  j["hmac"] =
      crypto::to_hex(crypto::hmac_sha256(key, "previewdb-manifest-1\n" + name + "\n" + j.dump()));
  return j.dump(2) + "\n";
}

CheckedManifest check_manifest(const std::string& name, const std::string& text,
                               const std::string& key) {
  CheckedManifest c;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return c;
  if (!j.contains("hmac") || !j["hmac"].is_string()) {
    c.status = ManifestCheck::unsigned_manifest;
    return c;
  }
  std::string given = j["hmac"].get<std::string>();
  j.erase("hmac");
  std::string expected =
      crypto::to_hex(crypto::hmac_sha256(key, "previewdb-manifest-1\n" + name + "\n" + j.dump()));
  if (key.empty() || !crypto::equal_constant_time(given, expected)) {
    c.status = ManifestCheck::bad_hmac;
    return c;
  }
  c.status = ManifestCheck::ok;
  c.text = j.dump(2) + "\n";
  return c;
}

std::unique_ptr<SnapshotStore> open_s3_store(const std::string& rest, const StoreOptions& options) {
  std::string r = rest;
  if (ends_with(r, ".dump")) r = r.substr(0, r.rfind('/') == std::string::npos ? 0 : r.rfind('/'));
  while (!r.empty() && r.back() == '/') r.pop_back();
  auto slash = r.find('/');
  std::string bucket = r.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : r.substr(slash + 1);
  if (!valid_bucket(bucket)) {
    throw usage_error("invalid S3 bucket " + util::quoted(bucket) + " in s3://" + rest,
                      "use s3://BUCKET/PREFIX with a bucket of 3-63 lowercase letters, digits, "
                      "'.' and '-'");
  }
  if (!prefix.empty() && !valid_prefix(prefix)) {
    throw usage_error("invalid S3 prefix " + util::quoted(prefix) + " in s3://" + rest,
                      "use folders of letters, digits, '.', '_' and '-' separated by '/'");
  }
  if (options.s3_credentials.access_key_id.empty() ||
      options.s3_credentials.secret_access_key.empty()) {
    throw usage_error(
        "s3://" + bucket + " needs credentials",
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
        "AWS_ACCESS_KEY_COCKROACH_BACKUP and AWS_SECRET_ACCESS_KEY_COCKROACH_BACKUP)");
  }
  if (options.manifest_key.empty()) {
    throw usage_error("s3://" + bucket + " needs PREVIEWDB_MANIFEST_KEY",
                      "manifests in a bucket are signed (HMAC-SHA-256) so that whoever can write "
                      "the bucket cannot plant a snapshot: set PREVIEWDB_MANIFEST_KEY to the same "
                      "secret wherever snapshots are taken and restored");
  }
  return std::make_unique<S3Store>(bucket, prefix.empty() ? "" : prefix + "/", options);
}

}  // namespace previewdb::storage
