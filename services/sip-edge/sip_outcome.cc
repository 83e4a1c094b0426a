#include "sip_outcome.h"

namespace dims::edge {

grpc::StatusCode StatusForSipAnswer(int s) {
  using grpc::StatusCode;
  if (s >= 200 && s < 300) return StatusCode::OK;
  switch (s) {
    case 408:
      return StatusCode::DEADLINE_EXCEEDED;
    case 404:
    case 410:
    case 481:
    case 484:
    case 604:
      return StatusCode::NOT_FOUND;
    case 480:
      return StatusCode::UNAVAILABLE;
    case 486:
    case 600:
    case 491:
      return StatusCode::ABORTED;
    case 401:
    case 407:
      return StatusCode::UNAUTHENTICATED;
    case 403:
      return StatusCode::PERMISSION_DENIED;
    case 501:
      return StatusCode::FAILED_PRECONDITION;
    default:
      break;
  }
  if (s >= 500 && s < 600) return StatusCode::UNAVAILABLE;
  // 603, 606, 415, 488, 3xx and the other 4xx and 6xx: the client will not take it as sent.
  return StatusCode::FAILED_PRECONDITION;
}

dims::v1::SipOutcome SipOutcomeOf(const SentAnswer& answer) {
  dims::v1::SipOutcome outcome;
  outcome.set_status_code(static_cast<uint32_t>(answer.status));
  outcome.set_reason_phrase(answer.phrase);
  outcome.set_local(answer.local);
  return outcome;
}

}  // namespace dims::edge
