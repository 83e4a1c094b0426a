#include "event_relay.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "bus_event.h"
#include "log.h"

namespace dims::storage {
namespace {

constexpr int kBatch = 500;
constexpr auto kPollInterval = std::chrono::milliseconds(500);
constexpr auto kGatherTime = std::chrono::milliseconds(20);

}  // namespace

EventRelay::EventRelay(PostgresPool& postgres, std::shared_ptr<RedisPool> redis,
                       MetricsRegistry& metrics)
    : postgres_(postgres),
      redis_(std::move(redis)),
      published_(&metrics
                      .CounterFamily("events_published_total",
                                     "Bus events moved from the outbox to the Redis stream.")
                      .Add({})),
      failures_(&metrics
                     .CounterFamily("event_publish_failures_total",
                                    "Attempts to publish outbox events that failed (retried).")
                     .Add({})),
      task_("outbox relay", kPollInterval, [this] { Relay(); }) {}

void EventRelay::Relay() {
  try {
    while (PublishBatch() == kBatch) {
    }
  } catch (const std::exception& e) {
    failures_->Increment();
    log::Debug("events not published yet", {{"error", e.what()}});
  }
  // Let events gather for a moment: fewer, larger relay transactions cost the database far
  // less than one per commit, and delay an event by at most this much.
  std::this_thread::sleep_for(kGatherTime);
}

size_t EventRelay::PublishBatch() {
  return postgres_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    // Takes the oldest events and deletes them in one statement (by row address, so that no
    // plan can scan the whole, churning table); a Redis failure rolls the delete back.
    auto rows = tx.exec_params(
        "DELETE FROM event_outbox WHERE ctid = ANY(ARRAY("
        " SELECT ctid FROM event_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)) "
        "RETURNING id, recipient_aor, event_type, payload",
        kBatch);
    if (rows.empty()) return size_t{0};
    std::vector<std::pair<int64_t, std::vector<std::string>>> events;
    events.reserve(rows.size());
    for (const auto& r : rows) {
      events.emplace_back(r[0].as<int64_t>(),
                          AppendEventCommand(r[1].as<std::string>(), r[2].as<std::string>(),
                                             pqxx::binarystring(r[3]).str()));
    }
    // RETURNING has no order; the stream gets the events in the order they were written.
    std::sort(events.begin(), events.end());
    std::vector<std::vector<std::string>> commands;
    commands.reserve(events.size());
    for (auto& [id, command] : events) commands.push_back(std::move(command));
    for (const auto& reply : redis_->Pipeline(commands)) {
      if (reply->type == REDIS_REPLY_ERROR) {
        throw RedisError("XADD refused: " + std::string(reply->str, reply->len));
      }
    }
    tx.commit();
    published_->Increment(static_cast<double>(rows.size()));
    return rows.size();
  });
}

}  // namespace dims::storage
