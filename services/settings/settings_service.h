// The gRPC Settings API (proto/dims/v1/settings.proto): validates on the gRPC thread, runs the
// Redis work on the worker pool, answers with the documented status codes, and announces
// every change on the event bus.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "dims/v1/settings.grpc.pb.h"
#include "publication_rules.h"
#include "redis_pool.h"
#include "settings_store.h"
#include "worker_pool.h"

namespace dims::settings {

struct SettingsConfig {
  PublishLimits limits;
  std::set<std::string> event_packages = {"poc-settings", "im-settings"};
  size_t max_document_bytes = 65536;
  std::string producer;  // "settings/<instance>", for events
};

class SettingsService : public dims::v1::Settings::CallbackService {
 public:
  SettingsService(SettingsStore& store, RedisPool& bus, WorkerPool& workers, SettingsConfig config);

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const dims::v1::SettingsPublishRequest* request,
                                    dims::v1::SettingsPublishResponse* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const dims::v1::SettingsGetRequest* request,
                                dims::v1::SettingsGetResponse* response) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context,
                                const dims::v1::SettingsPutRequest* request,
                                dims::v1::SettingsPutResponse* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const dims::v1::SettingsDeleteRequest* request,
                                   dims::v1::SettingsDeleteResponse* response) override;

 private:
  // Appends a serialized BusEvent to the stream; a failure is logged, not returned: the
  // change itself is saved (see docs/im-settings.md).
  void Announce(const std::string& aor, const std::string& type, const std::string& event);

  SettingsStore& store_;
  RedisPool& bus_;
  WorkerPool& workers_;
  SettingsConfig config_;
};

}  // namespace dims::settings
