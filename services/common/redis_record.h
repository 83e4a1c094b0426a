// One Redis key holding one serialized record (a user's settings, a user's registration),
// changed atomically against writers on other replicas: read, change in C++, write back only
// if the key still holds what was read (compare-and-set in a Lua script), else start over.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "redis_pool.h"

namespace dims {

class RedisRecord {
 public:
  explicit RedisRecord(RedisPool& redis) : redis_(redis) {}

  // The value at `key`, or nothing. Throws RedisError.
  std::optional<std::string> Get(const std::string& key);

  struct Change {
    std::optional<std::string> value;  // nothing: delete the key
    std::chrono::milliseconds ttl{0};  // 0: no expiry
  };
  // Calls `change` with the current value; it returns the new state, or nothing to leave the
  // key as it is. Retries when another writer got there first; throws RedisError when Redis
  // fails or the key keeps changing under it.
  void Update(
      const std::string& key,
      const std::function<std::optional<Change>(const std::optional<std::string>&)>& change);

 private:
  RedisPool& redis_;
};

}  // namespace dims
