#include "aor.h"

#include <cctype>

namespace dims {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsUnreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
         c == '!' || c == '~' || c == '*' || c == '\'' || c == '(' || c == ')';
}

// RFC 3261 user part: unreserved, escaped, and user-unreserved "&=+$,;?/".
bool IsUserChar(char c) {
  return IsUnreserved(c) || c == '&' || c == '=' || c == '+' || c == '$' || c == ',' || c == ';' ||
         c == '?' || c == '/';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::optional<std::string> NormalizeUser(std::string_view user) {
  std::string out;
  for (size_t i = 0; i < user.size(); ++i) {
    char c = user[i];
    if (c == '%') {
      if (i + 2 >= user.size()) return std::nullopt;
      int hi = HexValue(user[i + 1]);
      int lo = HexValue(user[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char decoded = static_cast<char>(hi * 16 + lo);
      if (IsUnreserved(decoded)) {
        out += decoded;
      } else {
        out += '%';
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(user[i + 1])));
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(user[i + 2])));
      }
      i += 2;
    } else if (IsUserChar(c)) {
      out += c;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

// Extracts the URI from name-addr ("Display" <uri>;params) or addr-spec forms.
std::optional<std::string_view> ExtractUri(std::string_view in, std::string& error) {
  while (!in.empty() && std::isspace(static_cast<unsigned char>(in.front()))) in.remove_prefix(1);
  while (!in.empty() && std::isspace(static_cast<unsigned char>(in.back()))) in.remove_suffix(1);
  size_t search_from = 0;
  if (!in.empty() && in.front() == '"') {  // quoted display name may contain '<'
    size_t i = 1;
    while (i < in.size() && in[i] != '"') i += (in[i] == '\\') ? 2 : 1;
    if (i >= in.size()) {
      error = "unterminated quoted display name";
      return std::nullopt;
    }
    search_from = i + 1;
  }
  auto open = in.find('<', search_from);
  if (open != std::string_view::npos) {
    auto close = in.find('>', open);
    if (close == std::string_view::npos) {
      error = "missing '>'";
      return std::nullopt;
    }
    return in.substr(open + 1, close - open - 1);
  }
  if (search_from != 0) {
    error = "display name without <uri>";
    return std::nullopt;
  }
  return in;
}

}  // namespace

std::string Aor::ToString() const {
  if (scheme == "tel") return "tel:" + user;
  if (user.empty()) return scheme + ":" + host;
  return scheme + ":" + user + "@" + host;
}

std::string Aor::Domain() const {
  if (host.empty()) return "";
  if (host.front() == '[') return host.substr(0, host.find(']') + 1);
  return host.substr(0, host.find(':'));
}

AorParseResult ParseAor(std::string_view input) {
  AorParseResult result;
  auto uri = ExtractUri(input, result.error);
  if (!uri) return result;

  auto colon = uri->find(':');
  if (colon == std::string_view::npos) {
    result.error = "no URI scheme";
    return result;
  }
  std::string scheme = Lower(uri->substr(0, colon));
  std::string_view rest = uri->substr(colon + 1);

  if (scheme == "tel") {
    std::string_view number = rest.substr(0, rest.find(';'));
    std::string digits;
    for (char c : number) {
      if (c == '-' || c == '.' || c == '(' || c == ')') continue;
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == '+' || c == '*' || c == '#')) {
        result.error = "invalid character in tel number";
        return result;
      }
      digits += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (digits.empty() || digits == "+") {
      result.error = "empty tel number";
      return result;
    }
    result.aor = Aor{"tel", digits, ""};
    return result;
  }

  if (scheme != "sip" && scheme != "sips") {
    result.error = "unsupported URI scheme '" + scheme + "'";
    return result;
  }
  int default_port = scheme == "sips" ? 5061 : 5060;

  // Strip headers (?...) and parameters (;...) that follow the host part.
  auto at = rest.rfind('@');
  std::string_view user_part;
  std::string_view host_part = rest;
  if (at != std::string_view::npos) {
    user_part = rest.substr(0, at);
    host_part = rest.substr(at + 1);
    // user-info may carry ":password"; it does not identify the user.
    user_part = user_part.substr(0, user_part.find(':'));
    if (user_part.empty()) {
      result.error = "empty user part";
      return result;
    }
  }
  host_part = host_part.substr(0, host_part.find_first_of(";?"));

  Aor aor;
  aor.scheme = "sip";
  if (!user_part.empty()) {
    auto user = NormalizeUser(user_part);
    if (!user) {
      result.error = "invalid character or escape in user part";
      return result;
    }
    aor.user = *user;
  }

  std::string_view host = host_part;
  std::string_view port_text;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) {
      result.error = "unterminated IPv6 reference";
      return result;
    }
    port_text = host.substr(close + 1);
    host = host.substr(0, close + 1);
    if (!port_text.empty() && port_text.front() != ':') {
      result.error = "garbage after IPv6 reference";
      return result;
    }
    if (!port_text.empty()) port_text.remove_prefix(1);
  } else {
    auto pc = host.find(':');
    if (pc != std::string_view::npos) {
      port_text = host.substr(pc + 1);
      host = host.substr(0, pc);
    }
    for (char c : host) {
      if (!IsHostChar(c)) {
        result.error = "invalid character in host";
        return result;
      }
    }
  }
  if (host.empty()) {
    result.error = "empty host";
    return result;
  }
  aor.host = Lower(host);
  if (!port_text.empty()) {
    int port = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || port > 65535) {
        result.error = "invalid port";
        return result;
      }
      port = port * 10 + (c - '0');
    }
    if (port <= 0 || port > 65535) {
      result.error = "invalid port";
      return result;
    }
    if (port != default_port) aor.host += ":" + std::to_string(port);
  }
  result.aor = aor;
  return result;
}

std::optional<std::string> NormalizeAor(std::string_view input) {
  auto r = ParseAor(input);
  if (!r.aor) return std::nullopt;
  return r.aor->ToString();
}

}  // namespace dims
