#include "msrp_serializer.h"

#include <algorithm>

namespace dims {
namespace {

void AppendHeader(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

std::string_view FailureReportText(MsrpFailureReport value) {
  switch (value) {
    case MsrpFailureReport::kYes:
      return "yes";
    case MsrpFailureReport::kNo:
      return "no";
    case MsrpFailureReport::kPartial:
      return "partial";
  }
  return "yes";
}

}  // namespace

std::string SerializeMsrpMessage(const MsrpMessage& message) {
  std::string out;
  out.reserve(256 + (message.body ? message.body->size() : 0));
  out += "MSRP ";
  out += message.transaction_id;
  out += ' ';
  if (message.is_request) {
    out += message.method;
  } else {
    uint16_t code = message.status_code % 1000;
    out += static_cast<char>('0' + code / 100);
    out += static_cast<char>('0' + code / 10 % 10);
    out += static_cast<char>('0' + code % 10);
    if (!message.comment.empty()) {
      out += ' ';
      out += message.comment;
    }
  }
  out += "\r\n";
  AppendHeader(out, "To-Path", MsrpPathToString(message.to_path));
  AppendHeader(out, "From-Path", MsrpPathToString(message.from_path));
  if (message.message_id) AppendHeader(out, "Message-ID", *message.message_id);
  if (message.success_report) {
    AppendHeader(out, "Success-Report", *message.success_report ? "yes" : "no");
  }
  if (message.failure_report) {
    AppendHeader(out, "Failure-Report", FailureReportText(*message.failure_report));
  }
  if (message.byte_range) AppendHeader(out, "Byte-Range", message.byte_range->ToString());
  if (message.status) AppendHeader(out, "Status", message.status->ToString());
  for (const MsrpHeader& header : message.other_headers) {
    AppendHeader(out, header.name, header.value);
  }
  if (message.content_type) AppendHeader(out, "Content-Type", *message.content_type);
  if (message.body) {
    out += "\r\n";
    out += *message.body;
    out += "\r\n";
  }
  out += "-------";
  out += message.transaction_id;
  out += static_cast<char>(message.continuation);
  out += "\r\n";
  return out;
}

bool BodyContainsEndLine(std::string_view body, std::string_view transaction_id) {
  std::string needle = "-------" + std::string(transaction_id);
  for (size_t at = body.find(needle); at != std::string_view::npos;
       at = body.find(needle, at + 1)) {
    size_t flag_at = at + needle.size();
    // At the very end the flag would come from the serializer's own CRLF: never a flag.
    if (flag_at < body.size() &&
        (body[flag_at] == '$' || body[flag_at] == '+' || body[flag_at] == '#')) {
      return true;
    }
  }
  return false;
}

std::string NewMsrpTransactionIdFor(std::string_view body) {
  while (true) {
    std::string id = NewMsrpTransactionId();
    if (!BodyContainsEndLine(body, id)) return id;
  }
}

MsrpMessage MakeMsrpReport(const MsrpMessage& send, const MsrpStatus& status,
                           const ByteRange& range) {
  MsrpMessage report;
  report.is_request = true;
  report.method = "REPORT";
  report.transaction_id = NewMsrpTransactionId();
  report.to_path = send.from_path;
  if (!send.to_path.empty()) report.from_path.push_back(send.to_path.back());
  report.message_id = send.message_id;
  report.byte_range = range;
  report.status = status;
  return report;
}

std::vector<MsrpChunkPlan> PlanMsrpChunks(uint64_t total_bytes, size_t chunk_bytes) {
  uint64_t step = std::max<uint64_t>(chunk_bytes, 1);
  std::vector<MsrpChunkPlan> plan;
  if (total_bytes == 0) {
    plan.push_back({.offset = 0,
                    .size = 0,
                    .range = {.start = 1, .end = 0, .total = 0},
                    .continuation = MsrpContinuation::kComplete});
    return plan;
  }
  plan.reserve(static_cast<size_t>((total_bytes + step - 1) / step));
  for (uint64_t offset = 0; offset < total_bytes; offset += step) {
    uint64_t size = std::min(step, total_bytes - offset);
    bool last = offset + size == total_bytes;
    plan.push_back({.offset = offset,
                    .size = size,
                    .range = {.start = offset + 1, .end = offset + size, .total = total_bytes},
                    .continuation = last ? MsrpContinuation::kComplete : MsrpContinuation::kMore});
  }
  return plan;
}

std::vector<MsrpMessage> SplitIntoChunks(const MsrpMessage& send, size_t chunk_bytes) {
  if (!send.body) return {send};
  const std::string& body = *send.body;
  std::vector<MsrpMessage> chunks;
  for (const MsrpChunkPlan& part : PlanMsrpChunks(body.size(), chunk_bytes)) {
    MsrpMessage chunk = send;
    chunk.body = body.substr(static_cast<size_t>(part.offset), static_cast<size_t>(part.size));
    chunk.byte_range = part.range;
    chunk.continuation = part.continuation;
    chunk.transaction_id = NewMsrpTransactionIdFor(*chunk.body);
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

}  // namespace dims
