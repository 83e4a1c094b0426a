// RFC 3903 publication rules for the IM settings of one user, and how the layers resolve
// (settings.proto): the newest live publication, else the backend layer, else the defaults.
// Pure logic over a user's state; the Redis adapter loads and saves that state.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "settings_document.h"

namespace dims::settings {

using Clock = std::chrono::system_clock;

struct Publication {
  std::string etag;
  ImSettingsValues settings;
  Clock::time_point updated_at;  // last initial or modify: decides precedence
  Clock::time_point expires_at;
  std::string event_package;
};

struct UserSettings {
  std::vector<Publication> publications;
  std::optional<ImSettingsValues> backend;
};

enum class Source { kDefault, kPublished, kBackend };

struct Effective {
  ImSettingsValues values;
  Source source = Source::kDefault;
};

struct PublishLimits {
  std::chrono::seconds min_expires{60};
  std::chrono::seconds max_expires{86400};
  std::chrono::seconds default_expires{3600};
  size_t max_publications = 8;
};

struct PublishRequest {
  std::string event_package;
  std::string if_match;                         // empty: initial
  std::optional<std::chrono::seconds> expires;  // nothing: no Expires header
  std::optional<ImSettingsValues> document;     // the parsed body, when there is one
};

enum class PublishKind { kInitial, kRefresh, kModify, kRemove };

struct PublishOutcome {
  enum class Error { kNone, kMissingBody, kRemoveWithoutEtag, kUnknownEtag, kTooBrief, kTooMany };
  Error error = Error::kNone;
  PublishKind kind = PublishKind::kInitial;
  std::string etag;  // new entity-tag; empty after a removal
  std::chrono::seconds granted{0};
  Clock::time_point expires_at;
};

// Removes publications whose expiry has passed.
void DropExpired(UserSettings& state, Clock::time_point now);

// Applies one PUBLISH to `state` (unchanged when the outcome is an error). `new_etag` makes a
// fresh entity-tag.
PublishOutcome ApplyPublish(UserSettings& state, const PublishRequest& request,
                            Clock::time_point now, const PublishLimits& limits,
                            const std::function<std::string()>& new_etag);

// What DIMS acts on; live publications only (call DropExpired first or pass `now`).
Effective Resolve(const UserSettings& state, Clock::time_point now);

// Publications newest first (by updated_at).
std::vector<Publication> NewestFirst(const UserSettings& state, Clock::time_point now);

}  // namespace dims::settings
