// A small HTTP server over cpp-httplib (the webhook receiver): one handler for every POST, a
// body cap answered with 413 by the library before the handler runs, an access-log callback
// (method, path, status: never the body), and stop() callable from another thread.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace previewdb::net {

struct ServerRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  std::string remote_addr;
  std::string header(const std::string& lowercase_name) const;
};

struct ServerResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

class HttpServer {
 public:
  using Handler = std::function<ServerResponse(const ServerRequest&)>;
  // Called once per answered request, including those the library refuses (413, 404).
  using AccessLog = std::function<void(const std::string& method, const std::string& path,
                                       int status, const std::string& remote_addr)>;

  HttpServer(std::size_t max_body, Handler post_handler, AccessLog access_log);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0: a free one) and returns the port. Error(usage) when it cannot.
  int bind(const std::string& host, int port);
  // Serves until stop(); returns after the requests in progress were answered.
  void serve();
  // Stops accepting; safe from any thread (not from a signal handler).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace previewdb::net
