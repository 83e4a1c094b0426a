// What a user should be told about their deferred store, decided from what delivery read about
// them (DESIGN flow 4; seeds 000, 002, 004): a message-summary NOTIFY on each live
// subscription, a notification MESSAGE to the IM client, or nothing. Plain rules, without I/O.
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
};

struct NotificationPlan {
  dims::v1::DeliveryAction action = dims::v1::DELIVERY_ACTION_NONE;
  std::string reason;  // for operators, e.g. "1 subscription"
  // NOTIFY each with the summary. The edge holding a subscription skips a version it has
  // already sent (only_if_newer), so a repeated evaluation sends nothing twice.
  std::vector<dims::v1::Subscription> notify;
  // Send the notification MESSAGE to this client (its edge_address is set).
  std::optional<dims::v1::Binding> message_to;
};

// Whether the user can be told anything at all: a live subscription, or an IM client that a
// notification MESSAGE can reach. When not, the settings and the store need not be read.
bool CanBeTold(const UserView& user, std::chrono::system_clock::time_point now);

NotificationPlan PlanNotifications(const UserView& user, std::chrono::system_clock::time_point now,
                                   MessageNotification by_message);

}  // namespace dims::delivery
