#include "msrp_sdp.h"

#include <gtest/gtest.h>

namespace dims::relay {
namespace {

constexpr const char* kAnswer =
    "v=0\r\n"
    "o=alice 2890844526 2890844527 IN IP4 192.0.2.5\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.5\r\n"
    "t=0 0\r\n"
    "m=message 7394 TCP/MSRP *\r\n"
    "a=recvonly\r\n"
    "a=accept-types:multipart/mixed message/sip\r\n"
    "a=max-size:131072\r\n"
    "a=path:msrp://192.0.2.5:7394/s1;tcp\r\n"
    "a=setup:passive\r\n";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(PushOfferTest, HasEveryLineInOrderWithCrlf) {
  std::string offer = BuildPushOffer({.advertised_host = "198.51.100.1",
                                      .port = 2855,
                                      .local_uri = "msrp://198.51.100.1:2855/abc;tcp",
                                      .accept_types = {"multipart/mixed", "message/sip"},
                                      .session_version = 42});
  EXPECT_EQ(offer,
            "v=0\r\n"
            "o=dims 42 42 IN IP4 198.51.100.1\r\n"
            "s=-\r\n"
            "c=IN IP4 198.51.100.1\r\n"
            "t=0 0\r\n"
            "m=message 2855 TCP/MSRP *\r\n"
            "a=sendonly\r\n"
            "a=accept-types:multipart/mixed message/sip\r\n"
            "a=path:msrp://198.51.100.1:2855/abc;tcp\r\n"
            "a=setup:actpass\r\n");
}

TEST(PushOfferTest, AnIpv6HostIsAnIp6Address) {
  std::string offer = BuildPushOffer({.advertised_host = "[2001:db8::5]",
                                      .port = 2855,
                                      .local_uri = "msrp://[2001:db8::5]:2855/abc;tcp",
                                      .accept_types = {"multipart/mixed"},
                                      .session_version = 1});
  EXPECT_NE(offer.find("o=dims 1 1 IN IP6 2001:db8::5\r\n"), std::string::npos) << offer;
  EXPECT_NE(offer.find("c=IN IP6 2001:db8::5\r\n"), std::string::npos) << offer;
}

TEST(SdpAnswerTest, ReadsAddressPathTypesSizeAndSetup) {
  auto result = ParseSdpAnswer(kAnswer);
  ASSERT_TRUE(result.answer) << result.detail;
  const SdpAnswer& answer = *result.answer;
  EXPECT_EQ(answer.connection_host, "192.0.2.5");
  EXPECT_EQ(answer.media_port, 7394);
  EXPECT_EQ(answer.media_proto, "TCP/MSRP");
  ASSERT_EQ(answer.path.size(), 1u);
  EXPECT_EQ(answer.path[0].session_id, "s1");
  EXPECT_EQ(answer.path_uris, std::vector<std::string>{"msrp://192.0.2.5:7394/s1;tcp"});
  EXPECT_EQ(answer.accept_types, (std::vector<std::string>{"multipart/mixed", "message/sip"}));
  EXPECT_EQ(answer.max_size, 131072u);
  EXPECT_EQ(answer.setup, SdpSetup::kPassive);
  EXPECT_TRUE(RelayConnects(answer.setup));
}

TEST(SdpAnswerTest, ToleratesLfLineEndsAndUnknownLines) {
  std::string lf;
  for (char c : std::string(kAnswer)) {
    if (c != '\r') lf += c;
  }
  lf += "x-unknown=1\n";  // not <letter>= : refused
  EXPECT_FALSE(ParseSdpAnswer(lf).answer);
  lf.resize(lf.size() - std::string("x-unknown=1\n").size());
  lf += "b=AS:64\na=fingerprint:whatever\n";
  auto result = ParseSdpAnswer(lf);
  ASSERT_TRUE(result.answer) << result.detail;
  EXPECT_EQ(result.answer->media_port, 7394);
}

TEST(SdpAnswerTest, SetupValuesDecideWhoConnects) {
  auto setup_of = [](const std::string& line) {
    auto result = ParseSdpAnswer(Replace(kAnswer, "a=setup:passive\r\n", line));
    EXPECT_TRUE(result.answer) << result.detail;
    return result.answer ? result.answer->setup : SdpSetup::kHoldconn;
  };
  EXPECT_EQ(setup_of("a=setup:active\r\n"), SdpSetup::kActive);
  EXPECT_FALSE(RelayConnects(SdpSetup::kActive));
  EXPECT_EQ(setup_of(""), SdpSetup::kAbsent);
  EXPECT_TRUE(RelayConnects(SdpSetup::kAbsent));
  EXPECT_EQ(setup_of("a=setup:actpass\r\n"), SdpSetup::kActpass);
  auto hold = ParseSdpAnswer(Replace(kAnswer, "a=setup:passive", "a=setup:holdconn"));
  ASSERT_FALSE(hold.answer);
  EXPECT_EQ(hold.error, SdpAnswerError::kMediaRejected);
  auto bad = ParseSdpAnswer(Replace(kAnswer, "a=setup:passive", "a=setup:sideways"));
  ASSERT_FALSE(bad.answer);
  EXPECT_EQ(bad.error, SdpAnswerError::kInvalidSdp);
}

TEST(SdpAnswerTest, MediaLevelConnectionOverridesSessionLevel) {
  auto result = ParseSdpAnswer(Replace(kAnswer, "a=recvonly\r\n", "c=IN IP4 203.0.113.9\r\n"));
  ASSERT_TRUE(result.answer) << result.detail;
  EXPECT_EQ(result.answer->connection_host, "203.0.113.9");
}

TEST(SdpAnswerTest, AttributesOfOtherMediaAreIgnored) {
  std::string sdp =
      Replace(kAnswer, "m=message", "m=audio 49170 RTP/AVP 0\r\na=path:bogus\r\nm=message");
  auto result = ParseSdpAnswer(sdp);
  ASSERT_TRUE(result.answer) << result.detail;
  EXPECT_EQ(result.answer->path[0].session_id, "s1");
}

TEST(SdpAnswerTest, RejectedMedia) {
  auto port0 = ParseSdpAnswer(Replace(kAnswer, "m=message 7394", "m=message 0"));
  ASSERT_FALSE(port0.answer);
  EXPECT_EQ(port0.error, SdpAnswerError::kMediaRejected);
  auto audio = ParseSdpAnswer(Replace(kAnswer, "m=message 7394 TCP/MSRP *", "m=audio 4 RTP/AVP 0"));
  ASSERT_FALSE(audio.answer);
  EXPECT_EQ(audio.error, SdpAnswerError::kMediaRejected);
  auto tls = ParseSdpAnswer(Replace(kAnswer, "TCP/MSRP", "TCP/TLS/MSRP"));
  ASSERT_FALSE(tls.answer);
  EXPECT_EQ(tls.error, SdpAnswerError::kMediaRejected);
}

TEST(SdpAnswerTest, InvalidAnswers) {
  for (const std::string& sdp :
       {std::string(""), std::string("hello"), Replace(kAnswer, "v=0", "v=1"),
        Replace(kAnswer, "a=path:msrp://192.0.2.5:7394/s1;tcp\r\n", ""),
        Replace(kAnswer, "msrp://192.0.2.5:7394/s1;tcp", "http://x/"),
        Replace(kAnswer, "m=message 7394", "m=message x"),
        Replace(kAnswer, "c=IN IP4 192.0.2.5", "c=IN"),
        Replace(kAnswer, "a=max-size:131072", "a=max-size:lots")}) {
    auto result = ParseSdpAnswer(sdp);
    EXPECT_FALSE(result.answer) << sdp;
    EXPECT_EQ(result.error, SdpAnswerError::kInvalidSdp) << sdp;
    EXPECT_FALSE(result.detail.empty());
  }
}

TEST(SdpAnswerTest, PushEncapsulationNeedsMultipart) {
  EXPECT_TRUE(AcceptsPushEncapsulation({"text/plain", "multipart/mixed"}));
  EXPECT_TRUE(AcceptsPushEncapsulation({"Multipart/*"}));
  EXPECT_TRUE(AcceptsPushEncapsulation({"*"}));
  EXPECT_FALSE(AcceptsPushEncapsulation({"text/plain", "message/sip"}));
  EXPECT_FALSE(AcceptsPushEncapsulation({}));
}

}  // namespace
}  // namespace dims::relay
