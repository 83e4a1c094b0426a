#include "settings_document.h"

#include <expat.h>

#include <cctype>
#include <cstring>
#include <vector>

namespace dims::settings {
namespace {

// Expat with namespace processing reports every element as "<namespace URI> <local name>"
// (the prefix is resolved away), and refuses anything that is not well-formed XML 1.0:
// several roots, undeclared entities, stray '&', duplicate attributes, bytes that are not
// UTF-8, undeclared prefixes.
constexpr char kSeparator = ' ';

struct Name {
  std::string ns;
  std::string local;
  bool Is(const char* want_ns, const char* want_local) const {
    return ns == want_ns && local == want_local;
  }
};

Name Split(const XML_Char* expanded) {
  std::string_view s = expanded;
  auto sep = s.find(kSeparator);
  if (sep == std::string_view::npos) return {"", std::string(s)};
  return {std::string(s.substr(0, sep)), std::string(s.substr(sep + 1))};
}

struct Reader {
  XML_Parser parser = nullptr;
  std::vector<Name> open;  // the elements enclosing the current one
  ImSettingsValues values;
  std::string error;  // set on a schema violation; parsing stops
  bool saw_root = false;
  bool refused_doctype = false;

  // xs:boolean
  void SetFrom(const XML_Char** attributes, const Name& element, bool& field) {
    const XML_Char* active = nullptr;
    for (int i = 0; attributes[i]; i += 2) {
      Name attribute = Split(attributes[i]);
      if (attribute.ns.empty() && attribute.local == "active") active = attributes[i + 1];
    }
    if (!active) {
      Fail("<" + element.local + "> lacks the active attribute");
      return;
    }
    std::string_view v = active;
    if (v == "true" || v == "1") {
      field = true;
    } else if (v == "false" || v == "0") {
      field = false;
    } else {
      Fail("active=\"" + std::string(v) + "\" on <" + element.local + "> is not true or false");
    }
  }

  // Records the first schema violation; parsing goes on, because a document that is not
  // well-formed must be reported as such whatever else is wrong with it.
  void Fail(std::string why) {
    if (error.empty()) error = std::move(why);
  }

  void Start(const XML_Char* expanded, const XML_Char** attributes) {
    Name name = Split(expanded);
    if (!saw_root) {
      saw_root = true;
      if (!name.Is(kPocSettingsNs, "poc-settings") && name.ns != kImSettingsNs) {
        Fail("root element <" + name.local + "> in namespace '" + name.ns +
             "' is neither <poc-settings> nor an IM settings element");
        return;
      }
    }
    const Name* parent = open.empty() ? nullptr : &open.back();
    if (name.Is(kPocSettingsNs, "incoming-session-barring") && parent &&
        parent->Is(kPocSettingsNs, "isb-settings")) {
      SetFrom(attributes, name, values.incoming_session_barring);
    } else if (name.Is(kImSettingsNs, "offline-delivery")) {
      SetFrom(attributes, name, values.offline_delivery_active);
    } else if (name.Is(kImSettingsNs, "vis-status")) {
      SetFrom(attributes, name, values.invisibility);
    } else if (name.Is(kImSettingsNs, "hist-activation")) {
      std::string type;
      for (int i = 0; attributes[i]; i += 2) {
        Name attribute = Split(attributes[i]);
        if (attribute.ns.empty() && attribute.local == "type") type = attributes[i + 1];
      }
      if (type == "session-mode") {
        SetFrom(attributes, name, values.store_session_conversations);
      } else if (type == "pager-large-mode") {
        SetFrom(attributes, name, values.store_pager_large_conversations);
      } else {
        Fail("hist-activation type=\"" + type + "\" is neither session-mode nor pager-large-mode");
      }
    } else if (name.Is(kDimsExtensionNs, "pager-large-barring")) {
      SetFrom(attributes, name, values.incoming_pager_large_barring);
    }
    open.push_back(std::move(name));
  }

  static void OnStart(void* self, const XML_Char* name, const XML_Char** attributes) {
    static_cast<Reader*>(self)->Start(name, attributes);
  }
  static void OnEnd(void* self, const XML_Char*) {
    auto* r = static_cast<Reader*>(self);
    if (!r->open.empty()) r->open.pop_back();
  }
};

}  // namespace

DocumentResult ParseSettingsDocument(std::string_view body) {
  DocumentResult result;
  Reader reader;
  // UTF-8 is the encoding unless the document declares another one.
  reader.parser = XML_ParserCreateNS(nullptr, kSeparator);
  if (!reader.parser) {
    result.reason = "INVALID_XML";
    result.error = "out of memory";
    return result;
  }
  XML_SetUserData(reader.parser, &reader);
  XML_SetElementHandler(reader.parser, &Reader::OnStart, &Reader::OnEnd);
  // Documents need no DTD; refusing one keeps entity expansion attacks out.
  XML_SetStartDoctypeDeclHandler(
      reader.parser, [](void* self, const XML_Char*, const XML_Char*, const XML_Char*, int) {
        auto* r = static_cast<Reader*>(self);
        r->refused_doctype = true;
        XML_StopParser(r->parser, XML_FALSE);
      });
  XML_Status status =
      XML_Parse(reader.parser, body.data(), static_cast<int>(body.size()), XML_TRUE);
  if (reader.refused_doctype) {
    result.reason = "SCHEMA_VIOLATION";
    result.error = "a document type declaration is not allowed";
  } else if (status != XML_STATUS_OK) {
    result.reason = "INVALID_XML";
    result.error = std::string("not well-formed XML: ") +
                   XML_ErrorString(XML_GetErrorCode(reader.parser)) + " at line " +
                   std::to_string(XML_GetCurrentLineNumber(reader.parser)) + ", column " +
                   std::to_string(XML_GetCurrentColumnNumber(reader.parser));
  } else if (!reader.error.empty()) {
    result.reason = "SCHEMA_VIOLATION";
    result.error = reader.error;
  } else {
    result.settings = reader.values;
  }
  XML_ParserFree(reader.parser);
  return result;
}

bool IsSettingsContentType(std::string_view content_type) {
  std::string type;
  for (char c : content_type.substr(0, content_type.find(';'))) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      type += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return type == "application/poc-settings+xml" || type == "application/xml";
}

}  // namespace dims::settings
