#include "event_consumer.h"

#include <hiredis/hiredis.h>

#include <thread>

#include "log.h"

namespace dims::delivery {
namespace {

std::string Text(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
               r->type == REDIS_REPLY_ERROR)
             ? std::string(r->str, r->len)
             : std::string();
}

// One stream entry, [id, [field, value, ...]], with its `event` field decoded.
std::optional<std::pair<std::string, std::optional<dims::v1::BusEvent>>> ParseEntry(
    const redisReply* entry) {
  if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) return std::nullopt;
  std::string id = Text(entry->element[0]);
  std::optional<dims::v1::BusEvent> event;
  const redisReply* fields = entry->element[1];
  for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
    if (Text(fields->element[i]) != "event") continue;
    dims::v1::BusEvent decoded;
    if (decoded.ParseFromString(Text(fields->element[i + 1]))) event = std::move(decoded);
  }
  return std::make_pair(std::move(id), std::move(event));
}

}  // namespace

EventConsumer::EventConsumer(RedisPool& redis, Options options, Handler handler)
    : redis_(redis),
      options_(std::move(options)),
      handler_(std::move(handler)),
      task_("delivery-events", std::chrono::milliseconds(1), [this] { Poll(); }) {}

EventConsumer::~EventConsumer() { Stop(); }

void EventConsumer::Stop() { task_.Stop(); }

void EventConsumer::EnsureGroup() {
  if (group_ready_) return;
  // From the stream's start: events appended before delivery ever ran are handled too.
  auto reply =
      redis_.Command({"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"});
  if (reply->type == REDIS_REPLY_ERROR && Text(reply.get()).rfind("BUSYGROUP", 0) != 0) {
    throw RedisError("creating the consumer group: " + Text(reply.get()));
  }
  group_ready_ = true;
}

void EventConsumer::Poll() {
  try {
    EnsureGroup();
    auto now = std::chrono::steady_clock::now();
    if (now >= next_claim_) {
      next_claim_ = now + options_.claim_every;
      while (!task_.stopping() && Take(ClaimIdle())) {
      }
    }
    Take(ReadNew());
  } catch (const RedisError& e) {
    log::Warn("event bus not read; retrying", {{"error", e.what()}});
    // The group may be gone with the stream (a Redis flush): create it again.
    group_ready_ = false;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

std::vector<EventConsumer::Entry> EventConsumer::ReadNew() {
  auto reply =
      redis_.Command({"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT",
                      std::to_string(options_.batch), "BLOCK",
                      std::to_string(options_.block.count()), "STREAMS", options_.stream, ">"});
  if (reply->type == REDIS_REPLY_ERROR) throw RedisError("reading events: " + Text(reply.get()));
  std::vector<Entry> entries;
  if (reply->type != REDIS_REPLY_ARRAY) return entries;  // nothing within the block time
  for (size_t s = 0; s < reply->elements; ++s) {
    const redisReply* stream = reply->element[s];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) continue;
    const redisReply* list = stream->element[1];
    for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements; ++i) {
      if (auto parsed = ParseEntry(list->element[i])) {
        entries.push_back({std::move(parsed->first), std::move(parsed->second)});
      }
    }
  }
  return entries;
}

std::vector<EventConsumer::Entry> EventConsumer::ClaimIdle() {
  auto reply = redis_.Command({"XAUTOCLAIM", options_.stream, options_.group, options_.consumer,
                               std::to_string(options_.claim_idle.count()), "0-0", "COUNT",
                               std::to_string(options_.batch)});
  if (reply->type == REDIS_REPLY_ERROR) throw RedisError("claiming events: " + Text(reply.get()));
  std::vector<Entry> entries;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) return entries;
  const redisReply* list = reply->element[1];
  for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements; ++i) {
    if (auto parsed = ParseEntry(list->element[i])) {
      entries.push_back({std::move(parsed->first), std::move(parsed->second)});
    }
  }
  if (!entries.empty()) log::Info("took over pending events", {{"count", entries.size()}});
  return entries;
}

bool EventConsumer::Take(const std::vector<Entry>& entries) {
  if (entries.empty()) return false;
  std::vector<dims::v1::BusEvent> events;
  for (const auto& e : entries) {
    if (e.event) {
      events.push_back(*e.event);
    } else {
      log::Warn("bus entry without a readable event; acknowledged", {{"id", e.id}});
    }
  }
  if (!handler_(events)) return false;
  std::vector<std::string> ack = {"XACK", options_.stream, options_.group};
  for (const auto& e : entries) ack.push_back(e.id);
  auto reply = redis_.Command(ack);
  if (reply->type == REDIS_REPLY_ERROR) throw RedisError("acknowledging: " + Text(reply.get()));
  return true;
}

}  // namespace dims::delivery
