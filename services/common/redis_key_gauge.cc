#include "redis_key_gauge.h"

#include <hiredis/hiredis.h>

namespace dims {

RedisKeyGauge::RedisKeyGauge(RedisPool& redis, std::string pattern, prometheus::Gauge& gauge,
                             std::chrono::seconds interval)
    : task_("count " + pattern, interval,
            [&redis, pattern, &gauge] { gauge.Set(static_cast<double>(Count(redis, pattern))); }) {}

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

}  // namespace dims
