// MSRP (RFC 4975) messages as values: requests (SEND, REPORT, any other method) and
// transaction responses, with the header fields the relay reads typed and the rest kept in
// order. Pure data and value grammar (URIs, Byte-Range, Status); no I/O. The framing (start
// line, end-line, limits) lives in msrp_parser.h and msrp_serializer.h; docs/msrp.md says what
// is accepted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dims {

// The flag of the end-line: whether more chunks of the same message follow.
enum class MsrpContinuation : char {
  kComplete = '$',  // last (or only) chunk
  kMore = '+',      // more chunks follow
  kAborted = '#',   // the sender gives up on the message; no more chunks
};

// Byte-Range: start-end/total, 1-based and inclusive; end and total may be "*" (unknown).
struct ByteRange {
  uint64_t start = 1;
  std::optional<uint64_t> end;    // nullopt: "*"
  std::optional<uint64_t> total;  // nullopt: "*"

  std::string ToString() const;
  bool operator==(const ByteRange&) const = default;
};

// Nothing when the text is not "range-start-range-end/total" or is inconsistent
// (start 0, end before start - 1, end beyond total).
std::optional<ByteRange> ParseByteRange(std::string_view text);

// An MSRP URI: msrp[s]://[userinfo@]host[:port][/session-id];transport[;param...].
struct MsrpUri {
  bool secure = false;     // msrps
  std::string userinfo;    // without the "@"
  std::string host;        // hostname, IPv4 address, or "[IPv6]" with its brackets
  uint16_t port = 0;       // 0: none given
  std::string session_id;  // empty: none given (a relay's own URI)
  std::string transport;   // lower case ("tcp")
  std::string params;      // ";name[=value]..." after the transport, verbatim

  bool IsTcp() const { return transport == "tcp"; }
  std::string ToString() const;
  bool operator==(const MsrpUri&) const = default;
};

std::optional<MsrpUri> ParseMsrpUri(std::string_view text);

// To-Path / From-Path: one or more URIs, first hop first.
using MsrpPath = std::vector<MsrpUri>;

// Nothing when a URI is malformed or the path is empty. Separators: one SP (RFC 4975); runs
// of SP/HTAB are accepted.
std::optional<MsrpPath> ParseMsrpPath(std::string_view text);
std::string MsrpPathToString(const MsrpPath& path);

// Status header of a REPORT: namespace (000) code [reason].
struct MsrpStatus {
  uint16_t status_namespace = 0;
  uint16_t code = 0;
  std::string reason;

  std::string ToString() const;
  bool operator==(const MsrpStatus&) const = default;
};

std::optional<MsrpStatus> ParseMsrpStatus(std::string_view text);

enum class MsrpFailureReport { kYes, kNo, kPartial };

// A header field the codec does not type (extension headers, Content-ID,
// Content-Disposition...), kept with its name as received.
struct MsrpHeader {
  std::string name;
  std::string value;
  bool operator==(const MsrpHeader&) const = default;
};

struct MsrpMessage {
  bool is_request = true;
  std::string transaction_id;

  // Requests.
  std::string method;  // "SEND", "REPORT", or another 1*UPALPHA token

  // Responses.
  uint16_t status_code = 0;
  std::string comment;  // may be empty

  MsrpPath to_path;
  MsrpPath from_path;
  std::optional<std::string> message_id;
  std::optional<ByteRange> byte_range;              // nullopt: absent (means 1-*/*)
  std::optional<bool> success_report;               // nullopt: absent (means "no")
  std::optional<MsrpFailureReport> failure_report;  // nullopt: absent (means "yes")
  std::optional<MsrpStatus> status;
  std::optional<std::string> content_type;
  std::vector<MsrpHeader> other_headers;  // in received order

  // nullopt: no body (no blank line). An empty string is an empty body, which still has its
  // blank line and the CRLF before the end-line.
  std::optional<std::string> body;
  MsrpContinuation continuation = MsrpContinuation::kComplete;

  bool IsSend() const { return is_request && method == "SEND"; }
  bool IsReport() const { return is_request && method == "REPORT"; }
  // The Byte-Range that applies: the header, or 1-*/* when absent.
  ByteRange EffectiveByteRange() const { return byte_range.value_or(ByteRange{}); }
  // The session-id this hop is addressed by (first URI of To-Path), empty when none.
  std::string_view ToSessionId() const;

  bool operator==(const MsrpMessage&) const = default;
};

// Whether a request gets a transaction response: never for REPORT, never
// when the sender asked for no failure reports (Failure-Report: no), never for a response.
bool ExpectsResponse(const MsrpMessage& request);

// The transaction response to a request: same transaction id, To-Path the previous hop (the
// first URI of the request's From-Path), From-Path this hop (the first URI of its To-Path).
MsrpMessage MakeMsrpResponse(const MsrpMessage& request, uint16_t status_code,
                             std::string_view comment);

// The reason phrase DIMS sends with an MSRP status code ("OK", "Stop Sending Message"...).
std::string_view MsrpReasonPhrase(uint16_t status_code);

// Grammar predicates shared by the parser and the serializer.
// ident = ALPHANUM 3*31(ALPHANUM / "." / "-" / "+" / "%" / "="): transaction ids, Message-IDs.
bool IsMsrpIdent(std::string_view text);
// token of RFC 4975 section 9 (media types, URI parameters).
bool IsMsrpToken(std::string_view text);
// utf8text: HTAB, printable ASCII and well-formed UTF-8 non-ASCII sequences.
bool IsMsrpUtf8Text(std::string_view text);
// type "/" subtype *(";" parameter); parameters checked only for being utf8text.
bool IsMsrpMediaType(std::string_view text);

// Whether a Content-Type is among accept-types ("*", "type/*" or "type/subtype", compared
// case-insensitively, parameters ignored). An empty list accepts everything.
bool MsrpMediaTypeAccepted(std::string_view content_type,
                           const std::vector<std::string>& accept_types);

// Fresh random identifiers (token characters only, from the system's random source).
std::string NewMsrpTransactionId();  // 16 ALPHANUM: ~95 bits
std::string NewMsrpMessageId();      // 24 ALPHANUM: ~142 bits

}  // namespace dims
