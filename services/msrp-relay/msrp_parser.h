// Incremental parser of an MSRP (RFC 4975) byte stream: bytes go in as they arrive, in pieces
// of any size (one byte at a time works), complete requests and responses come out. MSRP has no
// Content-Length: a body ends at the end-line "-------<transaction-id><flag>" CRLF, preceded by
// a CRLF, so the parser scans for it across pieces, examining each byte a bounded number of
// times. The same input gives the same results however it is cut into pieces.
//
// Errors carry the MSRP status to answer with and say whether the stream stays usable: once a
// valid start line gave the transaction id, a bad or oversized message is skipped up to its
// end-line (without buffering it) and parsing resumes; a broken start line closes the stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "msrp_message.h"

namespace dims {

struct MsrpLimits {
  // "MSRP" SP transaction-id SP (method | status [SP comment]) CRLF.
  size_t max_start_line_bytes = 512;
  // One header line with its CRLF.
  size_t max_header_line_bytes = 4096;
  // Every header line of a message, CRLFs included.
  size_t max_header_bytes = 16384;
  size_t max_header_count = 32;
  // URIs in To-Path and in From-Path, each.
  size_t max_path_uris = 8;
  // The body of one request (one chunk); 413 beyond.
  size_t max_body_bytes = 1 << 20;
  // The whole message as its Byte-Range total announces it; 413 beyond. 0: no limit.
  uint64_t max_message_bytes = 0;
  // Content types a SEND may carry; 415 for others. Empty: any.
  std::vector<std::string> accept_types;
  // Methods understood; another syntactically valid method gets 501.
  std::vector<std::string> methods = {"SEND", "REPORT"};
};

struct MsrpParseError {
  // The MSRP status that answers the message: 400 malformed, 413 too large, 415 unsupported
  // Content-Type, 501 unknown method.
  uint16_t status = 400;
  std::string comment;  // short, for the response's comment and logs
  // Whether parsing goes on after this message. False: the framing is lost (no usable start
  // line); the connection must be closed, and Feed returns nothing more.
  bool stream_usable = false;
  // What was read of the message before the error: transaction id, method or status once the
  // start line was good, the header fields read so far, never a body. Enough to answer it
  // (MakeMsrpResponse) when headers_complete or at least the paths were read.
  MsrpMessage partial;
  bool headers_complete = false;

  // Whether the session layer should answer with `status`: a request whose paths are known
  // that expects a response at all (ExpectsResponse).
  bool ShouldRespond() const;

  bool operator==(const MsrpParseError&) const = default;
};

using MsrpParseResult = std::variant<MsrpMessage, MsrpParseError>;

class MsrpParser {
 public:
  explicit MsrpParser(MsrpLimits limits = {});

  // Takes the next piece of the stream; returns the messages and errors it completed, in
  // stream order. An oversized or rejected message yields its error as soon as it is known
  // (often before its end-line arrived); its remaining bytes are then skipped silently.
  std::vector<MsrpParseResult> Feed(std::string_view bytes);

  // After a fatal error: the stream must be closed.
  bool closed() const { return state_ == State::kClosed; }
  // Whether the parser sits between messages (no partial message buffered), e.g. to tell a
  // clean connection close from a truncated one.
  bool at_message_boundary() const { return state_ == State::kStartLine && pos_ == buffer_.size(); }
  const MsrpLimits& limits() const { return limits_; }

 private:
  enum class State { kStartLine, kHeaders, kBody, kSkipToEndLine, kClosed };

  // One step of progress; false when more bytes are needed (or the stream is closed).
  bool Step(std::vector<MsrpParseResult>& out);
  bool ParseStartLine(std::vector<MsrpParseResult>& out);
  bool ParseHeaderLine(std::vector<MsrpParseResult>& out);
  bool ScanBody(std::vector<MsrpParseResult>& out);

  // Returns an error for the header line, empty when it is fine.
  std::optional<MsrpParseError> AddHeader(std::string_view line);
  // The checks that need every header: required fields, limits announced by the headers,
  // method and content type. Empty when the message may proceed.
  std::optional<MsrpParseError> CheckHeaders(bool has_body);
  // The checks that need the body.
  std::optional<MsrpParseError> CheckBody(const std::string& body);
  MsrpParseError ChunkTooLarge() const;

  MsrpParseError MakeError(uint16_t status, std::string comment, bool stream_usable) const;
  // Reports an error and skips the rest of the message, scanning from `scan_from`.
  void FailAndSkip(std::vector<MsrpParseResult>& out, MsrpParseError error, size_t scan_from);
  // Reports a fatal error and closes the stream.
  void FailAndClose(std::vector<MsrpParseResult>& out, MsrpParseError error);
  // Finds the end-line of the current transaction at or after scan_; false when it may still
  // come. On true, end_line_at_ is where its leading CRLF starts and flag_ is set.
  bool FindEndLine();
  void ConsumeMessage(size_t end);
  void StartMessage();
  void Compact();

  MsrpLimits limits_;
  State state_ = State::kStartLine;
  std::string buffer_;
  size_t pos_ = 0;               // start of the current message / line in buffer_
  size_t scan_ = 0;              // where the next search resumes (bytes before it are settled)
  size_t body_start_ = 0;        // kBody: first byte of the body
  size_t end_line_at_ = 0;       // set by FindEndLine
  std::string end_line_prefix_;  // CRLF "-------" transaction-id
  MsrpContinuation flag_ = MsrpContinuation::kComplete;

  MsrpMessage message_;  // the message being read
  size_t header_count_ = 0;
  size_t header_bytes_ = 0;
};

}  // namespace dims
