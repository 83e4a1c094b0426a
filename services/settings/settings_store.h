// Where the settings of each user live (Redis), behind a small interface: load a user's state,
// or change it atomically against concurrent writers on other replicas.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

#include "grpc_call.h"
#include "publication_rules.h"
#include "redis_pool.h"

namespace dims::settings {

class SettingsUnavailable : public DependencyUnavailable {
 public:
  using DependencyUnavailable::DependencyUnavailable;
};

class SettingsStore {
 public:
  virtual ~SettingsStore() = default;
  virtual UserSettings Load(const std::string& aor) = 0;
  // Runs `change` on the current state and saves what it leaves, unless it returns false.
  // When another writer changed the state meanwhile, runs `change` again on the new state.
  virtual UserSettings Update(const std::string& aor,
                              const std::function<bool(UserSettings&)>& change) = 0;
};

// One Redis key per user, "dims:settings:{<aor>}" (the hash tag keeps a user's keys on one
// cluster slot), holding a serialized dims.v1.SettingsGetResponse (publications + backend
// layer). It expires with the last publication unless a backend layer keeps it. Writes are
// compare-and-set (RedisRecord), so concurrent PUBLISHes on several replicas lose nothing.
class RedisSettingsStore : public SettingsStore {
 public:
  explicit RedisSettingsStore(RedisPool& redis) : redis_(redis) {}
  UserSettings Load(const std::string& aor) override;
  UserSettings Update(const std::string& aor,
                      const std::function<bool(UserSettings&)>& change) override;

 private:
  RedisPool& redis_;
};

}  // namespace dims::settings
