// RFC 3261 10.3 registrar rules over one user's registration: pure logic on the stored
// dims.v1.Registration, no I/O; the REGISTER handler loads and saves the record around it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dims/v1/common.pb.h"

namespace dims::edge {

using Clock = std::chrono::system_clock;

struct RegisterContact {
  std::string uri;
  std::optional<int> expires;  // the Contact's expires parameter
  std::optional<float> q;
  std::map<std::string, std::string> feature_tags;  // RFC 3840 parameters, quotes removed
};

struct RegisterRequest {
  std::string aor;
  bool wildcard = false;  // Contact: *
  std::vector<RegisterContact> contacts;
  std::optional<int> expires;  // the Expires header
  std::string call_id;
  uint32_t cseq = 0;
  std::string user_agent;
  std::string source;  // "udp:127.0.0.1:5090"
  std::string edge_instance_id;
  std::string edge_address;
  // REGISTRAR: the client registered with DIMS. THIRD_PARTY: the core told DIMS (as an
  // application server) that the user registered; the Contact is the core's.
  dims::v1::RegistrationMode mode = dims::v1::REGISTRATION_MODE_REGISTRAR;
};

struct RegisterLimits {
  int min_expires = 60;
  int max_expires = 3600;
  int default_expires = 3600;
};

struct RegisterOutcome {
  enum class Error { kNone, kTooBrief, kBadWildcard, kOutOfOrder };
  Error error = Error::kNone;
  std::vector<dims::v1::Binding> added;      // new bindings
  std::vector<dims::v1::Binding> refreshed;  // existing ones updated
  std::vector<dims::v1::Binding> removed;    // by the client (expires 0 or *)
};

// Applies one REGISTER to `registration` (left unchanged when the outcome is an error) and
// drops bindings that have expired by `now`. A query (no Contact) changes nothing.
RegisterOutcome ApplyRegister(dims::v1::Registration& registration, const RegisterRequest& request,
                              Clock::time_point now, const RegisterLimits& limits);

// Seconds left of a binding, as the 200 OK's Contact expires parameter shows it.
int SecondsLeft(const dims::v1::Binding& binding, Clock::time_point now);

}  // namespace dims::edge
