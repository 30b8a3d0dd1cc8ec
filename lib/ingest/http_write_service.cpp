#include "ingest/http_write_service.h"

#include "ingest/commit_answer.h"

#include <atomic>
#include <memory>


namespace sluice {

bool parse_ack_mode(std::string_view text, AckMode& out) {
  if (text.empty() || text == "committed") {
    out = AckMode::committed;
    return true;
  }
  if (text == "accepted") {
    out = AckMode::accepted;
    return true;
  }
  if (text == "spooled") {
    out = AckMode::spooled;
    return true;
  }
  return false;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string verdict_json(uint64_t accepted, uint64_t rejected, const std::vector<RowError>& errors,
                         std::string_view error) {
  std::string out = "{\"accepted\":" + std::to_string(accepted) + ",\"rejected\":" + std::to_string(rejected);
  if (!error.empty()) out += ",\"error\":\"" + json_escape(error) + "\"";
  out += ",\"errors\":[";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i) out += ',';
    out += "{\"row\":" + std::to_string(errors[i].row) + ",\"column\":\"" + json_escape(errors[i].column) +
           "\",\"message\":\"" + json_escape(errors[i].message) + "\"}";
  }
  out += "]}";
  return out;
}

namespace {

WriteResponse error_response(unsigned status, std::string_view message, unsigned retry_after = 0) {
  WriteResponse r;
  r.status = status;
  r.body = "{\"error\":\"" + json_escape(message) + "\"}";
  r.retry_after_s = retry_after;
  return r;
}

}  // namespace

HttpWriteService::HttpWriteService(IngestContext& context, const HttpConfig& config)
    : ctx_(context),
      max_rows_(config.max_rows_per_request),
      ack_timeout_(config.ack_timeout_ms) {
  parse_ack_mode(config.ack, default_ack_);
  if (!parse_epoch_precision(config.default_precision, default_precision_)) default_precision_ = EpochPrecision::s;
}

void HttpWriteService::apply_live_settings(const HttpConfig& config) {
  max_rows_ = config.max_rows_per_request;
  ack_timeout_ = std::chrono::milliseconds(config.ack_timeout_ms);
  if (!parse_epoch_precision(config.default_precision, default_precision_)) default_precision_ = EpochPrecision::s;
}

void HttpWriteService::handle(const WriteRequest& request, std::function<void(WriteResponse)> done) {
  handle_round(request, std::move(done), 0);
}

void HttpWriteService::handle_round(const WriteRequest& request, std::function<void(WriteResponse)> done, int round) {
  if (ctx_.closing()) {
    done(error_response(503, "sluice is shutting down", 1));
    return;
  }
  const TableSchema* table = ctx_.catalog().find(request.table);
  if (!table) {
    ctx_.counters().http_unknown_table.add();
    done(error_response(404, "unknown table \"" + std::string(request.table) +
                                 "\" (sluice writes only to the tables listed in its config)"));
    return;
  }
  EpochPrecision precision = default_precision_;
  if (!request.precision.empty() && !parse_epoch_precision(request.precision, precision)) {
    done(error_response(400, "invalid precision \"" + std::string(request.precision) + "\" (use s, ms, us or ns)"));
    return;
  }
  AckMode ack_mode = default_ack_;
  if (!request.ack_mode.empty() && !parse_ack_mode(request.ack_mode, ack_mode)) {
    done(error_response(400, "invalid X-Sluice-Ack \"" + std::string(request.ack_mode) +
                                 "\" (use committed, spooled or accepted)"));
    return;
  }
  if (ack_mode == AckMode::spooled && !ctx_.spool()) {
    done(error_response(400, "X-Sluice-Ack spooled needs the disk spool (spool.enabled is false)"));
    return;
  }
  std::shared_ptr<const std::string> idempotency_key;
  if (round == 0) {
    std::string error;
    if (const unsigned status = ctx_.begin_idempotent(request.idempotency_key, idempotency_key, done, error)) {
      done(error_response(status, error, status == 409 ? 1 : 0));
      return;
    }
  } else if (!request.idempotency_key.empty()) {
    // Parsed again after a resolver wait: the first round entered the gate and `done` leaves it.
    idempotency_key = std::make_shared<const std::string>(request.idempotency_key);
  }
  const JsonShape shape = request.content_type.find("ndjson") != std::string_view::npos ||
                                  request.content_type.find("jsonlines") != std::string_view::npos
                              ? JsonShape::ndjson
                              : JsonShape::automatic;

  std::string& body = *request.body;
  reserve_json_padding(body);

  RowEncoder& encoder = ctx_.encoder(table->id);
  encoder.set_precision(precision);
  JsonParseResult& result = ctx_.scratch_result();
  ctx_.clear_misses();
  ctx_.json_parser().parse(std::string_view(body.data(), body.size()), body.capacity(), shape, encoder, table->id,
                           max_rows_, result);

  if (!result.syntax_ok) {
    ctx_.counters().http_bad_body.add();
    WriteResponse r;
    r.status = 400;
    r.body = "{\"error\":\"body is not valid JSON: " + json_escape(result.syntax_error) +
             "\",\"offset\":" + std::to_string(result.error_offset) + "}";
    done(std::move(r));
    return;
  }
  // Resolver keys not cached yet: the rows wait (other requests of this thread go on), then the body
  // is parsed again with the answers in the cache.
  if (ctx_.resolvers() && ctx_.resolvers()->has_misses()) {
    result.blocks.clear();
    if (round + 1 >= kMaxResolveRounds) {
      ctx_.clear_misses();
      done(error_response(503, "resolver keys could not be settled, retry later", 1));
      return;
    }
    auto owned = std::make_shared<OwnedWriteRequest>(request);
    ctx_.resolve_misses([this, owned, done = std::move(done), round](const std::string& unavailable) mutable {
      if (!unavailable.empty()) {
        done(error_response(503, unavailable + " (retry later)", 1));
        return;
      }
      handle_round(owned->request, std::move(done), round + 1);
    });
    return;
  }
  if (!result.blocks.empty() && ctx_.cannot_store(body.size())) {
    result.blocks.clear();
    done(error_response(503, "the database is unreachable and the spool is full, retry later", 5));
    return;
  }
  if (!result.blocks.empty() && !ctx_.has_room_for(result.blocks.size())) {
    result.blocks.clear();
    const BackpressureAdvice a = ctx_.refuse_ring_full();
    done(a.status == 503 ? error_response(503, "the database is unavailable and the ingest queue is full, retry later",
                                          a.retry_after_s)
                         : error_response(429, "ingest queue is full, retry later", a.retry_after_s));
    return;
  }
  IngestContext::tag_idempotent(result.blocks, idempotency_key);

  const unsigned verdict_status = result.rows_rejected == 0 ? 200 : 400;
  if (!result.blocks.empty() && ack_mode == AckMode::spooled) {
    WriteResponse ok;
    ok.status = verdict_status;
    ok.body = verdict_json(result.rows_accepted, result.rows_rejected, result.errors);
    auto spool_failed = [rejected = result.rows_rejected] {
      WriteResponse r;
      r.status = 503;
      r.retry_after_s = 5;
      r.body = verdict_json(0, rejected, {}, "the spool could not write the rows (disk error); they may still be committed");
      return r;
    };
    if (!spool_and_answer(ctx_, result.blocks, std::move(ok), spool_failed, done)) {
      result.blocks.clear();
      WriteResponse r = error_response(503, "the spool is full, retry later", 5);
      done(std::move(r));
      return;
    }
    ctx_.count(table->id, body.size(), result);
    return;
  }
  ctx_.count(table->id, body.size(), result);

  if (result.blocks.empty() || ack_mode == AckMode::accepted) {
    WriteResponse r;
    r.status = verdict_status;
    r.body = verdict_json(result.rows_accepted, result.rows_rejected, result.errors);
    ctx_.push_all(result.blocks);
    done(std::move(r));
    return;
  }

  const uint64_t accepted = result.rows_accepted;
  const uint64_t rejected = result.rows_rejected;
  auto errors = std::make_shared<std::vector<RowError>>(std::move(result.errors));
  result.errors.clear();
  push_and_answer(
      ctx_, result.blocks, ack_timeout_,
      [=](const AckResult& a) {
        WriteResponse r;
        const uint64_t not_stored = accepted + rejected - a.rows_committed;
        switch (a.outcome) {
          case AckOutcome::committed:
            r.status = verdict_status;
            r.body = verdict_json(accepted, rejected, *errors);
            break;
          case AckOutcome::dead_lettered:
            // Rows refused one by one (constraints): the sender's data, not a fault to retry.
            // The others are committed.
            r.status = 400;
            r.body = verdict_json(a.rows_committed, not_stored, *errors, "the database refused rows: " + a.message);
            break;
          case AckOutcome::failed:
            r.status = 500;
            r.body = verdict_json(a.rows_committed, not_stored, *errors, "the database refused rows: " + a.message);
            break;
          case AckOutcome::shutdown:
            r.status = 503;
            r.retry_after_s = 1;
            r.body = verdict_json(a.rows_committed, rejected, *errors,
                                  "sluice stopped before the rows were committed: " + a.message);
            break;
        }
        return r;
      },
      [=] {
        WriteResponse r;
        r.status = 504;
        r.body = verdict_json(0, rejected, *errors,
                              "the rows were accepted but not committed in time; they may still be committed");
        return r;
      },
      std::move(done));
}

}  // namespace sluice
