// One I/O thread: an epoll loop with an eventfd for tasks posted from other threads (gRPC
// handlers) and timers. Everything a loop owns (sockets, sessions) is touched only on its
// thread; other threads reach it through Post. Handlers must never block.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace dims::relay {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using TimerId = uint64_t;
  using FdHandler = std::function<void(uint32_t events)>;

  explicit EventLoop(std::string name);
  ~EventLoop();  // stops and joins
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Any thread: runs `task` on the loop soon. Tasks posted after Stop are dropped.
  void Post(std::function<void()> task);
  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_; }

  // Loop thread only, from here on.
  // Runs `task` once the current batch of events is handled (e.g. to flush writes once).
  void RunAtEndOfBatch(std::function<void()> task);
  TimerId RunAfter(std::chrono::milliseconds delay, std::function<void()> task);
  TimerId RunAt(Clock::time_point when, std::function<void()> task);
  void Cancel(TimerId id);  // no effect when it ran already or id is 0
  // epoll events (EPOLLIN, EPOLLOUT, ...) of `fd` go to `handler` until Unwatch.
  void Watch(int fd, uint32_t events, FdHandler handler);
  void Modify(int fd, uint32_t events);
  void Unwatch(int fd);

  // Any thread: ends the loop after the tasks posted so far; joins unless on the loop.
  void Stop();

 private:
  void Run();
  void RunTasks();
  int NextTimeoutMs() const;
  void RunDueTimers();

  std::string name_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::thread::id thread_id_;
  std::atomic<bool> stopping_{false};

  std::mutex mu_;
  std::vector<std::function<void()>> posted_;  // guarded by mu_

  // Loop thread only.
  std::vector<std::function<void()>> end_of_batch_;
  std::unordered_map<int, std::shared_ptr<FdHandler>> handlers_;
  std::multimap<Clock::time_point, TimerId> timer_order_;
  std::unordered_map<TimerId, std::pair<Clock::time_point, std::function<void()>>> timers_;
  TimerId next_timer_ = 1;
};

}  // namespace dims::relay
