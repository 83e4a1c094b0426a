#include "msrp_sdp.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace dims::relay {
namespace {

std::vector<std::string_view> SplitWords(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

template <typename T>
bool ParseNumber(std::string_view text, T* value) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && end == text.data() + text.size();
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::ranges::equal(
      a, b, [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

// "IN IP4 <address>" (or IP6): the address, empty when malformed.
std::string ConnectionAddress(std::string_view value) {
  auto words = SplitWords(value);
  if (words.size() != 3 || words[0] != "IN" || (words[1] != "IP4" && words[1] != "IP6")) return "";
  std::string_view address = words[2];
  // A multicast TTL suffix (/ttl) has no meaning for TCP; the address alone counts.
  address = address.substr(0, address.find('/'));
  return std::string(address);
}

SdpAnswerResult Invalid(std::string detail) {
  return {std::nullopt, SdpAnswerError::kInvalidSdp, std::move(detail)};
}

SdpAnswerResult Rejected(std::string detail) {
  return {std::nullopt, SdpAnswerError::kMediaRejected, std::move(detail)};
}

}  // namespace

std::string BuildPushOffer(const PushOffer& offer) {
  std::string version = std::to_string(offer.session_version);
  std::string accept;
  for (const auto& type : offer.accept_types) {
    if (!accept.empty()) accept += ' ';
    accept += type;
  }
  std::string sdp;
  sdp.reserve(256 + offer.local_uri.size() + accept.size());
  sdp += "v=0\r\n";
  // RFC 4566: the address type follows the address (a bracketless IPv6 literal has colons).
  std::string host = offer.advertised_host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string address = (host.find(':') != std::string::npos ? "IN IP6 " : "IN IP4 ") + host;
  sdp += "o=dims " + version + " " + version + " " + address + "\r\n";
  sdp += "s=-\r\n";
  sdp += "c=" + address + "\r\n";
  sdp += "t=0 0\r\n";
  sdp += "m=message " + std::to_string(offer.port) + " TCP/MSRP *\r\n";
  sdp += "a=sendonly\r\n";
  sdp += "a=accept-types:" + accept + "\r\n";
  sdp += "a=path:" + offer.local_uri + "\r\n";
  sdp += "a=setup:actpass\r\n";
  return sdp;
}

SdpAnswerResult ParseSdpAnswer(std::string_view sdp) {
  SdpAnswer answer;
  std::string session_connection;
  std::string media_connection;
  std::optional<std::string_view> path_text;
  bool first_line = true;
  bool seen_message_media = false;
  bool in_message_media = false;  // attributes of the first m=message line
  bool media_started = false;     // any m= line seen
  size_t line_start = 0;
  while (line_start < sdp.size()) {
    size_t line_end = sdp.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = sdp.size();
    std::string_view line = sdp.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z') {
      return Invalid("line '" + std::string(line.substr(0, 40)) + "' is not <type>=<value>");
    }
    char type = line[0];
    std::string_view value = line.substr(2);
    if (first_line) {
      if (line != "v=0") return Invalid("the SDP does not start with v=0");
      first_line = false;
      continue;
    }
    if (type == 'm') {
      media_started = true;
      in_message_media = false;
      auto words = SplitWords(value);
      if (words.size() < 3) return Invalid("malformed m= line '" + std::string(value) + "'");
      if (words[0] != "message" || seen_message_media) continue;
      std::string_view port_text = words[1].substr(0, words[1].find('/'));
      uint16_t port = 0;
      if (!ParseNumber(port_text, &port)) {
        return Invalid("malformed m=message port '" + std::string(words[1]) + "'");
      }
      seen_message_media = true;
      in_message_media = true;
      answer.media_port = port;
      answer.media_proto = std::string(words[2]);
      continue;
    }
    if (media_started && !in_message_media) continue;  // another medium's lines
    if (type == 'c') {
      std::string address = ConnectionAddress(value);
      if (address.empty()) return Invalid("malformed c= line '" + std::string(value) + "'");
      (media_started ? media_connection : session_connection) = address;
      continue;
    }
    if (type != 'a') continue;
    size_t colon = value.find(':');
    std::string_view name = value.substr(0, colon);
    std::string_view attribute =
        colon == std::string_view::npos ? std::string_view() : value.substr(colon + 1);
    if (name == "path") {
      path_text = attribute;
    } else if (name == "accept-types") {
      answer.accept_types.clear();
      for (auto word : SplitWords(attribute)) answer.accept_types.emplace_back(word);
    } else if (name == "max-size") {
      if (!ParseNumber(attribute, &answer.max_size)) {
        return Invalid("malformed a=max-size '" + std::string(attribute) + "'");
      }
    } else if (name == "setup") {
      if (EqualsIgnoreCase(attribute, "active")) {
        answer.setup = SdpSetup::kActive;
      } else if (EqualsIgnoreCase(attribute, "passive")) {
        answer.setup = SdpSetup::kPassive;
      } else if (EqualsIgnoreCase(attribute, "actpass")) {
        answer.setup = SdpSetup::kActpass;
      } else if (EqualsIgnoreCase(attribute, "holdconn")) {
        answer.setup = SdpSetup::kHoldconn;
      } else {
        return Invalid("unknown a=setup value '" + std::string(attribute) + "'");
      }
    }
  }
  if (first_line) return Invalid("the SDP is empty");
  if (!seen_message_media) return Rejected("the answer has no m=message line");
  if (answer.media_port == 0) return Rejected("the answer rejects the message medium (port 0)");
  if (!EqualsIgnoreCase(answer.media_proto, "TCP/MSRP")) {
    return Rejected("the answer's m=message uses " + answer.media_proto +
                    "; this relay speaks TCP/MSRP only");
  }
  if (answer.setup == SdpSetup::kHoldconn) {
    return Rejected("the answer holds the connection (a=setup:holdconn)");
  }
  if (!path_text) return Invalid("the answer has no a=path");
  auto path = ParseMsrpPath(*path_text);
  if (!path) return Invalid("malformed a=path '" + std::string(*path_text) + "'");
  for (const auto& uri : *path) {
    if (!uri.IsTcp() || uri.secure) {
      return Rejected("a=path URI '" + uri.ToString() + "' is not msrp over tcp");
    }
  }
  for (auto word : SplitWords(*path_text)) answer.path_uris.emplace_back(word);
  answer.path = std::move(*path);
  answer.connection_host = media_connection.empty() ? session_connection : media_connection;
  if (answer.connection_host.empty() && answer.path.front().port == 0) {
    return Invalid("the answer has neither c= nor a port in its a=path");
  }
  return {std::move(answer), SdpAnswerError::kInvalidSdp, ""};
}

bool RelayConnects(SdpSetup setup) { return setup != SdpSetup::kActive; }

bool AcceptsPushEncapsulation(const std::vector<std::string>& accept_types) {
  // The codec's rule ("*", "type/*", "type/subtype"), but an empty list accepts nothing here.
  return !accept_types.empty() && MsrpMediaTypeAccepted("multipart/mixed", accept_types);
}

}  // namespace dims::relay
