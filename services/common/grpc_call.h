// Helpers for gRPC handlers, shared by every service: precise failures with the
// machine-readable ErrorDetail (common.proto), AOR arguments, and blocking work moved off the
// gRPC threads.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "dims/v1/common.pb.h"
#include "worker_pool.h"

namespace dims {

// Thrown by adapters when their backing store (PostgreSQL, Redis) cannot be reached: the
// operation changed nothing and may be retried. Handlers answer UNAVAILABLE.
class DependencyUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A failed call: the status with its message, and `detail` in the "dims-error-bin" trailer.
grpc::Status Fail(grpc::CallbackServerContext* context, grpc::StatusCode code,
                  const std::string& message, dims::v1::ErrorDetail detail);
grpc::Status Fail(grpc::CallbackServerContext* context, grpc::StatusCode code,
                  const std::string& message, const std::string& reason,
                  const std::string& field = "");

// The normalised AOR, or nothing with *error set to INVALID_ARGUMENT (INVALID_AOR).
std::optional<std::string> NormalizedAor(const dims::v1::Aor& aor, const std::string& field,
                                         grpc::CallbackServerContext* context, grpc::Status* error);
// The same for unary calls: on a bad AOR the call is finished with that error.
std::optional<std::string> AorOrFinish(const dims::v1::Aor& aor, const std::string& field,
                                       grpc::CallbackServerContext* context,
                                       grpc::ServerUnaryReactor* reactor);

// Runs `work` on the pool and finishes the call with the status it returns. A
// DependencyUnavailable becomes UNAVAILABLE, anything else INTERNAL; a full pool answers
// UNAVAILABLE at once.
void RunOnPool(WorkerPool& pool, grpc::CallbackServerContext* context,
               grpc::ServerUnaryReactor* reactor, std::function<grpc::Status()> work);

}  // namespace dims
