#include "store_policy.h"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace dims::storage {
namespace {

uint32_t Fnv1a(std::string_view data, uint32_t hash = 2166136261u) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

uint32_t TokenCheck(int64_t number, std::string_view aor, int kind_filter) {
  uint32_t h = Fnv1a(aor);
  h = Fnv1a(std::to_string(kind_filter), h ^ 0x9e37u);
  return Fnv1a(std::to_string(number), h);
}

}  // namespace

std::optional<std::string> ExceededLimit(const StoreLimits& limits, const UserUsage& usage,
                                         int64_t size) {
  if (size > limits.max_message_bytes) return "MESSAGE_BYTES";
  if (usage.messages + 1 > limits.max_user_messages) return "USER_MESSAGES";
  if (usage.bytes + size > limits.max_user_bytes) return "USER_BYTES";
  return std::nullopt;
}

std::string DescribeLimit(const StoreLimits& limits, const std::string& limit) {
  if (limit == "MESSAGE_BYTES") {
    return "MESSAGE_BYTES: the message is larger than " + std::to_string(limits.max_message_bytes) +
           " bytes";
  }
  if (limit == "USER_MESSAGES") {
    return "USER_MESSAGES: the recipient already has " + std::to_string(limits.max_user_messages) +
           " deferred messages";
  }
  return "USER_BYTES: the recipient's deferred messages would exceed " +
         std::to_string(limits.max_user_bytes) + " bytes";
}

std::string FormatMessageId(int64_t number, std::string_view store_host) {
  return std::to_string(number) + "@" + std::string(store_host);
}

std::optional<std::string> NormalizeMessageId(std::string_view text) {
  if (text.size() > 4 && (text.substr(0, 4) == "sip:" || text.substr(0, 4) == "SIP:")) {
    text.remove_prefix(4);
  }
  auto at = text.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 >= text.size()) return std::nullopt;
  for (size_t i = 0; i < at; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
  }
  for (size_t i = at + 1; i < text.size(); ++i) {
    char c = text[i];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) {
      return std::nullopt;
    }
  }
  return std::string(text);
}

std::optional<std::chrono::seconds> EffectiveRetention(
    std::optional<std::chrono::seconds> requested, std::chrono::seconds default_retention,
    std::chrono::seconds max_retention) {
  std::chrono::seconds r = requested.value_or(default_retention);
  if (r.count() <= 0) return std::nullopt;
  return std::min(r, max_retention);
}

std::string EncodePageToken(int64_t after_number, std::string_view aor, int kind_filter) {
  char check[9];
  std::snprintf(check, sizeof check, "%08x", TokenCheck(after_number, aor, kind_filter));
  return std::to_string(after_number) + "." + check;
}

std::optional<int64_t> DecodePageToken(std::string_view token, std::string_view aor,
                                       int kind_filter) {
  auto dot = token.find('.');
  if (dot == std::string_view::npos || token.size() - dot - 1 != 8) return std::nullopt;
  int64_t number = 0;
  auto [p, ec] = std::from_chars(token.data(), token.data() + dot, number);
  if (ec != std::errc() || p != token.data() + dot || number < 0) return std::nullopt;
  if (EncodePageToken(number, aor, kind_filter) != token) return std::nullopt;
  return number;
}

int64_t PagerBodySize(std::string_view sip_request) {
  // The first blank line ends the headers, whether its line ends are CRLF or bare LF (which
  // RFC 3261 7.5 asks servers to tolerate); a body may contain either.
  auto crlf = sip_request.find("\r\n\r\n");
  auto lf = sip_request.find("\n\n");
  if (crlf != std::string_view::npos && (lf == std::string_view::npos || crlf + 1 < lf)) {
    return static_cast<int64_t>(sip_request.size() - crlf - 4);
  }
  if (lf != std::string_view::npos) return static_cast<int64_t>(sip_request.size() - lf - 2);
  return static_cast<int64_t>(sip_request.size());
}

bool IsStorableText(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == 0) return false;
    int extra = c < 0x80           ? 0
                : (c >> 5) == 0x6  ? 1
                : (c >> 4) == 0xe  ? 2
                : (c >> 3) == 0x1e ? 3
                                   : -1;
    if (extra < 0) return false;
    uint32_t cp = extra == 0 ? c : c & (0x3f >> extra);
    for (int k = 1; k <= extra; ++k) {
      if (i + static_cast<size_t>(k) >= text.size()) return false;
      auto cc = static_cast<unsigned char>(text[i + static_cast<size_t>(k)]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += static_cast<size_t>(extra) + 1;
  }
  return true;
}

}  // namespace dims::storage
