#include "harness/http_replay.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "util/files.hpp"
#include "util/strings.hpp"

namespace previewdb::test {

namespace {

constexpr size_t k_max_request = 64 * 1024;
constexpr int k_io_timeout_ms = 5000;

std::string reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::filesystem::path github_fixture(const std::string& name) {
  return std::filesystem::path(PREVIEWDB_SOURCE_DIR) / "tests" / "fixtures" / "github-api" / name;
}

std::vector<Exchange> ReplayServer::load(const std::filesystem::path& fixture) {
  auto doc = nlohmann::json::parse(util::read_file(fixture));
  std::vector<Exchange> out;
  for (const auto& e : doc.at("exchanges")) {
    Exchange x;
    x.method = e.value("method", "GET");
    x.path = e.at("path").get<std::string>();
    x.status = e.value("status", 200);
    x.times = e.value("times", 1);
    if (e.contains("headers")) {
      for (const auto& [k, v] : e["headers"].items())
        x.headers.emplace_back(k, v.get<std::string>());
    }
    if (e.contains("body"))
      x.body = e["body"].is_string() ? e["body"].get<std::string>() : e["body"].dump();
    out.push_back(std::move(x));
  }
  return out;
}

ReplayServer::ReplayServer(std::vector<Exchange> exchanges) : m_exchanges(std::move(exchanges)) {
  m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (m_listen_fd < 0 ||
      ::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(m_listen_fd, 16) != 0) {
    throw std::runtime_error("ReplayServer: cannot listen on 127.0.0.1");
  }
  socklen_t len = sizeof addr;
  ::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  m_port = ntohs(addr.sin_port);
  m_thread = std::thread([this] { serve(); });
}

ReplayServer::~ReplayServer() {
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
  }
  ::shutdown(m_listen_fd, SHUT_RDWR);
  m_thread.join();
  ::close(m_listen_fd);
}

std::string ReplayServer::url() const {
  return "http://127.0.0.1:" + std::to_string(m_port);
}

std::vector<RecordedRequest> ReplayServer::requests() const {
  std::lock_guard lock(m_mutex);
  return m_requests;
}

void ReplayServer::serve() {
  for (int served = 0; served < 1000; ++served) {  // bounded: a runaway client cannot loop forever
    pollfd p{m_listen_fd, POLLIN, 0};
    int rc = ::poll(&p, 1, 200);
    {
      std::lock_guard lock(m_mutex);
      if (m_stop) return;
    }
    if (rc <= 0) {
      --served;
      continue;
    }
    int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    handle(fd);
    ::close(fd);
  }
}

void ReplayServer::handle(int fd) {
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < k_max_request) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, k_io_timeout_ms) <= 0) return;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    req.append(buf, static_cast<size_t>(n));
  }
  size_t head_end = req.find("\r\n\r\n");
  if (head_end == std::string::npos) return;
  auto lines = util::split(req.substr(0, head_end), '\n');
  if (lines.empty()) return;
  auto first = util::split(util::trim(lines[0]), ' ');
  if (first.size() < 2) return;
  RecordedRequest r{first[0], first[1], {}, {}};
  for (size_t i = 1; i < lines.size(); ++i) {
    auto colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    r.headers[util::to_lower(util::trim(lines[i].substr(0, colon)))] =
        util::trim(lines[i].substr(colon + 1));
  }

  // The body: Content-Length bytes after the head (bounded like the head).
  size_t length = 0;
  if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
    length = std::min(static_cast<size_t>(std::stoul(it->second)), k_max_request);
  }
  std::string body = req.substr(head_end + 4);
  while (body.size() < length) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, k_io_timeout_ms) <= 0) return;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    body.append(buf, static_cast<size_t>(n));
  }
  r.body = body.substr(0, length);

  Exchange answer{r.method, r.path, 599, {}, "{\"message\":\"no recorded response\"}", 1};
  {
    std::lock_guard lock(m_mutex);
    m_requests.push_back(r);
    for (auto& x : m_exchanges) {
      if (x.times > 0 && x.method == r.method && x.path == r.path) {
        --x.times;
        answer = x;
        break;
      }
    }
  }
  std::string out =
      "HTTP/1.1 " + std::to_string(answer.status) + " " + reason_phrase(answer.status) + "\r\n";
  for (auto [k, v] : answer.headers) {
    std::string lk = util::to_lower(k);
    if (lk == "content-length" || lk == "transfer-encoding" || lk == "content-encoding" ||
        lk == "connection") {
      continue;  // recorded framing does not describe the trimmed body
    }
    replace_all(v, "https://api.github.com", url());
    out += k + ": " + v + "\r\n";
  }
  out += "Content-Length: " + std::to_string(answer.body.size()) + "\r\nConnection: close\r\n\r\n";
  out += answer.body;
  send_all(fd, out);
}

}  // namespace previewdb::test
