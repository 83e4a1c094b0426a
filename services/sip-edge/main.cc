// dims-sip-edge: the only SIP speaker of DIMS (Sofia-SIP), and the EdgeControl gRPC API through
// which other services send requests towards clients.
#include <string>

#include "dims/v1/edge_control.grpc.pb.h"
#include "grpc_client.h"
#include "log.h"
#include "redis_pool.h"
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
               {"redis-addr", "127.0.0.1:6379", "Redis holding registrations (host:port)",
                validate::HostPortValue()},
               {"settings-addr", "127.0.0.1:50052", "settings service (host:port)",
                validate::HostPortValue()},
               {"storage-addr", "127.0.0.1:50053", "storage service (host:port)",
                validate::HostPortValue()},
               {"delivery-addr", "127.0.0.1:50054", "delivery service (host:port)",
                validate::HostPortValue()},
           }},
      argc, argv);
  const auto& config = host->config();

  auto sip_listen = config.GetHostPort("sip-listen");
  dims::edge::SipStack sip(
      {.host = sip_listen.host, .port = sip_listen.port, .server_header = dims::ReleaseToken()});
  std::string error;
  if (!sip.Start(&error)) {
    dims::log::Error("cannot start SIP", {{"error", error}});
    return 1;
  }
  dims::log::Info("SIP listening", {{"address", sip_listen.ToString()}, {"transports", "udp,tcp"}});

  auto redis_addr = config.GetHostPort("redis-addr");
  dims::RedisPool redis({.host = redis_addr.host, .port = redis_addr.port, .size = 4});
  host->AddDependency("redis", [&] { return redis.Ping(); });
  host->AddDependency("sip", [&] { return sip.running(); });
  auto settings = dims::MakeChannel(config.Get("settings-addr"));
  auto storage = dims::MakeChannel(config.Get("storage-addr"));
  auto delivery = dims::MakeChannel(config.Get("delivery-addr"));
  host->AddDependency(
      "settings", [&] { return dims::CheckHealth(*settings, ""); }, false);
  host->AddDependency(
      "storage", [&] { return dims::CheckHealth(*storage, ""); }, false);
  host->AddDependency(
      "delivery", [&] { return dims::CheckHealth(*delivery, ""); }, false);

  dims::v1::EdgeControl::CallbackService edge_control;  // UNIMPLEMENTED until issue #5 lands
  host->AddService(&edge_control, dims::v1::EdgeControl::service_full_name());
  host->OnDrain([&] { sip.Stop(); });
  return host->Run();
}
