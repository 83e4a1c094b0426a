// The Relay gRPC service (relay.proto) on the callback API: checks each call, then hands it
// to the session's event loop, which finishes it.
#pragma once

#include <chrono>
#include <string>

#include "dims/v1/relay.grpc.pb.h"
#include "push_encapsulation.h"
#include "relay_metrics.h"
#include "session_registry.h"

namespace dims::relay {

struct RelayServiceOptions {
  std::string instance_id;
  std::string relay_address;    // this instance's own Relay gRPC address
  std::string advertised_host;  // in MSRP URIs and SDP
  uint16_t msrp_port = 0;       // the listener's real port
  std::chrono::milliseconds connect_timeout{30000};
  PagerPartType pager_part = PagerPartType::kMessageSip;
};

class RelayService final : public dims::v1::Relay::CallbackService {
 public:
  RelayService(SessionRegistry& registry, const SessionOptions& session_options,
               RelayMetrics& metrics, RelayServiceOptions options);

  grpc::ServerUnaryReactor* OpenSession(grpc::CallbackServerContext* context,
                                        const dims::v1::RelayOpenSessionRequest* request,
                                        dims::v1::RelayOpenSessionResponse* response) override;
  grpc::ServerUnaryReactor* ConnectSession(
      grpc::CallbackServerContext* context, const dims::v1::RelayConnectSessionRequest* request,
      dims::v1::RelayConnectSessionResponse* response) override;
  grpc::ServerBidiReactor<dims::v1::RelayPushRequest, dims::v1::RelayPushResponse>* Push(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* CloseSession(grpc::CallbackServerContext* context,
                                         const dims::v1::RelayCloseSessionRequest* request,
                                         dims::v1::RelayCloseSessionResponse* response) override;
  grpc::ServerUnaryReactor* AcceptIncomingSession(
      grpc::CallbackServerContext* context,
      const dims::v1::RelayAcceptIncomingSessionRequest* request,
      dims::v1::RelayAcceptIncomingSessionResponse* response) override;
  grpc::ServerUnaryReactor* ConfirmIncomingSession(
      grpc::CallbackServerContext* context,
      const dims::v1::RelayConfirmIncomingSessionRequest* request,
      dims::v1::RelayConfirmIncomingSessionResponse* response) override;

  // SIGTERM: no new sessions; running pushes end with UNAVAILABLE and sessions close.
  void Drain();

 private:
  SessionRegistry& registry_;
  const SessionOptions& session_options_;
  RelayMetrics& metrics_;
  RelayServiceOptions options_;
};

}  // namespace dims::relay
