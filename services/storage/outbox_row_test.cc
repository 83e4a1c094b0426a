#include "outbox_row.h"

#include <gtest/gtest.h>

namespace dims::storage {
namespace {

TEST(OutboxRowTest, EventsComeBackInOrderWithBinaryBytesIntact) {
  std::string row;
  std::string binary("\0\x01\xff\"\\", 5);
  AppendOutboxEvent(row, "sip:alice@dims.test", "message_stored", binary);
  AppendOutboxEvent(row, "sip:bob@dims.test", "store_changed", "");
  auto events = ReadOutboxRow(row);
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].aor, "sip:alice@dims.test");
  EXPECT_EQ((*events)[0].type, "message_stored");
  EXPECT_EQ((*events)[0].event, binary);
  EXPECT_EQ((*events)[1].aor, "sip:bob@dims.test");
  EXPECT_EQ((*events)[1].type, "store_changed");
  EXPECT_EQ((*events)[1].event, "");
}

TEST(OutboxRowTest, AnEmptyRowHoldsNoEvents) {
  auto events = ReadOutboxRow("");
  ASSERT_TRUE(events.has_value());
  EXPECT_TRUE(events->empty());
}

TEST(OutboxRowTest, ARowCutShortIsRefused) {
  std::string row;
  AppendOutboxEvent(row, "sip:alice@dims.test", "message_stored", "payload");
  for (size_t cut = 1; cut < row.size(); ++cut) {
    EXPECT_FALSE(ReadOutboxRow(std::string_view(row).substr(0, cut)).has_value()) << cut;
  }
}

TEST(OutboxRowTest, TheFramingIsBigEndianLengthThenBytes) {
  // The documented framing, which SQL writes as int4send(length) || bytes.
  std::string row;
  AppendOutboxEvent(row, "a", "bc", std::string(300, 'x'));
  EXPECT_EQ(row.substr(0, 5), std::string("\0\0\0\x01"
                                          "a",
                                          5));
  EXPECT_EQ(row.substr(5, 6), std::string("\0\0\0\x02"
                                          "bc",
                                          6));
  EXPECT_EQ(row.substr(11, 4), std::string("\0\0\x01\x2c", 4));
}

}  // namespace
}  // namespace dims::storage
