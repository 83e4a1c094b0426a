// dims-delivery: decides and drives delivery and notification of deferred messages, and
// serves the public Messaging API for other backend systems.
#include "dims/v1/delivery.grpc.pb.h"
#include "dims/v1/messaging.grpc.pb.h"
#include "service_host.h"

int main(int argc, char** argv) {
  auto host =
      dims::ServiceHost::Create({.name = "delivery",
                                 .description = "delivery decisions and runs; public Messaging API",
                                 .default_grpc_port = 50054,
                                 .default_metrics_port = 9104,
                                 .options =
                                     {
                                         dims::RedisOption("event bus and per-user delivery locks"),
                                         dims::PeerOption("settings", "settings", 50052),
                                         dims::PeerOption("storage", "storage", 50053),
                                         dims::PeerOption("relay", "msrp-relay", 50055),
                                     }},
                                argc, argv);
  auto redis = host->ConnectRedis(4);
  auto settings = host->ConnectPeer("settings", "settings");
  auto storage = host->ConnectPeer("storage", "storage");
  auto relay = host->ConnectPeer("relay", "msrp-relay");

  // Every RPC answers UNIMPLEMENTED until issues #5 and #6 land.
  dims::v1::Delivery::CallbackService delivery;
  dims::v1::Messaging::CallbackService messaging;
  host->AddService(&delivery, dims::v1::Delivery::service_full_name());
  host->AddService(&messaging, dims::v1::Messaging::service_full_name());
  return host->Run();
}
