#include "msrp_serializer.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "msrp_parser.h"

namespace dims {
namespace {

MsrpPath Path(const char* text) { return *ParseMsrpPath(text); }

MsrpMessage RfcSend() {
  return MsrpMessage{.transaction_id = "a786hjs2",
                     .method = "SEND",
                     .to_path = Path("msrp://bob.example.com:8888/9di4eae923wzd;tcp"),
                     .from_path = Path("msrp://alicepc.example.com:7777/iau39soe2843z;tcp"),
                     .message_id = "87652491",
                     .byte_range = ByteRange{.start = 1, .end = 23, .total = 23},
                     .content_type = "text/plain",
                     .body = "Hey Bob, are you there?"};
}

std::vector<MsrpParseResult> Parse(const std::string& wire) {
  MsrpParser parser;
  return parser.Feed(wire);
}

TEST(MsrpSerializer, WritesASendByteExact) {
  EXPECT_EQ(SerializeMsrpMessage(RfcSend()),
            "MSRP a786hjs2 SEND\r\n"
            "To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            "From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            "Message-ID: 87652491\r\n"
            "Byte-Range: 1-23/23\r\n"
            "Content-Type: text/plain\r\n"
            "\r\n"
            "Hey Bob, are you there?\r\n"
            "-------a786hjs2$\r\n");
}

TEST(MsrpSerializer, WritesEveryTypedHeaderInOrder) {
  MsrpMessage send = RfcSend();
  send.success_report = true;
  send.failure_report = MsrpFailureReport::kPartial;
  send.other_headers = {{"Content-Disposition", "inline"}};
  send.continuation = MsrpContinuation::kMore;
  EXPECT_EQ(SerializeMsrpMessage(send),
            "MSRP a786hjs2 SEND\r\n"
            "To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            "From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            "Message-ID: 87652491\r\n"
            "Success-Report: yes\r\n"
            "Failure-Report: partial\r\n"
            "Byte-Range: 1-23/23\r\n"
            "Content-Disposition: inline\r\n"
            "Content-Type: text/plain\r\n"
            "\r\n"
            "Hey Bob, are you there?\r\n"
            "-------a786hjs2+\r\n");
}

TEST(MsrpSerializer, WritesResponses) {
  EXPECT_EQ(SerializeMsrpMessage(MakeMsrpResponse(RfcSend(), 200, "OK")),
            "MSRP a786hjs2 200 OK\r\n"
            "To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            "From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            "-------a786hjs2$\r\n");
  EXPECT_EQ(SerializeMsrpMessage(MakeMsrpResponse(RfcSend(), 413, "chunk exceeds 1024 bytes")),
            "MSRP a786hjs2 413 chunk exceeds 1024 bytes\r\n"
            "To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            "From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            "-------a786hjs2$\r\n");
  EXPECT_EQ(SerializeMsrpMessage(MakeMsrpResponse(RfcSend(), 481, "")),
            "MSRP a786hjs2 481\r\n"
            "To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            "From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            "-------a786hjs2$\r\n");
}

TEST(MsrpSerializer, WritesAReport) {
  MsrpMessage report =
      MakeMsrpReport(RfcSend(), MsrpStatus{.status_namespace = 0, .code = 200, .reason = "OK"},
                     ByteRange{.start = 1, .end = 23, .total = 23});
  EXPECT_TRUE(IsMsrpIdent(report.transaction_id));
  EXPECT_NE(report.transaction_id, "a786hjs2");
  report.transaction_id = "dkei38sd";
  EXPECT_EQ(SerializeMsrpMessage(report),
            "MSRP dkei38sd REPORT\r\n"
            "To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            "From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            "Message-ID: 87652491\r\n"
            "Byte-Range: 1-23/23\r\n"
            "Status: 000 200 OK\r\n"
            "-------dkei38sd$\r\n");
}

TEST(MsrpSerializer, BlankLineOnlyWithABody) {
  MsrpMessage send = RfcSend();
  send.body.reset();
  send.content_type.reset();
  send.byte_range = ByteRange{.start = 1, .end = 0, .total = 0};
  EXPECT_EQ(SerializeMsrpMessage(send),
            "MSRP a786hjs2 SEND\r\n"
            "To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            "From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            "Message-ID: 87652491\r\n"
            "Byte-Range: 1-0/0\r\n"
            "-------a786hjs2$\r\n");
  send.body = "";
  send.content_type = "text/plain";
  EXPECT_EQ(SerializeMsrpMessage(send),
            "MSRP a786hjs2 SEND\r\n"
            "To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
            "From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
            "Message-ID: 87652491\r\n"
            "Byte-Range: 1-0/0\r\n"
            "Content-Type: text/plain\r\n"
            "\r\n"
            "\r\n"
            "-------a786hjs2$\r\n");
}

TEST(MsrpSerializer, RoundTripsThroughTheParser) {
  std::vector<MsrpMessage> messages;
  messages.push_back(RfcSend());
  MsrpMessage multi_hop = RfcSend();
  multi_hop.to_path = Path("msrps://relay.example.net:2855/r1;tcp msrps://[::1]:9/s;tcp;x=y");
  multi_hop.other_headers = {{"X-Trace", "caf\xC3\xA9"}, {"Content-ID", "<c1@example.com>"}};
  multi_hop.failure_report = MsrpFailureReport::kNo;
  multi_hop.success_report = false;
  multi_hop.body = std::string("binary\0\r\n-------a786hjs2 data\r\n", 31);
  multi_hop.byte_range = ByteRange{.start = 101, .end = std::nullopt, .total = std::nullopt};
  multi_hop.continuation = MsrpContinuation::kAborted;
  messages.push_back(multi_hop);
  messages.push_back(MakeMsrpResponse(RfcSend(), 200, "OK"));
  messages.push_back(MakeMsrpResponse(RfcSend(), 415, "Content-Type not accepted"));
  messages.push_back(MakeMsrpReport(RfcSend(), MsrpStatus{.status_namespace = 0, .code = 413},
                                    ByteRange{.start = 1, .end = 10, .total = 23}));
  std::string stream;
  for (const MsrpMessage& message : messages) stream += SerializeMsrpMessage(message);
  auto results = Parse(stream);
  ASSERT_EQ(results.size(), messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    ASSERT_TRUE(std::holds_alternative<MsrpMessage>(results[i])) << i;
    EXPECT_EQ(std::get<MsrpMessage>(results[i]), messages[i]) << i;
  }
}

TEST(MsrpChunks, PlanCoversTheBodyWithRangesAndFlags) {
  auto plan = PlanMsrpChunks(0, 2048);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].range.ToString(), "1-0/0");
  EXPECT_EQ(plan[0].continuation, MsrpContinuation::kComplete);

  plan = PlanMsrpChunks(4096, 2048);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].range.ToString(), "1-2048/4096");
  EXPECT_EQ(plan[0].continuation, MsrpContinuation::kMore);
  EXPECT_EQ(plan[1].range.ToString(), "2049-4096/4096");
  EXPECT_EQ(plan[1].continuation, MsrpContinuation::kComplete);

  plan = PlanMsrpChunks(5000, 2048);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[2].offset, 4096u);
  EXPECT_EQ(plan[2].size, 904u);
  EXPECT_EQ(plan[2].range.ToString(), "4097-5000/5000");

  plan = PlanMsrpChunks(10, 100);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].range.ToString(), "1-10/10");
  EXPECT_EQ(plan[0].continuation, MsrpContinuation::kComplete);

  EXPECT_EQ(PlanMsrpChunks(3, 0).size(), 3u);  // 0 means 1 byte per chunk
}

TEST(MsrpChunks, SplitSendReassemblesToTheOriginal) {
  MsrpMessage send = RfcSend();
  send.body.emplace();
  for (int i = 0; i < 1000; ++i) send.body->append("line " + std::to_string(i) + "\r\n");
  send.byte_range = ByteRange{.start = 1, .end = send.body->size(), .total = send.body->size()};
  for (size_t chunk_bytes : {size_t{1000}, size_t{2048}, send.body->size(), size_t{1} << 20}) {
    auto chunks = SplitIntoChunks(send, chunk_bytes);
    ASSERT_EQ(chunks.size(), (send.body->size() + chunk_bytes - 1) / chunk_bytes);
    std::string stream;
    std::set<std::string> transaction_ids;
    for (size_t i = 0; i < chunks.size(); ++i) {
      const MsrpMessage& chunk = chunks[i];
      uint64_t offset = i * chunk_bytes;
      EXPECT_EQ(chunk.byte_range->start, offset + 1);
      EXPECT_EQ(chunk.byte_range->end, offset + chunk.body->size());
      EXPECT_EQ(chunk.byte_range->total, send.body->size());
      EXPECT_EQ(chunk.continuation,
                i + 1 == chunks.size() ? MsrpContinuation::kComplete : MsrpContinuation::kMore);
      EXPECT_EQ(chunk.message_id, send.message_id);
      EXPECT_TRUE(transaction_ids.insert(chunk.transaction_id).second);
      stream += SerializeMsrpMessage(chunk);
    }
    MsrpLimits limits;
    limits.max_body_bytes = 2 << 20;
    MsrpParser parser(limits);
    std::string reassembled;
    for (size_t at = 0; at < stream.size(); at += 777) {
      for (auto& result : parser.Feed(std::string_view(stream).substr(at, 777))) {
        ASSERT_TRUE(std::holds_alternative<MsrpMessage>(result));
        reassembled += *std::get<MsrpMessage>(result).body;
      }
    }
    EXPECT_EQ(reassembled, *send.body) << chunk_bytes;
  }
}

TEST(MsrpChunks, EmptyAndBodylessMessages) {
  MsrpMessage send = RfcSend();
  send.body = "";
  auto chunks = SplitIntoChunks(send, 100);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].byte_range->ToString(), "1-0/0");
  send.body.reset();
  chunks = SplitIntoChunks(send, 100);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0], send);
}

TEST(MsrpChunks, TransactionIdNeverEndsTheBodyEarly) {
  EXPECT_TRUE(BodyContainsEndLine("x\r\n-------abcd1234$\r\ny", "abcd1234"));
  EXPECT_TRUE(BodyContainsEndLine("-------abcd1234#", "abcd1234"));
  EXPECT_FALSE(BodyContainsEndLine("-------abcd1234", "abcd1234"));
  EXPECT_FALSE(BodyContainsEndLine("-------abcd12345$", "abcd1234"));
  EXPECT_FALSE(BodyContainsEndLine("-------zzzz1234$", "abcd1234"));
  std::string body = "text";
  std::string id = NewMsrpTransactionIdFor(body);
  EXPECT_TRUE(IsMsrpIdent(id));
  EXPECT_FALSE(BodyContainsEndLine(body, id));
}

}  // namespace
}  // namespace dims
