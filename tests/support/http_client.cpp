#include "support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace sluice::test {

HttpClient::~HttpClient() { close(); }

void HttpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffer_.clear();
}

bool HttpClient::ensure_connected() {
  if (fd_ >= 0) return true;
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port_));
  ::inet_pton(AF_INET, host_.c_str(), &a.sin_addr);
  timeval tv{30, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close();
    return false;
  }
  return true;
}

HttpResponse HttpClient::post(const std::string& target, const std::string& body, const std::string& content_type,
                              const std::map<std::string, std::string>& headers) {
  auto h = headers;
  h.emplace("Content-Type", content_type);
  return request("POST", target, body, h);
}

HttpResponse HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                                 const std::map<std::string, std::string>& headers) {
  HttpResponse out;
  out.status = -1;
  if (!ensure_connected()) return out;
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host_ + "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (method != "GET" || !body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  for (size_t sent = 0; sent < req.size();) {
    const ssize_t w = ::send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (w <= 0) {
      close();
      return out;
    }
    sent += static_cast<size_t>(w);
  }
  size_t header_end;
  auto fill = [this]() {
    char tmp[65536];
    const ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
    if (r <= 0) return false;
    buffer_.append(tmp, static_cast<size_t>(r));
    return true;
  };
  while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) {
      close();
      return out;
    }
  }
  const std::string head = buffer_.substr(0, header_end);
  out.status = std::atoi(head.c_str() + 9);
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos < head.size()) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string line = head.substr(pos + 2, (next == std::string::npos ? head.size() : next) - pos - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      out.headers[name] = value;
    }
    pos = next;
  }
  size_t length = 0;
  if (auto it = out.headers.find("content-length"); it != out.headers.end()) length = std::strtoull(it->second.c_str(), nullptr, 10);
  while (buffer_.size() < header_end + 4 + length) {
    if (!fill()) {
      close();
      out.status = -1;
      return out;
    }
  }
  out.body = buffer_.substr(header_end + 4, length);
  buffer_.erase(0, header_end + 4 + length);
  if (auto it = out.headers.find("connection"); it != out.headers.end() && it->second == "close") close();
  return out;
}

HttpResponse http_get(int port, const std::string& target) {
  HttpClient c("127.0.0.1", port);
  return c.get(target);
}

}  // namespace sluice::test
