// Removes expired messages in the background, in bounded batches, every purge interval.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "deferred_store.h"
#include "metrics.h"

namespace dims::storage {

class RetentionSweeper {
 public:
  RetentionSweeper(DeferredStore& store, std::chrono::seconds interval, MetricsRegistry& metrics);
  ~RetentionSweeper();
  void Stop();
  // Counts what a purge removed (the sweeps and the Purge RPC alike).
  void Record(const PurgeResult& result);

 private:
  void Loop();

  DeferredStore& store_;
  std::chrono::seconds interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  prometheus::Counter* messages_;
  prometheus::Counter* bytes_;
  prometheus::Counter* failures_;
};

}  // namespace dims::storage
