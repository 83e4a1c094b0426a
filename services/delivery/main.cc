// dims-delivery: decides and drives delivery and notification of deferred messages, and
// serves the public Messaging API for other backend systems.
#include "dims/v1/delivery.grpc.pb.h"
#include "dims/v1/messaging.grpc.pb.h"
#include "grpc_client.h"
#include "redis_pool.h"
#include "service_host.h"

int main(int argc, char** argv) {
  namespace validate = dims::validate;
  auto host = dims::ServiceHost::Create(
      {.name = "delivery",
       .description = "delivery decisions and runs; public Messaging API",
       .default_grpc_port = 50054,
       .default_metrics_port = 9104,
       .options =
           {
               {"redis-addr", "127.0.0.1:6379", "Redis: event bus, locks (host:port)",
                validate::HostPortValue()},
               {"settings-addr", "127.0.0.1:50052", "settings service (host:port)",
                validate::HostPortValue()},
               {"storage-addr", "127.0.0.1:50053", "storage service (host:port)",
                validate::HostPortValue()},
               {"relay-addr", "127.0.0.1:50055", "msrp-relay service (host:port)",
                validate::HostPortValue()},
           }},
      argc, argv);
  const auto& config = host->config();
  auto redis_addr = config.GetHostPort("redis-addr");
  dims::RedisPool redis({.host = redis_addr.host, .port = redis_addr.port, .size = 4});
  host->AddDependency("redis", [&] { return redis.Ping(); });

  // Downstream services are reported, not required: delivery retries while one is away.
  auto settings = dims::MakeChannel(config.Get("settings-addr"));
  auto storage = dims::MakeChannel(config.Get("storage-addr"));
  auto relay = dims::MakeChannel(config.Get("relay-addr"));
  host->AddDependency(
      "settings", [&] { return dims::CheckHealth(*settings, ""); }, false);
  host->AddDependency(
      "storage", [&] { return dims::CheckHealth(*storage, ""); }, false);
  host->AddDependency(
      "msrp-relay", [&] { return dims::CheckHealth(*relay, ""); }, false);

  // Every RPC answers UNIMPLEMENTED until issues #5 and #6 land.
  dims::v1::Delivery::CallbackService delivery;
  dims::v1::Messaging::CallbackService messaging;
  host->AddService(&delivery, dims::v1::Delivery::service_full_name());
  host->AddService(&messaging, dims::v1::Messaging::service_full_name());
  return host->Run();
}
