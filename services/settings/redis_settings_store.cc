#include <algorithm>

#include "dims/v1/settings.pb.h"
#include "redis_record.h"
#include "settings_proto.h"
#include "settings_store.h"
#include "user_records.h"

namespace dims::settings {
namespace {

UserSettings Decode(const std::optional<std::string>& raw) {
  UserSettings state;
  if (!raw) return state;
  dims::v1::SettingsGetResponse stored;
  if (!stored.ParseFromString(*raw)) return state;  // unreadable: treat as nothing published
  for (const auto& p : stored.publications()) state.publications.push_back(FromProto(p));
  if (stored.has_backend()) state.backend = FromProto(stored.backend());
  return state;
}

std::optional<std::string> Encode(const UserSettings& state) {
  if (state.publications.empty() && !state.backend) return std::nullopt;
  dims::v1::SettingsGetResponse stored;
  for (const auto& p : state.publications) ToProto(p, stored.add_publications());
  if (state.backend) ToProto(*state.backend, Source::kBackend, stored.mutable_backend());
  return stored.SerializeAsString();
}

}  // namespace

UserSettings RedisSettingsStore::Load(const std::string& aor) {
  try {
    auto state = Decode(RedisRecord(redis_).Get(SettingsKey(aor)));
    DropExpired(state, Clock::now());
    return state;
  } catch (const RedisError& e) {
    throw SettingsUnavailable(e.what());
  }
}

UserSettings RedisSettingsStore::Update(const std::string& aor,
                                        const std::function<bool(UserSettings&)>& change) {
  UserSettings result;
  try {
    RedisRecord(redis_).Update(
        SettingsKey(aor),
        [&](const std::optional<std::string>& raw) -> std::optional<RedisRecord::Change> {
          result = Decode(raw);
          if (!change(result)) return std::nullopt;
          auto now = Clock::now();
          DropExpired(result, now);
          RedisRecord::Change next{Encode(result), std::chrono::milliseconds(0)};
          // The key lives as long as its last publication, unless a backend layer keeps it.
          if (!result.backend && !result.publications.empty()) {
            auto last = std::max_element(result.publications.begin(), result.publications.end(),
                                         [](const Publication& a, const Publication& b) {
                                           return a.expires_at < b.expires_at;
                                         });
            next.ttl =
                std::chrono::duration_cast<std::chrono::milliseconds>(last->expires_at - now);
          }
          return next;
        });
  } catch (const RedisError& e) {
    throw SettingsUnavailable(e.what());
  }
  return result;
}

}  // namespace dims::settings
