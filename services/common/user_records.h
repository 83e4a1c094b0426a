// What the edge records per user in Redis, read by the edge itself and by delivery (and where
// the settings service keeps its record): the registration (one serialized dims.v1.Registration per
// user) and the message-summary subscriptions (a hash, subscription id -> serialized
// dims.v1.Subscription). Keys carry the AOR as a hash tag, so that one user's keys share a Redis
// Cluster slot.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "dims/v1/common.pb.h"

namespace dims {

// The IM feature tag an OMA IM client registers with (RFC 3840 form, seeds 000 and 002).
inline constexpr const char* kImFeatureTag = "+g.oma.sip-im";

std::string RegistrationKey(const std::string& aor);
std::string SubscriptionsKey(const std::string& aor);
// The settings service's record of a user (its format is the settings service's own); there is
// none while the user has neither a live publication nor a backend layer, i.e. the defaults.
std::string SettingsKey(const std::string& aor);

// The live bindings of IM clients (+g.oma.sip-im) that registered with DIMS as registrar,
// best first: the highest q, then the newest refresh. Third-party registrations name the core,
// not a client, and are left out.
std::vector<dims::v1::Binding> ImClientBindings(const dims::v1::Registration& registration,
                                                std::chrono::system_clock::time_point now);

// The subscriptions of a user's hash (HVALS) that are still live; entries that cannot be read or
// do not name the edge holding them are skipped.
std::vector<dims::v1::Subscription> LiveSubscriptions(const std::vector<std::string>& records,
                                                      std::chrono::system_clock::time_point now);

}  // namespace dims
