#include "ingest/commit_answer.h"

#include <atomic>
#include <memory>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "spool/block_codec.h"
#include "spool/spool.h"

namespace sluice {
namespace {

// Shared by the ack callback and the timer; only touched on the IO thread.
struct PendingAnswer {
  PendingAnswer(boost::asio::io_context& io, std::function<WriteResponse(const AckResult&)> v,
                std::function<WriteResponse()> t, std::function<void(WriteResponse)> d)
      : timer(io), verdict(std::move(v)), timed_out(std::move(t)), done(std::move(d)) {}

  void answer(WriteResponse r) {
    if (answered) return;
    answered = true;
    timer.cancel();
    done(std::move(r));
  }

  boost::asio::steady_timer timer;
  std::function<WriteResponse(const AckResult&)> verdict;
  std::function<WriteResponse()> timed_out;
  std::function<void(WriteResponse)> done;
  bool answered = false;
};

}  // namespace

void push_and_answer(IngestContext& ctx, std::vector<BlockPtr>& blocks, std::chrono::milliseconds timeout,
                     std::function<WriteResponse(const AckResult&)> verdict,
                     std::function<WriteResponse()> timed_out, std::function<void(WriteResponse)> done) {
  auto pending = std::make_shared<PendingAnswer>(ctx.io(), std::move(verdict), std::move(timed_out), std::move(done));
  auto ack = Ack::make(static_cast<uint32_t>(blocks.size()), [pending, &io = ctx.io()](const AckResult& a) {
    // Runs on a writer thread: hand the result to the session's IO thread.
    boost::asio::post(io, [pending, a]() {
      if (!pending->answered) pending->answer(pending->verdict(a));
    });
  });
  for (auto& b : blocks) b->ack = ack;
  ctx.push_all(blocks);

  pending->timer.expires_after(timeout);
  pending->timer.async_wait([pending](const boost::system::error_code& ec) {
    if (ec || pending->answered) return;  // cancelled: answered already
    pending->answer(pending->timed_out());
  });
}

bool spool_and_answer(IngestContext& ctx, std::vector<BlockPtr>& blocks, WriteResponse ok,
                      std::function<WriteResponse()> spool_failed, std::function<void(WriteResponse)>& done) {
  spool::Spool* sp = ctx.spool();
  if (!sp) return false;
  std::vector<std::string> payloads(blocks.size());
  size_t total = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    spool::encode_block(ctx.catalog().tables[blocks[i]->table_id], *blocks[i], payloads[i]);
    total += payloads[i].size() + spool::kRecordHeaderBytes;
  }
  if (!sp->has_room(total - spool::kRecordHeaderBytes)) return false;

  struct State {
    std::atomic<size_t> left;
    std::atomic<bool> ok{true};
    WriteResponse ok_response;
    std::function<WriteResponse()> spool_failed;
    std::function<void(WriteResponse)> done;
  };
  auto st = std::make_shared<State>();
  st->left.store(blocks.size() + 1);  // + 1: released below once everything is queued
  st->ok_response = std::move(ok);
  st->spool_failed = std::move(spool_failed);
  auto finish = [st, &io = ctx.io()] {
    boost::asio::post(io, [st] { st->done(st->ok.load() ? std::move(st->ok_response) : st->spool_failed()); });
  };
  std::vector<uint64_t> ids;
  ids.reserve(blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    // Runs on the spool thread: hand the answer to the session's IO thread.
    const uint64_t id = sp->append(std::move(payloads[i]), false, [st, finish](bool good) {
      if (!good) st->ok.store(false);
      if (st->left.fetch_sub(1) == 1) finish();
    });
    if (id == 0) {
      // Refused midway (another thread took the room): nothing of this request is kept. `left`
      // never reaches zero, so the records already queued answer nobody; `done` stays the caller's.
      for (uint64_t prev : ids) sp->commit(prev);
      for (auto& b : blocks) b->spool_id = 0;
      return false;
    }
    ids.push_back(id);
    blocks[i]->spool_id = id;
    blocks[i]->ack = nullptr;
  }
  ctx.push_all(blocks);
  st->done = std::move(done);
  if (st->left.fetch_sub(1) == 1) finish();
  return true;
}

}  // namespace sluice
