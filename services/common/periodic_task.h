// Runs a function on a thread of its own every interval (and at once when woken), until
// stopped: the one shape of every background loop (retention sweeps, outbox relay, gauges).
// The thread starts in the constructor and may run the function before it returns: an owner
// whose function uses the task (stopping(), Wake()) holds it as its last member, never behind a
// pointer assigned afterwards (that pointer is still null on the first run).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace dims {

class PeriodicTask {
 public:
  // `run_first` false: the first run comes after one interval.
  PeriodicTask(std::string name, std::chrono::milliseconds interval, std::function<void()> fn,
               bool run_first = true);
  ~PeriodicTask();
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  // Runs the function again soon, without waiting for the interval.
  void Wake();
  // Waits for a run in progress, then joins.
  void Stop();
  bool stopping() const;

 private:
  void Loop(bool run_first);

  std::string name_;
  std::chrono::milliseconds interval_;
  std::function<void()> fn_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dims
