#include "ingest/influx_write_service.h"

#include "ingest/commit_answer.h"

#include <memory>


#include "ingest/http_write_service.h"  // parse_ack_mode, json_escape

namespace sluice {

std::vector<MeasurementMapping> measurement_mappings(const std::vector<MeasurementConfig>& configs) {
  std::vector<MeasurementMapping> out;
  out.reserve(configs.size());
  for (const auto& c : configs) {
    MeasurementMapping m;
    m.measurement = c.measurement;
    m.table = c.table;
    for (const auto& [from, to] : c.tags) m.tags.push_back({from, to});
    for (const auto& [from, to] : c.fields) m.fields.push_back({from, to});
    m.extra_json_column = c.extra_json_column;
    m.unmapped = c.unmapped == "ignore" ? UnmappedPolicy::ignore : UnmappedPolicy::reject;
    m.measurement_column = c.measurement_column;
    out.push_back(std::move(m));
  }
  return out;
}

bool parse_influx_precision(WriteApi api, std::string_view text, EpochPrecision& out) {
  if (text.empty() || text == "ns") out = EpochPrecision::ns;
  else if (text == "us") out = EpochPrecision::us;
  else if (text == "ms") out = EpochPrecision::ms;
  else if (text == "s") out = EpochPrecision::s;
  else if (api == WriteApi::influx_v1 && text == "n") out = EpochPrecision::ns;
  else if (api == WriteApi::influx_v1 && text == "u") out = EpochPrecision::us;
  else return false;
  return true;
}

std::string influx_error_json(std::string_view code, std::string_view message) {
  return "{\"code\":\"" + json_escape(code) + "\",\"message\":\"" + json_escape(message) + "\"}";
}

std::string influx_partial_write_json(const LineParseResult& result, uint64_t written) {
  std::string out = "{\"code\":\"invalid\",\"message\":\"partial write: ";
  out += std::to_string(written);
  out += written == 1 ? " line written, " : " lines written, ";
  out += std::to_string(result.rows_rejected);
  out += result.rows_rejected == 1 ? " line rejected" : " lines rejected";
  if (!result.errors.empty()) out += "; first: " + json_escape(result.errors.front().message);
  out += "\"";
  if (!result.errors.empty()) out += ",\"line\":" + std::to_string(result.errors.front().row);
  out += ",\"errors\":[";
  for (size_t i = 0; i < result.errors.size(); ++i) {
    if (i) out += ',';
    out += "{\"line\":" + std::to_string(result.errors[i].row) + ",\"message\":\"" +
           json_escape(result.errors[i].message) + "\"";
    if (!result.errors[i].column.empty()) out += ",\"column\":\"" + json_escape(result.errors[i].column) + "\"";
    out += '}';
  }
  out += "]}";
  return out;
}

namespace {

WriteResponse influx_error(unsigned status, std::string_view code, std::string_view message,
                           unsigned retry_after = 0) {
  WriteResponse r;
  r.status = status;
  r.body = influx_error_json(code, message);
  r.retry_after_s = retry_after;
  return r;
}

}  // namespace

InfluxWriteService::InfluxWriteService(IngestContext& context, const HttpConfig& config)
    : ctx_(context), max_rows_(config.max_rows_per_request), ack_timeout_(config.ack_timeout_ms) {
  parse_ack_mode(config.ack, default_ack_);
}

void InfluxWriteService::apply_live_settings(const HttpConfig& config) {
  max_rows_ = config.max_rows_per_request;
  ack_timeout_ = std::chrono::milliseconds(config.ack_timeout_ms);
}

void InfluxWriteService::handle(const WriteRequest& request, std::function<void(WriteResponse)> done) {
  handle_round(request, std::move(done), 0);
}

void InfluxWriteService::handle_round(const WriteRequest& request, std::function<void(WriteResponse)> done,
                                      int round) {
  if (ctx_.closing()) {
    done(influx_error(503, "unavailable", "sluice is shutting down", 1));
    return;
  }
  LineMapper* mapper = ctx_.line_mapper();
  if (!mapper) {
    done(influx_error(404, "not found", "line protocol is not configured (no measurements in the config)"));
    return;
  }
  EpochPrecision precision = EpochPrecision::ns;
  if (!parse_influx_precision(request.api, request.precision, precision)) {
    const bool v1 = request.api == WriteApi::influx_v1;
    std::string message = "invalid precision \"" + std::string(request.precision) + "\" (use " +
                          (v1 ? "n, ns, u, us, ms or s" : "ns, us, ms or s") + ")";
    if (v1 && (request.precision == "m" || request.precision == "h")) {
      message = "precision \"" + std::string(request.precision) +
                "\" (minutes/hours) is not supported by sluice; use n, ns, u, us, ms or s";
    }
    done(influx_error(400, "invalid", message));
    return;
  }
  AckMode ack_mode = default_ack_;
  if (!request.ack_mode.empty() && !parse_ack_mode(request.ack_mode, ack_mode)) {
    done(influx_error(400, "invalid",
                      "invalid X-Sluice-Ack \"" + std::string(request.ack_mode) +
                          "\" (use committed, spooled or accepted)"));
    return;
  }
  if (ack_mode == AckMode::spooled && !ctx_.spool()) {
    done(influx_error(400, "invalid", "X-Sluice-Ack spooled needs the disk spool (spool.enabled is false)"));
    return;
  }
  std::shared_ptr<const std::string> idempotency_key;
  if (round > 0) {
    // Parsed again after a resolver wait: the first round entered the gate and `done` leaves it.
    if (!request.idempotency_key.empty()) idempotency_key = std::make_shared<const std::string>(request.idempotency_key);
  } else {
    std::string error;
    if (const unsigned status = ctx_.begin_idempotent(request.idempotency_key, idempotency_key, done, error)) {
      done(influx_error(status, status == 409 ? "conflict" : "invalid", error, status == 409 ? 1 : 0));
      return;
    }
  }

  const std::string& body = *request.body;
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  LineParseResult& result = ctx_.scratch_result();
  ctx_.clear_misses();
  const std::vector<char>* allowed = nullptr;
  if (request.scope != nullptr) {  // the token's tables, as a mask over the catalog
    const auto& tables = ctx_.catalog().tables;
    allowed_tables_.assign(tables.size(), 0);
    for (size_t i = 0; i < tables.size(); ++i) allowed_tables_[i] = request.scope->allows(tables[i].config_name);
    allowed = &allowed_tables_;
  }
  mapper->parse(std::string_view(body.data(), body.size()), precision, now_ns, ctx_.encoders(), max_rows_,
                result, allowed);

  // Resolver keys not cached yet: the lines wait (other requests of this thread go on), then the body
  // is parsed again with the answers in the cache.
  if (ctx_.resolvers() && ctx_.resolvers()->has_misses()) {
    result.blocks.clear();
    if (round + 1 >= kMaxResolveRounds) {
      ctx_.clear_misses();
      done(influx_error(503, "unavailable", "resolver keys could not be settled, retry later", 1));
      return;
    }
    auto owned = std::make_shared<OwnedWriteRequest>(request);
    ctx_.resolve_misses([this, owned, done = std::move(done), round](const std::string& unavailable) mutable {
      if (!unavailable.empty()) {
        done(influx_error(503, "unavailable", unavailable + " (retry later)", 1));
        return;
      }
      handle_round(owned->request, std::move(done), round + 1);
    });
    return;
  }
  if (result.rows_accepted == 0 && result.rows_rejected == 0) {
    ctx_.counters().http_bad_body.add();
    done(influx_error(400, "invalid", "writing requires points"));
    return;
  }
  const uint32_t forbidden = result.rejected_by_kind[static_cast<size_t>(RejectKind::forbidden)];
  if (result.rows_accepted == 0 && forbidden > 0 && forbidden == result.rows_rejected) {
    // Every line is for a table outside the token's scope: the request as a whole is forbidden.
    ctx_.count_lines(body.size(), result);
    done(influx_error(403, "forbidden", result.errors.empty() ? std::string("this token may not write these tables")
                                                              : result.errors.front().message));
    return;
  }
  if (!result.blocks.empty() && ctx_.cannot_store(body.size())) {
    result.blocks.clear();
    done(influx_error(503, "unavailable", "the database is unreachable and the spool is full, retry later", 5));
    return;
  }
  if (!result.blocks.empty() && !ctx_.has_room_for(result.blocks.size())) {
    result.blocks.clear();
    const BackpressureAdvice a = ctx_.refuse_ring_full();
    done(a.status == 503 ? influx_error(503, "unavailable",
                                        "the database is unavailable and the ingest queue is full, retry later",
                                        a.retry_after_s)
                         : influx_error(429, "too many requests", "ingest queue is full, retry later", a.retry_after_s));
    return;
  }
  IngestContext::tag_idempotent(result.blocks, idempotency_key);

  const unsigned verdict_status = result.rows_rejected == 0 ? 204 : 400;
  std::string verdict_body =
      result.rows_rejected == 0 ? std::string() : influx_partial_write_json(result, result.rows_accepted);
  if (!result.blocks.empty() && ack_mode == AckMode::spooled) {
    WriteResponse ok;
    ok.status = verdict_status;
    ok.body = std::move(verdict_body);
    auto spool_failed = [] {
      return influx_error(503, "unavailable",
                          "the spool could not write the lines (disk error); they may still be committed", 5);
    };
    if (!spool_and_answer(ctx_, result.blocks, std::move(ok), spool_failed, done)) {
      result.blocks.clear();
      done(influx_error(503, "unavailable", "the spool is full, retry later", 5));
      return;
    }
    ctx_.count_lines(body.size(), result);
    return;
  }
  ctx_.count_lines(body.size(), result);
  if (result.blocks.empty() || ack_mode == AckMode::accepted) {
    ctx_.push_all(result.blocks);
    WriteResponse r;
    r.status = verdict_status;
    r.body = std::move(verdict_body);
    done(std::move(r));
    return;
  }

  push_and_answer(
      ctx_, result.blocks, ack_timeout_,
      [verdict_status, body = std::move(verdict_body)](const AckResult& a) {
        switch (a.outcome) {
          case AckOutcome::committed: {
            WriteResponse r;
            r.status = verdict_status;
            r.body = body;
            return r;
          }
          case AckOutcome::dead_lettered:
            return influx_error(400, "invalid", "the database refused lines: " + a.message);
          case AckOutcome::failed:
            return influx_error(500, "internal error", "the database refused rows: " + a.message);
          case AckOutcome::shutdown:
            break;
        }
        return influx_error(503, "unavailable", "sluice stopped before the rows were committed: " + a.message, 1);
      },
      [] {
        return influx_error(504, "unavailable",
                            "the lines were accepted but not committed in time; they may still be committed");
      },
      std::move(done));
}

}  // namespace sluice
