// Runs tasks from any thread on the Sofia-SIP loop thread, in order: how gRPC completions get
// back to the one thread that may touch Sofia objects. An eventfd registered with su_root wakes
// the loop; it is written only when the queue goes from empty to non-empty, so a burst of
// completions costs one wakeup.
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <sofia-sip/su_wait.h>

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>

namespace dims::edge {

class SofiaExecutor {
 public:
  // On the loop thread.
  explicit SofiaExecutor(su_root_t* root);
  ~SofiaExecutor();
  SofiaExecutor(const SofiaExecutor&) = delete;
  SofiaExecutor& operator=(const SofiaExecutor&) = delete;

  // Any thread. False once the executor is closed (the task is dropped).
  bool Post(std::function<void()> task);
  // Loop thread: refuse further tasks (shutdown).
  void Close();
  // Reports the queue's depth and each task's wait (before the first Post).
  void Observe(prometheus::Gauge* depth, prometheus::Histogram* delay) {
    depth_ = depth;
    delay_ = delay;
  }

 private:
  static int OnWakeup(su_root_magic_t* magic, su_wait_t* wait, su_wakeup_arg_t* arg);
  void RunQueued();

  su_root_t* root_;
  int fd_ = -1;
  su_wait_t wait_[1];
  std::mutex mu_;
  using Clock = std::chrono::steady_clock;
  std::deque<std::pair<Clock::time_point, std::function<void()>>> queue_;
  prometheus::Gauge* depth_ = nullptr;
  prometheus::Histogram* delay_ = nullptr;
  bool closed_ = false;
};

}  // namespace dims::edge
