#include "request_fields.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace dims::edge {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view TrimWhitespace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The next line of `text` from `*pos`, without its line end (CRLF, or a bare LF).
std::string_view NextLine(std::string_view text, size_t* pos) {
  size_t end = text.find('\n', *pos);
  if (end == std::string_view::npos) end = text.size();
  std::string_view line = text.substr(*pos, end - *pos);
  *pos = end < text.size() ? end + 1 : end;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

std::vector<RequestField> ReadRequestFields(std::string_view raw) {
  std::vector<RequestField> fields;
  size_t pos = 0;
  NextLine(raw, &pos);  // the request line
  while (pos < raw.size()) {
    std::string_view line = NextLine(raw, &pos);
    if (line.empty()) break;  // end of the header section
    if ((line.front() == ' ' || line.front() == '\t') && !fields.empty()) {
      // A continuation line (RFC 3261 7.3.1): part of the previous field's value.
      fields.back().value += ' ';
      fields.back().value += TrimWhitespace(line);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(TrimWhitespace(line.substr(0, colon)));
    std::string full_name = FullFieldName(name);
    fields.push_back({std::move(name), std::string(TrimWhitespace(line.substr(colon + 1))),
                      std::move(full_name)});
  }
  return fields;
}

std::string FullFieldName(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 20> kCompact = {{
      {"a", "Accept-Contact"},
      {"b", "Referred-By"},
      {"c", "Content-Type"},
      {"d", "Request-Disposition"},
      {"e", "Content-Encoding"},
      {"f", "From"},
      {"i", "Call-ID"},
      {"j", "Reject-Contact"},
      {"k", "Supported"},
      {"l", "Content-Length"},
      {"m", "Contact"},
      {"n", "Identity-Info"},
      {"o", "Event"},
      {"r", "Refer-To"},
      {"s", "Subject"},
      {"t", "To"},
      {"u", "Allow-Events"},
      {"v", "Via"},
      {"x", "Session-Expires"},
      {"y", "Identity"},
  }};
  static constexpr std::array<std::string_view, 16> kCanonical = {
      "From",          "To",           "Call-ID",        "CSeq",         "Via",
      "Contact",       "Content-Type", "Content-Length", "Subject",      "Date",
      "Priority",      "Max-Forwards", "Route",          "Record-Route", "P-Asserted-Identity",
      "Accept-Contact"};
  if (name.size() == 1) {
    for (const auto& [compact, full] : kCompact) {
      if (EqualsIgnoreCase(name, compact)) return std::string(full);
    }
  }
  for (std::string_view canonical : kCanonical) {
    if (EqualsIgnoreCase(name, canonical)) return std::string(canonical);
  }
  return std::string(name);
}

bool EdgeWritesField(std::string_view full_name) {
  static constexpr std::array<std::string_view, 11> kWritten = {
      "Via",     "Route", "Record-Route", "Max-Forwards", "Contact",       "CSeq",
      "Call-ID", "From",  "To",           "Content-Type", "Content-Length"};
  return std::find(kWritten.begin(), kWritten.end(), full_name) != kWritten.end();
}

std::optional<std::string> FieldValue(const std::vector<RequestField>& fields,
                                      std::string_view full_name) {
  const std::string wanted = FullFieldName(full_name);
  for (const auto& field : fields) {
    if (EqualsIgnoreCase(field.full_name, wanted)) return field.value;
  }
  return std::nullopt;
}

}  // namespace dims::edge
