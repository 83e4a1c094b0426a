#include "event_relay.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <thread>

#include "bus_event.h"
#include "log.h"
#include "outbox_row.h"

namespace dims::storage {
namespace {

// Outbox rows per relay transaction; a row holds the events of one store transaction (up to
// --store-batch-max of them, or one per user of a purge batch).
constexpr int kRowsPerRelay = 20;
// XADDs per Redis round trip, so that a relay transaction of many events never sends one
// pipeline larger than Redis answers within its command timeout.
constexpr size_t kCommandsPerPipeline = 500;
constexpr auto kPollInterval = std::chrono::milliseconds(500);
constexpr auto kGatherTime = std::chrono::milliseconds(20);

// Takes the oldest rows of an outbox table (by id) that no other relay holds, deletes them in one
// statement by row address, and returns `columns` of them oldest first, so that the stream gets
// the events in commit order. A Redis failure rolls the delete back.
pqxx::result TakeOldest(pqxx::work& tx, const std::string& table, const std::string& columns) {
  return tx.exec_params("WITH taken AS (DELETE FROM " + table + " WHERE ctid = ANY(ARRAY(" +
                            " SELECT ctid FROM " + table +
                            " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)) RETURNING " + columns +
                            ") SELECT * FROM taken ORDER BY id",
                        kRowsPerRelay);
}

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
      dropped_(&metrics
                    .CounterFamily("outbox_rows_unreadable_total",
                                   "Outbox rows that could not be read and were dropped.")
                    .Add({})),
      task_("outbox relay", kPollInterval, [this] { Relay(); }) {}

void EventRelay::Relay() {
  try {
    while (PublishBatch() == kRowsPerRelay) {
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
    // Events of replicas older than migration 0002 first: they were written before these.
    std::vector<std::vector<std::string>> commands;
    size_t legacy = DrainLegacyOutbox(tx, commands);
    auto rows = TakeOldest(tx, "event_outbox_rows", "id, events");
    for (const auto& r : rows) {
      auto id = r[0].as<int64_t>();
      auto events = ReadOutboxRow(pqxx::binarystring(r[1]).str());
      if (!events) {
        // Written by this code in a committed transaction: cannot happen short of corruption.
        // Keeping the row would stop the relay for good; it is dropped, loudly.
        log::Error("outbox row unreadable; its events are dropped", {{"id", id}});
        dropped_->Increment();
        continue;
      }
      for (const auto& e : *events) commands.push_back(AppendEventCommand(e.aor, e.type, e.event));
    }
    for (size_t from = 0; from < commands.size(); from += kCommandsPerPipeline) {
      size_t to = std::min(commands.size(), from + kCommandsPerPipeline);
      std::vector<std::vector<std::string>> chunk(
          std::make_move_iterator(commands.begin() + static_cast<long>(from)),
          std::make_move_iterator(commands.begin() + static_cast<long>(to)));
      for (const auto& reply : redis_->Pipeline(chunk)) {
        if (reply->type == REDIS_REPLY_ERROR) {
          throw RedisError("XADD refused: " + std::string(reply->str, reply->len));
        }
      }
    }
    tx.commit();  // also when every row taken was unreadable: they must not come back
    published_->Increment(static_cast<double>(commands.size()));  // moved from, still sized
    return std::max(rows.size(), legacy);
  });
}

// Until no storage replica older than migration 0002 runs (a rolling upgrade), such replicas
// still write one row per event into event_outbox; their events go out from here as well.
size_t EventRelay::DrainLegacyOutbox(pqxx::work& tx,
                                     std::vector<std::vector<std::string>>& commands) {
  if (!legacy_outbox_) return 0;
  auto tables = tx.exec(
      "SELECT to_regclass('event_outbox') IS NOT NULL, to_regclass('event_outbox_rows') IS NOT "
      "NULL")[0];
  if (!tables[0].as<bool>()) {
    // Gone once a later migration dropped it; not there yet before the schema is migrated.
    if (tables[1].as<bool>()) legacy_outbox_ = false;
    return 0;
  }
  auto rows = TakeOldest(tx, "event_outbox", "id, recipient_aor, event_type, payload");
  for (const auto& r : rows) {
    commands.push_back(AppendEventCommand(r[1].as<std::string>(), r[2].as<std::string>(),
                                          pqxx::binarystring(r[3]).str()));
  }
  return rows.size();
}

}  // namespace dims::storage
