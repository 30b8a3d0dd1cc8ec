// bench/loadgen.cpp — HTTP/1.1 keep-alive and UDP load generator for bench/run and bench/compare-copy.
//
//   sluice-loadgen --port P --path /v1/write/T --connections C --bodies DIR [--host H]
//                  [--content-type CT] [--index DIR/index.tsv]
//                  [--rate R] [--latency-out FILE]
//                  [--visible-db URL --visible-table T --visible-column C] [--duration S]
//   sluice-loadgen --udp --port P --datagrams FILE [--rate R] [--connections C] [--limit K]
//
// HTTP. Reads every file of DIR (sorted by name) into memory first. C connections (one thread
// each) take the next body from a shared index, POST it and wait for the answer (200 with a JSON
// "accepted" count, or 204 for line protocol: the body's row count from --index, else its lines).
//   closed loop (no --rate): each connection sends its next body as soon as the answer came.
//   open loop (--rate R bodies/s): body i is due at t0 + i/R, whatever happened before. A
//     connection waits for the due time of the body it took and sends it then; the time to
//     acknowledgement is measured from the DUE time, so a stalled server is charged for every
//     body that could not go out on time (no coordinated omission). The rate must leave a free
//     connection for each due body, else the lateness shows up in the latencies (as it should).
//   visibility (--visible-*): a poller thread asks PostgreSQL every --poll-ms (default 10) which of
//     the due bodies' timestamps are in the table (each body has one timestamp, --index gives it);
//     the time until a body's rows are visible is from its due time to the start of the poll that
//     saw them first. Resolution: poll interval + one query. The poll is an index lookup on the
//     time column. The poller is load on the database under test: at 2 ms it polled ~440 times a
//     second at ~0.7 ms each (round trip included) while bodies were in flight, ~0.3 s per second.
//   soak (--rate R --duration S): R × S bodies, taking the bodies of DIR round-robin (the target
//     table must accept repeats: bench/run uses a copy of the table without keys).
// UDP. The datagrams of FILE (separated by an empty line) go out from C threads in order, paced to
// R datagrams/s in total (0 or no --rate: as fast as sendto allows), the first K only with --limit;
// prints how many datagrams and rows (lines) were sent.
//
// Prints one line of key=value (requests, accepted_rows, failures, seconds, rows_per_s and, open
// loop, ack_p50_ms ack_p99_ms ack_p999_ms ack_max_ms vis_p50_ms vis_p99_ms vis_p999_ms vis_max_ms
// late_sends). --latency-out writes "due_us ack_us visible_us" per body (relative to t0; -1 = never).
// Exit status 0 when every answer was a success and every body was seen (when polled), else 1.
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
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
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string path;
  int connections = 4;
  std::string bodies;
  std::string index;
  std::string content_type = "application/json";
  double rate = 0;  // bodies (or datagrams) per second; 0 = closed loop / unpaced
  std::string latency_out;
  std::string visible_db, visible_table, visible_column;
  int poll_ms = 10;  // visibility polls start this far apart (a prepared index lookup each)
  double duration = 0;  // open loop: send bodies round-robin for this many seconds (soak)
  uint64_t limit = 0;   // UDP: send at most this many datagrams (0 = all)
  bool udp = false;
  std::string datagrams;
};

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "sluice-loadgen: %s\n", why.c_str());
  std::exit(2);
}

sockaddr_in address_of(const Options& o) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &a.sin_addr) != 1) die("--host must be an IPv4 address: " + o.host);
  return a;
}

int connect_to(const Options& o) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = address_of(o);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("sluice-loadgen: connect");
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

// Reads one response; returns the status (-1 on a broken connection), fills body.
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

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) die("cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double percentile_ms(std::vector<int64_t> v, double q) {  // v in microseconds
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size()));
  if (i >= v.size()) i = v.size() - 1;
  return static_cast<double>(v[i]) / 1000.0;
}

// User + system CPU of this process so far (all threads), in seconds.
double own_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

int64_t micros_since(Clock::time_point t0, Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t - t0).count();
}

int run_udp(const Options& o) {
  const std::string text = read_file(o.datagrams);
  std::vector<std::pair<size_t, size_t>> grams;  // offset, length
  uint64_t lines = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string::npos) end = text.size();
    else end += 1;  // keep the last line's newline
    grams.emplace_back(pos, end - pos);
    for (size_t i = pos; i < end; ++i) lines += text[i] == '\n';
    pos = end + 1;
    if (o.limit > 0 && grams.size() == o.limit) break;
  }
  const sockaddr_in a = address_of(o);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> errors{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < std::max(1, o.connections); ++c) {
    threads.emplace_back([&] {
      int fd = socket(AF_INET, SOCK_DGRAM, 0);
      for (size_t i; (i = next.fetch_add(1)) < grams.size();) {
        if (o.rate > 0) std::this_thread::sleep_until(t0 + std::chrono::duration<double>(static_cast<double>(i) / o.rate));
        if (sendto(fd, text.data() + grams[i].first, grams[i].second, 0, reinterpret_cast<const sockaddr*>(&a),
                   sizeof a) < 0) {
          errors++;
        }
      }
      ::close(fd);
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("datagrams=%zu rows=%llu send_errors=%llu seconds=%.3f datagrams_per_s=%.0f rows_per_s=%.0f\n",
              grams.size(), static_cast<unsigned long long>(lines), static_cast<unsigned long long>(errors.load()),
              secs, static_cast<double>(grams.size()) / secs, static_cast<double>(lines) / secs);
  return errors.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--udp") {
      o.udp = true;
      continue;
    }
    if (i + 1 >= argc) die("missing value for " + k);
    const std::string v = argv[++i];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = std::atoi(v.c_str());
    else if (k == "--path") o.path = v;
    else if (k == "--connections") o.connections = std::atoi(v.c_str());
    else if (k == "--bodies") o.bodies = v;
    else if (k == "--index") o.index = v;
    else if (k == "--content-type") o.content_type = v;
    else if (k == "--rate") o.rate = std::atof(v.c_str());
    else if (k == "--latency-out") o.latency_out = v;
    else if (k == "--visible-db") o.visible_db = v;
    else if (k == "--visible-table") o.visible_table = v;
    else if (k == "--visible-column") o.visible_column = v;
    else if (k == "--poll-ms") o.poll_ms = std::atoi(v.c_str());
    else if (k == "--datagrams") o.datagrams = v;
    else if (k == "--duration") o.duration = std::atof(v.c_str());
    else if (k == "--limit") o.limit = std::strtoull(v.c_str(), nullptr, 10);
    else die("unknown option " + k);
  }
  if (o.connections < 1) die("--connections must be at least 1");
  if (o.rate < 0) die("--rate must not be negative");
  if (o.poll_ms < 1 || o.poll_ms > 1000) die("--poll-ms must be 1..1000");
  if (o.udp) {
    if (o.datagrams.empty()) die("--udp needs --datagrams FILE");
    return run_udp(o);
  }
  if (o.path.empty() || o.bodies.empty()) {
    die("usage: sluice-loadgen --port P --path /v1/write/T --connections C --bodies DIR [--index F] [--rate R] ...");
  }
  const bool poll_visibility = !o.visible_db.empty();
  if (poll_visibility && (o.visible_table.empty() || o.visible_column.empty() || o.index.empty())) {
    die("--visible-db needs --visible-table, --visible-column and --index");
  }
  if (poll_visibility && o.rate <= 0) {
    die("--visible-db needs --rate (visibility is measured from each body's due time)");
  }

  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(o.bodies)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::string> requests;
  std::vector<uint64_t> body_rows;
  std::vector<std::string> body_time;
  for (const auto& f : files) {
    const std::string body = read_file(f);
    requests.push_back("POST " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\nContent-Type: " + o.content_type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    body_rows.push_back(static_cast<uint64_t>(std::count(body.begin(), body.end(), '\n')));
  }
  if (!o.index.empty()) {  // number \t rows \t timestamp, one line per body in file order
    std::ifstream in(o.index);
    if (!in) die("cannot read " + o.index);
    std::string no, ts;
    uint64_t rows = 0;
    size_t i = 0;
    while (in >> no >> rows >> ts) {
      if (i < body_rows.size()) body_rows[i] = rows;
      body_time.push_back(ts);
      ++i;
    }
    if (i != requests.size()) die(o.index + " lists " + std::to_string(i) + " bodies, " + o.bodies + " has " +
                                  std::to_string(requests.size()));
  }
  const size_t bodies = requests.size();
  if (bodies == 0) die(o.bodies + " holds no bodies");
  if (o.duration > 0 && (o.rate <= 0 || poll_visibility)) die("--duration needs --rate and no --visible-db");
  const size_t n = o.duration > 0 ? static_cast<size_t>(o.rate * o.duration) : bodies;  // requests to send

  std::vector<int64_t> ack_us(n, -1), vis_us(n, -1);
  std::vector<std::atomic<bool>> sent(n);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> accepted{0}, failures{0}, late{0}, retries{0};
  std::atomic<bool> senders_done{false};
  const auto t0 = Clock::now() + std::chrono::milliseconds(poll_visibility ? 200 : 0);
  const double cpu0 = own_cpu_seconds();  // the bodies are read: what follows is the sending
  auto due = [&](size_t i) {
    return t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(static_cast<double>(i) / o.rate));
  };

  std::thread poller;
  std::atomic<uint64_t> polls{0};
  std::atomic<uint64_t> poll_micros{0};  // time spent in the polls (their cost to the database)
  std::string poll_error;
  if (poll_visibility) {
    poller = std::thread([&] {
      PGconn* conn = PQconnectdb(o.visible_db.c_str());
      if (PQstatus(conn) != CONNECTION_OK) {
        poll_error = PQerrorMessage(conn);
        PQfinish(conn);
        return;
      }
      // One index probe per asked time that stops at the first row (a body's rows share one time),
      // instead of reading all of a visible body's rows.
      const std::string sql = "SELECT to_char(x AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                              "FROM unnest($1::timestamptz[]) AS x WHERE EXISTS (SELECT 1 FROM " + o.visible_table +
                              " WHERE " + o.visible_column + " = x)";
      // Prepared once: the poll is parsed and planned once, not 500 times a second, so the observer
      // takes as little as it can from the PostgreSQL it observes (both share the 2 cores). The
      // plan must be an index lookup (every bench table has an index leading with its time column):
      // planned while the table is still empty, the generic plan can be a sequential scan, which
      // then costs more at every poll as the table grows (measured: ~12 ms per poll at 250,000
      // rows, taken from the database under test). enable_seqscan off rules that out.
      auto command_ok = [&](PGresult* r) {  // takes r; on failure keeps its message and closes conn
        const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) poll_error = PQresultErrorMessage(r);
        PQclear(r);
        if (!ok) PQfinish(conn);
        return ok;
      };
      if (!command_ok(PQexec(conn, "SET enable_seqscan = off")) ||
          !command_ok(PQprepare(conn, "sluice_loadgen_visible", sql.c_str(), 1, nullptr))) {
        return;
      }
      size_t first_unseen = 0;
      Clock::time_point quiet_since{};
      for (;;) {
        while (first_unseen < n && vis_us[first_unseen] >= 0) ++first_unseen;
        if (first_unseen == n) break;
        // Up to 512 bodies that were sent and are not seen yet.
        std::string array = "{";
        std::vector<size_t> asked;
        for (size_t i = first_unseen; i < n && asked.size() < 512; ++i) {
          if (!sent[i].load(std::memory_order_acquire)) {
            if (o.rate > 0) break;  // later ones are not due yet
            continue;
          }
          if (vis_us[i] >= 0) continue;
          if (!asked.empty()) array += ',';
          array += body_time[i];
          asked.push_back(i);
        }
        array += '}';
        const auto start = Clock::now();
        if (senders_done.load() && asked.empty()) break;
        if (!asked.empty()) {
          const char* params[1] = {array.c_str()};
          PGresult* r = PQexecPrepared(conn, "sluice_loadgen_visible", 1, params, nullptr, nullptr, 0);
          polls++;
          poll_micros += static_cast<uint64_t>(micros_since(start, Clock::now()));
          if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            poll_error = PQresultErrorMessage(r);
            PQclear(r);
            break;
          }
          for (int row = 0; row < PQntuples(r); ++row) {
            const std::string seen = PQgetvalue(r, row, 0);
            for (size_t i : asked) {
              if (body_time[i] == seen && vis_us[i] < 0) vis_us[i] = micros_since(t0, start);
            }
          }
          PQclear(r);
        }
        // After the senders finished, give stragglers 30 s before giving up on them.
        if (senders_done.load()) {
          if (quiet_since == Clock::time_point{}) quiet_since = Clock::now();
          if (Clock::now() - quiet_since > std::chrono::seconds(30)) break;
        }
        std::this_thread::sleep_until(start + std::chrono::milliseconds(o.poll_ms));
      }
      PQfinish(conn);
    });
  }

  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&] {
      int fd = connect_to(o);
      std::string buf, body;
      for (size_t i; (i = next.fetch_add(1)) < n;) {
        Clock::time_point due_at = t0;
        if (o.rate > 0) {
          due_at = due(i);
          if (Clock::now() > due_at + std::chrono::milliseconds(1)) late++;
          std::this_thread::sleep_until(due_at);
        } else {
          due_at = Clock::now();
        }
        sent[i].store(true, std::memory_order_release);
        int status = -1;
        for (;;) {  // 429 (queue full) and 503: back off and send the same body again, as a client must
          const std::string& request = requests[i % bodies];
          if (!write_all(fd, request.data(), request.size())) break;
          status = read_response(fd, buf, body);
          if (status != 429 && status != 503) break;
          retries++;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ack_us[i] = micros_since(due_at, Clock::now());
        if (status == 204) {
          accepted += body_rows[i % bodies];
          continue;
        }
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
  senders_done = true;
  const double send_secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (poller.joinable()) poller.join();

  std::printf("requests=%zu accepted_rows=%llu failures=%llu retries=%llu seconds=%.3f rows_per_s=%.0f cpu_s=%.3f setup_cpu_s=%.3f", n,
              static_cast<unsigned long long>(accepted.load()), static_cast<unsigned long long>(failures.load()),
              static_cast<unsigned long long>(retries.load()),
              send_secs, static_cast<double>(accepted.load()) / send_secs, own_cpu_seconds() - cpu0, cpu0);
  int rc = failures.load() == 0 ? 0 : 1;
  if (o.rate > 0) {
    std::vector<int64_t> acks(ack_us.begin(), ack_us.end());
    std::printf(" late_sends=%llu ack_p50_ms=%.3f ack_p99_ms=%.3f ack_p999_ms=%.3f ack_max_ms=%.3f",
                static_cast<unsigned long long>(late.load()), percentile_ms(acks, 0.5), percentile_ms(acks, 0.99),
                percentile_ms(acks, 0.999), percentile_ms(acks, 1.0));
  }
  if (poll_visibility) {
    std::vector<int64_t> vis;
    size_t unseen = 0;
    for (size_t i = 0; i < n; ++i) {
      if (vis_us[i] < 0) {
        ++unseen;
        continue;
      }
      const int64_t due_rel = o.rate > 0 ? micros_since(t0, due(i)) : 0;
      vis.push_back(std::max<int64_t>(0, vis_us[i] - due_rel));
    }
    const uint64_t poll_count = polls.load();
    std::printf(" polls=%llu poll_avg_ms=%.3f unseen_bodies=%zu vis_p50_ms=%.3f vis_p99_ms=%.3f vis_p999_ms=%.3f vis_max_ms=%.3f",
                static_cast<unsigned long long>(poll_count),
                poll_count ? static_cast<double>(poll_micros.load()) / 1000.0 / static_cast<double>(poll_count) : 0.0,
                unseen, percentile_ms(vis, 0.5),
                percentile_ms(vis, 0.99), percentile_ms(vis, 0.999), percentile_ms(vis, 1.0));
    if (!poll_error.empty()) {
      std::fprintf(stderr, "sluice-loadgen: visibility poller: %s\n", poll_error.c_str());
      rc = 1;
    }
    if (unseen > 0) rc = 1;
  }
  std::printf("\n");
  if (!o.latency_out.empty()) {
    FILE* f = std::fopen(o.latency_out.c_str(), "w");
    if (!f) die("cannot write " + o.latency_out);
    for (size_t i = 0; i < n; ++i) {
      const int64_t due_rel = o.rate > 0 ? micros_since(t0, due(i)) : -1;
      std::fprintf(f, "%lld %lld %lld\n", static_cast<long long>(due_rel), static_cast<long long>(ack_us[i]),
                   static_cast<long long>(vis_us[i] < 0 ? -1 : vis_us[i] - std::max<int64_t>(0, due_rel)));
    }
    std::fclose(f);
  }
  return rc;
}
