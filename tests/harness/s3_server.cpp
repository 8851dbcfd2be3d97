#include "harness/s3_server.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace previewdb::test {

namespace {
const fs::path k_peers = "/opt/previewdb-peers/node_modules";
}

bool S3Server::available() {
  return util::find_program("node").has_value() && fs::exists(k_peers / "s3rver");
}

S3Server::S3Server(const std::string& bucket) : m_bucket(bucket), m_dir("previewdb-s3-") {
  util::ProcessSpec spec;
  spec.argv = {"node",         std::string(PREVIEWDB_SOURCE_DIR) + "/tests/peers/s3_server.cjs",
               "--dir",        m_dir.path().string(),
               "--bucket",     bucket,
               "--access-key", k_access_key,
               "--secret",     k_secret};
  spec.env["NODE_PATH"] = k_peers.string();
  m_process = std::make_unique<util::StreamingProcess>(spec, /*feed_stdin=*/false,
                                                       /*read_stdout=*/true);
  std::string line;
  char c;
  while (m_process->read(&c, 1) == 1 && c != '\n') line += c;
  if (line.rfind("listening ", 0) != 0) {
    auto r = m_process->wait();
    throw std::runtime_error("the S3 test server did not start: " + line + r.err);
  }
  m_port = std::stoi(line.substr(10));
}

S3Server::~S3Server() = default;

Env S3Server::env() const {
  return {{"AWS_ACCESS_KEY_ID", k_access_key},
          {"AWS_SECRET_ACCESS_KEY", k_secret},
          {"AWS_REGION", "us-east-1"},
          {"AWS_ENDPOINT_URL", endpoint()},
          {"PREVIEWDB_MANIFEST_KEY", k_manifest_key}};
}

std::vector<nlohmann::json> S3Server::requests() const {
  std::vector<nlohmann::json> out;
  std::ifstream in(m_dir.path() / "requests.log");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

void S3Server::clear_requests() const {
  std::error_code ec;
  fs::remove(m_dir.path() / "requests.log", ec);
}

void S3Server::set_faults(const nlohmann::json& faults) const {
  std::ofstream(m_dir.path() / "faults.json") << faults.dump();
}

std::vector<std::string> S3Server::objects() const {
  std::vector<std::string> out;
  fs::path root = m_dir.path() / "data" / m_bucket;
  const std::string suffix = "._S3rver_object";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = fs::relative(it->path(), root).string();
    if (rel.size() > suffix.size() &&
        rel.compare(rel.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(rel.substr(0, rel.size() - suffix.size()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> S3Server::incomplete_uploads() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e :
       fs::directory_iterator(m_dir.path() / "data" / m_bucket / "._S3rver_uploads", ec)) {
    std::ifstream in(e.path() / "key");
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

}  // namespace previewdb::test
