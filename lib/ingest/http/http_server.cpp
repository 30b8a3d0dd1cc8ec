#include "ingest/http/http_server.h"

#include <sys/socket.h>

#include <array>
#include <cassert>
#include <charconv>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "ingest/http/auth.h"
#include "ingest/http/body_inflater.h"
#include "ingest/http/http_util.h"
#include "ingest/http/listen_address.h"

namespace sluice {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using ReusePort = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {
// A client IP address as IPv4-mapped IPv6, the key of the per-client connection count.
using ClientKey = std::array<unsigned char, 16>;
struct ClientKeyHash {
  std::size_t operator()(const ClientKey& k) const noexcept {
    return std::hash<std::string_view>()(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
  }
};
ClientKey client_key(const net::ip::address& address) {
  if (address.is_v4()) return net::ip::make_address_v6(net::ip::v4_mapped, address.to_v4()).to_bytes();
  return address.to_v6().to_bytes();
}
}  // namespace

struct HttpServer::State {
  Stats stats;
  std::atomic<std::size_t> connections{0};
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> max_connections{0};
  std::atomic<std::uint64_t> limits_generation{1};
  mutable std::mutex limits_mutex;
  HttpLimits limits;  // guarded by limits_mutex
  // InfluxDB compatibility (set before start(), read-only afterwards).
  bool line_protocol = false;
  std::string ping_headers;  // "X-Influxdb-Version: …\r\nX-Influxdb-Build: OSS\r\n"
  std::string health_body;   // GET /health
  // TLS (set before start(), read-only afterwards); null: plain TCP.
  std::shared_ptr<net::ssl::context> ssl;
  std::shared_ptr<const AuthTable> auth;  // guarded by limits_mutex; versioned by limits_generation
  // Connections per client address, counted only while max_connections_per_client > 0.
  std::atomic<std::size_t> max_per_client{0};
  std::mutex clients_mutex;
  std::unordered_map<ClientKey, std::size_t, ClientKeyHash> clients;  // guarded by clients_mutex
};

namespace {

constexpr std::size_t kRetainBufferBytes = 1 << 20;  // larger per-session buffers are released
constexpr std::size_t kReadChunk = 16 << 10;
constexpr std::uint64_t kDiscardBodyBytes = 64 << 10;  // rejected requests' bodies read and dropped
constexpr auto kLingerTimeout = std::chrono::milliseconds(1000);
constexpr auto kRejectTimeout = std::chrono::milliseconds(500);
constexpr auto kAcceptRetry = std::chrono::milliseconds(50);
constexpr std::string_view kWritePath = "/v1/write";
constexpr std::string_view kHealthPath = "/v1/health";
constexpr std::string_view kInfluxV1WritePath = "/write";
constexpr std::string_view kInfluxV2WritePath = "/api/v2/write";
constexpr std::string_view kPingPath = "/ping";
constexpr std::string_view kInfluxHealthPath = "/health";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kRejectResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Server: sluice\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 32\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "\r\n"
    "{\"error\":\"too many connections\"}";
constexpr std::string_view kClientRejectResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Server: sluice\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 49\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "\r\n"
    "{\"error\":\"too many connections from this client\"}";
constexpr std::string_view kWwwAuthenticate = "WWW-Authenticate: Bearer realm=\"sluice\"\r\n";

void bump(std::atomic<std::uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

void append_number(std::string& out, std::uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

bool iequals(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

// The intrusive list of a listener's sessions, whatever their stream type.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close_if_idle() = 0;
  SessionBase* next() const { return next_; }

  SessionBase* prev_ = nullptr;  // touched on the listener's thread only
  SessionBase* next_ = nullptr;
};

// One per IO thread: the acceptor on that thread's io_context and the sessions it created.
struct Listener : std::enable_shared_from_this<Listener> {
  Listener(net::io_context& io_context, WriteHandler* write_handler, WriteHandler* line_write_handler,
           std::shared_ptr<HttpServer::State> shared)
      : io(io_context), acceptor(io_context), retry_timer(io_context), handler(write_handler),
        line_handler(line_write_handler), state(std::move(shared)) {}

  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void stop();
  void reject(tcp::socket socket, std::string_view response);

  net::io_context& io;
  tcp::acceptor acceptor;
  net::steady_timer retry_timer;
  WriteHandler* handler;
  WriteHandler* line_handler;  // null: no InfluxDB endpoints
  std::shared_ptr<HttpServer::State> state;
  SessionBase* sessions = nullptr;  // intrusive list of live sessions; touched on this thread only
  bool stopped = false;
};

// Answers a connection over the cap with 503 and closes it gracefully.
class Rejecter : public std::enable_shared_from_this<Rejecter> {
 public:
  Rejecter(tcp::socket&& socket, std::string_view response)
      : stream_(std::move(socket)), response_(response) {}

  void start() {
    stream_.expires_after(kRejectTimeout);
    net::async_write(stream_, net::buffer(response_.data(), response_.size()),
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return;
                       beast::error_code ignored;
                       self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                       self->drain();
                     });
  }

 private:
  void drain() {
    stream_.async_read_some(net::buffer(scratch_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (!ec) self->drain();
                            });
  }

  beast::tcp_stream stream_;
  std::string_view response_;  // a constant
  std::array<char, 1024> scratch_;
};

// Stream: beast::tcp_stream (plain) or beast::ssl_stream<beast::tcp_stream> (TLS).
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  // counted_client: the connection is counted in State::clients under `key`.
  template <class... StreamArgs>
  Session(std::shared_ptr<Listener> listener, const ClientKey& key, bool counted_client, tcp::socket&& socket,
          StreamArgs&... stream_args)
      : stream_(std::move(socket), stream_args...), listener_(std::move(listener)), state_(*listener_->state),
        client_key_(key), counted_client_(counted_client) {
    next_ = listener_->sessions;
    if (next_) next_->prev_ = this;
    listener_->sessions = this;
  }

  ~Session() {
    if (prev_) prev_->next_ = next_;
    else listener_->sessions = next_;
    if (next_) next_->prev_ = prev_;
    state_.connections.fetch_sub(1, std::memory_order_relaxed);
    if (counted_client_) {
      std::lock_guard lock(state_.clients_mutex);
      auto it = state_.clients.find(client_key_);
      if (it != state_.clients.end() && --it->second == 0) state_.clients.erase(it);
    }
  }

  void start() {
    beast::error_code ec;
    auto peer = tcp().socket().remote_endpoint(ec);
    if (!ec) {
      client_ = peer.address().to_string();
      client_ += ':';
      append_number(client_, peer.port());
    } else {
      client_ = "unknown";
    }
    tcp().socket().set_option(tcp::no_delay(true), ec);
    refresh_limits();
    header_deadline_ = Clock::now() + limits_.header_timeout;
    if constexpr (kTls) {
      // The handshake (with the client certificate check) must finish within header_timeout.
      phase_ = Phase::idle;
      tcp().expires_at(header_deadline_);
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  bump(self->state_.stats.tls_handshake_failures);
                                  self->close();
                                  return;
                                }
                                self->next_request();
                              });
    } else {
      next_request();
    }
  }

  // Called by Listener::stop(): a connection waiting for its next request is closed now.
  void close_if_idle() override {
    if (phase_ == Phase::idle) close();
  }

 private:
  enum class Phase { idle, header, body, handling, writing, closing, closed };
  enum class After { keep_alive, close, linger };

  void refresh_limits() {
    auto generation = state_.limits_generation.load(std::memory_order_acquire);
    if (generation == limits_generation_) return;
    std::lock_guard lock(state_.limits_mutex);
    limits_ = state_.limits;
    auth_ = state_.auth;
    last_token_ = nullptr;
    limits_generation_ = state_.limits_generation.load(std::memory_order_relaxed);
  }

  static void release_if_large(std::string& s) {
    if (s.capacity() > kRetainBufferBytes) std::string().swap(s);
    else s.clear();
  }

  void next_request() {
    if (state_.stopping.load(std::memory_order_relaxed)) {
      close();
      return;
    }
    refresh_limits();
    release_if_large(body_);
    release_if_large(inflated_);
    if (buffer_.size() == 0 && buffer_.capacity() > kRetainBufferBytes) buffer_.shrink_to_fit();
    parser_.reset();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits_.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(static_cast<std::uint64_t>(limits_.max_body_bytes));
    parser_->get().body() = std::move(body_);  // empty, keeps its capacity
    keep_alive_ = false;
    expect_continue_ = false;
    version_ = 11;

    if (buffer_.size() > 0) {  // a pipelined request is already buffered
      header_deadline_ = Clock::now() + limits_.header_timeout;
      read_header();
      return;
    }
    phase_ = Phase::idle;
    if (first_request_) tcp().expires_at(header_deadline_);
    else tcp().expires_after(limits_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->on_idle_read(ec, n);
                            });
  }

  void on_idle_read(beast::error_code ec, std::size_t n) {
    if (ec) {
      if (ec == beast::error::timeout && first_request_) bump(state_.stats.timeouts);
      close();
      return;
    }
    buffer_.commit(n);
    if (!first_request_) header_deadline_ = Clock::now() + limits_.header_timeout;
    read_header();
  }

  void read_header() {
    phase_ = Phase::header;
    tcp().expires_at(header_deadline_);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_header(ec);
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    first_request_ = false;
    route();
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      bump(state_.stats.body_too_large);
      std::string message = "body exceeds ";
      append_number(message, limits_.max_body_bytes);
      message += " bytes";
      respond(413, json_error(message), 0, After::linger);
    } else if (ec == http::error::header_limit) {
      bump(state_.stats.bad_requests);
      std::string message = "request header exceeds ";
      append_number(message, limits_.max_header_bytes);
      message += " bytes";
      respond(431, json_error(message), 0, After::linger);
    } else if (ec == beast::error::timeout) {
      bump(state_.stats.timeouts);
      close();
    } else if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
      close();
    } else if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      bump(state_.stats.bad_requests);
      respond(400, json_error("bad request: " + ec.message()), 0, After::linger);
    } else {
      close();
    }
  }

  // After the header: answers what can be answered without the body, else reads the body.
  void route() {
    refresh_limits();  // tokens or limits replaced while this connection waited (live reload)
    auto& request = parser_->get();
    keep_alive_ = request.keep_alive();
    version_ = request.version();
    expect_continue_ = version_ >= 11 && iequals(request[http::field::expect], "100-continue");
    auto [path, query] = split_target(request.target());

    if (path == kHealthPath) {
      if (request.method() != http::verb::get) {
        early_respond(405, json_error("method not allowed"), "Allow: GET\r\n");
      } else {
        early_respond(200, "{\"status\":\"ok\"}");
      }
      return;
    }
    if (state_.line_protocol && listener_->line_handler) {
      if (path == kPingPath) {
        if (request.method() != http::verb::get && request.method() != http::verb::head) {
          early_respond(405, json_error("method not allowed"), "Allow: GET, HEAD\r\n");
        } else {
          early_respond(204, std::string(), state_.ping_headers);
        }
        return;
      }
      if (path == kInfluxHealthPath) {
        if (request.method() != http::verb::get) {
          early_respond(405, json_error("method not allowed"), "Allow: GET\r\n");
        } else {
          early_respond(200, state_.health_body);
        }
        return;
      }
      if (path == kInfluxV1WritePath || path == kInfluxV2WritePath) {
        if (request.method() != http::verb::post) {
          early_respond(405, json_error("method not allowed"), "Allow: POST\r\n");
          return;
        }
        api_ = path == kInfluxV1WritePath ? WriteApi::influx_v1 : WriteApi::influx_v2;
        table_.clear();
        if (!authorize(query)) return;
        query_param(query, "precision", precision_);
        query_param(query, "db", db_);
        query_param(query, "rp", rp_);
        query_param(query, "org", org_);
        query_param(query, "bucket", bucket_);
        start_body();
        return;
      }
    }
    if (path == kWritePath ||
        (path.size() > kWritePath.size() && path.starts_with(kWritePath) &&
         path[kWritePath.size()] == '/')) {
      if (request.method() != http::verb::post) {
        early_respond(405, json_error("method not allowed"), "Allow: POST\r\n");
        return;
      }
      std::string_view raw_table =
          path.size() > kWritePath.size() ? path.substr(kWritePath.size() + 1) : std::string_view{};
      if (raw_table.empty() || raw_table.find('/') != std::string_view::npos) {
        early_respond(404, json_error("not found"));
        return;
      }
      if (!percent_decode(raw_table, table_) || table_.empty()) {
        bump(state_.stats.bad_requests);
        early_respond(400, json_error("invalid percent-encoding in table name"));
        return;
      }
      query_param(query, "precision", precision_);  // absent or malformed: empty
      api_ = WriteApi::json;
      if (!authorize(query)) return;
      start_body();
      return;
    }
    early_respond(404, json_error("not found"));
  }

  // With tokens configured: finds the request's token, checks its scope (for /v1/write/{table}; line
  // protocol handlers check each line against scope_) and its request rate. False when it answered.
  bool authorize(std::string_view query) {
    scope_ = nullptr;
    if (!auth_ || !auth_->enabled()) return true;
    const bool influx = api_ != WriteApi::json;
    auto& request = parser_->get();
    const auto status = extract_credential(request[http::field::authorization], query,
                                           api_ == WriteApi::influx_v1, credential_);
    if (status != CredentialStatus::found) {
      bump(state_.stats.auth_missing);
      early_respond(401,
                    auth_error(influx, "unauthorized", status == CredentialStatus::malformed
                                   ? "malformed Authorization header (use Bearer, Token or Basic)"
                                   : "a token is required (Authorization: Bearer <token>)"),
                    kWwwAuthenticate);
      return false;
    }
    // A keep-alive connection usually repeats its credential: hash it once per connection.
    const AuthToken* token = last_token_ != nullptr && credential_ == last_credential_ ? last_token_ : nullptr;
    if (token == nullptr) {
      token = auth_->find(credential_);
      last_token_ = token;
      last_credential_.swap(credential_);
    }
    if (token == nullptr) {
      bump(state_.stats.auth_invalid);
      early_respond(401, auth_error(influx, "unauthorized", "invalid token"), kWwwAuthenticate);
      return false;
    }
    if (!influx && !token->scope.allows(table_)) {
      bump(state_.stats.auth_forbidden);
      std::string message = "this token may not write table \"";
      append_json_escaped(message, table_);
      message += '"';
      early_respond(403, json_error(message));
      return false;
    }
    unsigned retry_after = 0;
    if (token->bucket && !token->bucket->try_take(Clock::now(), retry_after)) {
      bump(state_.stats.rate_limited);
      retry_header_ = "Retry-After: ";
      append_number(retry_header_, retry_after);
      retry_header_ += "\r\n";
      early_respond(429, auth_error(influx, "too many requests", "request rate limit of this token exceeded"),
                    retry_header_);
      return false;
    }
    scope_ = token->scope.all ? nullptr : &token->scope;
    return true;
  }

  static std::string auth_error(bool influx, std::string_view code, std::string_view message) {
    if (!influx) return json_error(message);
    std::string out = "{\"code\":\"";
    append_json_escaped(out, code);
    out += "\",\"message\":\"";
    append_json_escaped(out, message);
    out += "\"}";
    return out;
  }

  // A write request was routed: checks its Content-Encoding, then reads the body and dispatches.
  void start_body() {
    auto& request = parser_->get();
    {
      auto content_encoding = request[http::field::content_encoding];
      encoding_ = classify_content_encoding(content_encoding);
      if (encoding_ == ContentEncoding::unsupported) {
        bump(state_.stats.unsupported_encoding);
        early_respond(415,
                      json_error("unsupported Content-Encoding: " + std::string(content_encoding)));
        return;
      }
      if (parser_->is_done()) {
        dispatch();
      } else if (expect_continue_) {
        phase_ = Phase::body;
        tcp().expires_after(limits_.body_timeout);
        net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                         [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                           if (ec) self->close();
                           else self->read_body();
                         });
      } else {
        read_body();
      }
    }
  }

  // Answers a request the router rejected before its body was read. A small declared body is read
  // and discarded so the connection stays usable; otherwise the connection is closed (lingering)
  // after the response, as the rest of the request cannot be skipped cheaply.
  void early_respond(unsigned status, std::string body, std::string_view extra_headers = {}) {
    if (parser_->is_done()) {
      respond(status, std::move(body), 0, After::keep_alive, extra_headers);
      return;
    }
    auto declared = parser_->content_length();
    if (!declared || *declared > kDiscardBodyBytes || expect_continue_) {
      respond(status, std::move(body), 0, After::linger, extra_headers);
      return;
    }
    pending_status_ = status;
    pending_body_ = std::move(body);
    pending_headers_ = extra_headers;  // a literal, owned by State (outlives sessions) or retry_header_
    phase_ = Phase::body;
    tcp().expires_after(limits_.body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) {
                         self->on_read_error(ec);
                         return;
                       }
                       self->respond(self->pending_status_, std::move(self->pending_body_), 0,
                                     After::keep_alive, self->pending_headers_);
                     });
  }

  void read_body() {
    phase_ = Phase::body;
    tcp().expires_after(limits_.body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) self->on_read_error(ec);
                       else self->dispatch();
                     });
  }

  void dispatch() {
    body_ = std::move(parser_->get().body());
    std::string* payload = &body_;
    if (encoding_ == ContentEncoding::gzip || encoding_ == ContentEncoding::deflate) {
      const bool gzip = encoding_ == ContentEncoding::gzip;
      auto result = inflater_.inflate(body_, gzip, inflated_, limits_.max_body_bytes);
      if (result == BodyInflater::Result::too_large) {
        bump(state_.stats.body_too_large);
        std::string message = "body exceeds ";
        append_number(message, limits_.max_body_bytes);
        message += " bytes";
        respond(413, json_error(message), 0, After::close);
        return;
      }
      if (result == BodyInflater::Result::invalid) {
        bump(state_.stats.gzip_errors);
        respond(400,
                json_error(std::string(gzip ? "invalid gzip body: " : "invalid deflate body: ") +
                           inflater_.error()),
                0, After::keep_alive);
        return;
      }
      payload = &inflated_;
    }

    auto& request = parser_->get();
    WriteRequest write;
    write.target = request.target();
    write.api = api_;
    write.table = table_;
    write.content_type = request[http::field::content_type];
    write.precision = precision_;
    write.ack_mode = request["X-Sluice-Ack"];
    write.idempotency_key = request["Idempotency-Key"];
    write.client = client_;
    if (api_ != WriteApi::json) {
      write.db = db_;
      write.rp = rp_;
      write.org = org_;
      write.bucket = bucket_;
    }
    write.body = payload;
    write.scope = scope_;

    phase_ = Phase::handling;
    const std::uint64_t generation = ++generation_;
    try {
      WriteHandler* handler = api_ == WriteApi::json ? listener_->handler : listener_->line_handler;
      handler->handle(write, [self = this->shared_from_this(), generation](WriteResponse r) {
        self->on_done(generation, std::move(r));
      });
    } catch (...) {
      // Handlers must not throw; if one does, answer 500 rather than lose the IO thread.
      if (phase_ == Phase::handling && generation == generation_) {
        respond(500, json_error("internal error"), 0, After::close);
      }
    }
  }

  void on_done(std::uint64_t generation, WriteResponse response) {
    // Contract: done() runs on this session's IO thread (it is not re-posted here).
    assert(listener_->io.get_executor().running_in_this_thread());
    // A second call, or a call after the connection went away, is dropped.
    if (generation != generation_ || phase_ != Phase::handling) return;
    if (response.status == 403) bump(state_.stats.auth_forbidden);  // every line out of the token's scope
    respond(response.status, std::move(response.body), response.retry_after_s, After::keep_alive);
  }

  void respond(unsigned status, std::string body, unsigned retry_after_s, After after,
               std::string_view extra_headers = {}) {
    if (after == After::keep_alive &&
        (!keep_alive_ || state_.stopping.load(std::memory_order_relaxed))) {
      after = After::close;
    }
    after_ = after;
    switch (status / 100) {
      case 2: bump(state_.stats.requests_2xx); break;
      case 3: bump(state_.stats.requests_3xx); break;
      case 4: bump(state_.stats.requests_4xx); break;
      case 5: bump(state_.stats.requests_5xx); break;
      default: break;
    }
    head_.clear();
    head_ += "HTTP/1.1 ";
    append_number(head_, status);
    head_ += ' ';
    head_ += http::obsolete_reason(http::int_to_status(status));
    head_ += "\r\nServer: sluice\r\n";
    if (status != 204) {  // 204 No Content carries neither (RFC 9110 8.6)
      head_ += "Content-Type: application/json\r\nContent-Length: ";
      append_number(head_, body.size());
      head_ += "\r\n";
    } else {
      body.clear();
    }
    if (retry_after_s > 0) {
      head_ += "Retry-After: ";
      append_number(head_, retry_after_s);
      head_ += "\r\n";
    }
    head_ += extra_headers;
    if (after != After::keep_alive) head_ += "Connection: close\r\n";
    else if (version_ == 10) head_ += "Connection: keep-alive\r\n";
    head_ += "\r\n";
    response_body_ = std::move(body);

    phase_ = Phase::writing;
    tcp().expires_after(limits_.body_timeout);
    std::array<net::const_buffer, 2> buffers{net::buffer(head_), net::buffer(response_body_)};
    net::async_write(stream_, buffers,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_write(ec);
                     });
  }

  void on_write(beast::error_code ec) {
    if (ec) {
      close();
      return;
    }
    switch (after_) {
      case After::keep_alive:
        next_request();
        return;
      case After::close:
        if constexpr (kTls) {
          tls_shutdown();
          return;
        }
        if (buffer_.size() == 0) {
          beast::error_code ignored;
          tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
          close();
          return;
        }
        [[fallthrough]];
      case After::linger:
        linger_close();
        return;
    }
  }

  // Half-closes and reads (and discards) what the client still sends for a short while, so
  // closing with unread data does not reset the connection before the client read the response.
  void linger_close() {
    if constexpr (kTls) {
      tls_shutdown();
      return;
    }
    phase_ = Phase::closing;
    beast::error_code ec;
    tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      close();
      return;
    }
    tcp().expires_after(kLingerTimeout);
    drain();
  }

  void drain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) self->close();
                              else self->drain();
                            });
  }

  // Sends TLS close_notify and waits briefly for the client's, then closes.
  void tls_shutdown() {
    phase_ = Phase::closing;
    tcp().expires_after(kLingerTimeout);
    stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close(); });
  }

  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  void close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    tcp().close();
  }

  Stream stream_;
  std::shared_ptr<Listener> listener_;
  HttpServer::State& state_;
  ClientKey client_key_;
  bool counted_client_;
  std::shared_ptr<const AuthTable> auth_;  // refreshed with limits_
  const AuthToken* last_token_ = nullptr;  // the token last_credential_ matched (in auth_)
  std::string credential_, last_credential_;
  const TableScope* scope_ = nullptr;      // of the current request; null: any table
  std::string retry_header_;

  HttpLimits limits_;
  std::uint64_t limits_generation_ = 0;
  Phase phase_ = Phase::idle;
  After after_ = After::keep_alive;
  bool first_request_ = true;
  bool keep_alive_ = false;
  bool expect_continue_ = false;
  unsigned version_ = 11;
  unsigned pending_status_ = 0;
  std::string pending_body_;
  std::string_view pending_headers_;
  std::uint64_t generation_ = 0;
  Clock::time_point header_deadline_{};
  ContentEncoding encoding_ = ContentEncoding::identity;

  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string body_;
  std::string inflated_;
  BodyInflater inflater_;
  WriteApi api_ = WriteApi::json;
  std::string table_;
  std::string precision_;
  std::string db_, rp_, org_, bucket_;
  std::string client_;
  std::string head_;
  std::string response_body_;
};

void Listener::do_accept() {
  acceptor.async_accept([self = this->shared_from_this()](beast::error_code ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void Listener::on_accept(beast::error_code ec, tcp::socket socket) {
  if (stopped || ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    if (ec == net::error::connection_aborted) {
      do_accept();
      return;
    }
    // Typically EMFILE/ENFILE: back off instead of spinning on the ready listening socket.
    bump(state->stats.accept_errors);
    retry_timer.expires_after(kAcceptRetry);
    retry_timer.async_wait([self = this->shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec && !self->stopped) self->do_accept();
    });
    return;
  }
  std::size_t before = state->connections.fetch_add(1, std::memory_order_relaxed);
  if (before >= state->max_connections.load(std::memory_order_relaxed)) {
    state->connections.fetch_sub(1, std::memory_order_relaxed);
    bump(state->stats.rejected_connections);
    reject(std::move(socket), kRejectResponse);
    do_accept();
    return;
  }
  ClientKey key{};
  bool counted = false;
  if (const std::size_t per_client = state->max_per_client.load(std::memory_order_relaxed); per_client > 0) {
    beast::error_code peer_ec;
    auto peer = socket.remote_endpoint(peer_ec);
    if (!peer_ec) {
      key = client_key(peer.address());
      std::lock_guard lock(state->clients_mutex);
      auto& count = state->clients[key];
      if (count < per_client) {
        ++count;
        counted = true;
      } else if (count == 0) {
        state->clients.erase(key);
      }
    }
    if (!counted && !peer_ec) {
      state->connections.fetch_sub(1, std::memory_order_relaxed);
      bump(state->stats.client_rejected_connections);
      reject(std::move(socket), kClientRejectResponse);
      do_accept();
      return;
    }
  }
  bump(state->stats.accepted_connections);
  if (state->ssl) {
    std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(this->shared_from_this(), key, counted,
                                                                     std::move(socket), *state->ssl)
        ->start();
  } else {
    std::make_shared<Session<beast::tcp_stream>>(this->shared_from_this(), key, counted, std::move(socket))->start();
  }
  do_accept();
}

// Answers 503 on plain TCP; a TLS listener cannot answer before a handshake, so it just closes.
void Listener::reject(tcp::socket socket, std::string_view response) {
  if (state->ssl) {
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  std::make_shared<Rejecter>(std::move(socket), response)->start();
}

void Listener::stop() {
  stopped = true;
  beast::error_code ec;
  acceptor.close(ec);
  retry_timer.cancel();
  for (SessionBase* s = sessions; s != nullptr; s = s->next()) s->close_if_idle();
}

}  // namespace

HttpServer::HttpServer(std::vector<net::io_context*> io_contexts, std::string listen_address,
                       HttpLimits limits, std::vector<WriteHandler*> handlers)
    : io_contexts_(std::move(io_contexts)), handlers_(std::move(handlers)),
      listen_address_(std::move(listen_address)), state_(std::make_shared<State>()) {
  if (io_contexts_.empty() || io_contexts_.size() != handlers_.size()) {
    throw std::invalid_argument("HttpServer: need one handler per io_context (got " +
                                std::to_string(io_contexts_.size()) + " io_contexts, " +
                                std::to_string(handlers_.size()) + " handlers)");
  }
  set_limits(limits);
}

void HttpServer::enable_line_protocol(std::vector<WriteHandler*> line_handlers, std::string version) {
  if (line_handlers.size() != io_contexts_.size()) {
    throw std::invalid_argument("HttpServer: need one line protocol handler per io_context (got " +
                                std::to_string(line_handlers.size()) + " for " +
                                std::to_string(io_contexts_.size()) + " io_contexts)");
  }
  line_handlers_ = std::move(line_handlers);
  state_->line_protocol = true;
  state_->ping_headers = "X-Influxdb-Version: " + version + "\r\nX-Influxdb-Build: OSS\r\n";
  state_->health_body = "{\"name\":\"sluice\",\"message\":\"ready for queries and writes\",\"status\":\"pass\","
                        "\"checks\":[],\"version\":\"" + version + "\"}";
}

HttpServer::~HttpServer() {
  if (!listeners_.empty()) stop_accepting();
}

void HttpServer::start() {
  auto parsed = parse_listen_address(listen_address_);
  tcp::endpoint endpoint(resolve_listen_host(parsed.host), parsed.port);
  if (endpoint.port() != 0) {
    // SO_REUSEPORT would let a second sluiced bind the same port silently and take half the
    // connections; a probe bind without it fails if anyone holds the address already.
    tcp::acceptor probe(*io_contexts_[0]);
    beast::error_code ec;
    probe.open(endpoint.protocol(), ec);
    if (!ec) probe.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(endpoint, ec);
    if (ec) {
      throw std::runtime_error("http: cannot bind " + listen_address_ + ": " + ec.message() +
                               " (is another process, or another sluiced, listening there?)");
    }
  }
  std::vector<std::shared_ptr<Listener>> created;
  for (std::size_t i = 0; i < io_contexts_.size(); ++i) {
    auto listener = std::make_shared<Listener>(
        *io_contexts_[i], handlers_[i], line_handlers_.empty() ? nullptr : line_handlers_[i], state_);
    auto& acceptor = listener->acceptor;
    beast::error_code ec;
    auto fail = [&](const char* what) {
      return std::runtime_error("http: cannot " + std::string(what) + " " + listen_address_ + ": " +
                                ec.message());
    };
    acceptor.open(endpoint.protocol(), ec);
    if (ec) throw fail("open a socket for");
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (ec) throw fail("set SO_REUSEADDR on");
    acceptor.set_option(ReusePort(true), ec);
    if (ec) throw fail("set SO_REUSEPORT on");
    acceptor.bind(endpoint, ec);
    if (ec) throw fail("bind");
    acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw fail("listen on");
    if (i == 0) {
      endpoint.port(acceptor.local_endpoint(ec).port());
      if (ec) throw fail("read the local port of");
      port_ = endpoint.port();
    }
    created.push_back(std::move(listener));
  }
  for (auto& listener : created) {
    net::post(listener->io, [listener] { listener->do_accept(); });
    listeners_.push_back(listener);
  }
}

void HttpServer::stop_accepting() {
  state_->stopping.store(true, std::memory_order_relaxed);
  for (auto& any : listeners_) {
    auto listener = std::static_pointer_cast<Listener>(any);
    net::post(listener->io, [listener] { listener->stop(); });
  }
}

void HttpServer::set_tls(const TlsConfig& tls) {
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                   net::ssl::context::single_dh_use);
  beast::error_code ec;
  auto fail = [&](const std::string& what, const std::string& file) {
    return std::runtime_error("http.tls: cannot load " + what + " \"" + file + "\": " + ec.message());
  };
  ctx->use_certificate_chain_file(tls.cert_file, ec);
  if (ec) throw fail("the certificate chain (cert_file)", tls.cert_file);
  ctx->use_private_key_file(tls.key_file, net::ssl::context::pem, ec);
  if (ec) throw fail("the private key (key_file)", tls.key_file);
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    throw std::runtime_error("http.tls: the private key \"" + tls.key_file + "\" does not match the certificate \"" +
                             tls.cert_file + "\"");
  }
  if (!tls.client_ca_file.empty()) {
    ctx->load_verify_file(tls.client_ca_file, ec);
    if (ec) throw fail("the client CAs (client_ca_file)", tls.client_ca_file);
    // Sent to clients as the acceptable issuers of their certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    }
    auto mode = net::ssl::verify_peer;
    if (tls.require_client_cert) mode |= net::ssl::verify_fail_if_no_peer_cert;
    ctx->set_verify_mode(mode, ec);
    if (ec) throw fail("the client CAs (client_ca_file)", tls.client_ca_file);
  }
  state_->ssl = std::move(ctx);
}

bool HttpServer::tls() const { return state_->ssl != nullptr; }

void HttpServer::set_auth(std::shared_ptr<const AuthTable> auth) {
  std::lock_guard lock(state_->limits_mutex);
  state_->auth = std::move(auth);
  state_->limits_generation.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const AuthTable> HttpServer::auth() const {
  std::lock_guard lock(state_->limits_mutex);
  return state_->auth;
}

void HttpServer::set_limits(HttpLimits limits) {
  std::lock_guard lock(state_->limits_mutex);
  state_->limits = limits;
  state_->max_connections.store(limits.max_connections, std::memory_order_relaxed);
  state_->max_per_client.store(limits.max_connections_per_client, std::memory_order_relaxed);
  state_->limits_generation.fetch_add(1, std::memory_order_release);
}

HttpLimits HttpServer::limits() const {
  std::lock_guard lock(state_->limits_mutex);
  return state_->limits;
}

std::size_t HttpServer::connections() const {
  return state_->connections.load(std::memory_order_relaxed);
}

const HttpServer::Stats& HttpServer::stats() const { return state_->stats; }

}  // namespace sluice
