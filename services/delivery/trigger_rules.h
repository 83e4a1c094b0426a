// Which bus events call for a look at a user (DESIGN flows 2-5; delivery.proto TriggerReason):
// plain rules over the event, without I/O. Events that change nothing delivery acts on
// (registration refreshes, de-registrations, settings refreshes and removals) call for none.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dims/v1/delivery.pb.h"

namespace dims::delivery {

struct Trigger {
  std::string aor;  // normalised
  dims::v1::TriggerReason reason = dims::v1::TRIGGER_REASON_UNSPECIFIED;
};

std::optional<Trigger> TriggerFor(const dims::v1::BusEvent& event);

// Whether an evaluation started by `pending` may start a push (seed 002): a settings
// publication or update, a new message, presence, an operator, or a retry (no trigger, or an
// earlier push backing off). A registration alone does not, nor a store change: that is often
// the push's own deliveries, and a push that failed half-way waits for its backoff.
bool MayStartPush(const std::vector<dims::v1::TriggerReason>& pending, bool push_backing_off);

}  // namespace dims::delivery
