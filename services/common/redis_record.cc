#include "redis_record.h"

#include <hiredis/hiredis.h>

namespace dims {
namespace {

constexpr int kMaxAttempts = 50;

// KEYS[1]; ARGV: expected-present (0/1), expected value, "1" to delete, new value, TTL in ms
// ("0": none).
constexpr const char* kCompareAndSet = R"lua(
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
elseif ARGV[5] == '0' then
  redis.call('SET', KEYS[1], ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
end
return 1
)lua";

}  // namespace

std::optional<std::string> RedisRecord::Get(const std::string& key) {
  auto reply = redis_.Command({"GET", key});
  if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
  if (reply->type != REDIS_REPLY_STRING) throw RedisError("unexpected reply to GET " + key);
  return std::string(reply->str, reply->len);
}

void RedisRecord::Update(
    const std::string& key,
    const std::function<std::optional<Change>(const std::optional<std::string>&)>& change) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto current = Get(key);
    auto next = change(current);
    if (!next) return;
    std::string ttl = std::to_string(std::max<int64_t>(0, next->ttl.count()));
    if (next->value && next->ttl.count() > 0 && ttl == "0") ttl = "1";
    auto reply =
        redis_.Command({"EVAL", kCompareAndSet, "1", key, current ? "1" : "0", current.value_or(""),
                        next->value ? "0" : "1", next->value.value_or(""), ttl});
    if (reply->type == REDIS_REPLY_ERROR) {
      throw RedisError("redis refused the update of " + key + ": " +
                       std::string(reply->str, reply->len));
    }
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) return;
  }
  throw RedisError("too many concurrent changes of " + key);
}

}  // namespace dims
