// The IM service settings document a client PUBLISHes (seed 002 5.2.4; the format DIMS
// defines is in docs/im-settings.md with its schema docs/im-settings.xsd). Pure parsing and
// validation, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dims::settings {

inline constexpr const char* kPocSettingsNs = "urn:oma:params:xml:ns:poc:poc-settings";
inline constexpr const char* kImSettingsNs = "urn:oma:xml:im:service-settings";
inline constexpr const char* kDimsExtensionNs = "urn:dims:params:xml:ns:im-settings-ext";

// The six settings of seed 002 5.2.4 item 8. A document that leaves one out sets it false.
struct ImSettingsValues {
  bool incoming_session_barring = false;
  bool incoming_pager_large_barring = false;
  bool invisibility = false;
  bool offline_delivery_active = false;
  bool store_session_conversations = false;
  bool store_pager_large_conversations = false;
  bool operator==(const ImSettingsValues&) const = default;
};

struct DocumentResult {
  std::optional<ImSettingsValues> settings;
  std::string reason;  // "INVALID_XML" or "SCHEMA_VIOLATION" when settings is empty
  std::string error;   // what is wrong, for the SIP reason phrase
};

// Parses by namespace and local name (prefixes are the author's choice); accepts the RFC 4354
// container <poc-settings><entity> or a bare root element in the IM namespace; ignores
// elements it does not know (RFC 4354 extensibility).
DocumentResult ParseSettingsDocument(std::string_view body);

// application/poc-settings+xml (RFC 4354, the registered type) or application/xml, with any
// parameters, in any case.
bool IsSettingsContentType(std::string_view content_type);

}  // namespace dims::settings
