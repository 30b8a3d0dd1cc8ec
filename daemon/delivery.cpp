#include "daemon/delivery.h"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <libpq-fe.h>

#include "pg/connection.h"
#include "spool/block_codec.h"

namespace sluice {

SpoolDelivery::SpoolDelivery(const SpoolConfig& config, const Catalog& catalog) : catalog_(catalog) {
  spool::SpoolOptions o;
  o.dir = config.dir;
  o.max_bytes = config.max_bytes;
  o.segment_bytes = config.segment_bytes;
  o.group_commit_wait = std::chrono::microseconds(config.group_commit_us);
  o.fsync = config.fsync;
  spool_ = std::make_unique<spool::Spool>(o);
  spool_->open();
}

SpoolDelivery::~SpoolDelivery() {
  stop_replay();
  close();
}

void SpoolDelivery::wire(pg::WriterOptions& options) {
  options.on_spool_resolved = [this](uint64_t id) { spool_->commit(id); };
  options.spool_low_water = [this] { return spool_->low_water(); };
  options.spill = [this](std::vector<BlockPtr>& blocks) { return spill(blocks); };
}

// Writer thread, database unreachable: every block goes to the spool (all or none).
bool SpoolDelivery::spill(std::vector<BlockPtr>& blocks) {
  std::vector<std::string> payloads(blocks.size());
  size_t need = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i]->spool_id) continue;  // already in the spool: only parked below
    spool::encode_block(catalog_.tables[blocks[i]->table_id], *blocks[i], payloads[i]);
    need += payloads[i].size() + spool::kRecordHeaderBytes;
  }
  if (need > 0 && (!spool_->writable() || !spool_->has_room(need - spool::kRecordHeaderBytes))) return false;
  std::vector<uint64_t> ids(blocks.size(), 0);
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i]->spool_id) continue;
    ids[i] = spool_->append(std::move(payloads[i]), /*parked=*/true, nullptr);
    if (ids[i] == 0) {
      for (uint64_t id : ids) {
        if (id) spool_->commit(id);
      }
      return false;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < blocks.size(); ++i) {
    Block& b = *blocks[i];
    const uint64_t id = b.spool_id ? b.spool_id : ids[i];
    if (b.spool_id) {
      spool_->park(id);
    } else {
      spilled_records_.fetch_add(1, std::memory_order_relaxed);
      spilled_rows_.fetch_add(b.rows, std::memory_order_relaxed);
    }
    if (b.ack) held_acks_[id] = std::move(b.ack);
  }
  blocks.clear();
  return true;
}

void SpoolDelivery::start_replay(pg::WriterPool& writers, uint32_t max_rows) {
  replayer_ = std::thread([this, &writers, max_rows] {
    pthread_setname_np(pthread_self(), "sluice-replay");
    replay_loop(writers, max_rows);
  });
}

void SpoolDelivery::replay_loop(pg::WriterPool& writers, uint32_t max_rows) {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (stop_) return;
      if (!writers.connected() || spool_->parked_count() == 0) {
        cv_.wait_for(lock, std::chrono::milliseconds(100));
        continue;
      }
    }
    std::vector<spool::SpoolRecord> records = spool_->take_parked(256);
    Batch batch;
    auto flush = [&] {
      if (batch.blocks.empty()) return;
      std::vector<uint64_t> ids;
      for (const auto& b : batch.blocks) ids.push_back(b->spool_id);
      if (!writers.push(std::move(batch))) {  // stopped: the records stay for the next start
        for (uint64_t id : ids) spool_->park(id);
      }
      batch = Batch{};
    };
    for (auto& rec : records) {
      auto block = std::make_unique<Block>();
      std::string error;
      if (!spool::decode_block(catalog_, rec.payload, *block, error)) {
        unreplayable_records_.fetch_add(1, std::memory_order_relaxed);
        if (!unreplayable_logged_.exchange(true)) {
          spdlog::error("event=spool_record_unreplayable id={} error=\"{}\" (further ones only counted)", rec.id, error);
        }
        std::shared_ptr<Ack> ack;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          auto it = held_acks_.find(rec.id);
          if (it != held_acks_.end()) {
            ack = std::move(it->second);
            held_acks_.erase(it);
          }
        }
        if (ack) ack->complete(AckOutcome::failed, 0, "spooled rows cannot be replayed: " + error);
        spool_->commit(rec.id);
        continue;
      }
      block->spool_id = rec.id;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = held_acks_.find(rec.id);
        if (it != held_acks_.end()) {
          block->ack = std::move(it->second);
          held_acks_.erase(it);
        }
      }
      if (!batch.blocks.empty() &&
          (batch.table_id != block->table_id || batch.column_mask != block->column_mask || batch.rows >= max_rows)) {
        flush();
      }
      if (batch.blocks.empty()) {
        batch.table_id = block->table_id;
        batch.column_mask = block->column_mask;
        batch.first_block_at = std::chrono::steady_clock::now();
      }
      batch.rows += block->rows;
      batch.bytes += block->data.size();
      batch.min_time = std::min(batch.min_time, block->min_time);
      batch.max_time = std::max(batch.max_time, block->max_time);
      replayed_rows_.fetch_add(block->rows, std::memory_order_relaxed);
      batch.blocks.push_back(std::move(block));
    }
    flush();
  }
}

void SpoolDelivery::stop_replay() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (replayer_.joinable()) replayer_.join();
}

void SpoolDelivery::close() {
  std::unordered_map<uint64_t, std::shared_ptr<Ack>> held;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    held.swap(held_acks_);
  }
  for (auto& [id, ack] : held) {
    ack->complete(AckOutcome::shutdown, 0,
                  "the database was unreachable; the rows are kept in the disk spool and are written after the restart");
  }
  if (spool_) spool_->close();
}

void SpoolDelivery::register_metrics(metrics::Registry& registry, const pg::WriterPool& writers) {
  using prometheus::MetricType;
  registry.add_collector([this, &writers](metrics::Families& out) {
    const auto& s = spool_->stats();
    auto v = [](const std::atomic<uint64_t>& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); };
    metrics::add_value(metrics::family(out, "sluice_spool_bytes", "Bytes of all disk spool segment files.", MetricType::Gauge), {}, v(s.bytes));
    metrics::add_value(metrics::family(out, "sluice_spool_segments", "Disk spool segment files.", MetricType::Gauge), {}, v(s.segments));
    metrics::add_value(metrics::family(out, "sluice_spool_pending_records", "Spool records whose rows are not committed yet.", MetricType::Gauge), {}, v(s.pending_records));
    const int64_t oldest = s.oldest_pending_us.load(std::memory_order_relaxed);
    const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    metrics::add_value(metrics::family(out, "sluice_spool_oldest_record_age_seconds", "Age of the oldest spool record not committed yet (0 when none).", MetricType::Gauge), {},
                       oldest == 0 ? 0.0 : std::max(0.0, (now - oldest) / 1e6));
    auto& records = metrics::family(out, "sluice_spool_records_total", "Spool records: appended (spooled acks and spills), replayed (read back for the database), committed (done, segment may go), refused (spool full or closed).", MetricType::Counter);
    metrics::add_value(records, {{"event", "appended"}}, v(s.appended_records));
    metrics::add_value(records, {{"event", "replayed"}}, v(s.replayed_records));
    metrics::add_value(records, {{"event", "committed"}}, v(s.committed_records));
    metrics::add_value(records, {{"event", "refused"}}, v(s.refused_records));
    metrics::add_value(records, {{"event", "spilled"}}, v(spilled_records_));
    metrics::add_value(records, {{"event", "unreplayable"}}, v(unreplayable_records_));
    metrics::add_value(records, {{"event", "already_committed"}}, v(writers.stats().spool_duplicates_skipped));
    auto& rows = metrics::family(out, "sluice_spool_rows_total", "Rows spilled to the spool while the database was unreachable, and rows replayed from it.", MetricType::Counter);
    metrics::add_value(rows, {{"event", "spilled"}}, v(spilled_rows_));
    metrics::add_value(rows, {{"event", "replayed"}}, v(replayed_rows_));
    metrics::add_value(metrics::family(out, "sluice_spool_corrupt_records_total", "Torn or damaged spool records skipped (never replayed).", MetricType::Counter), {}, v(s.corrupt_records));
    metrics::add_value(metrics::family(out, "sluice_spool_write_errors_total", "Failed spool writes or fdatasyncs.", MetricType::Counter), {}, v(s.write_errors));
    metrics::add_value(metrics::family(out, "sluice_spool_syncs_total", "fdatasync calls of the spool (group commits).", MetricType::Counter), {}, v(s.syncs));
  });
}

void check_delivery_tables(const std::string& database_url) {
  try {
    pg::Connection conn(database_url, "sluiced check");
    auto r = conn.query("SELECT to_regclass('sluice_spool_committed') IS NOT NULL");
    if (std::string(PQgetvalue(r.get(), 0, 0)) != "t") {
      throw std::runtime_error(
          "spool.enabled needs the table sluice_spool_committed: apply sql/007_delivery.sql (`sluiced migrate`)");
    }
  } catch (const pg::PgError& e) {
    spdlog::warn("event=spool_table_check_skipped error=\"{}\"", e.what());
  }
}

void register_idempotency_metrics(metrics::Registry& registry, const pg::WriterPool& writers) {
  registry.add_collector([&writers](metrics::Families& out) {
    auto& f = metrics::family(out, "sluice_idempotent_replays_total",
                              "Blocks of requests retried with the same Idempotency-Key that were stored already "
                              "(answered like the original, not stored again), and their rows.",
                              prometheus::MetricType::Counter);
    metrics::add_value(f, {{"unit", "blocks"}}, static_cast<double>(writers.stats().idempotent_blocks_skipped.load()));
    metrics::add_value(f, {{"unit", "rows"}}, static_cast<double>(writers.stats().idempotent_rows_skipped.load()));
  });
}

}  // namespace sluice
