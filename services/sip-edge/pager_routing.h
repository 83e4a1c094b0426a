// What the edge does with a pager-mode MESSAGE to a user it serves (RFC 3428; seeds 000 and
// 004; DESIGN flow 3): forward it to the user's IM client, keep it in the deferred store, or
// refuse it. Plain rules over the user's registration and settings, without I/O.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <string>
#include <vector>

#include "dims/v1/common.pb.h"
#include "dims/v1/storage.pb.h"
#include "sip_answer.h"

namespace dims::edge {

struct PagerPolicy {
  // The answer to a sender whose recipient bars incoming pager-mode IM: 403 Forbidden, or
  // 480 where the operator prefers not to reveal the setting.
  int barred_status = 403;
  // This edge instance: only it can reach a contact whose flow it holds.
  std::string edge_instance_id;
};

struct PagerDecision {
  enum class Action { kForward, kStore, kRefuse };
  Action action = Action::kStore;
  // kForward: the IM clients to try, best first (highest q, then the newest refresh).
  std::vector<dims::v1::Binding> contacts;
  // kStore: why the message waits.
  dims::v1::StoreReason store_reason = dims::v1::STORE_REASON_OFFLINE;
  // kRefuse: the answer.
  SipAnswer refusal;
};

// The registration may be empty (the user is not registered). Only live bindings with the IM
// feature tag +g.oma.sip-im count. Third-party registrations (DIMS as application server) name
// the core, not the client, and DIMS has no route back through the core yet: such users are
// treated as offline, so the message is stored rather than looped through the core.
PagerDecision DecidePager(const dims::v1::Registration& registration,
                          const dims::v1::ImSettings& settings,
                          std::chrono::system_clock::time_point now, const PagerPolicy& policy);

// Whether a forwarding attempt that ended with `status` means "store it instead" (the
// recipient cannot take it now: 408, 480, 503, and the stack's own timeouts and transport
// failures, which Sofia reports as 408 and 503) rather than an answer to relay to the sender.
bool ForwardFailedTemporarily(int status);

// The answer to the sender when storage did not confirm a Store: a precise refusal for what
// storage rejected, 503 with Retry-After when the outcome is unknown or storage is away (never
// a 202 without a commit).
SipAnswer StoreRefusal(const grpc::Status& status, const dims::v1::ErrorDetail& detail);

// The answer to relay when the recipient's client answered a forwarded MESSAGE.
SipAnswer RelayedAnswer(int status, const std::string& phrase);

}  // namespace dims::edge
