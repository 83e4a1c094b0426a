#include "pager_routing.h"

#include <gtest/gtest.h>

#include "bus_event.h"

namespace dims::edge {
namespace {

using std::chrono::seconds;
using Action = PagerDecision::Action;

class PagerRouting : public ::testing::Test {
 protected:
  dims::v1::Binding& AddBinding(const std::string& contact, bool im = true, int expires_in = 600) {
    auto* b = registration_.add_bindings();
    b->set_contact_uri(contact);
    b->set_q(1.0f);
    b->set_mode(dims::v1::REGISTRATION_MODE_REGISTRAR);
    b->set_edge_instance_id("edge-1");
    b->set_edge_address("10.0.0.1:50051");
    if (im) (*b->mutable_feature_tags())["+g.oma.sip-im"] = "";
    ToTimestamp(now_ + seconds(expires_in), b->mutable_expires_at());
    ToTimestamp(now_ - seconds(10), b->mutable_refreshed_at());
    return *b;
  }
  PagerDecision Decide() { return DecidePager(registration_, settings_, now_, policy_); }

  dims::v1::Registration registration_;
  dims::v1::ImSettings settings_;
  PagerPolicy policy_{403, "edge-1"};
  std::chrono::system_clock::time_point now_{seconds(1'800'000'000)};
};

TEST_F(PagerRouting, AnUnregisteredUserGetsTheMessageStoredAsOffline) {
  auto d = Decide();
  EXPECT_EQ(d.action, Action::kStore);
  EXPECT_EQ(d.store_reason, dims::v1::STORE_REASON_OFFLINE);
}

TEST_F(PagerRouting, ARegisteredImClientGetsTheMessageForwarded) {
  AddBinding("sip:alice@192.0.2.1:5060");
  auto d = Decide();
  ASSERT_EQ(d.action, Action::kForward);
  ASSERT_EQ(d.contacts.size(), 1u);
  EXPECT_EQ(d.contacts[0].contact_uri(), "sip:alice@192.0.2.1:5060");
}

TEST_F(PagerRouting, OnlyLiveBindingsWithTheImFeatureTagCount) {
  AddBinding("sip:alice@192.0.2.1:5060", /*im=*/false);
  AddBinding("sip:alice@192.0.2.2:5060", /*im=*/true, /*expires_in=*/-1);
  EXPECT_EQ(Decide().action, Action::kStore);
}

TEST_F(PagerRouting, ThirdPartyRegistrationsAreNotForwardedTo) {
  AddBinding("sip:scscf.core.test").set_mode(dims::v1::REGISTRATION_MODE_THIRD_PARTY);
  auto d = Decide();
  EXPECT_EQ(d.action, Action::kStore);
  EXPECT_EQ(d.store_reason, dims::v1::STORE_REASON_OFFLINE);
}

TEST_F(PagerRouting, AContactOfAnotherEdgeIsReachableThroughItsAddressOnly) {
  auto& remote = AddBinding("sip:alice@192.0.2.1:5060");
  remote.set_edge_instance_id("edge-2");
  EXPECT_EQ(Decide().action, Action::kForward);
  remote.clear_edge_address();
  EXPECT_EQ(Decide().action, Action::kStore);
}

TEST_F(PagerRouting, ContactsAreTriedByQThenNewestRefresh) {
  AddBinding("sip:old@192.0.2.1").set_q(0.5f);
  auto& newer = AddBinding("sip:newer@192.0.2.2");
  ToTimestamp(now_ - seconds(1), newer.mutable_refreshed_at());
  AddBinding("sip:older@192.0.2.3");
  auto d = Decide();
  ASSERT_EQ(d.contacts.size(), 3u);
  EXPECT_EQ(d.contacts[0].contact_uri(), "sip:newer@192.0.2.2");
  EXPECT_EQ(d.contacts[1].contact_uri(), "sip:older@192.0.2.3");
  EXPECT_EQ(d.contacts[2].contact_uri(), "sip:old@192.0.2.1");
}

TEST_F(PagerRouting, BarringRefusesWith403OrTheConfigured480) {
  AddBinding("sip:alice@192.0.2.1:5060");
  settings_.set_incoming_pager_large_barring(true);
  auto d = Decide();
  EXPECT_EQ(d.action, Action::kRefuse);
  EXPECT_EQ(d.refusal.status, 403);
  policy_.barred_status = 480;
  EXPECT_EQ(Decide().refusal.status, 480);
}

TEST_F(PagerRouting, AnInvisibleUserLooksUnreachableAndTheMessageIsKept) {
  AddBinding("sip:alice@192.0.2.1:5060");
  settings_.set_invisibility(true);
  auto d = Decide();
  EXPECT_EQ(d.action, Action::kStore);
  EXPECT_EQ(d.store_reason, dims::v1::STORE_REASON_INVISIBLE);
}

TEST_F(PagerRouting, OnlyTemporaryFailuresOfAForwardEndStored) {
  for (int status : {408, 480, 503}) EXPECT_TRUE(ForwardFailedTemporarily(status)) << status;
  for (int status : {200, 202, 404, 415, 486, 500, 603}) {
    EXPECT_FALSE(ForwardFailedTemporarily(status)) << status;
  }
}

TEST_F(PagerRouting, StorageRefusalsBecomePreciseAnswers) {
  dims::v1::ErrorDetail detail;
  detail.set_limit("MESSAGE_BYTES");
  EXPECT_EQ(StoreRefusal(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "x"), detail).status,
            413);
  detail.set_limit("USER_MESSAGES");
  auto full = StoreRefusal(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "x"), detail);
  EXPECT_EQ(full.status, 480);
  ASSERT_TRUE(full.warning);
  EXPECT_NE(full.warning->find("USER_MESSAGES"), std::string::npos);
  EXPECT_EQ(StoreRefusal(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no Call-ID"), {}).status,
            400);
  for (auto code : {grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::DEADLINE_EXCEEDED,
                    grpc::StatusCode::CANCELLED}) {
    auto busy = StoreRefusal(grpc::Status(code, "x"), {});
    EXPECT_EQ(busy.status, 503);
    EXPECT_TRUE(busy.retry_after);
  }
}

}  // namespace
}  // namespace dims::edge
