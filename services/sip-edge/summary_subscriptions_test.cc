#include "summary_subscriptions.h"

#include <gtest/gtest.h>

namespace dims::edge {
namespace {

class SummarySubscribeRules : public ::testing::Test {
 protected:
  SubscribeVerdict Check() { return CheckSummarySubscribe(in_, {"dims.test"}, limits_); }
  IncomingSubscribe in_{.request_uri = "sip:alice@dims.test",
                        .event = "message-summary",
                        .from = "sip:alice@dims.test"};
  SubscriptionLimits limits_;
};

TEST_F(SummarySubscribeRules, TheUserMaySubscribeToTheirOwnStore) {
  auto v = Check();
  ASSERT_FALSE(v.refusal);
  EXPECT_EQ(v.aor, "sip:alice@dims.test");
  EXPECT_EQ(v.expires, 3600);  // RFC 3842's default
}

TEST_F(SummarySubscribeRules, AnyoneElseIsRefused403) {
  in_.from = "sip:mallory@dims.test";
  EXPECT_EQ(Check().refusal->status, 403);
}

TEST_F(SummarySubscribeRules, TheAssertedIdentityOutranksFrom) {
  in_.from = "sip:anonymous@anonymous.invalid";
  in_.asserted_identity = "sip:alice@dims.test";
  EXPECT_FALSE(Check().refusal);
  in_.from = "sip:alice@dims.test";
  in_.asserted_identity = "sip:mallory@dims.test";
  EXPECT_EQ(Check().refusal->status, 403);
}

TEST_F(SummarySubscribeRules, OtherPackagesDomainsAndMediaTypesAreRefused) {
  in_.event = "presence";
  EXPECT_EQ(Check().refusal->status, 489);
  in_.event = "message-summary";
  in_.request_uri = "sip:alice@elsewhere.test";
  in_.from = "sip:alice@elsewhere.test";
  EXPECT_EQ(Check().refusal->status, 404);
  in_.request_uri = in_.from = "sip:alice@dims.test";
  in_.accept = {"application/pidf+xml"};
  EXPECT_EQ(Check().refusal->status, 406);
  in_.accept = {"application/pidf+xml", "application/simple-message-summary"};
  EXPECT_FALSE(Check().refusal);
}

TEST_F(SummarySubscribeRules, IntervalsAreBoundedAndZeroIsAFetch) {
  in_.expires = 30;
  auto brief = Check();
  ASSERT_TRUE(brief.refusal);
  EXPECT_EQ(brief.refusal->status, 423);
  EXPECT_EQ(brief.refusal->min_expires, 60);
  in_.expires = 86400;
  EXPECT_EQ(Check().expires, 3600);
  in_.expires = 0;
  auto fetch = Check();
  EXPECT_FALSE(fetch.refusal);
  EXPECT_EQ(fetch.expires, 0);
}

}  // namespace
}  // namespace dims::edge
