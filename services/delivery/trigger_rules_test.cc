#include "trigger_rules.h"

#include <gtest/gtest.h>

namespace dims::delivery {
namespace {
namespace v1 = dims::v1;

TEST(TriggerFor, StoreChangesAndNewPublicationsCallForAnEvaluationOfTheNormalisedUser) {
  v1::BusEvent stored;
  stored.mutable_message_stored()->mutable_aor()->set_uri("sip:Alice@DIMS.test:5060");
  auto trigger = TriggerFor(stored);
  ASSERT_TRUE(trigger);
  EXPECT_EQ(trigger->aor, "sip:Alice@dims.test");
  EXPECT_EQ(trigger->reason, v1::TRIGGER_REASON_MESSAGE_STORED);

  v1::BusEvent changed;
  changed.mutable_store_changed()->mutable_aor()->set_uri("sip:alice@dims.test");
  EXPECT_EQ(TriggerFor(changed)->reason, v1::TRIGGER_REASON_STORE_CHANGED);

  v1::BusEvent published;
  published.mutable_settings_published()->mutable_aor()->set_uri("sip:alice@dims.test");
  published.mutable_settings_published()->set_kind(v1::PUBLICATION_KIND_INITIAL);
  EXPECT_EQ(TriggerFor(published)->reason, v1::TRIGGER_REASON_SETTINGS_PUBLISHED);
  published.mutable_settings_published()->set_kind(v1::PUBLICATION_KIND_MODIFY);
  EXPECT_EQ(TriggerFor(published)->reason, v1::TRIGGER_REASON_SETTINGS_PUBLISHED);

  v1::BusEvent updated;
  updated.mutable_settings_updated()->mutable_aor()->set_uri("sip:alice@dims.test");
  EXPECT_EQ(TriggerFor(updated)->reason, v1::TRIGGER_REASON_SETTINGS_UPDATED);

  v1::BusEvent registered;
  registered.mutable_registered()->mutable_aor()->set_uri("sip:alice@dims.test");
  EXPECT_EQ(TriggerFor(registered)->reason, v1::TRIGGER_REASON_REGISTERED);

  v1::BusEvent available;
  available.mutable_presence_changed()->mutable_aor()->set_uri("sip:alice@dims.test");
  available.mutable_presence_changed()->set_available_for_im(true);
  EXPECT_EQ(TriggerFor(available)->reason, v1::TRIGGER_REASON_PRESENCE_AVAILABLE);
}

TEST(TriggerFor, RefreshesRemovalsAndUnusableEventsCallForNothing) {
  v1::BusEvent refresh;
  refresh.mutable_registered()->mutable_aor()->set_uri("sip:alice@dims.test");
  refresh.mutable_registered()->set_refresh(true);
  EXPECT_FALSE(TriggerFor(refresh));

  v1::BusEvent gone;
  gone.mutable_deregistered()->mutable_aor()->set_uri("sip:alice@dims.test");
  EXPECT_FALSE(TriggerFor(gone));

  for (auto kind : {v1::PUBLICATION_KIND_REFRESH, v1::PUBLICATION_KIND_REMOVE}) {
    v1::BusEvent published;
    published.mutable_settings_published()->mutable_aor()->set_uri("sip:alice@dims.test");
    published.mutable_settings_published()->set_kind(kind);
    EXPECT_FALSE(TriggerFor(published)) << v1::PublicationKind_Name(kind);
  }

  v1::BusEvent away;
  away.mutable_presence_changed()->mutable_aor()->set_uri("sip:alice@dims.test");
  EXPECT_FALSE(TriggerFor(away));

  v1::BusEvent bad_aor;
  bad_aor.mutable_message_stored()->mutable_aor()->set_uri("not a uri");
  EXPECT_FALSE(TriggerFor(bad_aor));

  EXPECT_FALSE(TriggerFor(v1::BusEvent()));
}

TEST(MayStartPushTest, ARegistrationOrAStoreChangeAloneStartsNoPush) {
  const auto none = EarlierPush::kNone;
  EXPECT_TRUE(MayStartPush({}, none));  // a retry
  EXPECT_FALSE(MayStartPush({v1::TRIGGER_REASON_REGISTERED}, none));
  EXPECT_FALSE(
      MayStartPush({v1::TRIGGER_REASON_STORE_CHANGED, v1::TRIGGER_REASON_REGISTERED}, none));
  EXPECT_TRUE(
      MayStartPush({v1::TRIGGER_REASON_REGISTERED, v1::TRIGGER_REASON_SETTINGS_PUBLISHED}, none));
  EXPECT_TRUE(MayStartPush({v1::TRIGGER_REASON_MESSAGE_STORED}, none));
  EXPECT_TRUE(MayStartPush({v1::TRIGGER_REASON_SETTINGS_UPDATED}, none));
  EXPECT_TRUE(MayStartPush({v1::TRIGGER_REASON_OPERATOR}, none));
  // A push whose replica died is resumed by whatever comes; one backing off keeps its time.
  EXPECT_TRUE(MayStartPush({v1::TRIGGER_REASON_STORE_CHANGED}, EarlierPush::kInterrupted));
  EXPECT_FALSE(MayStartPush({v1::TRIGGER_REASON_STORE_CHANGED}, EarlierPush::kBackingOff));
  EXPECT_TRUE(MayStartPush({}, EarlierPush::kBackingOff));
}

TEST(WaitBeforeEvaluation, ANewRegistrationWaitsForItsPublicationAndEverythingElseIsDueAtOnce) {
  using std::chrono::milliseconds;
  const milliseconds settle(2000);
  EXPECT_EQ(WaitBeforeEvaluation({"sip:alice@dims.test", v1::TRIGGER_REASON_REGISTERED}, settle),
            settle);
  for (auto reason : {v1::TRIGGER_REASON_SETTINGS_PUBLISHED, v1::TRIGGER_REASON_SETTINGS_UPDATED,
                      v1::TRIGGER_REASON_MESSAGE_STORED, v1::TRIGGER_REASON_STORE_CHANGED,
                      v1::TRIGGER_REASON_PRESENCE_AVAILABLE}) {
    SCOPED_TRACE(v1::TriggerReason_Name(reason));
    EXPECT_EQ(WaitBeforeEvaluation({"sip:alice@dims.test", reason}, settle), milliseconds(0));
  }
  // Without a settle time a registration is due at once too.
  EXPECT_EQ(
      WaitBeforeEvaluation({"sip:alice@dims.test", v1::TRIGGER_REASON_REGISTERED}, milliseconds(0)),
      milliseconds(0));
}

TEST(RegistrationWaitEnd, TellsWhatEndedTheWaitOfARegistration) {
  EXPECT_FALSE(RegistrationWaitEnd({}));
  EXPECT_FALSE(RegistrationWaitEnd({v1::TRIGGER_REASON_SETTINGS_PUBLISHED}));
  EXPECT_EQ(RegistrationWaitEnd({v1::TRIGGER_REASON_REGISTERED}), "elapsed");
  EXPECT_EQ(RegistrationWaitEnd({v1::TRIGGER_REASON_REGISTERED, v1::TRIGGER_REASON_REGISTERED}),
            "elapsed");
  EXPECT_EQ(RegistrationWaitEnd({v1::TRIGGER_REASON_REGISTERED, v1::TRIGGER_REASON_MESSAGE_STORED,
                                 v1::TRIGGER_REASON_SETTINGS_PUBLISHED}),
            "publication");
  EXPECT_EQ(RegistrationWaitEnd({v1::TRIGGER_REASON_MESSAGE_STORED, v1::TRIGGER_REASON_REGISTERED}),
            "other_trigger");
  EXPECT_EQ(RegistrationWaitEnd({v1::TRIGGER_REASON_REGISTERED, v1::TRIGGER_REASON_STORE_CHANGED}),
            "other_trigger");
}

TEST(LeadingTrigger, AnEvaluationIsRecordedUnderTheTriggerThatMayStartAPush) {
  EXPECT_EQ(LeadingTrigger({}), v1::TRIGGER_REASON_RETRY);
  EXPECT_EQ(LeadingTrigger({v1::TRIGGER_REASON_REGISTERED}), v1::TRIGGER_REASON_REGISTERED);
  EXPECT_EQ(LeadingTrigger({v1::TRIGGER_REASON_REGISTERED, v1::TRIGGER_REASON_SETTINGS_PUBLISHED}),
            v1::TRIGGER_REASON_SETTINGS_PUBLISHED);
  EXPECT_EQ(LeadingTrigger({v1::TRIGGER_REASON_STORE_CHANGED, v1::TRIGGER_REASON_REGISTERED}),
            v1::TRIGGER_REASON_STORE_CHANGED);
}

}  // namespace
}  // namespace dims::delivery
