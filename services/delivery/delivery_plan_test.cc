#include "delivery_plan.h"

#include <gtest/gtest.h>

#include "bus_event.h"
#include "user_records.h"

namespace dims::delivery {
namespace {
namespace v1 = dims::v1;
using namespace std::chrono_literals;

class DeliveryPlanTest : public ::testing::Test {
 protected:
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();

  v1::Binding* AddBinding(const std::string& contact, float q, v1::RegistrationMode mode,
                          bool im = true) {
    auto* b = user_.registration.add_bindings();
    b->set_contact_uri(contact);
    b->set_q(q);
    b->set_mode(mode);
    b->set_edge_address("127.0.0.1:7001");
    if (im) (*b->mutable_feature_tags())[kImFeatureTag] = "";
    ToTimestamp(now_ + 600s, b->mutable_expires_at());
    ToTimestamp(now_ - 10s, b->mutable_refreshed_at());
    return b;
  }
  void AddSubscription(const std::string& id) {
    v1::Subscription s;
    s.set_subscription_id(id);
    s.set_edge_address("127.0.0.1:7002");
    user_.subscriptions.push_back(s);
  }
  void NewMessages(uint32_t count, uint64_t version) {
    user_.summary.set_new_count(count);
    user_.summary.set_version(version);
  }

  UserView user_;
};

TEST_F(DeliveryPlanTest, EverySubscriptionIsNotifiedAndItsSubscriberNeedsNoMessage) {
  AddBinding("sip:alice@192.0.2.1:5060", 1.0f, v1::REGISTRATION_MODE_REGISTRAR);
  AddSubscription("s1");
  AddSubscription("s2");
  NewMessages(2, 9);
  auto plan = PlanDelivery(user_, now_, MessageNotification::kUnsubscribed);
  EXPECT_EQ(plan.action, v1::DELIVERY_ACTION_NOTIFY);
  ASSERT_EQ(plan.notify.size(), 2u);
  EXPECT_EQ(plan.notify[0].subscription_id(), "s1");
  EXPECT_FALSE(plan.message_to);
  EXPECT_EQ(plan.reason, "2 subscriptions");

  // Also an empty store is notified: the subscriber sees the messages go (RFC 3842).
  NewMessages(0, 10);
  plan = PlanDelivery(user_, now_, MessageNotification::kUnsubscribed);
  EXPECT_EQ(plan.action, v1::DELIVERY_ACTION_NOTIFY);
  EXPECT_EQ(plan.notify.size(), 2u);
}

TEST_F(DeliveryPlanTest, AnUnsubscribedImClientIsToldOnceByMessageAtItsBestBinding) {
  AddBinding("sip:alice@192.0.2.1:5060", 0.5f, v1::REGISTRATION_MODE_REGISTRAR);
  AddBinding("sip:alice@192.0.2.2:5060", 0.9f, v1::REGISTRATION_MODE_REGISTRAR);
  NewMessages(1, 4);
  auto plan = PlanDelivery(user_, now_, MessageNotification::kUnsubscribed);
  EXPECT_EQ(plan.action, v1::DELIVERY_ACTION_NOTIFY_BY_MESSAGE);
  ASSERT_TRUE(plan.message_to);
  EXPECT_EQ(plan.message_to->contact_uri(), "sip:alice@192.0.2.2:5060");
  EXPECT_EQ(plan.reason, "1 new message, notification MESSAGE");

  // Told at version 4 already: the same state is not announced again.
  user_.message_notified_version = 4;
  plan = PlanDelivery(user_, now_, MessageNotification::kUnsubscribed);
  EXPECT_FALSE(plan.message_to);
  EXPECT_EQ(plan.action, v1::DELIVERY_ACTION_NONE);
  EXPECT_EQ(plan.reason, "no subscription; already told");

  // A newer message is.
  NewMessages(2, 5);
  EXPECT_TRUE(PlanDelivery(user_, now_, MessageNotification::kUnsubscribed).message_to);
}

TEST_F(DeliveryPlanTest, NoMessageWithoutSomethingNewOrAClientToTellOrWhenPushIsDue) {
  NewMessages(0, 3);
  AddBinding("sip:alice@192.0.2.1:5060", 1.0f, v1::REGISTRATION_MODE_REGISTRAR);
  auto plan = PlanDelivery(user_, now_, MessageNotification::kUnsubscribed);
  EXPECT_FALSE(plan.message_to);
  EXPECT_EQ(plan.reason, "no subscription; nothing new");

  NewMessages(1, 4);
  user_.settings.set_offline_delivery_active(true);
  plan = PlanDelivery(user_, now_, MessageNotification::kUnsubscribed);
  EXPECT_FALSE(plan.message_to);
  EXPECT_EQ(plan.reason, "no subscription; offline delivery active, push not triggered");

  user_.settings.set_offline_delivery_active(false);
  user_.registration.clear_bindings();
  AddBinding("sip:alice@192.0.2.1:5060", 1.0f, v1::REGISTRATION_MODE_THIRD_PARTY);
  AddBinding("sip:alice@192.0.2.3:5060", 1.0f, v1::REGISTRATION_MODE_REGISTRAR, /*im=*/false);
  auto* expired = AddBinding("sip:alice@192.0.2.4:5060", 1.0f, v1::REGISTRATION_MODE_REGISTRAR);
  ToTimestamp(now_ - 1s, expired->mutable_expires_at());
  plan = PlanDelivery(user_, now_, MessageNotification::kUnsubscribed);
  EXPECT_FALSE(plan.message_to);
  EXPECT_EQ(plan.reason, "no subscription; no registered IM client");
}

TEST_F(DeliveryPlanTest, TheDeploymentChoosesWhoGetsANotificationMessage) {
  AddBinding("sip:alice@192.0.2.1:5060", 1.0f, v1::REGISTRATION_MODE_REGISTRAR);
  NewMessages(1, 2);
  auto plan = PlanDelivery(user_, now_, MessageNotification::kNever);
  EXPECT_FALSE(plan.message_to);
  EXPECT_EQ(plan.reason, "no subscription; notification MESSAGE disabled");

  AddSubscription("s1");
  EXPECT_FALSE(PlanDelivery(user_, now_, MessageNotification::kUnsubscribed).message_to);
  plan = PlanDelivery(user_, now_, MessageNotification::kAlways);
  EXPECT_TRUE(plan.message_to);
  EXPECT_EQ(plan.notify.size(), 1u);
  EXPECT_EQ(plan.action, v1::DELIVERY_ACTION_NOTIFY_BY_MESSAGE);
  EXPECT_EQ(plan.reason, "1 new message, notification MESSAGE and 1 subscription");
}

TEST_F(DeliveryPlanTest, PushNeedsAnImClientOfflineDeliveryMessagesAndAPushTrigger) {
  AddBinding("sip:alice@192.0.2.1:5060", 0.5f, v1::REGISTRATION_MODE_REGISTRAR);
  AddBinding("sip:alice@192.0.2.2:5060", 0.9f, v1::REGISTRATION_MODE_REGISTRAR);
  AddSubscription("s1");
  NewMessages(2, 7);
  user_.summary.set_old_count(1);
  user_.settings.set_offline_delivery_active(true);
  user_.push_triggered = true;
  auto plan = PlanDelivery(user_, now_, MessageNotification::kAlways);
  EXPECT_EQ(plan.action, v1::DELIVERY_ACTION_PUSH);
  ASSERT_TRUE(plan.push_to);
  EXPECT_EQ(plan.push_to->contact_uri(), "sip:alice@192.0.2.2:5060");
  EXPECT_FALSE(plan.message_to);      // the messages themselves go, not an announcement
  EXPECT_EQ(plan.notify.size(), 1u);  // the subscriber still follows the store
  EXPECT_EQ(plan.reason, "3 deferred messages, push and 1 subscription");

  // A registration alone (seed 002) or our own deliveries emptying the store start none.
  user_.push_triggered = false;
  plan = PlanDelivery(user_, now_, MessageNotification::kAlways);
  EXPECT_FALSE(plan.push_to);
  EXPECT_FALSE(plan.message_to);
  EXPECT_EQ(plan.action, v1::DELIVERY_ACTION_NOTIFY);
  EXPECT_TRUE(plan.push_withheld);  // a retry of an earlier push still stands

  user_.push_triggered = true;
  NewMessages(0, 8);
  user_.summary.set_old_count(0);
  EXPECT_FALSE(PlanDelivery(user_, now_, MessageNotification::kAlways).push_to);

  NewMessages(1, 9);
  user_.settings.set_offline_delivery_active(false);  // then it is told instead
  plan = PlanDelivery(user_, now_, MessageNotification::kAlways);
  EXPECT_FALSE(plan.push_to);
  EXPECT_TRUE(plan.message_to);

  user_.settings.set_offline_delivery_active(true);
  user_.registration.clear_bindings();
  AddBinding("sip:alice@192.0.2.1:5060", 1.0f, v1::REGISTRATION_MODE_THIRD_PARTY);
  EXPECT_FALSE(PlanDelivery(user_, now_, MessageNotification::kAlways).push_to);
  // Without a client to push to, nothing is withheld either (no retry to keep waiting for).
  user_.push_triggered = false;
  EXPECT_FALSE(PlanDelivery(user_, now_, MessageNotification::kAlways).push_withheld);
}

TEST_F(DeliveryPlanTest, OnlyAUserWithASubscriptionOrAReachableImClientCanBeTold) {
  EXPECT_FALSE(CanBeTold(user_, now_));
  AddBinding("sip:alice@192.0.2.1:5060", 1.0f, v1::REGISTRATION_MODE_THIRD_PARTY);
  EXPECT_FALSE(CanBeTold(user_, now_));
  auto* client = AddBinding("sip:alice@192.0.2.2:5060", 1.0f, v1::REGISTRATION_MODE_REGISTRAR);
  client->clear_edge_address();  // no edge recorded that could reach it
  EXPECT_FALSE(CanBeTold(user_, now_));
  client->set_edge_address("127.0.0.1:7001");
  EXPECT_TRUE(CanBeTold(user_, now_));
  user_.registration.clear_bindings();
  AddSubscription("s1");
  EXPECT_TRUE(CanBeTold(user_, now_));
  // Someone who cannot be told is told why, without the store being read.
  user_.subscriptions.clear();
  EXPECT_EQ(PlanDelivery(user_, now_, MessageNotification::kUnsubscribed).reason,
            "no subscription; no registered IM client");
}

TEST_F(DeliveryPlanTest, ARemovalFromTheStoreConcernsSubscribersOnly) {
  AddBinding("sip:alice@192.0.2.2:5060", 1.0f, v1::REGISTRATION_MODE_REGISTRAR);
  // A client alone: every trigger but a removal concerns it.
  EXPECT_FALSE(TriggerConcerns(v1::TRIGGER_REASON_STORE_CHANGED, user_, now_));
  for (auto reason : {v1::TRIGGER_REASON_MESSAGE_STORED, v1::TRIGGER_REASON_REGISTERED,
                      v1::TRIGGER_REASON_SETTINGS_PUBLISHED, v1::TRIGGER_REASON_SETTINGS_UPDATED,
                      v1::TRIGGER_REASON_PRESENCE_AVAILABLE}) {
    EXPECT_TRUE(TriggerConcerns(reason, user_, now_)) << v1::TriggerReason_Name(reason);
  }
  AddSubscription("s1");
  EXPECT_TRUE(TriggerConcerns(v1::TRIGGER_REASON_STORE_CHANGED, user_, now_));
  // Nobody to tell: nothing concerns the user.
  user_.registration.clear_bindings();
  user_.subscriptions.clear();
  EXPECT_FALSE(TriggerConcerns(v1::TRIGGER_REASON_MESSAGE_STORED, user_, now_));
  EXPECT_FALSE(TriggerConcerns(v1::TRIGGER_REASON_STORE_CHANGED, user_, now_));
}

TEST_F(DeliveryPlanTest, EntriesAreReadOnlyWhenANotifyOrANotificationMessageMayShowThem) {
  // Nobody to show them to.
  EXPECT_FALSE(MayShowEntries(user_, now_, MessageNotification::kAlways));
  // An IM client without offline delivery: a notification MESSAGE may show them.
  AddBinding("sip:alice@192.0.2.2:5060", 1.0f, v1::REGISTRATION_MODE_REGISTRAR);
  EXPECT_TRUE(MayShowEntries(user_, now_, MessageNotification::kUnsubscribed));
  EXPECT_FALSE(MayShowEntries(user_, now_, MessageNotification::kNever));
  // Offline delivery active: the messages are pushed, and a push needs the counts only.
  user_.settings.set_offline_delivery_active(true);
  EXPECT_FALSE(MayShowEntries(user_, now_, MessageNotification::kAlways));
  // A subscriber sees them in every NOTIFY.
  AddSubscription("s1");
  EXPECT_TRUE(MayShowEntries(user_, now_, MessageNotification::kNever));
}

}  // namespace
}  // namespace dims::delivery
