// ingest/http/body_inflater.h — bounded gzip/deflate decoding of request bodies (zlib).
//
//   compressed body ──► BodyInflater::inflate(in, encoding, out, limit) ──► out (reused string)
//                                      │ never writes more than limit bytes (gzip-bomb safe)
//                                      └─► ok | too_large | invalid (+ error())
//
// One per HTTP session: the z_stream (and its 32 KiB window) is allocated on first use and reset,
// not reallocated, for later requests. Multi-member gzip bodies are accepted. "deflate" accepts
// zlib-wrapped data (RFC 9110) and, as many clients send it, raw deflate.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <zlib.h>

namespace sluice {

class BodyInflater {
 public:
  enum class Result { ok, too_large, invalid };

  BodyInflater() = default;
  ~BodyInflater();
  BodyInflater(const BodyInflater&) = delete;
  BodyInflater& operator=(const BodyInflater&) = delete;

  // Decodes `in` into `out` (cleared first; capacity reused). `gzip` = true for gzip/x-gzip,
  // false for deflate. Output beyond `limit` bytes is refused with too_large.
  Result inflate(std::string_view in, bool gzip, std::string& out, std::size_t limit);

  // Why the last inflate() returned invalid.
  const std::string& error() const { return error_; }

 private:
  bool reset(int window_bits);

  z_stream zs_{};
  bool initialized_ = false;
  std::string error_;
};

}  // namespace sluice
