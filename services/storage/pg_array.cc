#include "pg_array.h"

#include <stdexcept>

#include "big_endian.h"

namespace dims::storage {
namespace {

// The header is written last, when the count is known, into room kept at the front.
constexpr size_t kHeaderBytes = 20;

}  // namespace

PgArray::PgArray(Element element) : element_(element), buffer_(kHeaderBytes, '\0') {}

PgArray& PgArray::Add(std::string_view bytes) {
  if (element_ != Element::kText && element_ != Element::kBytea) {
    throw std::logic_error("PgArray: bytes added to an integer array");
  }
  if (bytes.size() > INT32_MAX) throw std::length_error("PgArray: element over 2 GiB");
  AppendLengthPrefixed(buffer_, bytes);
  ++count_;
  return *this;
}

PgArray& PgArray::Add(int64_t value) {
  int width = element_ == Element::kInt8 || element_ == Element::kTimestamptz ? 8
              : element_ == Element::kInt2                                    ? 2
                                                                              : 0;
  if (width == 0) throw std::logic_error("PgArray: integer added to a text or bytea array");
  if (width == 2 && (value < INT16_MIN || value > INT16_MAX)) {
    throw std::out_of_range("PgArray: value out of int2 range");
  }
  AppendBigEndian(buffer_, static_cast<uint32_t>(width), 4);
  AppendBigEndian(buffer_, static_cast<uint64_t>(value), width);
  ++count_;
  return *this;
}

pqxx::binarystring PgArray::Param() {
  // Header: dimensions, has-nulls flag, element type; then, per dimension, its length and
  // lower bound. An empty array has no dimensions, so no lengths either.
  std::string header;
  AppendBigEndian(header, count_ ? 1 : 0, 4);
  AppendBigEndian(header, 0, 4);
  AppendBigEndian(header, static_cast<uint32_t>(element_), 4);
  if (count_ == 0) return pqxx::binarystring(header);
  AppendBigEndian(header, count_, 4);
  AppendBigEndian(header, 1, 4);
  buffer_.replace(0, kHeaderBytes, header);
  return pqxx::binarystring(buffer_.data(), buffer_.size());
}

PgArray PgArray::Texts(const std::vector<std::string>& values) {
  PgArray a(Element::kText);
  for (const auto& v : values) a.Add(std::string_view(v));
  return a;
}

PgArray PgArray::Int8s(const std::vector<int64_t>& values) {
  PgArray a(Element::kInt8);
  for (int64_t v : values) a.Add(v);
  return a;
}

}  // namespace dims::storage
