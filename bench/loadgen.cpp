// bench/loadgen.cpp — closed-loop HTTP/1.1 keep-alive load generator.
//
//   sluice-loadgen --port P --path /v1/write/TABLE --connections C --bodies DIR [--host H]
//
// Reads every file of DIR into memory first, then C connections (one thread each) take the next
// body from a shared index and POST it, waiting for each response before sending the next. Every
// response must be 200; the JSON "accepted" counts are summed. Prints one line of key=value.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string path;
  int connections = 4;
  std::string bodies;
  std::string content_type = "application/json";
};

int connect_to(const Options& o) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads one response; returns status, fills body.
int read_response(int fd, std::string& buf, std::string& body) {
  size_t header_end;
  while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
    char tmp[65536];
    const ssize_t r = ::read(fd, tmp, sizeof tmp);
    if (r <= 0) return -1;
    buf.append(tmp, static_cast<size_t>(r));
  }
  const int status = std::atoi(buf.c_str() + 9);
  size_t length = 0;
  std::string headers = buf.substr(0, header_end);
  std::transform(headers.begin(), headers.end(), headers.begin(), ::tolower);
  const auto cl = headers.find("content-length:");
  if (cl != std::string::npos) length = std::strtoull(headers.c_str() + cl + 15, nullptr, 10);
  while (buf.size() < header_end + 4 + length) {
    char tmp[65536];
    const ssize_t r = ::read(fd, tmp, sizeof tmp);
    if (r <= 0) return -1;
    buf.append(tmp, static_cast<size_t>(r));
  }
  body.assign(buf, header_end + 4, length);
  buf.erase(0, header_end + 4 + length);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = std::atoi(v.c_str());
    else if (k == "--path") o.path = v;
    else if (k == "--connections") o.connections = std::atoi(v.c_str());
    else if (k == "--bodies") o.bodies = v;
    else if (k == "--content-type") o.content_type = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (o.path.empty() || o.bodies.empty()) {
    std::fprintf(stderr, "usage: sluice-loadgen --port P --path /v1/write/T --connections C --bodies DIR\n");
    return 2;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(o.bodies)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::string> requests;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string body = ss.str();
    requests.push_back("POST " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\nContent-Type: " + o.content_type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  }

  std::atomic<size_t> next{0};
  std::atomic<uint64_t> accepted{0}, failures{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&] {
      int fd = connect_to(o);
      std::string buf, body;
      for (size_t i; (i = next.fetch_add(1)) < requests.size();) {
        if (!write_all(fd, requests[i].data(), requests[i].size())) {
          failures++;
          break;
        }
        const int status = read_response(fd, buf, body);
        if (status != 200) {
          if (failures++ < 5) std::fprintf(stderr, "request %zu: status %d %s\n", i, status, body.c_str());
          if (status < 0) break;
          continue;
        }
        const auto p = body.find("\"accepted\":");
        if (p != std::string::npos) accepted += std::strtoull(body.c_str() + p + 11, nullptr, 10);
      }
      ::close(fd);
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("requests=%zu accepted_rows=%llu failures=%llu seconds=%.3f rows_per_s=%.0f\n", requests.size(),
              static_cast<unsigned long long>(accepted.load()), static_cast<unsigned long long>(failures.load()), secs,
              static_cast<double>(accepted.load()) / secs);
  return failures.load() == 0 ? 0 : 1;
}
