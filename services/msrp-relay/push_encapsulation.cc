#include "push_encapsulation.h"

#include <strings.h>

#include <ctime>

#include "msrp_message.h"
#include "msrp_serializer.h"

namespace dims::relay {
namespace {

// 64-bit FNV-1a: stable across builds and hosts, for derived identifiers.
uint64_t StableHash(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string Hex(uint64_t value, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, value >>= 4)
    out[static_cast<size_t>(i)] = kDigits[value & 15];
  return out;
}

bool IsAlphanum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// A boundary (RFC 2046) that occurs in none of the texts: derived from their hash, so the
// same message is framed the same way every time, and changed until it is absent.
std::string BoundaryFor(std::string_view a, std::string_view b) {
  uint64_t seed = StableHash(a) ^ (StableHash(b) * 31);
  for (uint64_t attempt = 0;; ++attempt) {
    std::string boundary = "dims-push-" + Hex(seed + attempt * 0x9e3779b97f4a7c15ULL, 16);
    if (a.find(boundary) == std::string_view::npos && b.find(boundary) == std::string_view::npos) {
      return boundary;
    }
  }
}

std::string_view PagerPartName(PagerPartType type) {
  return type == PagerPartType::kMessageSipfrag ? "message/sipfrag" : "message/sip";
}

bool NameIs(const std::string& name, const char* expected) {
  return strcasecmp(name.c_str(), expected) == 0;
}

// The large message's SEND as received, rebuilt from its stored header fields and content:
// a transaction id derived from the Message-ID (so a repeat is byte-identical), the stored
// fields in order with Message-ID set to the stored one, Byte-Range of the whole content
// before Content-Type, the content and the end-line.
std::string RebuildLargeSend(const dims::v1::LargeMessageContent& large,
                             std::string_view fallback_content_type) {
  const std::string& content = large.content();
  std::string transaction_id;
  for (uint64_t salt = 0;; ++salt) {
    transaction_id = "t" + Hex(StableHash(large.msrp_message_id()) + salt, 16);
    if (!BodyContainsEndLine(content, transaction_id)) break;
  }
  std::string total = std::to_string(content.size());
  std::string byte_range = "Byte-Range: 1-" + total + "/" + total + "\r\n";
  std::string send = "MSRP " + transaction_id + " SEND\r\n";
  bool has_message_id = false;
  bool has_content_type = false;
  for (const auto& header : large.msrp_headers()) {
    if (NameIs(header.name(), "byte-range")) continue;
    if (NameIs(header.name(), "message-id")) {
      send += header.name() + ": " + large.msrp_message_id() + "\r\n";
      has_message_id = true;
      continue;
    }
    if (NameIs(header.name(), "content-type")) {
      if (!has_message_id) send += "Message-ID: " + large.msrp_message_id() + "\r\n";
      has_message_id = true;
      send += byte_range;
      has_content_type = true;
    }
    send += header.name() + ": " + header.value() + "\r\n";
  }
  if (!has_content_type) {
    if (!has_message_id) send += "Message-ID: " + large.msrp_message_id() + "\r\n";
    send += byte_range;
    send += "Content-Type: " +
            std::string(fallback_content_type.empty() ? "application/octet-stream"
                                                      : fallback_content_type) +
            "\r\n";
  }
  send += "\r\n";
  send += content;
  send += "\r\n-------" + transaction_id + "$\r\n";
  return send;
}

}  // namespace

std::optional<PagerPartType> ParsePagerPartType(std::string_view text) {
  if (text == "message/sip") return PagerPartType::kMessageSip;
  if (text == "message/sipfrag") return PagerPartType::kMessageSipfrag;
  return std::nullopt;
}

std::string Rfc1123Date(const google::protobuf::Timestamp& time) {
  std::time_t seconds = static_cast<std::time_t>(time.seconds());
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char text[64];
  size_t n = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &parts);
  return std::string(text, n);
}

std::string PushMessageId(std::string_view message_id) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string id;
  id.reserve(message_id.size() + 8);
  for (unsigned char c : message_id) {
    if (IsAlphanum(static_cast<char>(c)) || c == '.' || c == '-' || c == '+' || c == '=') {
      id.push_back(static_cast<char>(c));
    } else {
      id += '%';
      id += kDigits[c >> 4];
      id += kDigits[c & 15];
    }
  }
  // An ident starts with an ALPHANUM.
  if (id.empty() || !IsAlphanum(id.front())) id.insert(0, "m");
  if (id.size() > 32) id = id.substr(0, 15) + "." + Hex(StableHash(message_id), 16);
  while (id.size() < 4) id.push_back('=');
  return id;
}

std::optional<PushBody> EncapsulateForPush(const dims::v1::DeferredMessage& message,
                                           PagerPartType pager_part, std::string* error) {
  std::string part_type;
  std::string date;
  std::string payload;
  const std::string* content = nullptr;
  switch (message.content_case()) {
    case dims::v1::DeferredMessage::kSipRequest:
      part_type = PagerPartName(pager_part);
      date = Rfc1123Date(message.received_at());
      content = &message.sip_request();
      break;
    case dims::v1::DeferredMessage::kLarge:
      part_type = "message/msrp";
      date = Rfc1123Date(message.large().completed_at());
      payload = RebuildLargeSend(message.large(), message.headers().content_type());
      content = &payload;
      break;
    default:
      *error = "message " + message.message_id() + " carries no content (MESSAGE_VIEW_FULL needed)";
      return std::nullopt;
  }
  std::string boundary = BoundaryFor(*content, message.message_id());
  PushBody push;
  push.content_type = "multipart/mixed; boundary=\"" + boundary + "\"";
  push.body.reserve(content->size() + 2 * boundary.size() + 128);
  push.body += "--" + boundary + "\r\n";
  push.body += "Content-Type: " + part_type + "\r\n";
  push.body += "Date: " + date + "\r\n";
  push.body += "\r\n";
  push.body += *content;
  // RFC 2046: the CRLF before a delimiter belongs to it, so the part is the content exactly.
  push.body += "\r\n--" + boundary + "--\r\n";
  return push;
}

}  // namespace dims::relay
