// SDP for MSRP sessions (RFC 4566, RFC 4975 section 8, RFC 6135 a=setup): the offer of a push
// session and the parsing of the client's answer. Pure text work, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "msrp_message.h"

namespace dims::relay {

// What a push offer says about the relay's end.
struct PushOffer {
  std::string advertised_host;  // c=IN IP4 <host>
  uint16_t port = 0;            // m=message <port>
  std::string local_uri;        // a=path
  std::vector<std::string> accept_types;
  uint64_t session_version = 0;  // o= sess-id and sess-version
};

// v=0, o=, s=-, c=, t=0 0, m=message <port> TCP/MSRP *, a=sendonly, a=accept-types,
// a=path, a=setup:actpass; CRLF line ends.
std::string BuildPushOffer(const PushOffer& offer);

// a=setup of an answer (RFC 4145/6135).
enum class SdpSetup { kAbsent, kActive, kPassive, kActpass, kHoldconn };

struct SdpAnswer {
  std::string connection_host;         // c= (media level over session level)
  uint16_t media_port = 0;             // m=message <port>
  std::string media_proto;             // "TCP/MSRP"
  std::vector<std::string> path_uris;  // a=path as written, first hop first
  MsrpPath path;
  std::vector<std::string> accept_types;
  uint64_t max_size = 0;  // a=max-size, 0 when absent
  SdpSetup setup = SdpSetup::kAbsent;
};

enum class SdpAnswerError {
  kInvalidSdp,     // unparseable, no usable a=path
  kMediaRejected,  // no m=message TCP/MSRP, port 0, or a=setup:holdconn
};

struct SdpAnswerResult {
  std::optional<SdpAnswer> answer;
  SdpAnswerError error = SdpAnswerError::kInvalidSdp;
  std::string detail;  // what was wrong, for the status message
};

// Parses an answer; tolerates LF-only line ends, unknown lines and attributes. Attributes
// are read from the session level and from the first m=message line's media level.
SdpAnswerResult ParseSdpAnswer(std::string_view sdp);

// Whether the relay opens the TCP connection: the answer says passive, or has no a=setup
// (RFC 4975 default: the offerer connects), or (against RFC 4145) actpass.
bool RelayConnects(SdpSetup setup);

// Whether the client takes the push encapsulation: multipart/mixed, multipart/* or *.
bool AcceptsPushEncapsulation(const std::vector<std::string>& accept_types);

}  // namespace dims::relay
