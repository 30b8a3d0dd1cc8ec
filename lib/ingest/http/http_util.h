// ingest/http/http_util.h — small pure helpers for the HTTP listeners: target splitting,
// percent-decoding, query lookup, JSON string escaping, Content-Encoding classification.
//
//   "/v1/write/flux.mg%5Fmeter?precision=ms" ─ split_target ─► path, query
//        path ─ percent_decode ─► table          query ─ query_param("precision") ─► "ms"
//
// No allocation beyond the caller's output strings (which are reused per session).
#pragma once

#include <string>
#include <string_view>

namespace sluice {

struct TargetParts {
  std::string_view path;
  std::string_view query;  // without the '?', empty when absent
};
TargetParts split_target(std::string_view target);

// Decodes %XX escapes into `out` (cleared first). `plus_is_space` for query components.
// Returns false on a malformed escape.
bool percent_decode(std::string_view in, std::string& out, bool plus_is_space = false);

// Finds `key` in an application/x-www-form-urlencoded query and decodes its value into `out`.
// Returns false (out empty) when absent or malformed.
bool query_param(std::string_view query, std::string_view key, std::string& out);

// Appends `in` escaped for use inside a JSON string literal.
void append_json_escaped(std::string& out, std::string_view in);

// Builds {"error":"<message>"}.
std::string json_error(std::string_view message);

enum class ContentEncoding { identity, gzip, deflate, unsupported };
// Classifies a Content-Encoding header value (case-insensitive, surrounding blanks ignored).
ContentEncoding classify_content_encoding(std::string_view value);

}  // namespace sluice
