// A fixed set of threads for blocking work (database and Redis calls) that gRPC reactors and
// other event loops must not do themselves. The queue is bounded: a full pool refuses new work
// at once, so that overload shows up as an error to the caller instead of growing latency.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dims {

class WorkerPool {
 public:
  WorkerPool(std::string name, int threads, size_t max_queue);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false when the queue is full or the pool stopped (the task is not run).
  bool Post(std::function<void()> task);
  // Runs what is queued, then joins the threads. Later Posts are refused.
  void Stop();

 private:
  void Loop();

  std::string name_;
  size_t max_queue_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace dims
