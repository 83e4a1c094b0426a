// A gauge of how many Redis keys match a pattern (registrations held, settings held), counted
// with SCAN every interval in the background: cheap enough at the interval, and never on a
// request path.
#pragma once

#include <prometheus/gauge.h>

#include <chrono>
#include <string>

#include "periodic_task.h"
#include "redis_pool.h"

namespace dims {

class RedisKeyGauge {
 public:
  RedisKeyGauge(RedisPool& redis, std::string pattern, prometheus::Gauge& gauge,
                std::chrono::seconds interval);
  void Stop() { task_.Stop(); }

  // One count (SCAN over the whole key space); throws RedisError.
  static long Count(RedisPool& redis, const std::string& pattern);

 private:
  PeriodicTask task_;
};

}  // namespace dims
