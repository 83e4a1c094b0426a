// Network byte order, as PostgreSQL's binary formats and the outbox rows frame their values:
// integers most significant byte first, byte strings after a 4-byte length.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dims::storage {

// Appends the low `bytes` bytes of `value`, most significant first.
inline void AppendBigEndian(std::string& out, uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out += static_cast<char>((value >> shift) & 0xff);
  }
}

// Appends `bytes` after its length as 4 bytes (the caller keeps it under 4 GiB).
inline void AppendLengthPrefixed(std::string& out, std::string_view bytes) {
  AppendBigEndian(out, bytes.size(), 4);
  out.append(bytes);
}

}  // namespace dims::storage
