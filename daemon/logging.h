// daemon/logging.h — the process-wide logger: asynchronous, bounded, never blocking the data path.
//
//   any thread ─ spdlog::info(...) ─► bounded queue (kLogQueueMessages) ─► logger thread ─► sink
//                                     full: the oldest message is overwritten and counted
//                                     (sluice_log_messages_dropped_total); the caller never waits
//   sink: under systemd (JOURNAL_STREAM names our stderr) the journal itself (sd_journal_send, with
//         PRIORITY= per level and SYSLOG_IDENTIFIER=sluiced); otherwise stderr, one line per event:
//         "ts=2026-11-21T14:00:00.123456Z level=info event=... key=value ..."
//
// Conventions for callers: one line per event, `event=name` first, then key=value context (values
// with spaces in double quotes); nothing per row or per packet; never a password (pg::redact_url).
#pragma once

#include <cstdint>
#include <string>

namespace sluice {
namespace metrics {
class Registry;
}

constexpr size_t kLogQueueMessages = 8192;

// Installs the asynchronous default logger at `level` (trace … off). Call once, before threads start.
void init_logging(const std::string& level);
// Flushes what is queued and stops the logger thread (end of main).
void shutdown_logging();
// Messages overwritten because the queue was full.
uint64_t log_messages_dropped();
// Which sink init_logging chose: "journal" or "stderr".
const char* log_sink_name();
// sluice_log_messages_dropped_total.
void register_logging_metrics(metrics::Registry& registry);

}  // namespace sluice
