#include "request_fields.h"

#include <gtest/gtest.h>

namespace dims::edge {
namespace {

TEST(RequestFields, ReadsFieldsInOrderAsWrittenUpToTheBody) {
  std::string raw =
      "MESSAGE sip:alice@dims.test SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
      "f: \"Bob\" <sip:bob@dims.test>;tag=1\r\n"
      "Subject:  lunch?  \r\n"
      "X-Folded: one\r\n"
      "  two\r\n"
      "\r\n"
      "Subject: not a field\r\n";
  auto fields = ReadRequestFields(raw);
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[1].name, "f");
  EXPECT_EQ(fields[1].value, "\"Bob\" <sip:bob@dims.test>;tag=1");
  EXPECT_EQ(fields[2].value, "lunch?");
  EXPECT_EQ(fields[3].value, "one two");
}

TEST(RequestFields, CompactFormsAndCaseDoNotMatterForLookup) {
  auto fields = ReadRequestFields(
      "MESSAGE sip:a@b SIP/2.0\r\ni: abc\r\nc: text/plain;charset=utf-8\r\n"
      "p-asserted-identity: <sip:bob@dims.test>\r\n\r\n");
  EXPECT_EQ(FieldValue(fields, "Call-ID"), "abc");
  EXPECT_EQ(FieldValue(fields, "Content-Type"), "text/plain;charset=utf-8");
  EXPECT_EQ(FieldValue(fields, "P-Asserted-Identity"), "<sip:bob@dims.test>");
  EXPECT_FALSE(FieldValue(fields, "Subject"));
}

TEST(RequestFields, FullNamesOfCompactFormsAndCanonicalSpelling) {
  EXPECT_EQ(FullFieldName("v"), "Via");
  EXPECT_EQ(FullFieldName("T"), "To");
  EXPECT_EQ(FullFieldName("a"), "Accept-Contact");
  EXPECT_EQ(FullFieldName("call-id"), "Call-ID");
  EXPECT_EQ(FullFieldName("CSEQ"), "CSeq");
  EXPECT_EQ(FullFieldName("X-Custom"), "X-Custom");
}

TEST(RequestFields, TheEdgeWritesTheFieldsThatMakeARequestItsOwn) {
  for (const char* name : {"Via", "Call-ID", "CSeq", "Max-Forwards", "Contact", "Content-Type"}) {
    EXPECT_TRUE(EdgeWritesField(name)) << name;
  }
  EXPECT_FALSE(EdgeWritesField("Subject"));
  EXPECT_FALSE(EdgeWritesField("Accept-Contact"));
}

TEST(RequestFields, BareLineFeedsAndALineWithoutColonAreTolerated) {
  auto fields = ReadRequestFields("MESSAGE sip:a@b SIP/2.0\nTo: <sip:a@b>\nnonsense\nFrom: x\n\n");
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[1].name, "From");
}

}  // namespace
}  // namespace dims::edge
