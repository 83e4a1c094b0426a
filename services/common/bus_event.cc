#include "bus_event.h"

#include <cstdio>
#include <random>

namespace dims {
namespace {

std::string NewEventId() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  uint64_t a = random(), b = random();
  // RFC 4122 version 4 layout.
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

}  // namespace

dims::v1::BusEvent NewBusEvent(const std::string& producer) {
  dims::v1::BusEvent event;
  event.set_event_id(NewEventId());
  ToTimestamp(std::chrono::system_clock::now(), event.mutable_emitted_at());
  event.set_producer(producer);
  return event;
}

std::vector<std::string> AppendEventCommand(const std::string& aor, const std::string& type,
                                            const std::string& serialized_event) {
  return {"XADD",  kEventStream,     "MAXLEN", "~",  "1000000", "*",
          "event", serialized_event, "type",   type, "aor",     aor};
}

void ToTimestamp(std::chrono::system_clock::time_point t, google::protobuf::Timestamp* out) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  out->set_seconds(us / 1000000);
  out->set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
}

std::chrono::system_clock::time_point FromTimestamp(const google::protobuf::Timestamp& t) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(t.seconds()) + std::chrono::nanoseconds(t.nanos())));
}

}  // namespace dims
