// One-dimensional PostgreSQL arrays in the binary wire format (what array_send writes and
// array_recv reads), passed as one binary parameter: a batch of rows goes into one statement
// as a few arrays that `unnest` turns back into rows. Binary, because the text form costs both
// sides a parse of every byte (and a hex round trip for bytea), and that was a tenth of what
// PostgreSQL spent on a store.
#pragma once

#include <cstdint>
#include <pqxx/binarystring>
#include <string>
#include <string_view>
#include <vector>

namespace dims::storage {

class PgArray {
 public:
  // Element types by their built-in type OIDs (pg_type.h); the statement names the same type
  // (`$1::text[]`), and PostgreSQL refuses an array of any other.
  enum class Element : uint32_t {
    kBytea = 17,
    kInt8 = 20,
    kInt2 = 21,
    kText = 25,
    kTimestamptz = 1184,
  };

  explicit PgArray(Element element);

  // Text and bytea elements are their bytes as they are (no quoting, no escaping).
  PgArray& Add(std::string_view bytes);
  // An int8 or int2 element, by the array's type; for timestamptz, see Timestamp().
  PgArray& Add(int64_t value);
  // A timestamptz element's value: microseconds since 2000-01-01 UTC (PostgreSQL's epoch), from
  // microseconds since 1970-01-01 UTC.
  static int64_t Timestamp(int64_t unix_micros) { return unix_micros - 946'684'800'000'000; }

  size_t size() const { return count_; }
  // The array as it stands, as a binary parameter.
  pqxx::binarystring Param();

  static PgArray Texts(const std::vector<std::string>& values);
  static PgArray Int8s(const std::vector<int64_t>& values);

 private:
  Element element_;
  uint32_t count_ = 0;
  std::string buffer_;  // header, then each element: 4-byte big-endian length and the value
};

}  // namespace dims::storage
