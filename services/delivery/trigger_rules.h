// Which bus events call for a look at a user (DESIGN flows 2-5; delivery.proto TriggerReason):
// plain rules over the event, without I/O. Events that change nothing delivery acts on
// (registration refreshes, de-registrations, settings refreshes and removals) call for none.
#pragma once

#include <optional>
#include <string>

#include "dims/v1/delivery.pb.h"

namespace dims::delivery {

struct Trigger {
  std::string aor;  // normalised
  dims::v1::TriggerReason reason = dims::v1::TRIGGER_REASON_UNSPECIFIED;
};

std::optional<Trigger> TriggerFor(const dims::v1::BusEvent& event);

}  // namespace dims::delivery
