// SIP address-of-record (AOR) normalisation. An AOR is the key under which DIMS keeps
// everything of one user (registrations, settings, deferred messages), so every form a
// client may write for the same user must map to one string:
//   "Alice" <SIP:alice@Example.ORG:5060;transport=tcp?subject=x>  ->  sip:alice@example.org
// Rules (RFC 3261 19.1.4 comparison, simplified to what identifies a user):
// - display name, angle brackets, URI parameters and headers are dropped;
// - scheme and host are lower-cased, the user part keeps its case; sips becomes sip (the
//   same user reached over TLS);
// - %-escapes of unreserved characters in the user part are decoded, others upper-cased;
// - the default port 5060 (5061 for sips) is dropped, any other port is kept;
// - tel: URIs keep their number with visual separators (- . ( )) removed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dims {

struct Aor {
  std::string scheme;  // "sip" or "tel"
  std::string user;    // empty for a host-only SIP URI; the number for tel:
  std::string host;    // lower case, with ":port" when not the default; empty for tel:

  std::string ToString() const;  // "sip:user@host" / "tel:+4612345"
  // The domain alone (no port), for deciding whether DIMS serves the user.
  std::string Domain() const;
};

struct AorParseResult {
  std::optional<Aor> aor;
  std::string error;  // set when aor is empty: why the input is not a usable AOR
};

AorParseResult ParseAor(std::string_view uri_or_name_addr);

// Convenience: the normalised string, or nothing when the input is not a usable AOR.
std::optional<std::string> NormalizeAor(std::string_view uri_or_name_addr);

}  // namespace dims
