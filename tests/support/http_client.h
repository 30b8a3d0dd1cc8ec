// tests/support/http_client.h — a minimal blocking HTTP/1.1 client for tests (keep-alive, no TLS).
#pragma once

#include <map>
#include <string>

namespace sluice::test {

struct HttpResponse {
  int status = 0;                              // -1 when the connection failed or closed early
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class HttpClient {
 public:
  HttpClient(std::string host, int port) : host_(std::move(host)), port_(port) {}
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends a request on the kept-alive connection (connecting first when needed).
  HttpResponse request(const std::string& method, const std::string& target, const std::string& body = {},
                       const std::map<std::string, std::string>& headers = {});
  HttpResponse post(const std::string& target, const std::string& body,
                    const std::string& content_type = "application/json",
                    const std::map<std::string, std::string>& headers = {});
  HttpResponse get(const std::string& target) { return request("GET", target); }
  void close();

 private:
  bool ensure_connected();
  std::string host_;
  int port_;
  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection.
HttpResponse http_get(int port, const std::string& target);

}  // namespace sluice::test
