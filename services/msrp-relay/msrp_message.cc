#include "msrp_message.h"

#include <random>

namespace dims {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlphanum(char c) { return IsAlpha(c) || IsDigit(c); }

char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLower(a[i]) != ToLower(b[i])) return false;
  }
  return true;
}

bool IsTokenChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u <= 0x27) || u == 0x2A || u == 0x2B || u == 0x2D ||
         u == 0x2E || (u >= 0x30 && u <= 0x39) || (u >= 0x41 && u <= 0x5A) ||
         (u >= 0x5E && u <= 0x7E);
}

// unreserved of RFC 3986 plus the "+" "=" "/" that RFC 4975 allows in a session-id.
bool IsSessionIdChar(char c) {
  return IsAlphanum(c) || c == '-' || c == '_' || c == '.' || c == '!' || c == '~' || c == '*' ||
         c == '\'' || c == '(' || c == ')' || c == '+' || c == '=' || c == '/';
}

bool IsUserinfoChar(char c) {
  return IsAlphanum(c) || c == '-' || c == '_' || c == '.' || c == '!' || c == '~' || c == '*' ||
         c == '\'' || c == '(' || c == ')' || c == '%' || c == '&' || c == '=' || c == '+' ||
         c == '$' || c == ',' || c == ':';
}

// All digits, at most max_digits of them (so that the value cannot overflow).
std::optional<uint64_t> ParseDigits(std::string_view text, size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (!IsDigit(c)) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

// A count or "*".
bool ParseRangeValue(std::string_view text, std::optional<uint64_t>& out) {
  if (text == "*") {
    out.reset();
    return true;
  }
  auto value = ParseDigits(text, 18);  // < 10^18: far beyond any message, never overflows
  if (!value) return false;
  out = *value;
  return true;
}

bool IsHostname(std::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    if (!IsAlphanum(c) && c != '-' && c != '.') return false;
  }
  return true;
}

bool IsIpv6Reference(std::string_view host) {
  if (host.size() < 4 || host.front() != '[' || host.back() != ']') return false;
  for (char c : host.substr(1, host.size() - 2)) {
    bool hex = IsDigit(c) || (ToLower(c) >= 'a' && ToLower(c) <= 'f');
    if (!hex && c != ':' && c != '.') return false;
  }
  return true;
}

std::string RandomAlphanum(size_t length) {
  static constexpr std::string_view kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  // Ids must not be predictable from earlier ones, so every one comes from the system source.
  std::random_device source;
  std::string id;
  id.reserve(length);
  while (id.size() < length) {
    uint32_t bits = source();
    // 5 draws of 6 bits each; values 62 and 63 are dropped to keep the draw uniform.
    for (int i = 0; i < 5 && id.size() < length; ++i, bits >>= 6) {
      uint32_t v = bits & 63u;
      if (v < kAlphabet.size()) id.push_back(kAlphabet[v]);
    }
  }
  return id;
}

}  // namespace

std::string ByteRange::ToString() const {
  std::string out = std::to_string(start);
  out += '-';
  out += end ? std::to_string(*end) : "*";
  out += '/';
  out += total ? std::to_string(*total) : "*";
  return out;
}

std::optional<ByteRange> ParseByteRange(std::string_view text) {
  size_t dash = text.find('-');
  size_t slash = text.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return std::nullopt;
  }
  ByteRange range;
  auto start = ParseDigits(text.substr(0, dash), 18);
  if (!start || *start == 0) return std::nullopt;
  range.start = *start;
  if (!ParseRangeValue(text.substr(dash + 1, slash - dash - 1), range.end) ||
      !ParseRangeValue(text.substr(slash + 1), range.total)) {
    return std::nullopt;
  }
  // "1-0/0" is the range of an empty body: end may be start - 1, never less.
  if (range.end && *range.end + 1 < range.start) return std::nullopt;
  if (range.total) {
    if (range.end && *range.end > *range.total) return std::nullopt;
    if (range.start > *range.total + 1) return std::nullopt;
  }
  return range;
}

std::string MsrpUri::ToString() const {
  std::string out = secure ? "msrps://" : "msrp://";
  if (!userinfo.empty()) {
    out += userinfo;
    out += '@';
  }
  out += host;
  if (port != 0) {
    out += ':';
    out += std::to_string(port);
  }
  if (!session_id.empty()) {
    out += '/';
    out += session_id;
  }
  out += ';';
  out += transport;
  out += params;
  return out;
}

std::optional<MsrpUri> ParseMsrpUri(std::string_view text) {
  MsrpUri uri;
  size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  std::string_view scheme = text.substr(0, scheme_end);
  if (EqualsIgnoreCase(scheme, "msrp")) {
    uri.secure = false;
  } else if (EqualsIgnoreCase(scheme, "msrps")) {
    uri.secure = true;
  } else {
    return std::nullopt;
  }
  std::string_view rest = text.substr(scheme_end + 3);

  size_t authority_end = rest.find_first_of("/;");
  if (authority_end == std::string_view::npos) return std::nullopt;  // no transport
  std::string_view authority = rest.substr(0, authority_end);
  rest.remove_prefix(authority_end);

  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    uri.userinfo = authority.substr(0, at);
    if (uri.userinfo.empty()) return std::nullopt;
    for (char c : uri.userinfo) {
      if (!IsUserinfoChar(c)) return std::nullopt;
    }
    authority.remove_prefix(at + 1);
  }
  // The port follows the last ':' outside an IPv6 reference.
  std::string_view host = authority;
  size_t bracket = authority.rfind(']');
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    host = authority.substr(0, colon);
    auto port = ParseDigits(authority.substr(colon + 1), 5);
    if (!port || *port == 0 || *port > 65535) return std::nullopt;
    uri.port = static_cast<uint16_t>(*port);
  }
  if (!IsHostname(host) && !IsIpv6Reference(host)) return std::nullopt;
  uri.host = host;

  if (rest.front() == '/') {
    size_t id_end = rest.find(';');
    if (id_end == std::string_view::npos) return std::nullopt;
    std::string_view session_id = rest.substr(1, id_end - 1);
    if (session_id.empty()) return std::nullopt;
    for (char c : session_id) {
      if (!IsSessionIdChar(c)) return std::nullopt;
    }
    uri.session_id = session_id;
    rest.remove_prefix(id_end);
  }
  rest.remove_prefix(1);  // the ';' before the transport

  size_t transport_end = rest.find(';');
  std::string_view transport = rest.substr(0, transport_end);
  if (transport.empty()) return std::nullopt;
  for (char c : transport) {
    if (!IsAlphanum(c)) return std::nullopt;
    uri.transport.push_back(ToLower(c));
  }
  if (transport_end == std::string_view::npos) return uri;

  // URI-parameter = token ["=" token], each after a ';'.
  std::string_view params = rest.substr(transport_end);
  std::string_view remaining = params;
  while (!remaining.empty()) {
    remaining.remove_prefix(1);  // ';'
    size_t next = remaining.find(';');
    std::string_view param = remaining.substr(0, next);
    size_t eq = param.find('=');
    if (!IsMsrpToken(param.substr(0, eq))) return std::nullopt;
    if (eq != std::string_view::npos && !IsMsrpToken(param.substr(eq + 1))) return std::nullopt;
    if (next == std::string_view::npos) break;
    remaining.remove_prefix(next);
  }
  uri.params = params;
  return uri;
}

std::optional<MsrpPath> ParseMsrpPath(std::string_view text) {
  MsrpPath path;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == '\t') {
      ++i;
      continue;
    }
    size_t end = text.find_first_of(" \t", i);
    if (end == std::string_view::npos) end = text.size();
    auto uri = ParseMsrpUri(text.substr(i, end - i));
    if (!uri) return std::nullopt;
    path.push_back(std::move(*uri));
    i = end;
  }
  if (path.empty()) return std::nullopt;
  return path;
}

std::string MsrpPathToString(const MsrpPath& path) {
  std::string out;
  for (const MsrpUri& uri : path) {
    if (!out.empty()) out += ' ';
    out += uri.ToString();
  }
  return out;
}

std::string MsrpStatus::ToString() const {
  auto three_digits = [](uint16_t v) {
    v %= 1000;
    return std::string{static_cast<char>('0' + v / 100), static_cast<char>('0' + v / 10 % 10),
                       static_cast<char>('0' + v % 10)};
  };
  std::string out = three_digits(status_namespace) + ' ' + three_digits(code);
  if (!reason.empty()) {
    out += ' ';
    out += reason;
  }
  return out;
}

std::optional<MsrpStatus> ParseMsrpStatus(std::string_view text) {
  if (text.size() < 7 || text[3] != ' ') return std::nullopt;
  auto ns = ParseDigits(text.substr(0, 3), 3);
  auto code = ParseDigits(text.substr(4, 3), 3);
  if (!ns || !code) return std::nullopt;
  MsrpStatus status{.status_namespace = static_cast<uint16_t>(*ns),
                    .code = static_cast<uint16_t>(*code)};
  if (text.size() > 7) {
    if (text[7] != ' ') return std::nullopt;
    std::string_view reason = text.substr(8);
    if (!IsMsrpUtf8Text(reason)) return std::nullopt;
    status.reason = reason;
  }
  return status;
}

std::string_view MsrpMessage::ToSessionId() const {
  if (to_path.empty()) return {};
  return to_path.front().session_id;
}

bool ExpectsResponse(const MsrpMessage& request) {
  return request.is_request && request.method != "REPORT" &&
         request.failure_report != MsrpFailureReport::kNo;
}

MsrpMessage MakeMsrpResponse(const MsrpMessage& request, uint16_t status_code,
                             std::string_view comment) {
  MsrpMessage response;
  response.is_request = false;
  response.transaction_id = request.transaction_id;
  response.status_code = status_code;
  response.comment = comment;
  if (!request.from_path.empty()) response.to_path.push_back(request.from_path.front());
  if (!request.to_path.empty()) response.from_path.push_back(request.to_path.front());
  return response;
}

std::string_view MsrpReasonPhrase(uint16_t status_code) {
  switch (status_code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 408:
      return "Request Timeout";
    case 413:
      return "Stop Sending Message";
    case 415:
      return "Unsupported Media Type";
    case 423:
      return "Parameter Out Of Bounds";
    case 481:
      return "Session Does Not Exist";
    case 501:
      return "Unknown Method";
    case 506:
      return "Session Already Bound";
    default:
      return "";
  }
}

bool IsMsrpIdent(std::string_view text) {
  if (text.size() < 4 || text.size() > 32 || !IsAlphanum(text.front())) return false;
  for (char c : text) {
    if (!IsAlphanum(c) && c != '.' && c != '-' && c != '+' && c != '%' && c != '=') return false;
  }
  return true;
}

bool IsMsrpToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

bool IsMsrpUtf8Text(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    auto u = static_cast<unsigned char>(text[i]);
    size_t continuation;
    if (u == '\t' || (u >= 0x20 && u <= 0x7E)) {
      continuation = 0;
    } else if (u >= 0xC0 && u <= 0xDF) {
      continuation = 1;
    } else if (u >= 0xE0 && u <= 0xEF) {
      continuation = 2;
    } else if (u >= 0xF0 && u <= 0xF7) {
      continuation = 3;
    } else if (u >= 0xF8 && u <= 0xFB) {
      continuation = 4;
    } else if (u >= 0xFC && u <= 0xFD) {
      continuation = 5;
    } else {
      return false;  // controls, DEL, stray continuation bytes, 0xFE/0xFF
    }
    ++i;
    for (size_t k = 0; k < continuation; ++k, ++i) {
      if (i >= text.size()) return false;
      auto cu = static_cast<unsigned char>(text[i]);
      if (cu < 0x80 || cu > 0xBF) return false;
    }
  }
  return true;
}

bool IsMsrpMediaType(std::string_view text) {
  size_t semicolon = text.find(';');
  std::string_view type_subtype = text.substr(0, semicolon);
  size_t slash = type_subtype.find('/');
  if (slash == std::string_view::npos) return false;
  if (!IsMsrpToken(type_subtype.substr(0, slash)) || !IsMsrpToken(type_subtype.substr(slash + 1))) {
    return false;
  }
  return semicolon == std::string_view::npos || IsMsrpUtf8Text(text.substr(semicolon));
}

bool MsrpMediaTypeAccepted(std::string_view content_type,
                           const std::vector<std::string>& accept_types) {
  if (accept_types.empty()) return true;
  std::string_view type_subtype = content_type.substr(0, content_type.find(';'));
  while (!type_subtype.empty() && (type_subtype.back() == ' ' || type_subtype.back() == '\t')) {
    type_subtype.remove_suffix(1);
  }
  size_t slash = type_subtype.find('/');
  std::string_view type = type_subtype.substr(0, slash);
  for (const std::string& accepted : accept_types) {
    if (accepted == "*") return true;
    std::string_view a = accepted;
    if (a.size() > 2 && a.substr(a.size() - 2) == "/*") {
      if (EqualsIgnoreCase(a.substr(0, a.size() - 2), type)) return true;
    } else if (EqualsIgnoreCase(a, type_subtype)) {
      return true;
    }
  }
  return false;
}

std::string NewMsrpTransactionId() { return RandomAlphanum(16); }
std::string NewMsrpMessageId() { return RandomAlphanum(24); }

}  // namespace dims
