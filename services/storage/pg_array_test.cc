#include "pg_array.h"

#include <gtest/gtest.h>

namespace dims::storage {
namespace {

std::string Bytes(pqxx::binarystring b) { return b.str(); }

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

TEST(PgArrayTest, TextElementsAreLengthPrefixedAsTheyAre) {
  PgArray a(PgArray::Element::kText);
  a.Add("ab").Add(std::string_view("\"q\\\0", 4)).Add("");
  std::string expected = Be32(1) + Be32(0) + Be32(25) + Be32(3) + Be32(1) + Be32(2) + "ab" +
                         Be32(4) + std::string("\"q\\\0", 4) + Be32(0);
  EXPECT_EQ(Bytes(a.Param()), expected);
  EXPECT_EQ(a.size(), 3u);
}

TEST(PgArrayTest, IntegersAreBigEndianOfTheirWidth) {
  PgArray eight(PgArray::Element::kInt8);
  eight.Add(int64_t{-2}).Add(int64_t{0x0102030405060708});
  EXPECT_EQ(Bytes(eight.Param()), Be32(1) + Be32(0) + Be32(20) + Be32(2) + Be32(1) + Be32(8) +
                                      std::string(8, '\xff').replace(7, 1, "\xfe") + Be32(8) +
                                      "\x01\x02\x03\x04\x05\x06\x07\x08");
  PgArray two(PgArray::Element::kInt2);
  two.Add(int64_t{258});
  EXPECT_EQ(Bytes(two.Param()),
            Be32(1) + Be32(0) + Be32(21) + Be32(1) + Be32(1) + Be32(2) + "\x01\x02");
  EXPECT_THROW(two.Add(int64_t{40000}), std::out_of_range);
  EXPECT_EQ(two.size(), 1u);
}

TEST(PgArrayTest, TimestampsCountFromPostgresEpoch) {
  EXPECT_EQ(PgArray::Timestamp(946'684'800'000'000), 0);  // 2000-01-01T00:00:00Z
  EXPECT_EQ(PgArray::Timestamp(0), -946'684'800'000'000);
  PgArray times(PgArray::Element::kTimestamptz);
  times.Add(PgArray::Timestamp(946'684'800'000'001));
  EXPECT_EQ(Bytes(times.Param()), Be32(1) + Be32(0) + Be32(1184) + Be32(1) + Be32(1) + Be32(8) +
                                      std::string(7, '\0') + "\x01");
}

TEST(PgArrayTest, EmptyArrayHasNoDimensions) {
  EXPECT_EQ(Bytes(PgArray::Texts({}).Param()), Be32(0) + Be32(0) + Be32(25));
}

TEST(PgArrayTest, ParamCanBeTakenAgainAfterMoreElements) {
  PgArray a(PgArray::Element::kBytea);
  a.Add("x");
  std::string first = Bytes(a.Param());
  a.Add("y");
  EXPECT_EQ(first, Be32(1) + Be32(0) + Be32(17) + Be32(1) + Be32(1) + Be32(1) + "x");
  EXPECT_EQ(Bytes(a.Param()),
            Be32(1) + Be32(0) + Be32(17) + Be32(2) + Be32(1) + Be32(1) + "x" + Be32(1) + "y");
}

TEST(PgArrayTest, WrongKindOfElementIsRefused) {
  PgArray ints(PgArray::Element::kInt8);
  EXPECT_THROW(ints.Add("text"), std::logic_error);
  PgArray texts(PgArray::Element::kText);
  EXPECT_THROW(texts.Add(int64_t{1}), std::logic_error);
  EXPECT_EQ(ints.size(), 0u);
  EXPECT_EQ(texts.size(), 0u);
}

}  // namespace
}  // namespace dims::storage
