// Group commit: concurrent calls wait in one queue; a committer takes everything waiting (up to a
// batch limit) and commits it in one transaction, then answers each caller, only after the
// commit. With a batch limit of 1, every call gets its own transaction (the baseline the
// benchmark compares against). StoreBatcher and AckBatcher are its two uses.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deferred_store.h"
#include "log.h"
#include "metrics.h"
#include "thread_name.h"

namespace dims::storage {

template <typename Outcome>
struct CommitResult {
  enum class Status { kOk, kUnavailable, kInternal };
  Status status = Status::kOk;
  Outcome outcome;    // with kOk
  std::string error;  // otherwise
};

template <typename Request, typename Outcome>
class GroupCommit {
 public:
  using Result = CommitResult<Outcome>;
  using Done = std::function<void(const Result&)>;
  // Commits a batch in one transaction and returns one outcome per request, in order. Throws
  // StoreUnavailable when nothing was committed because the database is away.
  using CommitFn = std::function<std::vector<Outcome>(const std::vector<Request>&)>;

  struct Options {
    int committers = 2;
    size_t max_batch = 256;
    size_t max_queue = 20000;
  };
  // How the batches show in the metrics: dims_storage_<name>_batch_size_<unit>,
  // dims_storage_<name>_commit_duration_seconds, dims_storage_<name>_queued_<unit> (waiting for
  // a committer), and the calls by result in <calls_total> (unavailable and error here; the
  // other results through `count`).
  struct Naming {
    std::string name, unit, calls_total, calls_help;
  };

  GroupCommit(Options options, const Naming& naming, MetricsRegistry& metrics, CommitFn commit,
              std::function<void(const Outcome&)> count)
      : options_(options), naming_(naming), commit_(std::move(commit)), count_(std::move(count)) {
    if (options_.committers < 1) options_.committers = 1;
    if (options_.max_batch < 1) options_.max_batch = 1;
    batch_size_ = &metrics
                       .HistogramFamily(naming.name + "_batch_size_" + naming.unit,
                                        "Calls (" + naming.unit + ") committed together in one " +
                                            naming.name + " transaction.")
                       .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128,
                                                                        256, 512});
    commit_seconds_ =
        &metrics
             .HistogramFamily(naming.name + "_commit_duration_seconds",
                              "Time to commit one " + naming.name +
                                  " batch, from its first statement to its commit.")
             .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01,
                                                              0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
    queued_ = &metrics
                   .GaugeFamily(naming.name + "_queued_" + naming.unit,
                                "Calls (" + naming.unit + ") waiting for a " + naming.name +
                                    " committer; beyond the queue's limit calls are refused.")
                   .Add({});
    auto& results = metrics.CounterFamily(naming.calls_total, naming.calls_help);
    unavailable_ = &results.Add({{"result", "unavailable"}});
    failed_ = &results.Add({{"result", "error"}});
    for (int i = 0; i < options_.committers; ++i) committers_.emplace_back([this] { Loop(); });
  }
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;
  ~GroupCommit() { Stop(); }

  // Queues a request; `done` runs on a committer thread once the outcome is known. False when
  // the queue is full or the batcher stopped (done is not called).
  bool Submit(Request request, Done done) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || queue_.size() >= options_.max_queue) return false;
      queue_.push_back({std::move(request), std::move(done)});
      queued_->Set(static_cast<double>(queue_.size()));
    }
    wake_.notify_one();
    return true;
  }

  // Commits what is queued, then stops the committers.
  void Stop() {
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

  // Called after every commit (wakes the event relay).
  void OnCommit(std::function<void()> fn) { on_commit_ = std::move(fn); }

 private:
  struct Pending {
    Request request;
    Done done;
  };

  void Loop() {
    NameThisThread(naming_.name + "-committer");
    while (true) {
      std::vector<Pending> batch;
      {
        std::unique_lock lock(mu_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        // Everything that queued while the previous commit ran goes into this one: the batch
        // grows with the load, and a lone call waits for nothing.
        while (!queue_.empty() && batch.size() < options_.max_batch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        queued_->Set(static_cast<double>(queue_.size()));
      }
      Commit(batch);
    }
  }

  void Commit(std::vector<Pending>& batch) {
    std::vector<Request> requests;
    requests.reserve(batch.size());
    for (auto& p : batch) requests.push_back(std::move(p.request));
    auto start = std::chrono::steady_clock::now();
    try {
      auto outcomes = commit_(requests);
      commit_seconds_->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      batch_size_->Observe(static_cast<double>(batch.size()));
      if (on_commit_) on_commit_();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (count_) count_(outcomes[i]);
        batch[i].done({Result::Status::kOk, std::move(outcomes[i]), ""});
      }
    } catch (const StoreUnavailable& e) {
      unavailable_->Increment(static_cast<double>(batch.size()));
      for (auto& p : batch) p.done({Result::Status::kUnavailable, {}, e.what()});
    } catch (const std::exception& e) {
      if (batch.size() > 1) {
        // One request the database refused must not fail the others: commit them one by one.
        log::Warn("batch failed; retrying its calls one by one",
                  {{"batch", naming_.name}, {"error", e.what()}});
        for (size_t i = 0; i < batch.size(); ++i) {
          std::vector<Pending> single;
          single.push_back({std::move(requests[i]), std::move(batch[i].done)});
          Commit(single);
        }
        return;
      }
      failed_->Increment();
      log::Error("commit failed", {{"batch", naming_.name}, {"error", e.what()}});
      batch[0].done({Result::Status::kInternal, {}, e.what()});
    }
  }

  Options options_;
  Naming naming_;
  CommitFn commit_;
  std::function<void(const Outcome&)> count_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::vector<std::thread> committers_;
  std::function<void()> on_commit_;

  prometheus::Gauge* queued_;
  prometheus::Histogram* batch_size_;
  prometheus::Histogram* commit_seconds_;
  prometheus::Counter* unavailable_;
  prometheus::Counter* failed_;
};

}  // namespace dims::storage
