#include "store_batcher.h"

#include <chrono>

#include "log.h"
#include "thread_name.h"

namespace dims::storage {

StoreBatcher::StoreBatcher(DeferredStore& store, Options options, MetricsRegistry& metrics)
    : store_(store), options_(options) {
  if (options_.committers < 1) options_.committers = 1;
  if (options_.max_batch < 1) options_.max_batch = 1;
  batch_size_ =
      &metrics
           .HistogramFamily("store_batch_size_messages",
                            "Messages committed together in one store transaction.")
           .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
  commit_seconds_ =
      &metrics
           .HistogramFamily("store_commit_duration_seconds",
                            "Time to store one batch, from its first statement to its commit.")
           .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                            0.05, 0.1, 0.25, 0.5, 1, 2.5});
  auto& results = metrics.CounterFamily("stores_total", "Store calls by result.");
  stored_ = &results.Add({{"result", "stored"}});
  duplicate_ = &results.Add({{"result", "duplicate"}});
  over_limit_ = &results.Add({{"result", "over_limit"}});
  unavailable_ = &results.Add({{"result", "unavailable"}});
  failed_ = &results.Add({{"result", "error"}});
  for (int i = 0; i < options_.committers; ++i) committers_.emplace_back([this] { Loop(); });
}

StoreBatcher::~StoreBatcher() { Stop(); }

bool StoreBatcher::Submit(NewMessage message, Done done) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= options_.max_queue) return false;
    queue_.push_back({std::move(message), std::move(done)});
  }
  wake_.notify_one();
  return true;
}

void StoreBatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : committers_) {
    if (t.joinable()) t.join();
  }
  committers_.clear();
}

void StoreBatcher::Loop() {
  NameThisThread("store-committer");
  while (true) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      // Everything that queued while the previous commit ran goes into this one: the batch
      // grows with the load, and a lone message waits for nothing.
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Commit(batch);
  }
}

void StoreBatcher::Commit(std::vector<Pending>& batch) {
  std::vector<NewMessage> messages;
  messages.reserve(batch.size());
  for (auto& p : batch) messages.push_back(std::move(p.message));
  auto start = std::chrono::steady_clock::now();
  try {
    auto outcomes = store_.StoreBatch(messages);
    commit_seconds_->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    batch_size_->Observe(static_cast<double>(batch.size()));
    if (on_commit_) on_commit_();
    for (size_t i = 0; i < batch.size(); ++i) {
      switch (outcomes[i].result) {
        case StoreOutcome::Result::kStored:
          stored_->Increment();
          break;
        case StoreOutcome::Result::kDuplicate:
          duplicate_->Increment();
          break;
        case StoreOutcome::Result::kOverLimit:
          over_limit_->Increment();
          break;
      }
      batch[i].done({StoreResult::Status::kOk, outcomes[i], ""});
    }
  } catch (const StoreUnavailable& e) {
    unavailable_->Increment(static_cast<double>(batch.size()));
    for (auto& p : batch) p.done({StoreResult::Status::kUnavailable, {}, e.what()});
  } catch (const std::exception& e) {
    if (batch.size() > 1) {
      // One message the database refused must not fail the others: store them one by one.
      log::Warn("batch failed; retrying its messages one by one", {{"error", e.what()}});
      for (size_t i = 0; i < batch.size(); ++i) {
        std::vector<Pending> single;
        single.push_back({std::move(messages[i]), std::move(batch[i].done)});
        Commit(single);
      }
      return;
    }
    failed_->Increment();
    log::Error("store failed", {{"error", e.what()}});
    batch[0].done({StoreResult::Status::kInternal, {}, e.what()});
  }
}

}  // namespace dims::storage
