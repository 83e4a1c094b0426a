// The transactional outbox keeps the bus events of one transaction in one row: a store of 64
// messages writes one outbox row, not 64, and the relay deletes one. Each event is three
// fields, each a 4-byte big-endian length and its bytes: the user's AOR, the event type (the
// stream's `type` field) and the serialized dims.v1.BusEvent. (In SQL the same framing is
// int4send(length) || bytes, for an operator who has to write or read a row by hand.)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dims::storage {

struct OutboxEvent {
  std::string aor;
  std::string type;
  std::string event;  // serialized dims.v1.BusEvent
};

// Appends one event to an outbox row under construction.
void AppendOutboxEvent(std::string& row, std::string_view aor, std::string_view type,
                       std::string_view event);

// The events of a row, in the order they were appended; nullopt when the row is cut short or a
// length points past its end.
std::optional<std::vector<OutboxEvent>> ReadOutboxRow(std::string_view row);

}  // namespace dims::storage
