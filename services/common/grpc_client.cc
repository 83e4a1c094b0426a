#include "grpc_client.h"

#include "grpc/health/v1/health.grpc.pb.h"

namespace dims {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  // Reconnect quickly after a peer restarts, instead of the default 20 s ceiling.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

dims::v1::ErrorDetail ErrorDetailOf(const grpc::ClientContext& context) {
  dims::v1::ErrorDetail detail;
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find("dims-error-bin"); it != trailers.end()) {
    detail.ParseFromArray(it->second.data(), static_cast<int>(it->second.size()));
  }
  return detail;
}

std::string StatusCodeName(grpc::StatusCode code) {
  static const char* names[] = {"OK",
                                "CANCELLED",
                                "UNKNOWN",
                                "INVALID_ARGUMENT",
                                "DEADLINE_EXCEEDED",
                                "NOT_FOUND",
                                "ALREADY_EXISTS",
                                "PERMISSION_DENIED",
                                "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION",
                                "ABORTED",
                                "OUT_OF_RANGE",
                                "UNIMPLEMENTED",
                                "INTERNAL",
                                "UNAVAILABLE",
                                "DATA_LOSS",
                                "UNAUTHENTICATED"};
  int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? names[i] : std::to_string(i);
}

bool CheckHealth(grpc::Channel& channel, const std::string& service,
                 std::chrono::milliseconds timeout) {
  auto stub = grpc::health::v1::Health::NewStub(
      std::shared_ptr<grpc::ChannelInterface>(&channel, [](grpc::ChannelInterface*) {}));
  grpc::ClientContext context;
  SetDeadline(context, timeout);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  return status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

}  // namespace dims
