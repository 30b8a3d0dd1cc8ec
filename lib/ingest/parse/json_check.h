// ingest/parse/json_check.h — a strict, allocation-free JSON validator (RFC 8259).
//
//   json_rows (simdjson On-Demand) ── nested object/array text ──► json_check ──► put_json
//                                 └── syntax error in a body ──────► json_check ──► error offset
//
// simdjson's On-Demand API skips nested values without validating them and does not validate
// number tokens; json_rows calls these checks so that such values cannot reach a jsonb column,
// and uses json_check on a broken body to find the byte offset of the first problem.
#pragma once

#include <cstddef>
#include <string_view>

namespace sluice {

// True when `text` is exactly one JSON value, optionally surrounded by whitespace, with valid
// UTF-8 and nesting depth <= max_depth. On failure, error_offset is the offset (in text) of the
// first byte that cannot be part of a valid document (text.size() when the text ends early) and
// `what` (if not null) a short reason.
bool json_check(std::string_view text, size_t& error_offset, const char** what = nullptr,
                int max_depth = 1024);

// Strict JSON number token: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number_token(std::string_view token);

}  // namespace sluice
