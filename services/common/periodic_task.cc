#include "periodic_task.h"

#include "log.h"
#include "thread_name.h"

namespace dims {

PeriodicTask::PeriodicTask(std::string name, std::chrono::milliseconds interval,
                           std::function<void()> fn, bool run_first)
    : name_(std::move(name)), interval_(interval), fn_(std::move(fn)) {
  thread_ = std::thread([this, run_first] { Loop(run_first); });
}

PeriodicTask::~PeriodicTask() { Stop(); }

void PeriodicTask::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  wake_.notify_one();
}

void PeriodicTask::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool PeriodicTask::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

void PeriodicTask::Loop(bool run_first) {
  NameThisThread(name_);
  std::unique_lock lock(mu_);
  if (!run_first) wake_.wait_for(lock, interval_, [&] { return stopping_ || woken_; });
  while (!stopping_) {
    woken_ = false;
    lock.unlock();
    try {
      fn_();
    } catch (const std::exception& e) {
      log::Warn("background task failed", {{"task", name_}, {"error", e.what()}});
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [&] { return stopping_ || woken_; });
  }
}

}  // namespace dims
