#include "sofia_executor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

#include "log.h"

namespace dims::edge {

SofiaExecutor::SofiaExecutor(su_root_t* root) : root_(root) {
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error("eventfd failed");
  su_wait_create(wait_, fd_, SU_WAIT_IN);
  if (su_root_register(root_, wait_, &SofiaExecutor::OnWakeup,
                       reinterpret_cast<su_wakeup_arg_t*>(this), 0) < 0) {
    close(fd_);
    throw std::runtime_error("su_root_register failed");
  }
}

SofiaExecutor::~SofiaExecutor() {
  Close();
  su_root_unregister(root_, wait_, &SofiaExecutor::OnWakeup,
                     reinterpret_cast<su_wakeup_arg_t*>(this));
  close(fd_);
}

bool SofiaExecutor::Post(std::function<void()> task) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    wake = queue_.empty();
    queue_.emplace_back(Clock::now(), std::move(task));
    if (depth_) depth_->Set(static_cast<double>(queue_.size()));
  }
  if (wake) {
    uint64_t one = 1;
    if (write(fd_, &one, sizeof one) < 0) {
      // EAGAIN only when the counter is saturated, which means a wakeup is pending anyway.
    }
  }
  return true;
}

void SofiaExecutor::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
}

int SofiaExecutor::OnWakeup(su_root_magic_t*, su_wait_t*, su_wakeup_arg_t* arg) {
  reinterpret_cast<SofiaExecutor*>(arg)->RunQueued();
  return 0;
}

void SofiaExecutor::RunQueued() {
  uint64_t count;
  if (read(fd_, &count, sizeof count) < 0) {
    // Nothing to read: another wakeup already drained the queue.
  }
  std::deque<std::pair<Clock::time_point, std::function<void()>>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(queue_);
    if (depth_) depth_->Set(0);
  }
  auto now = Clock::now();
  for (auto& [queued_at, task] : tasks) {
    if (delay_) delay_->Observe(std::chrono::duration<double>(now - queued_at).count());
    try {
      task();
    } catch (const std::exception& e) {
      log::Error("task on the SIP loop failed", {{"error", e.what()}});
    }
  }
}

}  // namespace dims::edge
