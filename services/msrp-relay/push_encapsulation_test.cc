#include "push_encapsulation.h"

#include <gtest/gtest.h>

#include "msrp_message.h"

namespace dims::relay {
namespace {

constexpr const char* kRequest =
    "MESSAGE sip:bob@dims.test SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
    "From: <sip:alice@dims.test>;tag=1\r\n"
    "To: <sip:bob@dims.test>\r\n"
    "Call-ID: c1@192.0.2.1\r\n"
    "CSeq: 1 MESSAGE\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 5\r\n"
    "\r\n"
    "hello";

dims::v1::DeferredMessage Pager() {
  dims::v1::DeferredMessage message;
  message.set_message_id("13684434990@store.dims.test");
  message.set_kind(dims::v1::MESSAGE_KIND_PAGER);
  message.mutable_received_at()->set_seconds(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  message.set_sip_request(kRequest);
  return message;
}

std::string BoundaryOf(const std::string& content_type) {
  auto at = content_type.find("boundary=\"");
  EXPECT_NE(at, std::string::npos);
  at += 10;
  return content_type.substr(at, content_type.find('"', at) - at);
}

TEST(PushEncapsulationTest, PagerMessageIsOneMessageSipPartWithTheRequestUnchanged) {
  std::string error;
  auto push = EncapsulateForPush(Pager(), PagerPartType::kMessageSip, &error);
  ASSERT_TRUE(push) << error;
  std::string boundary = BoundaryOf(push->content_type);
  EXPECT_EQ(push->content_type.rfind("multipart/mixed; boundary=\"", 0), 0u);
  EXPECT_EQ(push->body, "--" + boundary +
                            "\r\n"
                            "Content-Type: message/sip\r\n"
                            "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                            "\r\n" +
                            std::string(kRequest) + "\r\n--" + boundary + "--\r\n");
}

TEST(PushEncapsulationTest, SipfragOptionChangesThePartType) {
  std::string error;
  auto push = EncapsulateForPush(Pager(), PagerPartType::kMessageSipfrag, &error);
  ASSERT_TRUE(push);
  EXPECT_NE(push->body.find("Content-Type: message/sipfrag\r\n"), std::string::npos);
  EXPECT_EQ(ParsePagerPartType("message/sipfrag"), PagerPartType::kMessageSipfrag);
  EXPECT_EQ(ParsePagerPartType("message/sip"), PagerPartType::kMessageSip);
  EXPECT_FALSE(ParsePagerPartType("text/plain"));
}

TEST(PushEncapsulationTest, BoundaryNeverOccursInTheContentAndIsStable) {
  std::string error;
  auto first = EncapsulateForPush(Pager(), PagerPartType::kMessageSip, &error);
  ASSERT_TRUE(first);
  std::string boundary = BoundaryOf(first->content_type);
  // A request that contains that very boundary gets another one.
  auto tricky = Pager();
  tricky.set_sip_request(std::string(kRequest) + boundary);
  auto second = EncapsulateForPush(tricky, PagerPartType::kMessageSip, &error);
  ASSERT_TRUE(second);
  EXPECT_EQ(tricky.sip_request().find(BoundaryOf(second->content_type)), std::string::npos);
  auto again = EncapsulateForPush(Pager(), PagerPartType::kMessageSip, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->body, first->body);
}

TEST(PushEncapsulationTest, LargeMessageIsTheRebuiltMsrpSend) {
  dims::v1::DeferredMessage message;
  message.set_message_id("7@store.dims.test");
  message.set_kind(dims::v1::MESSAGE_KIND_LARGE);
  auto* large = message.mutable_large();
  large->set_msrp_message_id("87652491");
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"To-Path", "msrp://dims.test:2855/in1;tcp"},
           {"From-Path", "msrp://192.0.2.1:7000/a1;tcp"},
           {"Message-ID", "87652491"},
           {"Content-Type", "image/jpeg"}}) {
    auto* header = large->add_msrp_headers();
    header->set_name(name);
    header->set_value(value);
  }
  large->set_content("JPEGDATA");
  large->mutable_completed_at()->set_seconds(784111777);
  std::string error;
  auto push = EncapsulateForPush(message, PagerPartType::kMessageSip, &error);
  ASSERT_TRUE(push) << error;
  EXPECT_NE(push->body.find("Content-Type: message/msrp\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                            "\r\nMSRP "),
            std::string::npos)
      << push->body;
  EXPECT_NE(push->body.find(" SEND\r\n"
                            "To-Path: msrp://dims.test:2855/in1;tcp\r\n"
                            "From-Path: msrp://192.0.2.1:7000/a1;tcp\r\n"
                            "Message-ID: 87652491\r\n"
                            "Byte-Range: 1-8/8\r\n"
                            "Content-Type: image/jpeg\r\n"
                            "\r\n"
                            "JPEGDATA\r\n-------"),
            std::string::npos)
      << push->body;
  auto again = EncapsulateForPush(message, PagerPartType::kMessageSip, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->body, push->body);
}

TEST(PushEncapsulationTest, MessageWithoutContentIsRefused) {
  auto message = Pager();
  message.clear_sip_request();
  std::string error;
  EXPECT_FALSE(EncapsulateForPush(message, PagerPartType::kMessageSip, &error));
  EXPECT_NE(error.find("no content"), std::string::npos);
}

TEST(PushMessageIdTest, IsAnIdentDerivedFromTheStoredId) {
  std::string id = PushMessageId("13684434990@store.dims.test");
  EXPECT_EQ(id, "13684434990%40store.dims.test");
  EXPECT_TRUE(IsMsrpIdent(id));
  EXPECT_EQ(PushMessageId("13684434990@store.dims.test"), id);
  std::string long_id = PushMessageId("123456789012345678901234567890@store.example.com");
  EXPECT_EQ(long_id.size(), 32u);
  EXPECT_TRUE(IsMsrpIdent(long_id));
  EXPECT_NE(long_id, PushMessageId("123456789012345678901234567890@store.example.net"));
  EXPECT_TRUE(IsMsrpIdent(PushMessageId("@")));
  EXPECT_TRUE(IsMsrpIdent(PushMessageId("a")));
  EXPECT_TRUE(IsMsrpIdent(PushMessageId("")));
}

TEST(Rfc1123DateTest, FormatsInGmt) {
  google::protobuf::Timestamp time;
  time.set_seconds(0);
  EXPECT_EQ(Rfc1123Date(time), "Thu, 01 Jan 1970 00:00:00 GMT");
}

}  // namespace
}  // namespace dims::relay
