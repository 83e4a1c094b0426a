#include "user_records.h"

#include <gtest/gtest.h>

#include "bus_event.h"

namespace dims {
namespace {
using namespace std::chrono_literals;

TEST(ImClientBindings, LiveRegistrarBindingsOfImClientsBestFirst) {
  auto now = std::chrono::system_clock::now();
  dims::v1::Registration registration;
  auto add = [&](const std::string& contact, float q, std::chrono::seconds refreshed_ago,
                 bool im = true, bool live = true,
                 dims::v1::RegistrationMode mode = dims::v1::REGISTRATION_MODE_REGISTRAR) {
    auto* b = registration.add_bindings();
    b->set_contact_uri(contact);
    b->set_q(q);
    b->set_mode(mode);
    if (im) (*b->mutable_feature_tags())[kImFeatureTag] = "";
    ToTimestamp(live ? now + 600s : now - 1s, b->mutable_expires_at());
    ToTimestamp(now - refreshed_ago, b->mutable_refreshed_at());
  };
  add("sip:older@192.0.2.1", 0.5f, 60s);
  add("sip:newer@192.0.2.2", 0.5f, 5s);
  add("sip:best@192.0.2.3", 1.0f, 600s);
  add("sip:no-im@192.0.2.4", 1.0f, 1s, /*im=*/false);
  add("sip:expired@192.0.2.5", 1.0f, 1s, true, /*live=*/false);
  add("sip:core@192.0.2.6", 1.0f, 1s, true, true, dims::v1::REGISTRATION_MODE_THIRD_PARTY);
  auto clients = ImClientBindings(registration, now);
  ASSERT_EQ(clients.size(), 3u);
  EXPECT_EQ(clients[0].contact_uri(), "sip:best@192.0.2.3");
  EXPECT_EQ(clients[1].contact_uri(), "sip:newer@192.0.2.2");
  EXPECT_EQ(clients[2].contact_uri(), "sip:older@192.0.2.1");
}

TEST(LiveSubscriptions, SkipsExpiredUnreadableAndUnaddressedRecords) {
  auto now = std::chrono::system_clock::now();
  auto record = [&](const std::string& id, std::chrono::seconds left, const std::string& edge) {
    dims::v1::Subscription s;
    s.set_subscription_id(id);
    s.set_edge_address(edge);
    ToTimestamp(now + left, s.mutable_expires_at());
    return s.SerializeAsString();
  };
  auto live =
      LiveSubscriptions({record("live", 60s, "127.0.0.1:1"), record("expired", -1s, "127.0.0.1:1"),
                         record("nowhere", 60s, ""), std::string("\xff\xff garbage", 10)},
                        now);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].subscription_id(), "live");
  EXPECT_EQ(RegistrationKey("sip:a@b"), "dims:reg:{sip:a@b}");
  EXPECT_EQ(SubscriptionsKey("sip:a@b"), "dims:sub:{sip:a@b}");
}

}  // namespace
}  // namespace dims
