// Removes expired messages in the background, in bounded batches, every purge interval.
#pragma once

#include <chrono>

#include "deferred_store.h"
#include "metrics.h"
#include "periodic_task.h"

namespace dims::storage {

class RetentionSweeper {
 public:
  RetentionSweeper(DeferredStore& store, std::chrono::seconds interval, MetricsRegistry& metrics);
  void Stop() { task_.Stop(); }
  // Counts what a purge removed (the sweeps and the Purge RPC alike).
  void Record(const PurgeResult& result);

 private:
  void Sweep();

  DeferredStore& store_;
  prometheus::Counter* messages_;
  prometheus::Counter* bytes_;
  prometheus::Counter* failures_;
  PeriodicTask task_;  // last: starts once everything above is ready
};

}  // namespace dims::storage
