#include "outbox_row.h"

#include <cstdint>

#include "big_endian.h"

namespace dims::storage {
namespace {

bool ReadField(std::string_view& rest, std::string* out) {
  if (rest.size() < 4) return false;
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i)
    n = (n << 8) | static_cast<unsigned char>(rest[static_cast<size_t>(i)]);
  rest.remove_prefix(4);
  if (rest.size() < n) return false;
  out->assign(rest.substr(0, n));
  rest.remove_prefix(n);
  return true;
}

}  // namespace

void AppendOutboxEvent(std::string& row, std::string_view aor, std::string_view type,
                       std::string_view event) {
  AppendLengthPrefixed(row, aor);
  AppendLengthPrefixed(row, type);
  AppendLengthPrefixed(row, event);
}

std::optional<std::vector<OutboxEvent>> ReadOutboxRow(std::string_view row) {
  std::vector<OutboxEvent> events;
  while (!row.empty()) {
    OutboxEvent e;
    if (!ReadField(row, &e.aor) || !ReadField(row, &e.type) || !ReadField(row, &e.event)) {
      return std::nullopt;
    }
    events.push_back(std::move(e));
  }
  return events;
}

}  // namespace dims::storage
