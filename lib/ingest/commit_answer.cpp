#include "ingest/commit_answer.h"

#include <memory>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

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

}  // namespace sluice
