#include <hiredis/hiredis.h>

#include <algorithm>

#include "dims/v1/settings.pb.h"
#include "settings_proto.h"
#include "settings_store.h"

namespace dims::settings {
namespace {

constexpr int kMaxAttempts = 50;

// KEYS[1] the user's key; ARGV: expected-present (0/1), expected value, new value ("" deletes),
// TTL in ms ("0": no expiry).
constexpr const char* kCompareAndSet = R"lua(
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
elseif ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
)lua";

std::string KeyFor(const std::string& aor) { return "dims:settings:{" + aor + "}"; }

UserSettings Decode(const std::optional<std::string>& raw) {
  UserSettings state;
  if (!raw) return state;
  dims::v1::SettingsGetResponse stored;
  if (!stored.ParseFromString(*raw)) return state;  // unreadable: treat as nothing published
  for (const auto& p : stored.publications()) state.publications.push_back(FromProto(p));
  if (stored.has_backend()) state.backend = FromProto(stored.backend());
  return state;
}

std::string Encode(const UserSettings& state) {
  if (state.publications.empty() && !state.backend) return "";
  dims::v1::SettingsGetResponse stored;
  for (const auto& p : state.publications) ToProto(p, stored.add_publications());
  if (state.backend) ToProto(*state.backend, Source::kBackend, stored.mutable_backend());
  return stored.SerializeAsString();
}

}  // namespace

std::optional<std::string> RedisSettingsStore::Get(const std::string& key) {
  try {
    auto reply = redis_.Command({"GET", key});
    if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
    if (reply->type != REDIS_REPLY_STRING) {
      throw SettingsUnavailable("unexpected reply to GET " + key);
    }
    return std::string(reply->str, reply->len);
  } catch (const RedisError& e) {
    throw SettingsUnavailable(e.what());
  }
}

UserSettings RedisSettingsStore::Load(const std::string& aor) {
  auto state = Decode(Get(KeyFor(aor)));
  DropExpired(state, Clock::now());
  return state;
}

UserSettings RedisSettingsStore::Update(const std::string& aor,
                                        const std::function<bool(UserSettings&)>& change) {
  std::string key = KeyFor(aor);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto raw = Get(key);
    UserSettings state = Decode(raw);
    if (!change(state)) return state;
    auto now = Clock::now();
    DropExpired(state, now);
    std::string ttl_ms = "0";
    if (!state.backend && !state.publications.empty()) {
      auto last = std::max_element(
          state.publications.begin(), state.publications.end(),
          [](const Publication& a, const Publication& b) { return a.expires_at < b.expires_at; });
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(last->expires_at - now);
      ttl_ms = std::to_string(std::max<int64_t>(1, ms.count()));
    }
    try {
      auto reply = redis_.Command({"EVAL", kCompareAndSet, "1", key, raw ? "1" : "0",
                                   raw.value_or(""), Encode(state), ttl_ms});
      if (reply->type == REDIS_REPLY_ERROR) {
        throw SettingsUnavailable("redis refused the update: " +
                                  std::string(reply->str, reply->len));
      }
      if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) return state;
    } catch (const RedisError& e) {
      throw SettingsUnavailable(e.what());
    }
  }
  throw SettingsUnavailable("too many concurrent changes of the settings of " + aor);
}

}  // namespace dims::settings
