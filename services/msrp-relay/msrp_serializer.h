// Writes MSRP (RFC 4975) messages byte-exact: start line, To-Path, From-Path, Message-ID,
// Success-Report, Failure-Report, Byte-Range, Status, the other header fields in their order,
// Content-Type last; the blank line only when there is a body; the body, CRLF and the
// end-line. And splits a large message into chunks with their Byte-Range and flags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "msrp_message.h"

namespace dims {

// The wire form of a message. Preconditions (the caller's, not checked): a valid transaction
// id whose end-line does not occur in the body (NewMsrpTransactionIdFor), paths present, and
// header values without CR or LF.
std::string SerializeMsrpMessage(const MsrpMessage& message);

// Whether the body contains "-------<transaction_id>" followed by a continuation flag, which
// would end the message early on the receiving side.
bool BodyContainsEndLine(std::string_view body, std::string_view transaction_id);

// A fresh transaction id whose end-line does not occur in the body.
std::string NewMsrpTransactionIdFor(std::string_view body);

// A REPORT about a received SEND (the whole message or the ranges received): To-Path the
// sender's From-Path, From-Path this endpoint, the SEND's Message-ID, a fresh transaction id.
MsrpMessage MakeMsrpReport(const MsrpMessage& send, const MsrpStatus& status,
                           const ByteRange& range);

// One chunk of a body: bytes [offset, offset + size) of it.
struct MsrpChunkPlan {
  uint64_t offset = 0;
  uint64_t size = 0;
  ByteRange range;  // offset + 1 - offset + size / total
  MsrpContinuation continuation = MsrpContinuation::kComplete;  // '+' but for the last
  bool operator==(const MsrpChunkPlan&) const = default;
};

// How a body of total_bytes goes out in chunks of at most chunk_bytes (0 means 1). An empty
// body is one empty chunk, 1-0/0.
std::vector<MsrpChunkPlan> PlanMsrpChunks(uint64_t total_bytes, size_t chunk_bytes);

// The chunks of a SEND, each a complete request with its own fresh transaction id, the
// message's headers, its Byte-Range and flag. A message without body is returned as is.
std::vector<MsrpMessage> SplitIntoChunks(const MsrpMessage& send, size_t chunk_bytes);

}  // namespace dims
