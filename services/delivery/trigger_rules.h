// Which bus events call for a look at a user (DESIGN flows 2-5; delivery.proto TriggerReason):
// plain rules over the event, without I/O. Events that change nothing delivery acts on
// (registration refreshes, de-registrations, settings refreshes and removals) call for none.
#pragma once

#include <chrono>
#include <optional>
#include <random>
#include <string>

#include "dims/v1/delivery.pb.h"

namespace dims::delivery {

struct Trigger {
  std::string aor;  // normalised
  dims::v1::TriggerReason reason = dims::v1::TRIGGER_REASON_UNSPECIFIED;
};

std::optional<Trigger> TriggerFor(const dims::v1::BusEvent& event);

// How long to wait before the next attempt after `consecutive_failures` failed ones (1 or
// more): doubling from `first`, capped at `cap`, with up to a quarter taken off at random so
// that users who failed together do not all come back together.
std::chrono::milliseconds RetryDelay(uint32_t consecutive_failures, std::chrono::milliseconds first,
                                     std::chrono::milliseconds cap, std::mt19937_64& random);

}  // namespace dims::delivery
