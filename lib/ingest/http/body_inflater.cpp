#include "ingest/http/body_inflater.h"

#include <algorithm>
#include <climits>

namespace sluice {
namespace {

constexpr std::size_t kMinOutput = 16 << 10;

bool looks_like_zlib_header(std::string_view in) {
  if (in.size() < 2) return false;
  auto cmf = static_cast<unsigned char>(in[0]);
  auto flg = static_cast<unsigned char>(in[1]);
  return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0;
}

bool is_gzip_magic(const unsigned char* p, std::size_t n) {
  return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

}  // namespace

BodyInflater::~BodyInflater() {
  if (initialized_) inflateEnd(&zs_);
}

bool BodyInflater::reset(int window_bits) {
  int rc;
  if (!initialized_) {
    zs_ = z_stream{};
    rc = inflateInit2(&zs_, window_bits);
    initialized_ = rc == Z_OK;
  } else {
    rc = inflateReset2(&zs_, window_bits);
  }
  if (rc != Z_OK) {
    error_ = zs_.msg ? zs_.msg : "zlib initialisation failed";
    return false;
  }
  return true;
}

BodyInflater::Result BodyInflater::inflate(std::string_view in, bool gzip, std::string& out,
                                           std::size_t limit) {
  out.clear();
  error_.clear();
  // 15 + 32: zlib or gzip header, detected automatically; -15: raw deflate.
  const int window_bits = (gzip || looks_like_zlib_header(in)) ? 15 + 32 : -15;
  if (!reset(window_bits)) return Result::invalid;

  // Allow one byte beyond the limit so "exactly limit" and "more than limit" can be told apart.
  const std::size_t hard_cap = limit == SIZE_MAX ? limit : limit + 1;
  std::size_t produced = 0;
  out.resize(std::min(hard_cap, std::max(kMinOutput, in.size() * 4)));

  auto next_in = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t remaining_in = in.size();
  zs_.avail_in = 0;

  for (;;) {
    if (zs_.avail_in == 0 && remaining_in > 0) {
      zs_.next_in = const_cast<unsigned char*>(next_in);
      zs_.avail_in = static_cast<uInt>(std::min<std::size_t>(remaining_in, UINT_MAX));
      next_in += zs_.avail_in;
      remaining_in -= zs_.avail_in;
    }
    if (produced == out.size()) {
      if (out.size() >= hard_cap) {
        out.clear();
        return Result::too_large;
      }
      out.resize(std::min(hard_cap, out.size() * 2));
    }
    std::size_t room = std::min<std::size_t>(out.size() - produced, UINT_MAX);
    zs_.next_out = reinterpret_cast<unsigned char*>(out.data() + produced);
    zs_.avail_out = static_cast<uInt>(room);
    const uInt in_before = zs_.avail_in;
    int rc = ::inflate(&zs_, Z_NO_FLUSH);
    produced += room - zs_.avail_out;
    if (produced > limit) {
      out.clear();
      return Result::too_large;
    }
    if (rc == Z_STREAM_END) {
      std::size_t left = zs_.avail_in + remaining_in;
      if (left == 0) break;
      // Another gzip member may follow; anything else is trailing garbage.
      if (gzip && zs_.avail_in >= 2 && is_gzip_magic(zs_.next_in, zs_.avail_in)) {
        if (!reset(window_bits)) return Result::invalid;
        continue;
      }
      error_ = "trailing data after compressed stream";
      out.clear();
      return Result::invalid;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR) {
      // No progress possible: either the output is full (grow and retry) or the input ended early.
      if (zs_.avail_out == 0) continue;
      if (zs_.avail_in == 0 && remaining_in == 0) {
        error_ = "unexpected end of compressed data";
        out.clear();
        return Result::invalid;
      }
      if (in_before == zs_.avail_in) {
        error_ = "compressed stream makes no progress";
        out.clear();
        return Result::invalid;
      }
      continue;
    }
    error_ = zs_.msg ? zs_.msg : (rc == Z_NEED_DICT ? "preset dictionary required" : "corrupt data");
    out.clear();
    return Result::invalid;
  }
  out.resize(produced);
  return Result::ok;
}

}  // namespace sluice
