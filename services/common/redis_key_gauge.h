// A gauge of how many Redis keys match a pattern (registrations held, settings held), counted
// with SCAN every interval on a thread of its own: cheap enough at the interval, and never on a
// request path.
#pragma once

#include <prometheus/gauge.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "redis_pool.h"

namespace dims {

class RedisKeyGauge {
 public:
  RedisKeyGauge(RedisPool& redis, std::string pattern, prometheus::Gauge& gauge,
                std::chrono::seconds interval);
  ~RedisKeyGauge();
  void Stop();

  // One count (SCAN over the whole key space); throws RedisError.
  static long Count(RedisPool& redis, const std::string& pattern);

 private:
  void Loop();

  RedisPool& redis_;
  std::string pattern_;
  prometheus::Gauge& gauge_;
  std::chrono::seconds interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dims
