#include "daemon/logging.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#ifdef SLUICE_HAVE_SYSTEMD
#include <spdlog/sinks/systemd_sink.h>
#endif

#include "metrics/registry.h"

namespace sluice {
namespace {

const char* g_sink = "stderr";

// True when stderr is the journal stream systemd set up for us (JOURNAL_STREAM=<dev>:<inode> of
// that very stream, as sd_journal_stream_fd documents), not an inherited variable.
bool stderr_is_journal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (!js || !*js) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

}  // namespace

void init_logging(const std::string& level) {
  // The logger thread must never take a process signal (SIGHUP's default action ends the process;
  // the daemon's signal thread waits for them): it starts with every signal blocked.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  spdlog::init_thread_pool(kLogQueueMessages, 1, [] { pthread_setname_np(pthread_self(), "sluice-log"); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  spdlog::sink_ptr sink;
#ifdef SLUICE_HAVE_SYSTEMD
  if (stderr_is_journal()) {
    sink = std::make_shared<spdlog::sinks::systemd_sink_mt>("sluiced", /*enable_formatting=*/false);
    g_sink = "journal";
  }
#endif
  if (!sink) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>("ts=%Y-%m-%dT%H:%M:%S.%fZ level=%l %v",
                                                                    spdlog::pattern_time_type::utc, "\n"));
  }
  auto logger = std::make_shared<spdlog::async_logger>("sluiced", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::overrun_oldest);
  logger->set_level(spdlog::level::from_str(level));
  // Warnings and errors reach the sink at once (a crash right after keeps them); info and below
  // are flushed by the logger thread as it goes (stderr is unbuffered for the journal anyway).
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

void shutdown_logging() {
  // Held here, the logger and its sinks outlive the logger thread, which spdlog::shutdown() joins
  // (it writes what is still queued first): the sinks are destroyed after the last write.
  auto keep = spdlog::default_logger();
  spdlog::shutdown();
}

uint64_t log_messages_dropped() {
  auto pool = spdlog::thread_pool();
  return pool ? static_cast<uint64_t>(pool->overrun_counter()) : 0;
}

const char* log_sink_name() { return g_sink; }

void register_logging_metrics(metrics::Registry& registry) {
  registry.add_collector([](metrics::Families& out) {
    auto& f = metrics::family(out, "sluice_log_messages_dropped_total",
                              "Log messages overwritten because the asynchronous log queue was full.",
                              prometheus::MetricType::Counter);
    metrics::add_value(f, {}, static_cast<double>(log_messages_dropped()));
  });
}

}  // namespace sluice
