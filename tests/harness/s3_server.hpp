// A real S3-compatible server for a test: the npm s3rver behind tests/peers/s3_server.cjs (which
// checks Signature V4, answers 403 to a wrong secret, lists and aborts multipart uploads, logs
// requests and injects failures), on a free port with a temporary folder.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/harness.hpp"
#include "util/files.hpp"
#include "util/subprocess.hpp"

namespace previewdb::test {

class S3Server {
 public:
  static constexpr const char* k_access_key = "AKIDPREVIEWDBTEST";
  static constexpr const char* k_secret = "s3cr3t/Key+ForTheTestServer0123456789abcd";
  static constexpr const char* k_manifest_key = "manifest-key-for-tests-0123456789";

  // True when node and s3rver are installed (scripts/install-deps.sh --peers).
  static bool available();
  explicit S3Server(const std::string& bucket = "previewdb-test");
  ~S3Server();

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(m_port); }
  const std::string& bucket() const { return m_bucket; }
  // AWS_* variables and PREVIEWDB_MANIFEST_KEY for the CLI.
  Env env() const;
  // Every request so far: {method, path, query, status, bytes}.
  std::vector<nlohmann::json> requests() const;
  void clear_requests() const;
  // Failures to inject: [{"method": "PUT", "query": "partNumber", "status": 503, "times": 2}].
  void set_faults(const nlohmann::json& faults) const;
  // Keys of the objects in the bucket (from s3rver's folder) and incomplete multipart uploads.
  std::vector<std::string> objects() const;
  std::vector<std::string> incomplete_uploads() const;
  // Where s3rver keeps the bucket's objects (KEY._S3rver_object), for tampering tests.
  std::filesystem::path data_dir() const { return m_dir.path() / "data" / m_bucket; }

 private:
  std::string m_bucket;
  util::TempDir m_dir;
  std::unique_ptr<util::StreamingProcess> m_process;
  int m_port = 0;
};

}  // namespace previewdb::test
