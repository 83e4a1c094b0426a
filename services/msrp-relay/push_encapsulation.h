// The push encapsulation (seed 004 11.3.2.7; docs/msrp.md "Push encapsulation"): one deferred
// message as the body of one MSRP SEND, multipart/mixed with a single part that carries the
// stored request unchanged and the receipt timestamp as a Date header of the part. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dims/v1/common.pb.h"

namespace dims::relay {

// The Content-Type of the part that carries a pager-mode message.
enum class PagerPartType { kMessageSip, kMessageSipfrag };

// "message/sip" or "message/sipfrag"; nothing for another value.
std::optional<PagerPartType> ParsePagerPartType(std::string_view text);

struct PushBody {
  std::string content_type;  // multipart/mixed; boundary="..."
  std::string body;
};

// The SEND body of `message`; nothing (with *error) when the message carries no content.
std::optional<PushBody> EncapsulateForPush(const dims::v1::DeferredMessage& message,
                                           PagerPartType pager_part, std::string* error);

// The outer SEND's MSRP Message-ID (an RFC 4975 ident), derived from the stored message id
// alone so that a repeat of the message carries the same one: characters outside the ident
// grammar percent-encoded, at least 4 characters, and above 32 the first 15 kept with "." and
// a 64-bit hash of the whole id in hex.
std::string PushMessageId(std::string_view message_id);

// RFC 1123 date in GMT ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string Rfc1123Date(const google::protobuf::Timestamp& time);

}  // namespace dims::relay
