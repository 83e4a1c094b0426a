// dims-settings: IM service settings of each user (RFC 3903 publications), kept in Redis.
#include "dims/v1/settings.grpc.pb.h"
#include "service_host.h"

int main(int argc, char** argv) {
  auto host = dims::ServiceHost::Create(
      {.name = "settings",
       .description = "IM service settings (PUBLISH poc-settings) kept in Redis",
       .default_grpc_port = 50052,
       .default_metrics_port = 9102,
       .options = {dims::RedisOption("settings of every user")}},
      argc, argv);
  auto redis = host->ConnectRedis(4);

  dims::v1::Settings::CallbackService settings;  // every RPC: UNIMPLEMENTED until issue #4 lands
  host->AddService(&settings, dims::v1::Settings::service_full_name());
  return host->Run();
}
