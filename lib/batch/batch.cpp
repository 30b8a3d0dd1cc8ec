#include "batch/batch.h"

namespace sluice {

const char* flush_trigger_name(FlushTrigger t) {
  switch (t) {
    case FlushTrigger::rows: return "rows";
    case FlushTrigger::bytes: return "bytes";
    case FlushTrigger::age: return "age";
    case FlushTrigger::shutdown: return "shutdown";
    case FlushTrigger::idle: return "idle";
  }
  return "unknown";
}

}  // namespace sluice
