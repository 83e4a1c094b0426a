#include "settings_document.h"

#include <cctype>
#include <cstring>
#include <pugixml.hpp>

namespace dims::settings {
namespace {

std::string_view LocalName(const pugi::xml_node& node) {
  std::string_view name = node.name();
  auto colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// Resolves the element's prefix against the xmlns declarations in scope (pugixml leaves
// namespaces to the application).
std::string NamespaceOf(const pugi::xml_node& node) {
  std::string_view name = node.name();
  auto colon = name.find(':');
  std::string attribute =
      colon == std::string_view::npos ? "xmlns" : "xmlns:" + std::string(name.substr(0, colon));
  for (pugi::xml_node n = node; n; n = n.parent()) {
    if (auto a = n.attribute(attribute.c_str())) return a.value();
  }
  return "";
}

bool Is(const pugi::xml_node& node, const char* ns, const char* local) {
  return LocalName(node) == local && NamespaceOf(node) == ns;
}

// xs:boolean
std::optional<bool> Active(const pugi::xml_node& node, std::string* error) {
  auto a = node.attribute("active");
  if (!a) {
    *error = "<" + std::string(LocalName(node)) + "> lacks the active attribute";
    return std::nullopt;
  }
  std::string_view v = a.value();
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  *error = "active=\"" + std::string(v) + "\" on <" + std::string(LocalName(node)) +
           "> is not true or false";
  return std::nullopt;
}

}  // namespace

DocumentResult ParseSettingsDocument(std::string_view body) {
  DocumentResult result;
  pugi::xml_document doc;
  auto parsed = doc.load_buffer(body.data(), body.size(), pugi::parse_default);
  if (!parsed) {
    result.reason = "INVALID_XML";
    result.error = std::string("not well-formed XML: ") + parsed.description() + " at offset " +
                   std::to_string(parsed.offset);
    return result;
  }
  pugi::xml_node root = doc.document_element();
  std::string root_ns = NamespaceOf(root);
  bool container = Is(root, kPocSettingsNs, "poc-settings");
  if (!container && root_ns != kImSettingsNs) {
    result.reason = "SCHEMA_VIOLATION";
    result.error = "root element <" + std::string(LocalName(root)) + "> in namespace '" + root_ns +
                   "' is neither <poc-settings> nor an IM settings element";
    return result;
  }

  ImSettingsValues values;
  std::string error;
  bool ok = true;
  auto set = [&](const pugi::xml_node& node, bool& field) {
    auto v = Active(node, &error);
    if (!v) {
      ok = false;
      return;
    }
    field = *v;
  };
  // Every element of the tree is looked at once; the known ones set a value.
  for (pugi::xml_node node = root; node && ok;) {
    if (node.type() == pugi::node_element) {
      if (Is(node, kPocSettingsNs, "incoming-session-barring") &&
          Is(node.parent(), kPocSettingsNs, "isb-settings")) {
        set(node, values.incoming_session_barring);
      } else if (Is(node, kImSettingsNs, "offline-delivery")) {
        set(node, values.offline_delivery_active);
      } else if (Is(node, kImSettingsNs, "vis-status")) {
        set(node, values.invisibility);
      } else if (Is(node, kImSettingsNs, "hist-activation")) {
        std::string_view type = node.attribute("type").value();
        if (type == "session-mode") {
          set(node, values.store_session_conversations);
        } else if (type == "pager-large-mode") {
          set(node, values.store_pager_large_conversations);
        } else {
          ok = false;
          error = "hist-activation type=\"" + std::string(type) +
                  "\" is neither session-mode nor pager-large-mode";
        }
      } else if (Is(node, kDimsExtensionNs, "pager-large-barring")) {
        set(node, values.incoming_pager_large_barring);
      }
    }
    // Depth-first walk without recursion.
    if (node.first_child()) {
      node = node.first_child();
    } else {
      while (node && node != root && !node.next_sibling()) node = node.parent();
      node = (node && node != root) ? node.next_sibling() : pugi::xml_node();
    }
  }
  if (!ok) {
    result.reason = "SCHEMA_VIOLATION";
    result.error = error;
    return result;
  }
  result.settings = values;
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
