// Client-side helpers shared by the integration suites: gRPC channels and status text, and the
// event stream read back from Redis.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dims/v1/delivery.pb.h"

namespace dims::testing {

// A channel with a connection of its own (not shared with other channels to the address).
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address);

// "INVALID_ARGUMENT"
std::string CodeName(grpc::StatusCode code);
// "INVALID_ARGUMENT: <message>"
std::string Describe(const grpc::Status& status);

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
