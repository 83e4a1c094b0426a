// Moves bus events from the transactional outbox (PostgreSQL) to the Redis stream `dims:events`
// and deletes them only after Redis took them: at least once, never lost. One relay appends in
// commit order; with several storage replicas sharing the work (SKIP LOCKED), or after a Redis
// failure rolled a relay back, events of one user can reach the stream out of order, so
// consumers order them by the store version they carry.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "metrics.h"
#include "periodic_task.h"
#include "postgres_pool.h"
#include "redis_pool.h"

namespace dims::storage {

class EventRelay {
 public:
  EventRelay(PostgresPool& postgres, std::shared_ptr<RedisPool> redis, MetricsRegistry& metrics);

  // Something was committed: publish soon rather than at the next poll.
  void Wake() { task_.Wake(); }
  void Stop() { task_.Stop(); }

 private:
  void Relay();
  // Publishes the events of up to kRowsPerRelay outbox rows; returns how many rows it took.
  size_t PublishBatch();
  // Adds the XADDs of up to kRowsPerRelay per-event rows of the pre-0002 outbox, deleted in
  // `tx`; returns how many rows it took.
  size_t DrainLegacyOutbox(pqxx::work& tx, std::vector<std::vector<std::string>>& commands);

  PostgresPool& postgres_;
  std::shared_ptr<RedisPool> redis_;
  prometheus::Counter* published_;
  prometheus::Counter* failures_;
  prometheus::Counter* dropped_;
  bool legacy_outbox_ = true;  // relay thread only
  PeriodicTask task_;          // last: starts once everything above is ready
};

}  // namespace dims::storage
