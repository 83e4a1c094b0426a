#include "user_records.h"

#include <algorithm>

#include "bus_event.h"

namespace dims {

std::string RegistrationKey(const std::string& aor) { return "dims:reg:{" + aor + "}"; }

std::string SubscriptionsKey(const std::string& aor) { return "dims:sub:{" + aor + "}"; }

std::string SettingsKey(const std::string& aor) { return "dims:settings:{" + aor + "}"; }

std::vector<dims::v1::Binding> ImClientBindings(const dims::v1::Registration& registration,
                                                std::chrono::system_clock::time_point now) {
  std::vector<dims::v1::Binding> clients;
  for (const auto& binding : registration.bindings()) {
    bool live = FromTimestamp(binding.expires_at()) > now;
    bool im_client = binding.feature_tags().count(kImFeatureTag) > 0;
    bool registrar = binding.mode() == dims::v1::REGISTRATION_MODE_REGISTRAR;
    if (live && im_client && registrar) clients.push_back(binding);
  }
  std::stable_sort(clients.begin(), clients.end(),
                   [](const dims::v1::Binding& a, const dims::v1::Binding& b) {
                     if (a.q() != b.q()) return a.q() > b.q();
                     return FromTimestamp(a.refreshed_at()) > FromTimestamp(b.refreshed_at());
                   });
  return clients;
}

std::vector<dims::v1::Subscription> LiveSubscriptions(const std::vector<std::string>& records,
                                                      std::chrono::system_clock::time_point now) {
  std::vector<dims::v1::Subscription> live;
  for (const auto& raw : records) {
    dims::v1::Subscription s;
    if (!s.ParseFromString(raw) || s.edge_address().empty()) continue;  // unusable
    if (FromTimestamp(s.expires_at()) > now) live.push_back(s);
  }
  return live;
}

}  // namespace dims
