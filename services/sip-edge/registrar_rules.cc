#include "registrar_rules.h"

#include <algorithm>

#include "bus_event.h"

namespace dims::edge {

int SecondsLeft(const dims::v1::Binding& binding, Clock::time_point now) {
  auto left =
      std::chrono::duration_cast<std::chrono::seconds>(FromTimestamp(binding.expires_at()) - now);
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

RegisterOutcome ApplyRegister(dims::v1::Registration& registration, const RegisterRequest& request,
                              Clock::time_point now, const RegisterLimits& limits) {
  using Error = RegisterOutcome::Error;
  RegisterOutcome out;
  dims::v1::Registration next = registration;
  next.mutable_aor()->set_uri(request.aor);

  // Bindings past their expiry are gone, whoever looks first.
  auto* bindings = next.mutable_bindings();
  bindings->erase(std::remove_if(bindings->begin(), bindings->end(),
                                 [&](const dims::v1::Binding& b) {
                                   return FromTimestamp(b.expires_at()) <= now;
                                 }),
                  bindings->end());

  // A refresh must be newer than what the binding last saw from the same Call-ID (10.3 step 7).
  auto out_of_order = [&](const dims::v1::Binding& b) {
    return b.call_id() == request.call_id && request.cseq <= b.cseq();
  };

  if (request.wildcard) {
    if (!request.contacts.empty() || request.expires != 0) return {Error::kBadWildcard};
    for (const auto& b : next.bindings()) {
      if (out_of_order(b)) return {Error::kOutOfOrder};
    }
    out.removed.assign(next.bindings().begin(), next.bindings().end());
    next.clear_bindings();
    registration = next;
    return out;
  }

  for (const auto& c : request.contacts) {
    int expires = c.expires.value_or(request.expires.value_or(limits.default_expires));
    if (expires != 0 && expires < limits.min_expires) return {Error::kTooBrief};
  }
  for (const auto& c : request.contacts) {
    int expires = c.expires.value_or(request.expires.value_or(limits.default_expires));
    expires = std::min(expires, limits.max_expires);
    auto it = std::find_if(bindings->begin(), bindings->end(),
                           [&](const dims::v1::Binding& b) { return b.contact_uri() == c.uri; });
    if (it != bindings->end() && out_of_order(*it)) return {Error::kOutOfOrder};
    if (expires == 0) {
      if (it != bindings->end()) {
        out.removed.push_back(*it);
        bindings->erase(it);
      }
      continue;
    }
    bool existed = it != bindings->end();
    dims::v1::Binding& b = existed ? *it : *next.add_bindings();
    b.mutable_aor()->set_uri(request.aor);
    b.set_contact_uri(c.uri);
    ToTimestamp(now + std::chrono::seconds(expires), b.mutable_expires_at());
    b.set_q(c.q.value_or(1.0f));
    b.set_call_id(request.call_id);
    b.set_cseq(request.cseq);
    b.mutable_feature_tags()->clear();
    for (const auto& [k, v] : c.feature_tags) (*b.mutable_feature_tags())[k] = v;
    b.set_edge_instance_id(request.edge_instance_id);
    b.set_edge_address(request.edge_address);
    b.set_mode(request.mode);
    b.set_user_agent(request.user_agent);
    b.set_source(request.source);
    if (!existed) ToTimestamp(now, b.mutable_registered_at());
    ToTimestamp(now, b.mutable_refreshed_at());
    (existed ? out.refreshed : out.added).push_back(b);
  }
  registration = next;
  return out;
}

}  // namespace dims::edge
