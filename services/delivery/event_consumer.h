// Reads the event bus (the Redis stream "dims:events", delivery.proto) as a member of the
// consumer group "delivery": every event reaches one replica at least once. Entries are
// acknowledged only after the handler took them; entries another consumer left pending (it
// died, or Redis failed it) are claimed once they have been idle long enough.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dims/v1/delivery.pb.h"
#include "periodic_task.h"
#include "redis_pool.h"

namespace dims::delivery {

class EventConsumer {
 public:
  struct Options {
    std::string stream;
    std::string group = "delivery";
    std::string consumer;  // this instance
    int batch = 256;
    std::chrono::milliseconds block{1000};  // below the Redis command timeout
    // An entry pending this long at another consumer is taken over.
    std::chrono::milliseconds claim_idle{30000};
    std::chrono::milliseconds claim_every{5000};
  };
  // Gets the events of one read, in stream order, and returns true once it has taken them
  // durably (then they are acknowledged); false leaves them pending, to come again. Entries
  // without a readable event reach it as nothing and are acknowledged with the rest.
  using Handler = std::function<bool(const std::vector<dims::v1::BusEvent>& events)>;

  EventConsumer(RedisPool& redis, Options options, Handler handler);
  ~EventConsumer();
  void Stop();

 private:
  struct Entry {
    std::string id;
    std::optional<dims::v1::BusEvent> event;
  };
  void Poll();
  void EnsureGroup();  // the consumer group, created once
  // Hands a read's entries to the handler and acknowledges them; false when nothing came.
  bool Take(const std::vector<Entry>& entries);
  std::vector<Entry> ReadNew();
  std::vector<Entry> ClaimIdle();

  RedisPool& redis_;
  Options options_;
  Handler handler_;
  bool group_ready_ = false;                            // poll thread only
  std::chrono::steady_clock::time_point next_claim_{};  // poll thread only
  PeriodicTask task_;  // last: starts once everything above is ready
};

}  // namespace dims::delivery
