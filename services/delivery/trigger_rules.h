// Which bus events call for a look at a user (DESIGN flows 2-5; delivery.proto TriggerReason):
// plain rules over the event, without I/O. Events that change nothing delivery acts on
// (registration refreshes, de-registrations, settings refreshes and removals) call for none.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dims/v1/delivery.pb.h"

namespace dims::delivery {

struct Trigger {
  std::string aor;  // normalised
  dims::v1::TriggerReason reason = dims::v1::TRIGGER_REASON_UNSPECIFIED;
};

std::optional<Trigger> TriggerFor(const dims::v1::BusEvent& event);

// How long a trigger waits before the user is evaluated. A new registration waits up to
// `registration_settle` for the client's settings publication: the client publishes its
// settings after every initial registration (seed 002), and until then DIMS cannot tell
// whether the user wants the messages pushed or only announced (I186). The publication's
// trigger is due at once and takes the waiting registration into its evaluation, so the client
// gets its push without a notification MESSAGE decided on default settings just before. A
// client that never publishes is evaluated when the wait is over. Every other trigger is due
// at once.
std::chrono::milliseconds WaitBeforeEvaluation(const Trigger& trigger,
                                               std::chrono::milliseconds registration_settle);

// How a new registration's wait ended, for an evaluation of `pending` that includes one (for the
// operator who tunes the wait): "publication" when the client published its settings,
// "other_trigger" when something else due at once came first (a new message, an operator, a
// store change for a subscriber), "elapsed" when nothing did. Nothing without a registration.
std::optional<std::string_view> RegistrationWaitEnd(
    const std::vector<dims::v1::TriggerReason>& pending);

// What became of the user's previous push, as the user's record tells.
enum class EarlierPush {
  kNone,
  kInterrupted,  // it was running when its replica stopped recording (died): resume it
  kBackingOff,   // it failed and waits for its retry
};

// Whether an evaluation started by `pending` may start a push (seed 002): a settings
// publication or update, a new message, presence, an operator, a retry (no trigger), or an
// interrupted push to resume. A registration alone does not, nor a store change: that is often
// the push's own deliveries, and a push that failed half-way keeps to its backoff.
bool MayStartPush(const std::vector<dims::v1::TriggerReason>& pending, EarlierPush earlier);

// The trigger an evaluation of `pending` is recorded under: the first that may start a push
// (a publication that took a waiting registration with it is the publication's evaluation),
// else the first; a retry without any.
dims::v1::TriggerReason LeadingTrigger(const std::vector<dims::v1::TriggerReason>& pending);

}  // namespace dims::delivery
