// core/status.h — results on the data plane, which never throws.
#pragma once

#include <string>
#include <utility>

namespace sluice {

enum class Code { ok, invalid, not_found, too_large, overloaded, unavailable, internal };

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }

  bool is_ok() const { return code_ == Code::ok; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::ok;
  std::string message_;
};

}  // namespace sluice
