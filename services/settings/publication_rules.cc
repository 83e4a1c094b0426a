#include "publication_rules.h"

#include <algorithm>

namespace dims::settings {

void DropExpired(UserSettings& state, Clock::time_point now) {
  std::erase_if(state.publications, [&](const Publication& p) { return p.expires_at <= now; });
}

PublishOutcome ApplyPublish(UserSettings& state, const PublishRequest& request,
                            Clock::time_point now, const PublishLimits& limits,
                            const std::function<std::string()>& new_etag) {
  using Error = PublishOutcome::Error;
  PublishOutcome out;
  DropExpired(state, now);
  bool removal = request.expires && request.expires->count() == 0;

  if (request.if_match.empty()) {
    if (removal) return {Error::kRemoveWithoutEtag};
    if (!request.document) return {Error::kMissingBody};
  }
  std::chrono::seconds granted = request.expires.value_or(limits.default_expires);
  if (!removal && granted < limits.min_expires) return {Error::kTooBrief};
  granted = std::min(granted, limits.max_expires);

  if (request.if_match.empty()) {
    if (state.publications.size() >= limits.max_publications) return {Error::kTooMany};
    Publication p{new_etag(), *request.document, now, now + granted, request.event_package};
    state.publications.push_back(p);
    return {Error::kNone, PublishKind::kInitial, p.etag, granted, p.expires_at};
  }

  auto it = std::find_if(state.publications.begin(), state.publications.end(),
                         [&](const Publication& p) { return p.etag == request.if_match; });
  if (it == state.publications.end()) return {Error::kUnknownEtag};
  if (removal) {
    state.publications.erase(it);
    return {Error::kNone, PublishKind::kRemove, "", std::chrono::seconds(0), now};
  }
  // RFC 3903 4.4: every successful refresh or modification gets a new entity-tag.
  it->etag = new_etag();
  it->expires_at = now + granted;
  out.kind = PublishKind::kRefresh;
  if (request.document) {
    it->settings = *request.document;
    it->updated_at = now;
    out.kind = PublishKind::kModify;
  }
  out.etag = it->etag;
  out.granted = granted;
  out.expires_at = it->expires_at;
  return out;
}

std::vector<Publication> NewestFirst(const UserSettings& state, Clock::time_point now) {
  // Newest first; between two set in the same instant, the one published later wins.
  std::vector<Publication> live;
  for (auto it = state.publications.rbegin(); it != state.publications.rend(); ++it) {
    if (it->expires_at > now) live.push_back(*it);
  }
  std::stable_sort(live.begin(), live.end(), [](const Publication& a, const Publication& b) {
    return a.updated_at > b.updated_at;
  });
  return live;
}

Effective Resolve(const UserSettings& state, Clock::time_point now) {
  auto live = NewestFirst(state, now);
  if (!live.empty()) return {live.front().settings, Source::kPublished};
  if (state.backend) return {*state.backend, Source::kBackend};
  return {};
}

}  // namespace dims::settings
