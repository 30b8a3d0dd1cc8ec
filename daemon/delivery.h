// daemon/delivery.h — the disk spool wired between the ingest path and the writers (README "Delivery").
//
//   HTTP `spooled` ack ── spool_and_answer ─► spool (in flight) ─┐
//                                           └─► ring ─► batcher ─► writers ── COMMIT (+ ids) ─► spool.commit(id)
//   writers, database unreachable ── spill(blocks) ─► spool (parked), acks held here by record id
//   replayer thread: database reachable ── take_parked ─► decode ─► WriterPool::push (acks re-attached)
//   start: every record found in the spool is parked → replayed while new data flows
//
// Order at shutdown: stop_replay() · WriterPool::stop() (may still spill) · close().
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "catalog/catalog.h"
#include "config/config.h"
#include "metrics/registry.h"
#include "pg/copy_writer.h"
#include "spool/spool.h"

namespace sluice {

class SpoolDelivery {
 public:
  // Opens the spool (throws std::runtime_error naming the directory when it cannot).
  SpoolDelivery(const SpoolConfig& config, const Catalog& catalog);
  ~SpoolDelivery();

  spool::Spool& spool() { return *spool_; }
  // Sets the writers' spool hooks: ids resolved, low-water mark, spill.
  void wire(pg::WriterOptions& options);
  void start_replay(pg::WriterPool& writers, uint32_t max_rows);
  void stop_replay();
  void close();
  void register_metrics(metrics::Registry& registry, const pg::WriterPool& writers);

 private:
  bool spill(std::vector<BlockPtr>& blocks);
  void replay_loop(pg::WriterPool& writers, uint32_t max_rows);

  const Catalog& catalog_;
  std::unique_ptr<spool::Spool> spool_;
  std::mutex mutex_;  // guards held_acks_, stop_
  std::condition_variable cv_;
  std::unordered_map<uint64_t, std::shared_ptr<Ack>> held_acks_;  // parked records whose sender waits
  bool stop_ = false;
  std::thread replayer_;
  std::atomic<uint64_t> spilled_records_{0}, spilled_rows_{0}, replayed_rows_{0}, unreplayable_records_{0};
  std::atomic<bool> unreplayable_logged_{false};
};

// The spool needs sluice_spool_committed (sql/007_delivery.sql): throws std::runtime_error naming
// the migration when it is missing (rows would otherwise be refused at the first spooled batch).
// A connection failure is only logged (the writers will wait for the database anyway).
void check_delivery_tables(const std::string& database_url);

// sluice_idempotent_replays_total: blocks (and rows) of retried Idempotency-Key requests that were
// stored already and were not stored again.
void register_idempotency_metrics(metrics::Registry& registry, const pg::WriterPool& writers);

}  // namespace sluice
