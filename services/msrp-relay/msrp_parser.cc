#include "msrp_parser.h"

#include <algorithm>
#include <utility>

namespace dims {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kStartPrefix = "MSRP ";
constexpr std::string_view kEndLineDashes = "-------";
// A start line or header line shorter than this could not hold a valid end-line or a
// 32-character transaction id, so smaller configured limits are raised to it.
constexpr size_t kMinLineLimit = 64;

bool IsUpAlpha(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

std::string_view TrimWhitespace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::optional<bool> ParseYesNo(std::string_view value) {
  if (EqualsIgnoreCase(value, "yes")) return true;
  if (EqualsIgnoreCase(value, "no")) return false;
  return std::nullopt;
}

std::optional<MsrpFailureReport> ParseFailureReport(std::string_view value) {
  if (EqualsIgnoreCase(value, "yes")) return MsrpFailureReport::kYes;
  if (EqualsIgnoreCase(value, "no")) return MsrpFailureReport::kNo;
  if (EqualsIgnoreCase(value, "partial")) return MsrpFailureReport::kPartial;
  return std::nullopt;
}

}  // namespace

bool MsrpParseError::ShouldRespond() const {
  return !partial.transaction_id.empty() && !partial.to_path.empty() &&
         !partial.from_path.empty() && ExpectsResponse(partial);
}

MsrpParser::MsrpParser(MsrpLimits limits) : limits_(std::move(limits)) {
  limits_.max_start_line_bytes = std::max(limits_.max_start_line_bytes, kMinLineLimit);
  limits_.max_header_line_bytes = std::max(limits_.max_header_line_bytes, kMinLineLimit);
  limits_.max_header_bytes = std::max(limits_.max_header_bytes, limits_.max_header_line_bytes);
  limits_.max_header_count = std::max<size_t>(limits_.max_header_count, 2);
  limits_.max_path_uris = std::max<size_t>(limits_.max_path_uris, 1);
}

std::vector<MsrpParseResult> MsrpParser::Feed(std::string_view bytes) {
  std::vector<MsrpParseResult> out;
  if (state_ == State::kClosed) return out;
  Compact();
  buffer_.append(bytes);
  while (Step(out)) {
  }
  Compact();
  return out;
}

bool MsrpParser::Step(std::vector<MsrpParseResult>& out) {
  switch (state_) {
    case State::kStartLine:
      return ParseStartLine(out);
    case State::kHeaders:
      return ParseHeaderLine(out);
    case State::kBody:
    case State::kSkipToEndLine:
      return ScanBody(out);
    case State::kClosed:
      return false;
  }
  return false;
}

void MsrpParser::StartMessage() {
  state_ = State::kStartLine;
  message_ = MsrpMessage{};
  header_count_ = 0;
  header_bytes_ = 0;
  end_line_prefix_.clear();
}

void MsrpParser::ConsumeMessage(size_t end) {
  pos_ = end;
  scan_ = end;
  StartMessage();
}

// Drops the bytes no longer needed once they are at least half of the buffer, so that the
// copying stays proportional to the input. The CRLF before pos_ stays: an end-line right at
// pos_ is found by its leading CRLF.
void MsrpParser::Compact() {
  size_t drop = pos_ > kCrlf.size() ? pos_ - kCrlf.size() : 0;
  if (drop == 0 || drop * 2 < buffer_.size()) return;
  buffer_.erase(0, drop);
  auto shift = [drop](size_t& offset) { offset = offset >= drop ? offset - drop : 0; };
  shift(pos_);
  shift(scan_);
  shift(body_start_);
  shift(end_line_at_);
}

MsrpParseError MsrpParser::MakeError(uint16_t status, std::string comment,
                                     bool stream_usable) const {
  MsrpParseError error{.status = status,
                       .comment = std::move(comment),
                       .stream_usable = stream_usable,
                       .partial = message_,
                       .headers_complete = false};
  error.partial.body.reset();
  return error;
}

void MsrpParser::FailAndSkip(std::vector<MsrpParseResult>& out, MsrpParseError error,
                             size_t scan_from) {
  out.emplace_back(std::move(error));
  state_ = State::kSkipToEndLine;
  scan_ = scan_from;
  pos_ = scan_from;  // what comes before cannot hold the end-line
}

void MsrpParser::FailAndClose(std::vector<MsrpParseResult>& out, MsrpParseError error) {
  error.stream_usable = false;
  out.emplace_back(std::move(error));
  state_ = State::kClosed;
  buffer_.clear();
  buffer_.shrink_to_fit();
  pos_ = scan_ = body_start_ = end_line_at_ = 0;
}

bool MsrpParser::ParseStartLine(std::vector<MsrpParseResult>& out) {
  std::string_view available = std::string_view(buffer_).substr(pos_);
  if (available.empty()) return false;
  // A wrong first byte is known at once: nothing can resynchronise a stream that is not MSRP.
  size_t prefix = std::min(available.size(), kStartPrefix.size());
  if (available.substr(0, prefix) != kStartPrefix.substr(0, prefix)) {
    FailAndClose(out, MakeError(400, "not an MSRP start line", false));
    return false;
  }
  size_t crlf = buffer_.find(kCrlf, std::max(scan_, pos_));
  if (crlf == std::string::npos) {
    // Without its CRLF the line is at least one byte longer than what is here.
    if (available.size() >= limits_.max_start_line_bytes) {
      FailAndClose(out, MakeError(400, "start line too long", false));
      return false;
    }
    scan_ = buffer_.size() - 1;  // the last byte may be the CR of the CRLF
    return false;
  }
  if (crlf + kCrlf.size() - pos_ > limits_.max_start_line_bytes) {
    FailAndClose(out, MakeError(400, "start line too long", false));
    return false;
  }
  std::string_view line = std::string_view(buffer_).substr(pos_, crlf - pos_);
  std::string_view rest = line.substr(kStartPrefix.size());

  size_t space = rest.find(' ');
  std::string_view transaction_id = rest.substr(0, space);
  if (space == std::string_view::npos || !IsMsrpIdent(transaction_id)) {
    FailAndClose(out, MakeError(400, "malformed transaction id", false));
    return false;
  }
  message_.transaction_id = transaction_id;
  rest.remove_prefix(space + 1);

  bool is_response = rest.size() >= 3 && IsDigit(rest[0]) && IsDigit(rest[1]) && IsDigit(rest[2]) &&
                     (rest.size() == 3 || rest[3] == ' ');
  if (is_response) {
    message_.is_request = false;
    message_.status_code =
        static_cast<uint16_t>((rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0'));
    if (rest.size() > 3) {
      std::string_view comment = rest.substr(4);
      if (!IsMsrpUtf8Text(comment)) {
        FailAndClose(out, MakeError(400, "malformed response comment", false));
        return false;
      }
      message_.comment = comment;
    }
  } else {
    if (rest.empty() || !std::all_of(rest.begin(), rest.end(), IsUpAlpha)) {
      FailAndClose(out, MakeError(400, "malformed method", false));
      return false;
    }
    message_.method = rest;
  }
  end_line_prefix_ = std::string(kCrlf) + std::string(kEndLineDashes) + message_.transaction_id;
  pos_ = crlf + kCrlf.size();
  scan_ = pos_;
  state_ = State::kHeaders;
  return true;
}

bool MsrpParser::ParseHeaderLine(std::vector<MsrpParseResult>& out) {
  // pos_ is the first byte of the line; the start line's CRLF is just before it.
  size_t line_crlf_before = pos_ - kCrlf.size();
  size_t crlf = buffer_.find(kCrlf, std::max(scan_, pos_));
  if (crlf == std::string::npos) {
    if (buffer_.size() - pos_ >= limits_.max_header_line_bytes) {
      FailAndSkip(out, MakeError(400, "header line too long", true), line_crlf_before);
      return true;
    }
    scan_ = std::max(pos_, buffer_.size() - 1);
    return false;
  }
  size_t line_bytes = crlf + kCrlf.size() - pos_;
  if (line_bytes > limits_.max_header_line_bytes) {
    FailAndSkip(out, MakeError(400, "header line too long", true), line_crlf_before);
    return true;
  }
  std::string_view line = std::string_view(buffer_).substr(pos_, crlf - pos_);

  if (line.empty()) {  // the blank line: a body follows
    if (auto error = CheckHeaders(true)) {
      FailAndSkip(out, std::move(*error), crlf);
      return true;
    }
    body_start_ = crlf + kCrlf.size();
    // From the blank line's own CRLF, so that an empty body whose CRLF before the end-line
    // is missing still ends at its end-line.
    scan_ = crlf;
    pos_ = body_start_;
    state_ = State::kBody;
    return true;
  }

  if (line.starts_with(kEndLineDashes)) {  // end-line of a message without body
    std::string_view id_and_flag = line.substr(kEndLineDashes.size());
    char flag = id_and_flag.empty() ? '\0' : id_and_flag.back();
    id_and_flag.remove_suffix(id_and_flag.empty() ? 0 : 1);
    if (id_and_flag != message_.transaction_id || (flag != '$' && flag != '+' && flag != '#')) {
      FailAndSkip(out, MakeError(400, "end-line does not match the transaction", true),
                  line_crlf_before);
      return true;
    }
    size_t end = crlf + kCrlf.size();
    if (auto error = CheckHeaders(false)) {
      out.emplace_back(std::move(*error));
    } else {
      message_.continuation = static_cast<MsrpContinuation>(flag);
      out.emplace_back(std::move(message_));
    }
    ConsumeMessage(end);
    return true;
  }

  if (header_count_ + 1 > limits_.max_header_count) {
    FailAndSkip(out, MakeError(400, "too many header fields", true), line_crlf_before);
    return true;
  }
  if (header_bytes_ + line_bytes > limits_.max_header_bytes) {
    FailAndSkip(out, MakeError(400, "header section too large", true), line_crlf_before);
    return true;
  }
  if (auto error = AddHeader(line)) {
    FailAndSkip(out, std::move(*error), line_crlf_before);
    return true;
  }
  ++header_count_;
  header_bytes_ += line_bytes;
  pos_ = crlf + kCrlf.size();
  scan_ = pos_;
  return true;
}

std::optional<MsrpParseError> MsrpParser::AddHeader(std::string_view line) {
  size_t colon = line.find(':');
  std::string_view name = line.substr(0, colon);
  if (colon == std::string_view::npos || name.empty() || !IsAlpha(name.front()) ||
      !IsMsrpToken(name)) {
    return MakeError(400, "malformed header field", true);
  }
  std::string_view value = TrimWhitespace(line.substr(colon + 1));
  if (!IsMsrpUtf8Text(value)) return MakeError(400, "malformed header field", true);

  auto malformed = [&](std::string_view field) {
    return MakeError(400, "malformed " + std::string(field), true);
  };
  auto duplicate = [&](std::string_view field) {
    return MakeError(400, "duplicate " + std::string(field), true);
  };
  // RFC 4975: To-Path first, From-Path second, in every request and response.
  bool is_to_path = EqualsIgnoreCase(name, "To-Path");
  bool is_from_path = EqualsIgnoreCase(name, "From-Path");
  if (header_count_ == 0 && !is_to_path) {
    return MakeError(400, "To-Path must be the first header field", true);
  }
  if (header_count_ == 1 && !is_from_path) {
    return MakeError(400, "From-Path must be the second header field", true);
  }
  if (is_to_path || is_from_path) {
    std::string_view field = is_to_path ? "To-Path" : "From-Path";
    if (header_count_ > 1) return duplicate(field);
    auto path = ParseMsrpPath(value);
    if (!path) return malformed(field);
    if (path->size() > limits_.max_path_uris) {
      return MakeError(400, "too many URIs in " + std::string(field), true);
    }
    (is_to_path ? message_.to_path : message_.from_path) = std::move(*path);
  } else if (EqualsIgnoreCase(name, "Message-ID")) {
    if (message_.message_id) return duplicate("Message-ID");
    if (!IsMsrpIdent(value)) return malformed("Message-ID");
    message_.message_id = std::string(value);
  } else if (EqualsIgnoreCase(name, "Byte-Range")) {
    if (message_.byte_range) return duplicate("Byte-Range");
    message_.byte_range = ParseByteRange(value);
    if (!message_.byte_range) return malformed("Byte-Range");
  } else if (EqualsIgnoreCase(name, "Success-Report")) {
    if (message_.success_report) return duplicate("Success-Report");
    message_.success_report = ParseYesNo(value);
    if (!message_.success_report) return malformed("Success-Report");
  } else if (EqualsIgnoreCase(name, "Failure-Report")) {
    if (message_.failure_report) return duplicate("Failure-Report");
    message_.failure_report = ParseFailureReport(value);
    if (!message_.failure_report) return malformed("Failure-Report");
  } else if (EqualsIgnoreCase(name, "Status")) {
    if (message_.status) return duplicate("Status");
    message_.status = ParseMsrpStatus(value);
    if (!message_.status) return malformed("Status");
  } else if (EqualsIgnoreCase(name, "Content-Type")) {
    if (message_.content_type) return duplicate("Content-Type");
    if (!IsMsrpMediaType(value)) return malformed("Content-Type");
    message_.content_type = std::string(value);
  } else {
    message_.other_headers.push_back({std::string(name), std::string(value)});
  }
  return std::nullopt;
}

std::optional<MsrpParseError> MsrpParser::CheckHeaders(bool has_body) {
  auto error = [&](uint16_t status, std::string comment) {
    MsrpParseError e = MakeError(status, std::move(comment), true);
    e.headers_complete = true;
    return e;
  };
  if (message_.to_path.empty()) return error(400, "missing To-Path");
  if (message_.from_path.empty()) return error(400, "missing From-Path");
  if (!message_.is_request) {
    if (has_body) return error(400, "response with a body");
    return std::nullopt;
  }
  if (std::find(limits_.methods.begin(), limits_.methods.end(), message_.method) ==
      limits_.methods.end()) {
    return error(501, "unknown method " + message_.method);
  }
  if ((message_.IsSend() || message_.IsReport()) && !message_.message_id) {
    return error(400, "missing Message-ID");
  }
  if (message_.IsReport() && !message_.status) return error(400, "missing Status");
  if (has_body && !message_.content_type) return error(400, "body without Content-Type");
  if (const auto& range = message_.byte_range) {
    if (limits_.max_message_bytes != 0 && range->total &&
        *range->total > limits_.max_message_bytes) {
      return error(413, "message exceeds " + std::to_string(limits_.max_message_bytes) + " bytes");
    }
    if (range->end && *range->end + 1 - range->start > limits_.max_body_bytes) {
      return ChunkTooLarge();
    }
  }
  if (message_.IsSend() && message_.content_type &&
      !MsrpMediaTypeAccepted(*message_.content_type, limits_.accept_types)) {
    return error(415, "Content-Type not accepted");
  }
  return std::nullopt;
}

// The same error whether the end-line was seen or the body outgrew the limit before it.
MsrpParseError MsrpParser::ChunkTooLarge() const {
  MsrpParseError error =
      MakeError(413, "chunk exceeds " + std::to_string(limits_.max_body_bytes) + " bytes", true);
  error.headers_complete = true;
  return error;
}

std::optional<MsrpParseError> MsrpParser::CheckBody(const std::string& body) {
  auto error = [&](uint16_t status, std::string comment) {
    MsrpParseError e = MakeError(status, std::move(comment), true);
    e.headers_complete = true;
    return e;
  };
  if (body.size() > limits_.max_body_bytes) return ChunkTooLarge();
  if (const auto& range = message_.byte_range; range && range->end) {
    uint64_t range_bytes = *range->end + 1 - range->start;
    if (body.size() > range_bytes) return error(400, "body longer than its Byte-Range");
    // An interrupted chunk ('+' or '#') may be shorter; a final one carries its whole range.
    if (flag_ == MsrpContinuation::kComplete && body.size() < range_bytes) {
      return error(400, "body shorter than its Byte-Range");
    }
  }
  return std::nullopt;
}

bool MsrpParser::FindEndLine() {
  const std::string& prefix = end_line_prefix_;  // CRLF "-------" transaction-id
  size_t full = prefix.size() + 3;               // + flag + CRLF
  while (true) {
    size_t at = buffer_.find(prefix, scan_);
    if (at == std::string::npos) {
      // A match can only begin in the last prefix.size() - 1 bytes: search from there next time.
      size_t tail = prefix.size() - 1;
      if (buffer_.size() > tail) scan_ = std::max(scan_, buffer_.size() - tail);
      return false;
    }
    if (at + full > buffer_.size()) {
      scan_ = at;
      return false;
    }
    char flag = buffer_[at + prefix.size()];
    if ((flag == '$' || flag == '+' || flag == '#') && buffer_[at + prefix.size() + 1] == '\r' &&
        buffer_[at + prefix.size() + 2] == '\n') {
      end_line_at_ = at;
      flag_ = static_cast<MsrpContinuation>(flag);
      return true;
    }
    scan_ = at + 1;  // e.g. the same id followed by more id characters: part of the body
  }
}

bool MsrpParser::ScanBody(std::vector<MsrpParseResult>& out) {
  bool found = FindEndLine();
  if (!found) {
    // Every byte before scan_ belongs to the body: once they exceed the limit, say so now
    // and stop keeping them.
    if (state_ == State::kBody && scan_ > body_start_ &&
        scan_ - body_start_ > limits_.max_body_bytes) {
      FailAndSkip(out, ChunkTooLarge(), scan_);
      return true;
    }
    if (state_ == State::kSkipToEndLine) pos_ = scan_;
    return false;
  }
  size_t end = end_line_at_ + end_line_prefix_.size() + 3;
  if (state_ == State::kSkipToEndLine) {
    ConsumeMessage(end);
    return true;
  }
  std::string body;
  if (end_line_at_ > body_start_) body = buffer_.substr(body_start_, end_line_at_ - body_start_);
  if (auto error = CheckBody(body)) {
    out.emplace_back(std::move(*error));
  } else {
    message_.body = std::move(body);
    message_.continuation = flag_;
    out.emplace_back(std::move(message_));
  }
  ConsumeMessage(end);
  return true;
}

}  // namespace dims
