// The one way a DIMS service calls another: one channel per target address, shared by every
// stub, and a deadline on every call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "dims/v1/common.pb.h"

namespace dims {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

// Sets a deadline `timeout` from now on the context.
void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout);

// The ErrorDetail a failed call carried in its "dims-error-bin" trailer (empty when none).
// Only after the call completed.
dims::v1::ErrorDetail ErrorDetailOf(const grpc::ClientContext& context);

// True when the grpc.health.v1 Check of `service` ("" = the whole server) says SERVING.
bool CheckHealth(grpc::Channel& channel, const std::string& service,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

}  // namespace dims
