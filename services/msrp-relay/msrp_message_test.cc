#include "msrp_message.h"

#include <gtest/gtest.h>

#include <set>

namespace dims {
namespace {

TEST(ByteRange, ParsesNumbersAndStars) {
  auto range = ParseByteRange("1-2048/4096");
  ASSERT_TRUE(range);
  EXPECT_EQ(range->start, 1u);
  EXPECT_EQ(range->end, 2048u);
  EXPECT_EQ(range->total, 4096u);
  EXPECT_EQ(range->ToString(), "1-2048/4096");

  range = ParseByteRange("1-*/*");
  ASSERT_TRUE(range);
  EXPECT_EQ(range->start, 1u);
  EXPECT_FALSE(range->end);
  EXPECT_FALSE(range->total);
  EXPECT_EQ(range->ToString(), "1-*/*");
  EXPECT_EQ(*range, ByteRange{});

  range = ParseByteRange("2049-*/4096");
  ASSERT_TRUE(range);
  EXPECT_EQ(range->ToString(), "2049-*/4096");
  EXPECT_EQ(ParseByteRange("1-0/0")->ToString(), "1-0/0");  // an empty body
  EXPECT_EQ(ParseByteRange("001-02/3")->ToString(), "1-2/3");
}

TEST(ByteRange, RejectsMalformedAndInconsistentRanges) {
  for (const char* text : {"",
                           "1",
                           "1-2",
                           "1/2",
                           "-2/3",
                           "1-/3",
                           "1-2/",
                           "0-2/3",
                           "a-2/3",
                           "1-b/3",
                           "1-2/c",
                           "1 -2/3",
                           "1-2/3 ",
                           "5-3/10",
                           "1-20/10",
                           "12-*/10",
                           "1-2/3/4",
                           "1-2-3/4",
                           "1234567890123456789-*/*",
                           "+1-2/3"}) {
    EXPECT_FALSE(ParseByteRange(text)) << text;
  }
}

TEST(MsrpUri, ParsesTheUsualForms) {
  auto uri = ParseMsrpUri("msrp://bob.example.com:8888/9di4eae923wzd;tcp");
  ASSERT_TRUE(uri);
  EXPECT_FALSE(uri->secure);
  EXPECT_EQ(uri->host, "bob.example.com");
  EXPECT_EQ(uri->port, 8888);
  EXPECT_EQ(uri->session_id, "9di4eae923wzd");
  EXPECT_EQ(uri->transport, "tcp");
  EXPECT_TRUE(uri->IsTcp());
  EXPECT_EQ(uri->ToString(), "msrp://bob.example.com:8888/9di4eae923wzd;tcp");

  uri = ParseMsrpUri("MSRPS://alice@[2001:db8::1]:9000/a+b=c/d;TCP;foo=bar;baz");
  ASSERT_TRUE(uri);
  EXPECT_TRUE(uri->secure);
  EXPECT_EQ(uri->userinfo, "alice");
  EXPECT_EQ(uri->host, "[2001:db8::1]");
  EXPECT_EQ(uri->port, 9000);
  EXPECT_EQ(uri->session_id, "a+b=c/d");
  EXPECT_EQ(uri->transport, "tcp");
  EXPECT_EQ(uri->params, ";foo=bar;baz");
  EXPECT_EQ(uri->ToString(), "msrps://alice@[2001:db8::1]:9000/a+b=c/d;tcp;foo=bar;baz");

  uri = ParseMsrpUri("msrp://relay.example.net;tcp");  // a relay's URI: no session-id
  ASSERT_TRUE(uri);
  EXPECT_EQ(uri->port, 0);
  EXPECT_EQ(uri->session_id, "");

  uri = ParseMsrpUri("msrp://10.0.0.1:2855/s1;sctp");
  ASSERT_TRUE(uri);
  EXPECT_FALSE(uri->IsTcp());
}

TEST(MsrpUri, RejectsOtherSchemesAndBrokenParts) {
  for (const char* text :
       {"", "sip:bob@example.com", "http://example.com/x;tcp", "msrp:/example.com/x;tcp",
        "msrp://example.com/x", "msrp://example.com/x;", "msrp://example.com:0/x;tcp",
        "msrp://example.com:70000/x;tcp", "msrp://example.com:/x;tcp", "msrp://example.com/;tcp",
        "msrp:///x;tcp", "msrp://exa mple.com/x;tcp", "msrp://example.com/x y;tcp",
        "msrp://example.com/x;t-cp", "msrp://@example.com/x;tcp", "msrp://[zz::1]/x;tcp",
        "msrp://example.com/x;tcp;a=b=c", "msrp://example.com/x;tcp;"}) {
    EXPECT_FALSE(ParseMsrpUri(text)) << text;
  }
}

TEST(MsrpPath, SplitsOnSpaces) {
  auto path = ParseMsrpPath("msrp://a.example.com:1/r;tcp msrp://b.example.com:2/s;tcp");
  ASSERT_TRUE(path);
  ASSERT_EQ(path->size(), 2u);
  EXPECT_EQ((*path)[1].session_id, "s");
  EXPECT_EQ(MsrpPathToString(*path), "msrp://a.example.com:1/r;tcp msrp://b.example.com:2/s;tcp");
  EXPECT_FALSE(ParseMsrpPath(""));
  EXPECT_FALSE(ParseMsrpPath("msrp://a.example.com:1/r;tcp bogus"));
}

TEST(MsrpStatus, ParsesNamespaceCodeAndReason) {
  auto status = ParseMsrpStatus("000 200 OK");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status_namespace, 0);
  EXPECT_EQ(status->code, 200);
  EXPECT_EQ(status->reason, "OK");
  EXPECT_EQ(status->ToString(), "000 200 OK");
  EXPECT_EQ(ParseMsrpStatus("000 413")->ToString(), "000 413");
  for (const char* text :
       {"200 OK", "000 20", "000  200", "000 200OK", "0a0 200", "000 200 \x01"}) {
    EXPECT_FALSE(ParseMsrpStatus(text)) << text;
  }
}

TEST(MsrpGrammar, Ident) {
  EXPECT_TRUE(IsMsrpIdent("a786hjs2"));
  EXPECT_TRUE(IsMsrpIdent("abcd"));
  EXPECT_TRUE(IsMsrpIdent("1.-+%="));
  EXPECT_TRUE(IsMsrpIdent(std::string(32, 'x')));
  EXPECT_FALSE(IsMsrpIdent("abc"));
  EXPECT_FALSE(IsMsrpIdent(std::string(33, 'x')));
  EXPECT_FALSE(IsMsrpIdent(".abc"));
  EXPECT_FALSE(IsMsrpIdent("ab cd"));
  EXPECT_FALSE(IsMsrpIdent("ab_cd"));
}

TEST(MsrpGrammar, Utf8TextAndMediaType) {
  EXPECT_TRUE(IsMsrpUtf8Text("caf\xC3\xA9 \t ok"));
  EXPECT_FALSE(IsMsrpUtf8Text("bad\r"));
  EXPECT_FALSE(IsMsrpUtf8Text("bad\x7F"));
  EXPECT_FALSE(IsMsrpUtf8Text("\xC3"));
  EXPECT_FALSE(IsMsrpUtf8Text("\x80"));
  EXPECT_TRUE(IsMsrpMediaType("text/plain"));
  EXPECT_TRUE(IsMsrpMediaType("multipart/mixed; boundary=\"x y\""));
  EXPECT_FALSE(IsMsrpMediaType("textplain"));
  EXPECT_FALSE(IsMsrpMediaType("text/"));
  EXPECT_FALSE(IsMsrpMediaType("te xt/plain"));
}

TEST(MsrpGrammar, MediaTypeAcceptance) {
  std::vector<std::string> accepted = {"text/plain", "message/*"};
  EXPECT_TRUE(MsrpMediaTypeAccepted("text/plain", accepted));
  EXPECT_TRUE(MsrpMediaTypeAccepted("Text/Plain;charset=utf-8", accepted));
  EXPECT_TRUE(MsrpMediaTypeAccepted("message/cpim", accepted));
  EXPECT_FALSE(MsrpMediaTypeAccepted("image/png", accepted));
  EXPECT_FALSE(MsrpMediaTypeAccepted("text/html", accepted));
  EXPECT_TRUE(MsrpMediaTypeAccepted("image/png", {"*"}));
  EXPECT_TRUE(MsrpMediaTypeAccepted("image/png", {}));
}

TEST(MsrpIds, AreFreshIdentsOfTokenCharacters) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string transaction_id = NewMsrpTransactionId();
    std::string message_id = NewMsrpMessageId();
    EXPECT_EQ(transaction_id.size(), 16u);
    EXPECT_EQ(message_id.size(), 24u);
    EXPECT_TRUE(IsMsrpIdent(transaction_id)) << transaction_id;
    EXPECT_TRUE(IsMsrpIdent(message_id)) << message_id;
    EXPECT_TRUE(seen.insert(transaction_id).second);
    EXPECT_TRUE(seen.insert(message_id).second);
  }
}

TEST(MsrpResponse, GoesBackToThePreviousHop) {
  MsrpMessage send{.transaction_id = "a786hjs2",
                   .method = "SEND",
                   .to_path = *ParseMsrpPath("msrp://bob.example.com:8888/9di4eae923wzd;tcp"),
                   .from_path = *ParseMsrpPath("msrp://relay.example.net:2855/r1;tcp "
                                               "msrp://alicepc.example.com:7777/iau39;tcp"),
                   .message_id = "87652491"};
  MsrpMessage response = MakeMsrpResponse(send, 200, "OK");
  EXPECT_FALSE(response.is_request);
  EXPECT_EQ(response.transaction_id, "a786hjs2");
  EXPECT_EQ(response.status_code, 200);
  EXPECT_EQ(response.comment, "OK");
  EXPECT_EQ(MsrpPathToString(response.to_path), "msrp://relay.example.net:2855/r1;tcp");
  EXPECT_EQ(MsrpPathToString(response.from_path), "msrp://bob.example.com:8888/9di4eae923wzd;tcp");
  EXPECT_EQ(send.ToSessionId(), "9di4eae923wzd");

  EXPECT_TRUE(ExpectsResponse(send));
  send.failure_report = MsrpFailureReport::kNo;
  EXPECT_FALSE(ExpectsResponse(send));
  send.failure_report = MsrpFailureReport::kPartial;
  EXPECT_TRUE(ExpectsResponse(send));
  send.method = "REPORT";
  EXPECT_FALSE(ExpectsResponse(send));
  EXPECT_FALSE(ExpectsResponse(response));
  EXPECT_EQ(MsrpReasonPhrase(413), "Stop Sending Message");
}

}  // namespace
}  // namespace dims
