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

// `spooled` acks: writes every block to the disk spool (ctx.spool()) and pushes the blocks to the
// ring at once, each carrying its spool record id (the writer records it with the rows: exactly
// once across a crash); answers `ok` once every record is fsynced, or spool_failed() when the
// disk write failed. Returns false — nothing spooled, nothing pushed, nothing answered — when the
// spool is missing, full or closed (`done` is then left to the caller; else it is moved from). The caller has checked ctx.has_room_for(blocks.size()).
bool spool_and_answer(IngestContext& ctx, std::vector<BlockPtr>& blocks, WriteResponse ok,
                      std::function<WriteResponse()> spool_failed, std::function<void(WriteResponse)>& done);

}  // namespace sluice
