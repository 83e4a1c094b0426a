#include "delivery_plan.h"

#include "user_records.h"

namespace dims::delivery {
namespace v1 = dims::v1;

namespace {

std::string Count(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::optional<dims::v1::Binding> ReachableImClient(const UserView& user,
                                                   std::chrono::system_clock::time_point now) {
  for (const auto& binding : ImClientBindings(user.registration, now)) {
    if (!binding.edge_address().empty()) return binding;
  }
  return std::nullopt;
}

}  // namespace

bool CanBeTold(const UserView& user, std::chrono::system_clock::time_point now) {
  return !user.subscriptions.empty() || ReachableImClient(user, now).has_value();
}

bool TriggerConcerns(v1::TriggerReason reason, const UserView& user,
                     std::chrono::system_clock::time_point now) {
  if (reason == v1::TRIGGER_REASON_STORE_CHANGED) return !user.subscriptions.empty();
  return CanBeTold(user, now);
}

bool MayShowEntries(const UserView& user, std::chrono::system_clock::time_point now,
                    MessageNotification by_message) {
  if (!user.subscriptions.empty()) return true;
  return by_message != MessageNotification::kNever && !user.settings.offline_delivery_active() &&
         ReachableImClient(user, now).has_value();
}

DeliveryPlan PlanDelivery(const UserView& user, std::chrono::system_clock::time_point now,
                          MessageNotification by_message) {
  DeliveryPlan plan;
  // Subscribers asked to follow the store, whatever else happens (RFC 3842, RFC 6665).
  plan.notify = user.subscriptions;
  auto client = ReachableImClient(user, now);
  const uint32_t stored = user.summary.new_count() + user.summary.old_count();

  const bool push_due = client && user.settings.offline_delivery_active() && stored > 0;
  plan.push_withheld = push_due && !user.push_triggered;
  if (push_due && user.push_triggered) {
    plan.push_to = client;
    plan.action = v1::DELIVERY_ACTION_PUSH;
    plan.reason = Count(stored, "deferred message", "deferred messages") + ", push";
    if (!plan.notify.empty()) {
      plan.reason += " and " + Count(plan.notify.size(), "subscription", "subscriptions");
    }
    return plan;
  }

  std::string why_no_message;
  bool wants_message = by_message == MessageNotification::kAlways ||
                       (by_message == MessageNotification::kUnsubscribed && plan.notify.empty());
  if (!wants_message) {
    why_no_message =
        by_message == MessageNotification::kNever ? "notification MESSAGE disabled" : "";
  } else if (!client) {
    why_no_message = "no registered IM client";
  } else if (user.settings.offline_delivery_active()) {
    // The messages themselves are to be pushed (seed 002), not announced; the push waits for
    // a trigger that may start it.
    why_no_message = stored == 0 ? "store empty" : "offline delivery active, push not triggered";
  } else if (user.summary.new_count() == 0) {
    why_no_message = "nothing new";
  } else if (user.summary.version() <= user.message_notified_version) {
    why_no_message = "already told";
  } else {
    plan.message_to = client;
  }

  if (plan.message_to) {
    plan.action = v1::DELIVERY_ACTION_NOTIFY_BY_MESSAGE;
    plan.reason =
        Count(user.summary.new_count(), "new message", "new messages") + ", notification MESSAGE";
    if (!plan.notify.empty()) {
      plan.reason += " and " + Count(plan.notify.size(), "subscription", "subscriptions");
    }
  } else if (!plan.notify.empty()) {
    plan.action = v1::DELIVERY_ACTION_NOTIFY;
    plan.reason = Count(plan.notify.size(), "subscription", "subscriptions");
  } else {
    plan.action = v1::DELIVERY_ACTION_NONE;
    plan.reason = "no subscription" + (why_no_message.empty() ? "" : "; " + why_no_message);
  }
  return plan;
}

}  // namespace dims::delivery
