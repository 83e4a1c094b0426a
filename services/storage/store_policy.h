// The rules of the deferred store that involve no I/O: limits, Message-IDs, retention, page
// tokens and input validation. Unit-tested in store_policy_test.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dims::storage {

struct StoreLimits {
  int64_t max_message_bytes = 1 << 20;         // one message
  int64_t max_user_messages = 1000;            // messages waiting for one user
  int64_t max_user_bytes = int64_t{50} << 20;  // bytes waiting for one user
};

// What one user's store holds now.
struct UserUsage {
  int64_t messages = 0;
  int64_t bytes = 0;
};

// Which limit a new message of `size` bytes would exceed, as the token the API reports
// ("MESSAGE_BYTES", "USER_MESSAGES", "USER_BYTES"), or nothing when it fits.
std::optional<std::string> ExceededLimit(const StoreLimits& limits, const UserUsage& usage,
                                         int64_t size);
// A sentence for the gRPC status message, naming the limit and its value.
std::string DescribeLimit(const StoreLimits& limits, const std::string& limit);

// "<number>@<store-host>", the form of seed 004 (13684434990@mailserver32.example.org).
std::string FormatMessageId(int64_t number, std::string_view store_host);
// Accepts the id with or without a "sip:" prefix; nothing when it is not "<digits>@<host>".
std::optional<std::string> NormalizeMessageId(std::string_view text);

// Retention of one message: the requested one when given, else the default, never more than
// the maximum. Nothing when the request is not positive.
std::optional<std::chrono::seconds> EffectiveRetention(
    std::optional<std::chrono::seconds> requested, std::chrono::seconds default_retention,
    std::chrono::seconds max_retention);

// List pages are keyset-based: a token carries the last message number of the page and a
// check of the user and filter it was issued for, so that a token cannot be replayed
// against another user's store.
std::string EncodePageToken(int64_t after_number, std::string_view aor, int kind_filter);
// The message number to continue after, or nothing when the token was not issued for this
// user and filter.
std::optional<int64_t> DecodePageToken(std::string_view token, std::string_view aor,
                                       int kind_filter);

// Size of the body of a stored SIP request: what follows the blank line that ends the headers
// (the whole request when there is none). Quotas and summaries count bodies.
int64_t PagerBodySize(std::string_view sip_request);

// PostgreSQL text columns take valid UTF-8 without NUL; a header value that is not must be
// refused before it reaches a batch (where it would fail everyone's transaction).
bool IsStorableText(std::string_view text);

}  // namespace dims::storage
