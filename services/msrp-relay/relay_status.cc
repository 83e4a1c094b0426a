#include "relay_status.h"

#include "grpc_call.h"

namespace dims::relay {

RelayStatus RelayError(grpc::StatusCode code, std::string message, std::string reason,
                       std::string field) {
  RelayStatus status{.code = code, .message = std::move(message)};
  status.detail.set_reason(std::move(reason));
  status.detail.set_field(std::move(field));
  return status;
}

grpc::Status ToGrpcStatus(grpc::CallbackServerContext* context, const RelayStatus& status) {
  if (status.ok()) return grpc::Status::OK;
  if (status.detail.reason().empty()) return grpc::Status(status.code, status.message);
  return Fail(context, status.code, status.message, status.detail);
}

}  // namespace dims::relay
