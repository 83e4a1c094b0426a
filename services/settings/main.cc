// dims-settings: IM service settings of each user (RFC 3903 publications), kept in Redis.
#include <iostream>

#include "log.h"
#include "redis_key_gauge.h"
#include "service_host.h"
#include "settings_service.h"
#include "settings_store.h"
#include "worker_pool.h"

int main(int argc, char** argv) {
  namespace validate = dims::validate;
  auto host = dims::ServiceHost::Create(
      {.name = "settings",
       .description = "IM service settings (PUBLISH poc-settings) kept in Redis",
       .default_grpc_port = 50052,
       .default_metrics_port = 9102,
       .options =
           {
               dims::RedisOption("settings of every user"),
               {"publish-min-expires-seconds", "60",
                "shortest publication interval accepted (SIP 423 below it)",
                validate::IntInRange(1, 86400)},
               {"publish-max-expires-seconds", "86400",
                "longest publication interval granted (longer requests are lowered)",
                validate::IntInRange(1, 7 * 86400)},
               {"publish-default-expires-seconds", "3600",
                "interval granted to a PUBLISH without Expires", validate::IntInRange(1, 86400)},
               {"max-publications-per-user", "8", "live publications one user may hold",
                validate::IntInRange(1, 1000)},
               {"max-document-bytes", "65536", "largest settings document accepted",
                validate::IntInRange(256, 1 << 20)},
               {"settings-event-aliases", "im-settings",
                "event packages accepted besides poc-settings (comma-separated, may be empty)",
                nullptr},
           }},
      argc, argv);
  const auto& config = host->config();
  dims::settings::SettingsConfig settings_config;
  settings_config.limits = {
      .min_expires = std::chrono::seconds(config.GetInt("publish-min-expires-seconds")),
      .max_expires = std::chrono::seconds(config.GetInt("publish-max-expires-seconds")),
      .default_expires = std::chrono::seconds(config.GetInt("publish-default-expires-seconds")),
      .max_publications = static_cast<size_t>(config.GetInt("max-publications-per-user"))};
  if (settings_config.limits.min_expires > settings_config.limits.max_expires ||
      settings_config.limits.default_expires < settings_config.limits.min_expires ||
      settings_config.limits.default_expires > settings_config.limits.max_expires) {
    std::cerr << "dims-settings: configuration error: expected publish-min-expires-seconds <= "
                 "publish-default-expires-seconds <= publish-max-expires-seconds\n";
    return 2;
  }
  settings_config.event_packages = {"poc-settings"};
  for (const auto& alias : config.GetList("settings-event-aliases")) {
    settings_config.event_packages.insert(alias);
  }
  settings_config.max_document_bytes = static_cast<size_t>(config.GetInt("max-document-bytes"));
  settings_config.producer = "settings/" + host->instance_id();

  auto redis = host->ConnectRedis(8);
  dims::settings::RedisSettingsStore store(*redis);
  dims::WorkerPool workers("settings-workers", 8, 10000);
  dims::settings::SettingsService settings(store, *redis, workers, settings_config);
  host->AddService(&settings, dims::v1::Settings::service_full_name());
  dims::RedisKeyGauge held(
      *redis, "dims:settings:*",
      host->metrics()
          .GaugeFamily("users",
                       "Users with live publications or a backend layer (counted every 15 s).")
          .Add({}),
      std::chrono::seconds(15));
  host->OnStop([&] {
    workers.Stop();
    held.Stop();
  });
  return host->Run();
}
