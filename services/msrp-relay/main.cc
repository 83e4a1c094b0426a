// dims-msrp-relay: the MSRP (RFC 4975) endpoint that carries push and large-message sessions.
#include "dims/v1/relay.grpc.pb.h"
#include "service_host.h"

int main(int argc, char** argv) {
  auto host = dims::ServiceHost::Create(
      {.name = "msrp-relay",
       .description = "MSRP sessions for pushing deferred messages and large messages",
       .default_grpc_port = 50055,
       .default_metrics_port = 9105,
       .options = {dims::PeerOption("storage", "storage (inbound large messages)", 50053)}},
      argc, argv);
  auto storage = host->ConnectPeer("storage", "storage");

  dims::v1::Relay::CallbackService relay;  // every RPC: UNIMPLEMENTED until issue #6 lands
  host->AddService(&relay, dims::v1::Relay::service_full_name());
  return host->Run();
}
