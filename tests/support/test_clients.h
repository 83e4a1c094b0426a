// Client-side helpers shared by the integration suites: gRPC channels and status text, and the
// event stream read back from Redis.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dims/v1/common.pb.h"
#include "dims/v1/delivery.pb.h"
#include "dims/v1/storage.grpc.pb.h"
#include "dims_stack.h"  // NewChannel

namespace dims::testing {

// One unary call of `stub` with a deadline of `timeout`. `detail` receives the
// "dims-error-bin" ErrorDetail (cleared when the answer carries none; `has_detail` says
// whether it did).
template <typename Stub, typename Req, typename Resp>
grpc::Status CallWithDeadline(Stub& stub,
                              grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                              const Req& request, Resp* response, dims::v1::ErrorDetail* detail,
                              bool* has_detail, std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Status status = (stub.*method)(&context, request, response);
  if (detail) detail->Clear();
  if (has_detail) *has_detail = false;
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find("dims-error-bin"); it != trailers.end()) {
    if (detail) detail->ParseFromArray(it->second.data(), static_cast<int>(it->second.size()));
    if (has_detail) *has_detail = true;
  }
  return status;
}

// "INVALID_ARGUMENT"
std::string CodeName(grpc::StatusCode code);
// "INVALID_ARGUMENT: <message>"
std::string Describe(const grpc::Status& status);

// The summary of `aor`'s store (counts and version, no entries), as storage gives it (a test
// failure when storage does not answer).
dims::v1::StoreSummary StoreSummaryOf(dims::v1::Storage::Stub& storage, const std::string& aor);

// The value at `key` on the Redis at `redis_port`; nothing when there is none (a test failure
// when Redis cannot be read).
std::optional<std::string> RedisGet(int redis_port, const std::string& key);
// The values of the hash at `key` (the fields left out); empty when there is none.
std::vector<std::string> RedisHashValues(int redis_port, const std::string& key);

// Reads the new entries of "dims:events" as `consumer` of consumer group `group` and never
// acknowledges them: a consumer that died with the events it took. Returns how many it took.
size_t TakeEventsAndDie(int redis_port, const std::string& group, const std::string& consumer);

// One entry of the event stream "dims:events".
struct StreamEntry {
  std::string id;
  std::map<std::string, std::string> fields;  // event, type, aor
  dims::v1::BusEvent event;                   // decoded from the `event` field
  bool decoded = false;
};

// Every entry of "dims:events" on the Redis at `redis_port`, oldest first (a test failure
// when Redis cannot be read).
std::vector<StreamEntry> ReadEventStream(int redis_port);

}  // namespace dims::testing
