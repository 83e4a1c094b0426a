#include "store_policy.h"

#include <gtest/gtest.h>

namespace dims::storage {
namespace {

using std::chrono::seconds;

TEST(StoreLimits, NamesTheFirstLimitAMessageWouldExceed) {
  StoreLimits limits{.max_message_bytes = 100, .max_user_messages = 3, .max_user_bytes = 250};
  EXPECT_EQ(ExceededLimit(limits, {0, 0}, 100), std::nullopt);
  EXPECT_EQ(ExceededLimit(limits, {0, 0}, 101), "MESSAGE_BYTES");
  EXPECT_EQ(ExceededLimit(limits, {2, 100}, 50), std::nullopt);
  EXPECT_EQ(ExceededLimit(limits, {3, 100}, 50), "USER_MESSAGES");
  EXPECT_EQ(ExceededLimit(limits, {2, 200}, 51), "USER_BYTES");
  EXPECT_EQ(ExceededLimit(limits, {2, 200}, 50), std::nullopt);
  EXPECT_EQ(DescribeLimit(limits, "USER_MESSAGES"),
            "USER_MESSAGES: the recipient already has 3 deferred messages");
}

TEST(MessageId, HasTheSeedsShapeAndAcceptsTheSipPrefix) {
  EXPECT_EQ(FormatMessageId(13684434990, "mailserver32.example.org"),
            "13684434990@mailserver32.example.org");
  EXPECT_EQ(NormalizeMessageId("sip:13684434991@mailserver32.example.org"),
            "13684434991@mailserver32.example.org");
  EXPECT_EQ(NormalizeMessageId("42@store.dims.test"), "42@store.dims.test");
  EXPECT_FALSE(NormalizeMessageId("abc@store"));
  EXPECT_FALSE(NormalizeMessageId("42@"));
  EXPECT_FALSE(NormalizeMessageId("@store"));
  EXPECT_FALSE(NormalizeMessageId("42@st ore"));
  EXPECT_FALSE(NormalizeMessageId(""));
}

TEST(Retention, DefaultsAndIsCappedAndMustBePositive) {
  EXPECT_EQ(EffectiveRetention(std::nullopt, seconds(604800), seconds(2592000)), seconds(604800));
  EXPECT_EQ(EffectiveRetention(seconds(60), seconds(604800), seconds(2592000)), seconds(60));
  EXPECT_EQ(EffectiveRetention(seconds(9999999), seconds(604800), seconds(2592000)),
            seconds(2592000));
  EXPECT_FALSE(EffectiveRetention(seconds(0), seconds(604800), seconds(2592000)));
  EXPECT_FALSE(EffectiveRetention(seconds(-5), seconds(604800), seconds(2592000)));
}

TEST(PageToken, RoundTripsOnlyForTheUserAndFilterItWasIssuedFor) {
  std::string token = EncodePageToken(10000000042, "sip:alice@dims.test", 0);
  EXPECT_EQ(DecodePageToken(token, "sip:alice@dims.test", 0), 10000000042);
  EXPECT_FALSE(DecodePageToken(token, "sip:bob@dims.test", 0));
  EXPECT_FALSE(DecodePageToken(token, "sip:alice@dims.test", 1));
  EXPECT_FALSE(
      DecodePageToken("10000000043" + token.substr(token.find('.')), "sip:alice@dims.test", 0));
  EXPECT_FALSE(DecodePageToken("garbage", "sip:alice@dims.test", 0));
  EXPECT_FALSE(DecodePageToken("", "sip:alice@dims.test", 0));
}

TEST(PagerBodySize, CountsWhatFollowsTheHeaders) {
  EXPECT_EQ(PagerBodySize("MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\nhello"), 5);
  EXPECT_EQ(PagerBodySize("MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n"), 0);
  EXPECT_EQ(PagerBodySize("MESSAGE sip:a@b SIP/2.0\nCall-ID: x\n\nhi\r\n\r\nthere"), 11);
  EXPECT_EQ(PagerBodySize("no blank line"), 13);
}

TEST(StorableText, IsUtf8WithoutNul) {
  EXPECT_TRUE(IsStorableText("Subject: hello"));
  EXPECT_TRUE(IsStorableText("R\xc3\xa4ksm\xc3\xb6rg\xc3\xa5s \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsStorableText(std::string("a\0b", 3)));
  EXPECT_FALSE(IsStorableText("\xc3"));              // truncated
  EXPECT_FALSE(IsStorableText("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsStorableText("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsStorableText("\xff"));              // never UTF-8
  EXPECT_FALSE(IsStorableText("\xf4\x90\x80\x80"));  // past U+10FFFF
}

}  // namespace
}  // namespace dims::storage
