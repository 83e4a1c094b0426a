// Moves bus events from the transactional outbox (PostgreSQL) to the Redis stream `dims:events`
// and deletes them only after Redis took them: at least once, never lost, in commit order per
// user. Several storage replicas share the work (SKIP LOCKED).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "metrics.h"
#include "postgres_pool.h"
#include "redis_pool.h"

namespace dims::storage {

class EventRelay {
 public:
  EventRelay(PostgresPool& postgres, std::shared_ptr<RedisPool> redis, MetricsRegistry& metrics);
  ~EventRelay();

  // Something was committed: publish soon rather than at the next poll.
  void Wake();
  void Stop();

 private:
  void Loop();
  // Publishes one batch; returns how many events went out.
  size_t PublishBatch();

  PostgresPool& postgres_;
  std::shared_ptr<RedisPool> redis_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool pending_ = false;
  bool stopping_ = false;
  std::thread thread_;
  prometheus::Counter* published_;
  prometheus::Counter* failures_;
};

}  // namespace dims::storage
