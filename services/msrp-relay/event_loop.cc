#include "event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <stdexcept>

#include "log.h"
#include "thread_name.h"

namespace dims::relay {

EventLoop::EventLoop(std::string name) : name_(std::move(name)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error("cannot create an event loop");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &started] {
    thread_id_ = std::this_thread::get_id();
    started.set_value();
    Run();
  });
  ready.wait();
}

EventLoop::~EventLoop() {
  Stop();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void EventLoop::Post(std::function<void()> task) {
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    was_empty = posted_.empty();
    posted_.push_back(std::move(task));
  }
  // One wake-up per batch of posts: the loop takes them all at once.
  if (was_empty) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  }
}

void EventLoop::RunAtEndOfBatch(std::function<void()> task) {
  end_of_batch_.push_back(std::move(task));
}

EventLoop::TimerId EventLoop::RunAfter(std::chrono::milliseconds delay,
                                       std::function<void()> task) {
  return RunAt(Clock::now() + delay, std::move(task));
}

EventLoop::TimerId EventLoop::RunAt(Clock::time_point when, std::function<void()> task) {
  TimerId id = next_timer_++;
  timer_order_.emplace(when, id);
  timers_.emplace(id, std::make_pair(when, std::move(task)));
  return id;
}

void EventLoop::Cancel(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  auto [first, last] = timer_order_.equal_range(it->second.first);
  for (auto o = first; o != last; ++o) {
    if (o->second == id) {
      timer_order_.erase(o);
      break;
    }
  }
  timers_.erase(it);
}

void EventLoop::Watch(int fd, uint32_t events, FdHandler handler) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  handlers_[fd] = std::make_shared<FdHandler>(std::move(handler));
}

void EventLoop::Modify(int fd, uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
}

void EventLoop::Unwatch(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

void EventLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_.exchange(true)) {
      if (thread_.joinable() && !InLoopThread()) thread_.join();
      return;
    }
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  if (thread_.joinable() && !InLoopThread()) thread_.join();
}

int EventLoop::NextTimeoutMs() const {
  if (!end_of_batch_.empty()) return 0;
  if (timer_order_.empty()) return -1;
  auto wait =
      std::chrono::ceil<std::chrono::milliseconds>(timer_order_.begin()->first - Clock::now());
  return wait.count() < 0 ? 0 : static_cast<int>(std::min<long>(wait.count(), 60000));
}

void EventLoop::RunDueTimers() {
  auto now = Clock::now();
  while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
    TimerId id = timer_order_.begin()->second;
    timer_order_.erase(timer_order_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    auto task = std::move(it->second.second);
    timers_.erase(it);
    task();
  }
}

void EventLoop::RunTasks() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
}

void EventLoop::Run() {
  NameThisThread(name_);
  epoll_event events[128];
  while (true) {
    int n = epoll_wait(epoll_fd_, events, 128, NextTimeoutMs());
    if (n < 0 && errno != EINTR) {
      log::Error("epoll_wait failed", {{"loop", name_}, {"errno", errno}});
      break;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof count);
        continue;
      }
      auto it = handlers_.find(fd);
      if (it == handlers_.end()) continue;
      auto handler = it->second;  // kept alive while it runs, even if it unwatches itself
      (*handler)(events[i].events);
    }
    RunTasks();
    RunDueTimers();
    while (!end_of_batch_.empty()) {
      auto batch = std::move(end_of_batch_);
      end_of_batch_.clear();
      for (auto& task : batch) task();
    }
    if (stopping_) {
      RunTasks();
      break;
    }
  }
}

}  // namespace dims::relay
