// daemon/daemon.h — wiring of a running sluiced.
//
//   signal thread (sigwait) ─► shutdown
//   io threads [N] : HttpServer acceptor+sessions, UdpListeners ─► IngestContext ─► ring[i]
//   batcher thread : rings ─► batches per (table, columns) ─► WriterPool (N libpq connections)
//   admin thread   : /healthz /readyz /metrics
//
// Shutdown (SIGTERM/SIGINT): stop accepting, mark every IO thread closing (no further pushes),
// drain the rings, flush and commit every batch, answer the waiting requests, exit 0.
#pragma once

#include "config/config.h"

namespace sluice {

// Runs until SIGTERM/SIGINT; returns the process exit code. Throws on start-up failure.
int run_daemon(const Config& config);

}  // namespace sluice
