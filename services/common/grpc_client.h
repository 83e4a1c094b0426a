// The one way a DIMS service calls another: one channel per target address, shared by every
// stub, and a deadline on every call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "dims/v1/common.pb.h"

namespace dims {

// The largest gRPC message a DIMS service or client takes: a deferred large-mode message
// (tens of MB, storage's --max-message-bytes) travels whole in one Store, Fetch or Push item.
inline constexpr int kMaxGrpcMessageBytes = 128 << 20;

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

// Sets a deadline `timeout` from now on the context.
void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout);

// The ErrorDetail a failed call carried in its "dims-error-bin" trailer (empty when none).
// Only after the call completed.
dims::v1::ErrorDetail ErrorDetailOf(const grpc::ClientContext& context);

// "UNAVAILABLE" for grpc::StatusCode::UNAVAILABLE: the canonical name, for logs and records.
std::string StatusCodeName(grpc::StatusCode code);

// True when the grpc.health.v1 Check of `service` ("" = the whole server) says SERVING.
bool CheckHealth(grpc::Channel& channel, const std::string& service,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

// Stubs of one service, one per instance address: calls about a client's flow or dialog go to
// the instance holding it (EdgeControl), never through a load-balanced name. Thread-safe; the
// stubs live as long as this object.
template <typename Service>
class StubsByAddress {
 public:
  typename Service::Stub& At(const std::string& address) {
    std::lock_guard lock(mu_);
    auto& stub = stubs_[address];
    if (!stub) stub = Service::NewStub(MakeChannel(address));
    return *stub;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<typename Service::Stub>> stubs_;
};

}  // namespace dims
