#include "pager_routing.h"

#include <algorithm>

#include "user_records.h"

namespace dims::edge {

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
  for (auto& binding : ImClientBindings(registration, now)) {
    bool reachable_here =
        binding.edge_instance_id() == policy.edge_instance_id || !binding.edge_address().empty();
    if (reachable_here) decision.contacts.push_back(std::move(binding));
  }
  if (decision.contacts.empty()) {
    decision.store_reason = dims::v1::STORE_REASON_OFFLINE;
    return decision;
  }
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
