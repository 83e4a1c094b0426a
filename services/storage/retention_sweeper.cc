#include "retention_sweeper.h"

#include "log.h"

namespace dims::storage {

namespace {
constexpr uint32_t kSweepBatch = 1000;
}

RetentionSweeper::RetentionSweeper(DeferredStore& store, std::chrono::seconds interval,
                                   MetricsRegistry& metrics)
    : store_(store),
      messages_(&metrics
                     .CounterFamily("purged_messages_total",
                                    "Messages removed because their retention ended or by Purge.")
                     .Add({})),
      bytes_(&metrics.CounterFamily("purged_bytes_total", "Bytes of the purged messages.").Add({})),
      failures_(&metrics
                     .CounterFamily("purge_failures_total",
                                    "Retention sweeps that failed (the next one retries).")
                     .Add({})),
      task_(
          "retention sweep", interval, [this] { Sweep(); }, /*run_first=*/false) {}

void RetentionSweeper::Record(const PurgeResult& result) {
  messages_->Increment(static_cast<double>(result.messages));
  bytes_->Increment(static_cast<double>(result.bytes));
}

void RetentionSweeper::Sweep() {
  try {
    PurgeResult r;
    do {
      r = store_.Purge(Clock::now(), RemovalCause::kExpired, "", kSweepBatch, false);
      Record(r);
      if (r.messages > 0) {
        log::Info("expired messages removed", {{"messages", static_cast<long>(r.messages)},
                                               {"users", static_cast<long>(r.users)}});
      }
    } while (r.more_remaining && !task_.stopping());
  } catch (const std::exception& e) {
    failures_->Increment();
    log::Warn("retention sweep failed", {{"error", e.what()}});
  }
}

}  // namespace dims::storage
