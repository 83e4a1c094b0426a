// The header fields of a SIP request as it arrived, read from its raw text rather than from
// Sofia's parsed form, so that what DIMS stores and shows is exactly what the sender wrote
// (seed 004 11.3.2.5: the complete request, every header field as received).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dims::edge {

struct RequestField {
  std::string name;       // as written ("f", "From", "subject")
  std::string value;      // as written, folded lines joined by one space, no trailing CRLF
  std::string full_name;  // FullFieldName(name), worked out once
};

// The header fields of `raw` (start line excluded, body excluded), in order. Stops at the
// empty line; a line without a colon is skipped (Sofia has rejected such requests already).
std::vector<RequestField> ReadRequestFields(std::string_view raw);

// The full name of a header field, for comparisons: compact forms expanded (RFC 3261 7.3.3,
// RFC 3841, RFC 4028, ...), and the canonical spelling of the names DIMS acts on. Other names
// come back unchanged.
std::string FullFieldName(std::string_view name);

// Whether the edge writes this header field itself in a request it sends (RFC 3261 8.1.1,
// 16.6): Via, Route, Record-Route, Max-Forwards, Contact, CSeq, Call-ID, From, To,
// Content-Type and Content-Length. `full_name` as FullFieldName gives it.
bool EdgeWritesField(std::string_view full_name);

// The value of the first field whose full name is `full_name` (compact forms and case
// ignored).
std::optional<std::string> FieldValue(const std::vector<RequestField>& fields,
                                      std::string_view full_name);

}  // namespace dims::edge
