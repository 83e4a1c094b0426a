#include "pager_routing.h"

#include <algorithm>

#include "bus_event.h"

namespace dims::edge {
namespace {

constexpr const char* kImFeatureTag = "+g.oma.sip-im";

}  // namespace

PagerDecision DecidePager(const dims::v1::Registration& registration,
                          const dims::v1::ImSettings& settings,
                          std::chrono::system_clock::time_point now, const PagerPolicy& policy) {
  PagerDecision decision;
  if (settings.incoming_pager_large_barring()) {
    decision.action = PagerDecision::Action::kRefuse;
    decision.refusal = policy.barred_status == 480 ? SipAnswer{480, "Temporarily Unavailable"}
                                                   : SipAnswer{403, "Forbidden"};
    return decision;
  }
  if (settings.invisibility()) {
    // Invisible users look unreachable, whatever their registration (never revealed).
    decision.store_reason = dims::v1::STORE_REASON_INVISIBLE;
    return decision;
  }
  for (const auto& binding : registration.bindings()) {
    bool live = FromTimestamp(binding.expires_at()) > now;
    bool im_client = binding.feature_tags().count(kImFeatureTag) > 0;
    bool reachable_here =
        binding.mode() == dims::v1::REGISTRATION_MODE_REGISTRAR &&
        (binding.edge_instance_id() == policy.edge_instance_id || !binding.edge_address().empty());
    if (live && im_client && reachable_here) decision.contacts.push_back(binding);
  }
  if (decision.contacts.empty()) {
    decision.store_reason = dims::v1::STORE_REASON_OFFLINE;
    return decision;
  }
  std::stable_sort(decision.contacts.begin(), decision.contacts.end(),
                   [](const dims::v1::Binding& a, const dims::v1::Binding& b) {
                     if (a.q() != b.q()) return a.q() > b.q();
                     return FromTimestamp(a.refreshed_at()) > FromTimestamp(b.refreshed_at());
                   });
  decision.action = PagerDecision::Action::kForward;
  return decision;
}

bool ForwardFailedTemporarily(int status) {
  return status == 408 || status == 480 || status == 503;
}

SipAnswer StoreRefusal(const grpc::Status& status, const dims::v1::ErrorDetail& detail) {
  switch (status.error_code()) {
    case grpc::StatusCode::RESOURCE_EXHAUSTED: {
      if (detail.limit() == "MESSAGE_BYTES") {
        return {413, "Request Entity Too Large (message exceeds the deferred store's limit)"};
      }
      // The recipient's store is full: temporary from the sender's view, and said so.
      SipAnswer full{480, "Temporarily Unavailable (recipient's deferred store is full)"};
      full.warning = "399 dims \"deferred store full: " +
                     (detail.limit().empty() ? std::string("quota") : detail.limit()) + "\"";
      return full;
    }
    case grpc::StatusCode::INVALID_ARGUMENT:
      return {400, "Bad Request (" + status.error_message() + ")"};
    case grpc::StatusCode::INTERNAL:
      return {500, "Server Internal Error (message not stored)"};
    default:
      // UNAVAILABLE, DEADLINE_EXCEEDED (outcome unknown: the retry is deduplicated), CANCELLED.
      return ServiceUnavailable("Service Unavailable (message not stored; retry)");
  }
}

SipAnswer RelayedAnswer(int status, const std::string& phrase) {
  if (status < 200 || status > 699) return {500, "Server Internal Error"};
  return {status, phrase};
}

}  // namespace dims::edge
