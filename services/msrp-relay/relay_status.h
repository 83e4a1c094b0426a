// The outcome of a Relay call as the session layer decides it, before it meets a gRPC
// context: status code, message and the ErrorDetail of the "dims-error-bin" trailer.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "dims/v1/common.pb.h"

namespace dims::relay {

struct RelayStatus {
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
  dims::v1::ErrorDetail detail;
  bool ok() const { return code == grpc::StatusCode::OK; }
};

RelayStatus RelayError(grpc::StatusCode code, std::string message, std::string reason,
                       std::string field = "");

// The status to finish a call with (the detail in its trailer when it has a reason).
grpc::Status ToGrpcStatus(grpc::CallbackServerContext* context, const RelayStatus& status);

}  // namespace dims::relay
