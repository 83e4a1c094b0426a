// The one rule by which a final SIP answer to a request the edge sent becomes a gRPC status
// for EdgeControl's callers (edge_control.proto): 2xx is OK, 408 DEADLINE_EXCEEDED, 480 and
// 5xx UNAVAILABLE, 404/410/481/484/604 NOT_FOUND, and so on.
#pragma once

#include <grpcpp/support/status.h>

namespace dims::edge {

grpc::StatusCode StatusForSipAnswer(int sip_status);

}  // namespace dims::edge
