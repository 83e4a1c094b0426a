// The one rule by which a final SIP answer to a request the edge sent becomes a gRPC status
// for EdgeControl's callers (edge_control.proto): 2xx is OK, 408 DEADLINE_EXCEEDED, 480 and
// 5xx UNAVAILABLE, 404/410/481/484/604 NOT_FOUND, and so on.
#pragma once

#include <grpcpp/support/status.h>

#include "dims/v1/common.pb.h"
#include "sip_stack.h"

namespace dims::edge {

grpc::StatusCode StatusForSipAnswer(int sip_status);

// The answer as EdgeControl's callers see it (the response's `sip`, or ErrorDetail.sip).
dims::v1::SipOutcome SipOutcomeOf(const SentAnswer& answer);

}  // namespace dims::edge
