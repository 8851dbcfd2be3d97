#include "net/http_server.hpp"

#include <httplib.h>

#include <cctype>
#include <cstring>

#include "util/error.hpp"

namespace previewdb::net {

std::string ServerRequest::header(const std::string& lowercase_name) const {
  auto it = headers.find(lowercase_name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpServer::Impl {
  httplib::Server server;
};

HttpServer::HttpServer(std::size_t max_body, Handler post_handler, AccessLog access_log)
    : m_impl(std::make_unique<Impl>()) {
  auto& s = m_impl->server;
  s.set_payload_max_length(max_body);
  // A slow or stalled sender cannot hold a worker for long.
  s.set_read_timeout(10, 0);
  s.set_write_timeout(10, 0);
  s.Post(".*",
         [handler = std::move(post_handler)](const httplib::Request& req, httplib::Response& res) {
           ServerRequest r;
           r.method = req.method;
           r.path = req.path;
           r.body = req.body;
           r.remote_addr = req.remote_addr;
           for (const auto& [name, value] : req.headers) {
             std::string lower = name;
             for (auto& c : lower)
               c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
             r.headers[lower] = value;
           }
           ServerResponse out = handler(r);
           res.status = out.status;
           res.set_content(out.body, out.content_type.c_str());
         });
  s.set_logger(
      [log = std::move(access_log)](const httplib::Request& req, const httplib::Response& res) {
        if (log) log(req.method, req.path, res.status, req.remote_addr);
      });
}

HttpServer::~HttpServer() = default;

int HttpServer::bind(const std::string& host, int port) {
  auto& s = m_impl->server;
  int bound = port == 0 ? s.bind_to_any_port(host) : (s.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    throw Error(
        ExitCode::usage,
        "cannot listen on " + host + ":" + std::to_string(port) + ": " + std::strerror(errno),
        {"choose a free port and an address of this machine, e.g. --listen 127.0.0.1:8080"});
  }
  return bound;
}

void HttpServer::serve() {
  m_impl->server.listen_after_bind();
}

void HttpServer::stop() {
  m_impl->server.stop();
}

}  // namespace previewdb::net
