// dims-sip-edge: the only SIP speaker of DIMS (Sofia-SIP), and the EdgeControl gRPC API through
// which other services send requests towards clients.
#include <set>
#include <string>

#include "dims/v1/edge_control.grpc.pb.h"
#include "log.h"
#include "publish_handler.h"
#include "service_host.h"
#include "sip_stack.h"
#include "version.h"

int main(int argc, char** argv) {
  namespace validate = dims::validate;
  auto host = dims::ServiceHost::Create(
      {.name = "sip-edge",
       .description = "SIP edge (Sofia-SIP) and the EdgeControl gRPC API",
       .default_grpc_port = 50051,
       .default_metrics_port = 9101,
       .options =
           {
               {"sip-listen", "127.0.0.1:5060", "SIP address, UDP and TCP (host:port)",
                validate::HostPortValue()},
               {"domains", "dims.test", "SIP domains DIMS serves (comma-separated)",
                validate::DomainList()},
               dims::RedisOption("registrations and subscriptions"),
               dims::PeerOption("settings", "settings", 50052),
               dims::PeerOption("storage", "storage", 50053),
               dims::PeerOption("delivery", "delivery", 50054),
           }},
      argc, argv);
  const auto& config = host->config();

  auto sip_listen = config.GetHostPort("sip-listen");
  const std::string allowed_events = "poc-settings, im-settings";
  dims::edge::SipStack sip({.host = sip_listen.host,
                            .port = sip_listen.port,
                            .server_header = dims::ReleaseToken(),
                            .allowed_events = allowed_events});
  auto domains = config.GetList("domains");
  auto settings = host->ConnectPeer("settings", "settings");
  dims::edge::PublishHandler publish(
      sip, settings, std::set<std::string>(domains.begin(), domains.end()), allowed_events);
  sip.OnPublish([&publish](const dims::edge::IncomingPublish& p) { publish.Handle(p); });
  std::string error;
  if (!sip.Start(&error)) {
    dims::log::Error("cannot start SIP", {{"error", error}});
    return 1;
  }
  dims::log::Info("SIP listening", {{"address", sip_listen.ToString()}, {"transports", "udp,tcp"}});

  auto redis = host->ConnectRedis(4);
  host->AddDependency("sip", [&] { return sip.running(); });
  auto storage = host->ConnectPeer("storage", "storage");
  auto delivery = host->ConnectPeer("delivery", "delivery");

  dims::v1::EdgeControl::CallbackService edge_control;  // UNIMPLEMENTED until issue #5 lands
  host->AddService(&edge_control, dims::v1::EdgeControl::service_full_name());
  host->OnDrain([&] { sip.Stop(); });
  return host->Run();
}
