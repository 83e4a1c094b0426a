// The event bus: dims.v1.BusEvent entries on the Redis stream "dims:events" (fields `event`,
// the serialized BusEvent, `type` and `aor`), appended by producers, read by consumer groups.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <chrono>
#include <string>
#include <vector>

#include "dims/v1/delivery.pb.h"

namespace dims {

inline constexpr const char* kEventStream = "dims:events";

// A BusEvent with a fresh id (UUID v4), the current time and the producer filled in.
dims::v1::BusEvent NewBusEvent(const std::string& producer);

// The XADD command that appends one event (the stream is capped near a million entries;
// consumers that fall that far behind rely on the store itself).
std::vector<std::string> AppendEventCommand(const std::string& aor, const std::string& type,
                                            const std::string& serialized_event);

void ToTimestamp(std::chrono::system_clock::time_point t, google::protobuf::Timestamp* out);
std::chrono::system_clock::time_point FromTimestamp(const google::protobuf::Timestamp& t);

}  // namespace dims
