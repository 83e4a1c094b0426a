#include "msrp_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dims {
namespace {

// An exchange in the style of RFC 4975 section 7: Alice's SEND, Bob's 200 and his REPORT.
const std::string kSend =
    "MSRP a786hjs2 SEND\r\n"
    "To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
    "From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
    "Message-ID: 87652491\r\n"
    "Success-Report: yes\r\n"
    "Byte-Range: 1-23/23\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "Hey Bob, are you there?\r\n"
    "-------a786hjs2$\r\n";
const std::string kOk =
    "MSRP a786hjs2 200 OK\r\n"
    "To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
    "From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
    "-------a786hjs2$\r\n";
const std::string kReport =
    "MSRP dkei38sd REPORT\r\n"
    "To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
    "From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
    "Message-ID: 87652491\r\n"
    "Byte-Range: 1-23/23\r\n"
    "Status: 000 200 OK\r\n"
    "-------dkei38sd$\r\n";

const std::string kPaths =
    "To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
    "From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n";

std::vector<MsrpParseResult> ParseAll(const std::string& bytes, MsrpLimits limits = {}) {
  MsrpParser parser(std::move(limits));
  return parser.Feed(bytes);
}

const MsrpMessage& AsMessage(const MsrpParseResult& result) {
  static const MsrpMessage kNone;
  if (const auto* error = std::get_if<MsrpParseError>(&result)) {
    ADD_FAILURE() << "error " << error->status << " " << error->comment;
    return kNone;
  }
  return std::get<MsrpMessage>(result);
}

const MsrpParseError& AsError(const MsrpParseResult& result) {
  static const MsrpParseError kNone;
  if (!std::holds_alternative<MsrpParseError>(result)) {
    ADD_FAILURE() << "a message where an error was expected";
    return kNone;
  }
  return std::get<MsrpParseError>(result);
}

TEST(MsrpParser, ReadsASend) {
  auto results = ParseAll(kSend);
  ASSERT_EQ(results.size(), 1u);
  const MsrpMessage& send = AsMessage(results[0]);
  EXPECT_TRUE(send.is_request);
  EXPECT_TRUE(send.IsSend());
  EXPECT_EQ(send.transaction_id, "a786hjs2");
  ASSERT_EQ(send.to_path.size(), 1u);
  EXPECT_EQ(send.to_path[0].host, "bob.example.com");
  EXPECT_EQ(send.to_path[0].port, 8888);
  EXPECT_EQ(send.ToSessionId(), "9di4eae923wzd");
  ASSERT_EQ(send.from_path.size(), 1u);
  EXPECT_EQ(send.from_path[0].session_id, "iau39soe2843z");
  EXPECT_EQ(send.message_id, "87652491");
  EXPECT_EQ(send.success_report, true);
  EXPECT_FALSE(send.failure_report);
  EXPECT_EQ(send.byte_range, (ByteRange{.start = 1, .end = 23, .total = 23}));
  EXPECT_EQ(send.content_type, "text/plain");
  EXPECT_EQ(send.body, "Hey Bob, are you there?");
  EXPECT_EQ(send.continuation, MsrpContinuation::kComplete);
  EXPECT_TRUE(send.other_headers.empty());
}

TEST(MsrpParser, ReadsAResponse) {
  auto results = ParseAll(kOk);
  ASSERT_EQ(results.size(), 1u);
  const MsrpMessage& ok = AsMessage(results[0]);
  EXPECT_FALSE(ok.is_request);
  EXPECT_EQ(ok.transaction_id, "a786hjs2");
  EXPECT_EQ(ok.status_code, 200);
  EXPECT_EQ(ok.comment, "OK");
  EXPECT_EQ(ok.to_path[0].session_id, "iau39soe2843z");
  EXPECT_EQ(ok.from_path[0].session_id, "9di4eae923wzd");
  EXPECT_FALSE(ok.body);

  results = ParseAll("MSRP a786hjs2 481\r\n" + kPaths + "-------a786hjs2$\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(AsMessage(results[0]).status_code, 481);
  EXPECT_EQ(AsMessage(results[0]).comment, "");
}

TEST(MsrpParser, ReadsAReport) {
  auto results = ParseAll(kReport);
  ASSERT_EQ(results.size(), 1u);
  const MsrpMessage& report = AsMessage(results[0]);
  EXPECT_TRUE(report.IsReport());
  EXPECT_EQ(report.message_id, "87652491");
  EXPECT_EQ(report.status, (MsrpStatus{.status_namespace = 0, .code = 200, .reason = "OK"}));
  EXPECT_FALSE(report.body);
  EXPECT_FALSE(report.content_type);
}

TEST(MsrpParser, SameResultsAtEverySplitPosition) {
  const std::string exchange = kSend + kOk + kReport;
  auto whole = ParseAll(exchange);
  ASSERT_EQ(whole.size(), 3u);
  for (size_t cut = 0; cut <= exchange.size(); ++cut) {
    MsrpParser parser;
    auto results = parser.Feed(exchange.substr(0, cut));
    auto rest = parser.Feed(exchange.substr(cut));
    results.insert(results.end(), rest.begin(), rest.end());
    EXPECT_EQ(results, whole) << "cut at " << cut;
    EXPECT_TRUE(parser.at_message_boundary());
  }
}

TEST(MsrpParser, OneByteAtATime) {
  const std::string exchange = kSend + kOk + kReport;
  MsrpParser parser;
  std::vector<MsrpParseResult> results;
  for (char c : exchange) {
    auto piece = parser.Feed(std::string(1, c));
    results.insert(results.end(), piece.begin(), piece.end());
  }
  EXPECT_EQ(results, ParseAll(exchange));
}

TEST(MsrpParser, SeveralMessagesInOnePiece) {
  auto results = ParseAll(kSend + kOk + kReport + kSend);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(AsMessage(results[0]).IsSend());
  EXPECT_FALSE(AsMessage(results[1]).is_request);
  EXPECT_TRUE(AsMessage(results[2]).IsReport());
  EXPECT_EQ(results[3], results[0]);
}

TEST(MsrpParser, BodyMayHoldOtherEndLines) {
  // End-lines of another transaction, and of this one without a valid flag or CRLF, are data.
  const std::string body =
      "line one\r\n-------otherid1$\r\n"
      "-------a786hjs2x\r\n"
      "\r\n-------a786hjs2\r\n"
      "\r\n-------a786hjs2$ trailing\r\n"
      "-------a786hjs2";
  const std::string wire = "MSRP a786hjs2 SEND\r\n" + kPaths +
                           "Message-ID: m1234\r\nContent-Type: text/plain\r\n\r\n" + body +
                           "\r\n-------a786hjs2$\r\n";
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    MsrpParser parser;
    auto results = parser.Feed(wire.substr(0, cut));
    auto rest = parser.Feed(wire.substr(cut));
    results.insert(results.end(), rest.begin(), rest.end());
    ASSERT_EQ(results.size(), 1u) << "cut at " << cut;
    EXPECT_EQ(AsMessage(results[0]).body, body) << "cut at " << cut;
  }
}

TEST(MsrpParser, ContinuationFlags) {
  const std::string head = "MSRP d93kswow SEND\r\n" + kPaths + "Message-ID: 12339sdqwer\r\n";
  // More chunks follow; an interrupted chunk may carry less than its range.
  auto results = ParseAll(head + "Byte-Range: 1-10/20\r\nContent-Type: text/plain\r\n\r\n" +
                          "0123\r\n-------d93kswow+\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(AsMessage(results[0]).continuation, MsrpContinuation::kMore);
  EXPECT_EQ(AsMessage(results[0]).body, "0123");

  results = ParseAll(head + "Byte-Range: 11-*/20\r\nContent-Type: text/plain\r\n\r\n" +
                     "0123\r\n-------d93kswow#\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(AsMessage(results[0]).continuation, MsrpContinuation::kAborted);

  // Abort of a message without data (no body at all).
  results = ParseAll(head + "Byte-Range: 11-*/20\r\n-------d93kswow#\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(AsMessage(results[0]).continuation, MsrpContinuation::kAborted);
  EXPECT_FALSE(AsMessage(results[0]).body);
}

TEST(MsrpParser, BodylessAndEmptyBodies) {
  const std::string head = "MSRP d93kswow SEND\r\n" + kPaths + "Message-ID: 12339sdqwer\r\n";
  // No body at all (e.g. a keep-alive SEND).
  auto results = ParseAll(head + "Byte-Range: 1-0/0\r\n-------d93kswow$\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(AsMessage(results[0]).body);
  // An empty body: blank line, no data, CRLF, end-line.
  results = ParseAll(head + "Content-Type: text/plain\r\n\r\n\r\n-------d93kswow$\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(AsMessage(results[0]).body, "");
  // ...and without the CRLF before the end-line, which costs nothing to accept.
  results = ParseAll(head + "Content-Type: text/plain\r\n\r\n-------d93kswow$\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(AsMessage(results[0]).body, "");
}

TEST(MsrpParser, KeepsOtherHeadersAndAcceptsAnyCaseOfNames) {
  auto results = ParseAll(
      "MSRP d93kswow SEND\r\n"
      "to-path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
      "FROM-PATH:msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
      "message-id: 12339sdqwer\r\n"
      "Failure-Report: partial\r\n"
      "Use-Nickname: \"Alice\"\r\n"
      "Content-Disposition: inline\r\n"
      "content-type: message/cpim\r\n"
      "\r\nx\r\n-------d93kswow$\r\n");
  ASSERT_EQ(results.size(), 1u);
  const MsrpMessage& send = AsMessage(results[0]);
  EXPECT_EQ(send.message_id, "12339sdqwer");
  EXPECT_EQ(send.failure_report, MsrpFailureReport::kPartial);
  EXPECT_EQ(send.content_type, "message/cpim");
  ASSERT_EQ(send.other_headers.size(), 2u);
  EXPECT_EQ(send.other_headers[0], (MsrpHeader{"Use-Nickname", "\"Alice\""}));
  EXPECT_EQ(send.other_headers[1], (MsrpHeader{"Content-Disposition", "inline"}));
}

TEST(MsrpParser, UnknownMethodIsParsedAndRefusedWith501) {
  MsrpParser parser;
  auto results = parser.Feed("MSRP abcd1234 NICKNAME\r\n" + kPaths + "-------abcd1234$\r\n" + kOk);
  ASSERT_EQ(results.size(), 2u);
  const MsrpParseError& error = AsError(results[0]);
  EXPECT_EQ(error.status, 501);
  EXPECT_TRUE(error.stream_usable);
  EXPECT_TRUE(error.headers_complete);
  EXPECT_TRUE(error.ShouldRespond());
  EXPECT_EQ(error.partial.method, "NICKNAME");
  EXPECT_EQ(error.partial.transaction_id, "abcd1234");
  EXPECT_EQ(AsMessage(results[1]).status_code, 200);

  MsrpLimits limits;
  limits.methods.push_back("NICKNAME");
  results = ParseAll("MSRP abcd1234 NICKNAME\r\n" + kPaths + "-------abcd1234$\r\n", limits);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(AsMessage(results[0]).method, "NICKNAME");
}

struct ErrorCase {
  const char* name;
  std::string input;
  uint16_t status;
  bool stream_usable;
  std::string comment;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

MsrpLimits SmallLimits() {
  MsrpLimits limits;
  limits.max_start_line_bytes = 80;
  limits.max_header_line_bytes = 100;
  limits.max_header_bytes = 400;
  limits.max_header_count = 8;
  limits.max_path_uris = 2;
  limits.max_body_bytes = 64;
  limits.max_message_bytes = 1000;
  limits.accept_types = {"text/plain", "message/*"};
  return limits;
}

std::string Send(const std::string& headers, const std::string& rest = "-------abcd1234$\r\n") {
  return "MSRP abcd1234 SEND\r\n" + headers + rest;
}

const std::string kSendHead = kPaths + "Message-ID: m1234\r\n";

class MsrpParserErrors : public ::testing::TestWithParam<ErrorCase> {};

// Every error carries its status and comment; a usable stream goes on with the next message,
// a closed one yields nothing more.
TEST_P(MsrpParserErrors, ReportsStatusAndResynchronises) {
  const ErrorCase& c = GetParam();
  for (bool byte_at_a_time : {false, true}) {
    MsrpParser parser(SmallLimits());
    std::vector<MsrpParseResult> results;
    std::string input = c.input + kOk;
    if (byte_at_a_time) {
      for (char ch : input) {
        auto piece = parser.Feed(std::string(1, ch));
        results.insert(results.end(), piece.begin(), piece.end());
      }
    } else {
      results = parser.Feed(input);
    }
    ASSERT_FALSE(results.empty());
    const MsrpParseError& error = AsError(results[0]);
    EXPECT_EQ(error.status, c.status);
    EXPECT_EQ(error.comment, c.comment);
    EXPECT_EQ(error.stream_usable, c.stream_usable);
    if (c.stream_usable) {
      ASSERT_EQ(results.size(), 2u);
      EXPECT_EQ(AsMessage(results[1]).status_code, 200);
      EXPECT_TRUE(parser.at_message_boundary());
    } else {
      EXPECT_EQ(results.size(), 1u);
      EXPECT_TRUE(parser.closed());
      EXPECT_TRUE(parser.Feed(kOk).empty());
    }
  }
}

const std::string kLongBody(65, 'x');

INSTANTIATE_TEST_SUITE_P(
    Cases, MsrpParserErrors,
    ::testing::Values(
        // The framing is lost: close.
        ErrorCase{"NotMsrp", "HTTP/1.1 200 OK\r\n", 400, false, "not an MSRP start line"},
        ErrorCase{"LowerCasePrefix", "msrp abcd1234 SEND\r\n", 400, false,
                  "not an MSRP start line"},
        ErrorCase{"LeadingBlankLine", "\r\n" + kOk, 400, false, "not an MSRP start line"},
        ErrorCase{"ShortTransactionId", "MSRP abc SEND\r\n", 400, false,
                  "malformed transaction id"},
        ErrorCase{"LongTransactionId", "MSRP " + std::string(33, 'a') + " SEND\r\n", 400, false,
                  "malformed transaction id"},
        ErrorCase{"NoMethod", "MSRP abcd1234\r\n", 400, false, "malformed transaction id"},
        ErrorCase{"LowerCaseMethod", "MSRP abcd1234 send\r\n", 400, false, "malformed method"},
        ErrorCase{"BadComment", "MSRP abcd1234 200 O\x01K\r\n", 400, false,
                  "malformed response comment"},
        ErrorCase{"StartLineTooLong", "MSRP abcd1234 200 " + std::string(80, 'x') + "\r\n", 400,
                  false, "start line too long"},
        ErrorCase{"StartLineWithoutEnd", "MSRP abcd1234 200 " + std::string(200, 'x'), 400, false,
                  "start line too long"},
        // The transaction id is known: skip to the end-line, answer, go on.
        ErrorCase{"ToPathNotFirst",
                  Send("From-Path: msrp://a.example.com:1/s;tcp\r\nTo-Path: "
                       "msrp://b.example.com:1/s;tcp\r\nMessage-ID: m1234\r\n"),
                  400, true, "To-Path must be the first header field"},
        ErrorCase{"FromPathNotSecond",
                  Send("To-Path: msrp://b.example.com:1/s;tcp\r\nMessage-ID: m1234\r\n"), 400, true,
                  "From-Path must be the second header field"},
        ErrorCase{"NoHeaders", Send(""), 400, true, "missing To-Path"},
        ErrorCase{"OnlyToPath", Send("To-Path: msrp://b.example.com:1/s;tcp\r\n"), 400, true,
                  "missing From-Path"},
        ErrorCase{"DuplicateToPath", Send(kPaths + "To-Path: msrp://b.example.com:1/s;tcp\r\n"),
                  400, true, "duplicate To-Path"},
        ErrorCase{"DuplicateMessageId", Send(kSendHead + "Message-ID: m5678\r\n"), 400, true,
                  "duplicate Message-ID"},
        ErrorCase{"BadUri",
                  Send("To-Path: http://b.example.com/s;tcp\r\nFrom-Path: "
                       "msrp://a.example.com:1/s;tcp\r\n"),
                  400, true, "malformed To-Path"},
        ErrorCase{"TooManyUris",
                  Send("To-Path: msrp://b.example.com:1/s;tcp\r\nFrom-Path: msrp://a:1/s;tcp "
                       "msrp://b:1/s;tcp msrp://c:1/s;tcp\r\n"),
                  400, true, "too many URIs in From-Path"},
        ErrorCase{"BadMessageId", Send(kPaths + "Message-ID: m_1\r\n"), 400, true,
                  "malformed Message-ID"},
        ErrorCase{"BadByteRange", Send(kSendHead + "Byte-Range: 0-2/3\r\n"), 400, true,
                  "malformed Byte-Range"},
        ErrorCase{"RangeBeyondTotal", Send(kSendHead + "Byte-Range: 1-20/10\r\n"), 400, true,
                  "malformed Byte-Range"},
        ErrorCase{"BadSuccessReport", Send(kSendHead + "Success-Report: maybe\r\n"), 400, true,
                  "malformed Success-Report"},
        ErrorCase{"BadFailureReport", Send(kSendHead + "Failure-Report: always\r\n"), 400, true,
                  "malformed Failure-Report"},
        ErrorCase{"BadStatus", Send(kSendHead + "Status: 200 OK\r\n"), 400, true,
                  "malformed Status"},
        ErrorCase{"BadContentType", Send(kSendHead + "Content-Type: textplain\r\n"), 400, true,
                  "malformed Content-Type"},
        ErrorCase{"HeaderWithoutColon", Send(kSendHead + "Nonsense\r\n"), 400, true,
                  "malformed header field"},
        ErrorCase{"HeaderWithControlCharacter", Send(kSendHead + "X-A: b\x01\r\n"), 400, true,
                  "malformed header field"},
        ErrorCase{"HeaderNameNotAlpha", Send(kSendHead + "1X: b\r\n"), 400, true,
                  "malformed header field"},
        ErrorCase{"HeaderLineTooLong", Send(kSendHead + "X-A: " + std::string(100, 'b') + "\r\n"),
                  400, true, "header line too long"},
        ErrorCase{"TooManyHeaders",
                  Send(kSendHead + "X-A: 1\r\nX-A: 2\r\nX-A: 3\r\nX-A: 4\r\nX-A: 5\r\nX-A: 6\r\n"),
                  400, true, "too many header fields"},
        ErrorCase{"HeaderSectionTooLarge",
                  Send(kSendHead + "X-A: " + std::string(90, 'a') + "\r\nX-B: " +
                       std::string(90, 'b') + "\r\nX-C: " + std::string(90, 'c') + "\r\n"),
                  400, true, "header section too large"},
        ErrorCase{"ForeignEndLineInHeaders", Send(kSendHead, "-------zzzz1234$\r\n") + Send(""),
                  400, true, "end-line does not match the transaction"},
        ErrorCase{"SendWithoutMessageId", Send(kPaths), 400, true, "missing Message-ID"},
        ErrorCase{"ReportWithoutStatus",
                  "MSRP abcd1234 REPORT\r\n" + kSendHead + "-------abcd1234$\r\n", 400, true,
                  "missing Status"},
        ErrorCase{"BodyWithoutContentType", Send(kSendHead, "\r\nhello\r\n-------abcd1234$\r\n"),
                  400, true, "body without Content-Type"},
        ErrorCase{"ResponseWithBody",
                  "MSRP abcd1234 200 OK\r\n" + kPaths + "\r\nhello\r\n-------abcd1234$\r\n", 400,
                  true, "response with a body"},
        ErrorCase{"UnknownMethod", "MSRP abcd1234 AUTH\r\n" + kPaths + "-------abcd1234$\r\n", 501,
                  true, "unknown method AUTH"},
        ErrorCase{
            "ContentTypeNotAccepted",
            Send(kSendHead + "Content-Type: image/png\r\n", "\r\nPNG\r\n-------abcd1234$\r\n"), 415,
            true, "Content-Type not accepted"},
        ErrorCase{"ChunkRangeTooLarge",
                  Send(kSendHead + "Byte-Range: 1-65/100\r\nContent-Type: text/plain\r\n",
                       "\r\n" + kLongBody + "\r\n-------abcd1234$\r\n"),
                  413, true, "chunk exceeds 64 bytes"},
        ErrorCase{"MessageTotalTooLarge",
                  Send(kSendHead + "Byte-Range: 1-10/1001\r\nContent-Type: text/plain\r\n",
                       "\r\n0123456789\r\n-------abcd1234+\r\n"),
                  413, true, "message exceeds 1000 bytes"},
        ErrorCase{"BodyTooLarge",
                  Send(kSendHead + "Content-Type: text/plain\r\n",
                       "\r\n" + kLongBody + "\r\n-------abcd1234$\r\n"),
                  413, true, "chunk exceeds 64 bytes"},
        ErrorCase{"BodyLongerThanRange",
                  Send(kSendHead + "Byte-Range: 1-3/10\r\nContent-Type: text/plain\r\n",
                       "\r\n0123\r\n-------abcd1234+\r\n"),
                  400, true, "body longer than its Byte-Range"},
        ErrorCase{"FinalBodyShorterThanRange",
                  Send(kSendHead + "Byte-Range: 1-5/5\r\nContent-Type: text/plain\r\n",
                       "\r\n0123\r\n-------abcd1234$\r\n"),
                  400, true, "body shorter than its Byte-Range"}));

TEST(MsrpParser, OversizedBodyIsRefusedBeforeItsEndAndSkippedWithoutBuffering) {
  MsrpLimits limits;
  limits.max_body_bytes = 1024;
  MsrpParser parser(limits);
  auto results = parser.Feed(Send(kSendHead + "Content-Type: text/plain\r\n", "\r\n"));
  EXPECT_TRUE(results.empty());
  const std::string block(4096, 'y');
  results = parser.Feed(block);
  ASSERT_EQ(results.size(), 1u);
  const MsrpParseError& error = AsError(results[0]);
  EXPECT_EQ(error.status, 413);
  EXPECT_TRUE(error.headers_complete);
  EXPECT_TRUE(error.ShouldRespond());
  EXPECT_EQ(error.partial.message_id, "m1234");
  // The sender goes on for a while, then interrupts the chunk.
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(parser.Feed(block).empty());
  results = parser.Feed("\r\n-------abcd1234#\r\n" + kOk);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(AsMessage(results[0]).status_code, 200);
}

TEST(MsrpParser, ErrorsSayWhetherToAnswer) {
  auto results = ParseAll("MSRP abcd1234 REPORT\r\n" + kSendHead + "-------abcd1234$\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(AsError(results[0]).ShouldRespond());  // never answer a REPORT

  results = ParseAll(Send(kPaths + "Failure-Report: no\r\n"));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(AsError(results[0]).ShouldRespond());

  results = ParseAll(Send(kPaths + "Failure-Report: yes\r\n"));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(AsError(results[0]).ShouldRespond());

  results = ParseAll("MSRP abcd1234 200 OK\r\n" + kPaths + "\r\nx\r\n-------abcd1234$\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(AsError(results[0]).ShouldRespond());  // never answer a response

  results = ParseAll("garbage");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(AsError(results[0]).ShouldRespond());
}

TEST(MsrpParser, TellsATruncatedStreamFromACleanEnd) {
  MsrpParser parser;
  EXPECT_TRUE(parser.at_message_boundary());
  EXPECT_TRUE(parser.Feed(kSend.substr(0, 40)).empty());
  EXPECT_FALSE(parser.at_message_boundary());
  EXPECT_EQ(parser.Feed(kSend.substr(40)).size(), 1u);
  EXPECT_TRUE(parser.at_message_boundary());
}

TEST(MsrpParser, LargeBodyInManySmallPiecesStaysLinear) {
  MsrpLimits limits;
  limits.max_body_bytes = 8 << 20;
  MsrpParser parser(limits);
  std::string body;
  for (int i = 0; i < (4 << 20) / 16; ++i) body += "\r\n-------abcd123";  // near misses
  std::string wire =
      Send(kSendHead + "Content-Type: text/plain\r\n", "\r\n" + body + "\r\n-------abcd1234$\r\n");
  std::vector<MsrpParseResult> results;
  for (size_t at = 0; at < wire.size(); at += 1000) {
    auto piece = parser.Feed(std::string_view(wire).substr(at, 1000));
    results.insert(results.end(), piece.begin(), piece.end());
  }
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(AsMessage(results[0]).body->size(), body.size());
}

}  // namespace
}  // namespace dims
