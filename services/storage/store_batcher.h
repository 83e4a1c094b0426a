// Group commit: concurrent Store calls wait in one queue; a committer takes everything waiting
// (up to a batch limit) and stores it in one transaction, then answers each caller, only after
// the commit. With batching off, every message gets its own transaction (the baseline the
// benchmark compares against).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "deferred_store.h"
#include "metrics.h"

namespace dims::storage {

struct StoreResult {
  enum class Status { kOk, kUnavailable, kInternal };
  Status status = Status::kOk;
  StoreOutcome outcome;  // with kOk
  std::string error;     // otherwise
};

class StoreBatcher {
 public:
  using Done = std::function<void(const StoreResult&)>;
  struct Options {
    int committers = 2;
    size_t max_batch = 256;
    size_t max_queue = 20000;
  };

  StoreBatcher(DeferredStore& store, Options options, MetricsRegistry& metrics);
  ~StoreBatcher();

  // Queues a message; `done` runs on a committer thread once the outcome is known. False when
  // the queue is full or the batcher stopped (done is not called).
  bool Submit(NewMessage message, Done done);
  // Commits what is queued, then stops the committers.
  void Stop();
  // Called after every commit that stored something (wakes the event relay).
  void OnCommit(std::function<void()> fn) { on_commit_ = std::move(fn); }

 private:
  struct Pending {
    NewMessage message;
    Done done;
  };
  void Loop();
  void Commit(std::vector<Pending>& batch);

  DeferredStore& store_;
  Options options_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::vector<std::thread> committers_;
  std::function<void()> on_commit_;

  prometheus::Histogram* batch_size_;
  prometheus::Histogram* commit_seconds_;
  prometheus::Counter* stored_;
  prometheus::Counter* duplicate_;
  prometheus::Counter* over_limit_;
  prometheus::Counter* unavailable_;
  prometheus::Counter* failed_;
};

}  // namespace dims::storage
