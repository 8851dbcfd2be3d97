// A small HTTP/1.1 server on 127.0.0.1 that replays recorded responses (any method; request
// bodies are recorded so that tests can assert what was written), for the GitHub REST
// client: GitHub cannot be reached from tests, so it answers with real recorded GitHub responses
// (tests/fixtures/github-api/). Loopback only, bounded (request size, connections, timeouts).
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace previewdb::test {

struct Exchange {
  std::string method = "GET";
  std::string path;  // with the query string, as requested
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int times = 1;  // how often this answer is given before the next match is used
};

struct RecordedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;                            // as sent (Content-Length bytes)
};

class ReplayServer {
 public:
  // Serves exchanges in order of matching (method, path); an unmatched request gets 599 and is
  // recorded, so that tests can assert what was asked.
  explicit ReplayServer(std::vector<Exchange> exchanges);
  ~ReplayServer();
  ReplayServer(const ReplayServer&) = delete;
  ReplayServer& operator=(const ReplayServer&) = delete;

  // http://127.0.0.1:<port>
  std::string url() const;
  std::vector<RecordedRequest> requests() const;

  // Loads a fixture file: {"source": "...", "exchanges": [{"method", "path", "status",
  // "headers": {..}, "body": <JSON or string>}]}. "https://api.github.com" in header values
  // (Link) is left as recorded; the server rewrites it to its own URL when serving.
  static std::vector<Exchange> load(const std::filesystem::path& fixture);

 private:
  void serve();
  void handle(int fd);

  int m_listen_fd = -1;
  int m_port = 0;
  std::thread m_thread;
  mutable std::mutex m_mutex;
  std::vector<Exchange> m_exchanges;
  std::vector<RecordedRequest> m_requests;
  bool m_stop = false;
};

// tests/fixtures/github-api/<name>
std::filesystem::path github_fixture(const std::string& name);

}  // namespace previewdb::test
