#include "redis_key_gauge.h"

#include <hiredis/hiredis.h>

#include "log.h"

namespace dims {

RedisKeyGauge::RedisKeyGauge(RedisPool& redis, std::string pattern, prometheus::Gauge& gauge,
                             std::chrono::seconds interval)
    : redis_(redis), pattern_(std::move(pattern)), gauge_(gauge), interval_(interval) {
  thread_ = std::thread([this] { Loop(); });
}

RedisKeyGauge::~RedisKeyGauge() { Stop(); }

void RedisKeyGauge::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

long RedisKeyGauge::Count(RedisPool& redis, const std::string& pattern) {
  long count = 0;
  std::string cursor = "0";
  do {
    auto reply = redis.Command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
      throw RedisError("unexpected reply to SCAN");
    }
    cursor.assign(reply->element[0]->str, reply->element[0]->len);
    count += static_cast<long>(reply->element[1]->elements);
  } while (cursor != "0");
  return count;
}

void RedisKeyGauge::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    try {
      gauge_.Set(static_cast<double>(Count(redis_, pattern_)));
    } catch (const std::exception& e) {
      log::Debug("key count failed", {{"pattern", pattern_}, {"error", e.what()}});
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [&] { return stopping_; });
  }
}

}  // namespace dims
