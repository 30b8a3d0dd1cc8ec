// ingest/commit_answer.h — hands a request's blocks to the ring and answers the sender once they
// are committed, or when the ack timeout passes, always on the request's IO thread.
//
//   write service ── push_and_answer(blocks, verdict, timed_out, done) ──► ring
//   writer thread: Ack complete ──post──► IO thread: done(verdict(result))   } whichever comes
//   IO thread: timer after `timeout`  ──────────────► done(timed_out())       } first answers
//
// Used by the JSON (/v1/write) and the InfluxDB (/write, /api/v2/write) write services, which only
// differ in how they word the answer.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "core/ack.h"
#include "core/block.h"
#include "ingest/ingest_context.h"
#include "ingest/write_handler.h"

namespace sluice {

// The caller has checked ctx.has_room_for(blocks.size()); `blocks` is empty afterwards.
// `verdict` and `timed_out` run on the IO thread; exactly one of them answers through `done`.
void push_and_answer(IngestContext& ctx, std::vector<BlockPtr>& blocks, std::chrono::milliseconds timeout,
                     std::function<WriteResponse(const AckResult&)> verdict,
                     std::function<WriteResponse()> timed_out, std::function<void(WriteResponse)> done);

}  // namespace sluice
