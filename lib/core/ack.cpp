#include "core/ack.h"

namespace sluice {

void Ack::complete(AckOutcome outcome, uint64_t rows_committed, std::string_view message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    result_.rows_committed += rows_committed;
    if (static_cast<uint8_t>(outcome) > static_cast<uint8_t>(result_.outcome)) {
      result_.outcome = outcome;
    }
    if (outcome != AckOutcome::committed && result_.message.empty()) {
      result_.message.assign(message);
    }
  }
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    Callback cb = std::move(callback_);
    if (cb) cb(result_);
  }
}

}  // namespace sluice
