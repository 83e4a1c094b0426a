// A final SIP answer as the edge's handlers decide it, before Sofia-SIP renders it. Every
// answer also carries Server and Date (added by the stack).
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace dims::edge {

struct SipAnswer {
  int status = 500;
  std::string phrase;
  std::optional<std::string> etag;          // SIP-ETag (PUBLISH 200)
  std::optional<int> expires;               // Expires
  std::optional<int> min_expires;           // Min-Expires (423)
  std::optional<int> retry_after;           // Retry-After (503)
  std::optional<std::string> accept;        // Accept (415)
  std::optional<std::string> allow_events;  // Allow-Events (489)
  std::optional<std::string> contact;       // Contact list (REGISTER 200)
  std::optional<std::string> warning;       // Warning (RFC 3261 20.43)
};

// 503 with Retry-After: a service is late or away, or the edge is stopping; the client tries
// again (RFC 3261 21.5.4). The phrase may say what was unavailable.
inline SipAnswer ServiceUnavailable(std::string phrase = "Service Unavailable") {
  SipAnswer busy{503, std::move(phrase)};
  busy.retry_after = 5;
  return busy;
}

}  // namespace dims::edge
