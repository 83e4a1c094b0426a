#include "registrar_rules.h"

#include <gtest/gtest.h>

#include "bus_event.h"

namespace dims::edge {
namespace {

using std::chrono::seconds;
using Error = RegisterOutcome::Error;

class RegistrarRules : public ::testing::Test {
 protected:
  RegisterOutcome Register(std::vector<RegisterContact> contacts, std::optional<int> expires,
                           uint32_t cseq, std::string call_id = "call-1") {
    RegisterRequest r;
    r.aor = "sip:alice@dims.test";
    r.contacts = std::move(contacts);
    r.expires = expires;
    r.call_id = std::move(call_id);
    r.cseq = cseq;
    return ApplyRegister(reg_, r, now_, limits_);
  }
  static RegisterContact Contact(std::string uri, std::optional<int> expires = std::nullopt) {
    return {std::move(uri), expires, std::nullopt, {{"+g.oma.sip-im", ""}}};
  }

  dims::v1::Registration reg_;
  Clock::time_point now_ = Clock::time_point(seconds(1'800'000'000));
  RegisterLimits limits_{60, 3600, 1800};
};

TEST_F(RegistrarRules, AddsRefreshesAndRemovesBindings) {
  auto first = Register({Contact("sip:alice@10.0.0.1:5060")}, 600, 1);
  EXPECT_EQ(first.error, Error::kNone);
  ASSERT_EQ(first.added.size(), 1u);
  ASSERT_EQ(reg_.bindings_size(), 1);
  EXPECT_EQ(SecondsLeft(reg_.bindings(0), now_), 600);
  EXPECT_EQ(reg_.bindings(0).feature_tags().count("+g.oma.sip-im"), 1u);
  EXPECT_EQ(reg_.bindings(0).q(), 1.0f);

  auto second = Register({Contact("sip:alice@10.0.0.2:5060", 1200)}, std::nullopt, 2);
  EXPECT_EQ(second.added.size(), 1u);
  EXPECT_EQ(reg_.bindings_size(), 2);

  auto refresh = Register({Contact("sip:alice@10.0.0.1:5060")}, std::nullopt, 3);
  EXPECT_EQ(refresh.refreshed.size(), 1u);
  EXPECT_EQ(SecondsLeft(reg_.bindings(0), now_), 1800);  // the default

  auto remove = Register({Contact("sip:alice@10.0.0.2:5060", 0)}, 600, 4);
  ASSERT_EQ(remove.removed.size(), 1u);
  EXPECT_EQ(remove.removed[0].contact_uri(), "sip:alice@10.0.0.2:5060");
  EXPECT_EQ(reg_.bindings_size(), 1);
}

TEST_F(RegistrarRules, WildcardRemovesEverythingButOnlyWithExpiresZeroAlone) {
  Register({Contact("sip:a@1.1.1.1"), Contact("sip:a@2.2.2.2")}, 600, 1);
  RegisterRequest bad;
  bad.wildcard = true;
  bad.expires = 600;
  bad.call_id = "other";
  bad.cseq = 1;
  EXPECT_EQ(ApplyRegister(reg_, bad, now_, limits_).error, Error::kBadWildcard);
  bad.expires = std::nullopt;
  EXPECT_EQ(ApplyRegister(reg_, bad, now_, limits_).error, Error::kBadWildcard);
  EXPECT_EQ(reg_.bindings_size(), 2);
  RegisterRequest all = bad;
  all.expires = 0;
  auto out = ApplyRegister(reg_, all, now_, limits_);
  EXPECT_EQ(out.error, Error::kNone);
  EXPECT_EQ(out.removed.size(), 2u);
  EXPECT_EQ(reg_.bindings_size(), 0);
}

TEST_F(RegistrarRules, TooBriefIsRefusedAndLongIsCapped) {
  EXPECT_EQ(Register({Contact("sip:a@1.1.1.1", 59)}, std::nullopt, 1).error, Error::kTooBrief);
  EXPECT_EQ(reg_.bindings_size(), 0);
  Register({Contact("sip:a@1.1.1.1", 99999)}, std::nullopt, 2);
  EXPECT_EQ(SecondsLeft(reg_.bindings(0), now_), 3600);
}

TEST_F(RegistrarRules, AnOlderCSeqOfTheSameCallIdChangesNothing) {
  Register({Contact("sip:a@1.1.1.1")}, 600, 5);
  EXPECT_EQ(Register({Contact("sip:a@1.1.1.1", 0)}, std::nullopt, 5).error, Error::kOutOfOrder);
  EXPECT_EQ(Register({Contact("sip:a@1.1.1.1", 0)}, std::nullopt, 4).error, Error::kOutOfOrder);
  EXPECT_EQ(reg_.bindings_size(), 1);
  // Another Call-ID (a rebooted client) may replace it whatever its CSeq.
  EXPECT_EQ(Register({Contact("sip:a@1.1.1.1", 0)}, std::nullopt, 1, "call-2").error, Error::kNone);
  EXPECT_EQ(reg_.bindings_size(), 0);
}

TEST_F(RegistrarRules, ExpiredBindingsAreGoneOnTheNextLook) {
  Register({Contact("sip:a@1.1.1.1", 60)}, std::nullopt, 1);
  now_ += seconds(60);
  auto query = Register({}, std::nullopt, 2);
  EXPECT_EQ(query.error, Error::kNone);
  EXPECT_EQ(reg_.bindings_size(), 0);
}

}  // namespace
}  // namespace dims::edge
