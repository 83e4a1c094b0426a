// The message-summary document (RFC 3842 5.2, media type application/simple-message-summary)
// that tells a user what waits in their deferred-message store. DIMS sends it as the body of
// a message-summary NOTIFY (seed 004 11.3.2.8) and as the body of the notification SIP
// MESSAGE (seed 000). docs/notifications.md shows a complete example.
//
//   Messages-Waiting: yes                       yes when at least one message is new
//   Message-Account: sip:alice@dims.test        the user's AOR
//   text-message: 1/1 (1/0)                     pager mode: new/old (urgent new/urgent old)
//   multimedia-message: 1/0                     large mode; the urgent part only when not 0/0
//                                               (empty line)
//   To: ...                                     per listed message, in arrival order: To,
//   From: ...                                   From, Date, Subject, Priority, Message-ID,
//   ...                                         P-Asserted-Identity; empty values left out
//
// Lines end in CRLF. A kind without messages has no line, except that an empty store still
// shows "text-message: 0/0". Header values are copied as received, except that a run of CR
// and LF becomes one space and surrounding blanks go; Date falls back to the time DIMS
// received the message (SIP-date, GMT). Message-ID is written bare, without angle brackets
// ("13684434990@store.dims.test"), as RFC 3842's example writes it.
#pragma once

#include <string>

#include "dims/v1/common.pb.h"

namespace dims {

inline constexpr const char* kMessageSummaryContentType = "application/simple-message-summary";

// Renders `summary` as described above. Counts come from summary.pager and summary.large;
// the per-message blocks list summary.entries only (when entries_truncated is set, the
// counts still cover every message and the blocks stop at the entries given).
std::string RenderMessageSummary(const dims::v1::StoreSummary& summary);

}  // namespace dims
