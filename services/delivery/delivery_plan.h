// What delivery does for a user, decided from what it read about them (DESIGN flows 4 and 5;
// seeds 000, 001, 002, 004): push the deferred messages over an MSRP session to the IM client,
// a message-summary NOTIFY on each live subscription, a notification MESSAGE to the IM client,
// or nothing. Plain rules, without I/O.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "dims/v1/common.pb.h"
#include "dims/v1/delivery.pb.h"

namespace dims::delivery {

// Where the deployment sends a notification MESSAGE (seed 000).
enum class MessageNotification {
  kNever,         // subscriptions only
  kUnsubscribed,  // to users without a live message-summary subscription
  kAlways,        // besides any subscription
};

// What delivery read about one user for a decision.
struct UserView {
  dims::v1::StoreSummary summary;
  dims::v1::ImSettings settings;
  dims::v1::Registration registration;
  std::vector<dims::v1::Subscription> subscriptions;  // live ones
  // The store version of the last notification MESSAGE that got a 2xx (0: none).
  uint64_t message_notified_version = 0;
  // Whether what started this evaluation may start a push (MayStartPush): seed 002 pushes on
  // a settings publication, not on a registration alone.
  bool push_triggered = false;
};

struct DeliveryPlan {
  dims::v1::DeliveryAction action = dims::v1::DELIVERY_ACTION_NONE;
  std::string reason;  // for operators, e.g. "1 subscription"
  // NOTIFY each with the summary. The edge holding a subscription skips a version it has
  // already sent (only_if_newer), so a repeated evaluation sends nothing twice.
  std::vector<dims::v1::Subscription> notify;
  // Send the notification MESSAGE to this client (its edge_address is set).
  std::optional<dims::v1::Binding> message_to;
  // Push the deferred messages to this client (its edge_address is set).
  std::optional<dims::v1::Binding> push_to;
  // A push is due to a reachable IM client with offline delivery active, but what started this
  // evaluation may not start it (seed 002): an earlier push's retry still stands.
  bool push_withheld = false;
};

// Whether the user can be told anything at all: a live subscription, or an IM client that a
// notification MESSAGE can reach. When not, the settings and the store need not be read.
bool CanBeTold(const UserView& user, std::chrono::system_clock::time_point now);

// Whether a trigger of this kind can call for anything for the user. A removal from the store
// (STORE_CHANGED: a push's own deliveries, deletions, expiry) needs no evaluation of its own
// but for a subscriber: it does not start a push (a push cut off resumes when its claim runs
// out), and it brings nothing new for a notification MESSAGE to tell. Anything else concerns a
// user who can be told anything at all.
bool TriggerConcerns(dims::v1::TriggerReason reason, const UserView& user,
                     std::chrono::system_clock::time_point now);

// Whether the plan may show per-message entries of the store summary: to subscribers (a
// NOTIFY), or in a notification MESSAGE, which a user whose messages are to be pushed does not
// get. Known from the subscriptions, the registration and the settings, before the store is
// read; a push needs the counts only.
bool MayShowEntries(const UserView& user, std::chrono::system_clock::time_point now,
                    MessageNotification by_message);

DeliveryPlan PlanDelivery(const UserView& user, std::chrono::system_clock::time_point now,
                          MessageNotification by_message);

}  // namespace dims::delivery
