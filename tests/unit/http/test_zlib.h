// tests/unit/http/test_zlib.h — compress test bodies with zlib (gzip, zlib-wrapped or raw deflate).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <zlib.h>

namespace sluice::test {

enum class Wrap { gzip, zlib, raw };

inline std::string compress(std::string_view in, Wrap wrap = Wrap::gzip) {
  z_stream zs{};
  int bits = wrap == Wrap::gzip ? 15 + 16 : wrap == Wrap::zlib ? 15 : -15;
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  return out;
}

}  // namespace sluice::test
