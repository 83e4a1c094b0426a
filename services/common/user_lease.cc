#include "user_lease.h"

#include <hiredis/hiredis.h>

namespace dims {
namespace {

// KEYS: lease, fence. ARGV: TTL in ms. Returns the new token, or 0 when the lease is held.
constexpr const char* kAcquire = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
)lua";

// KEYS: lease. ARGV: token, TTL in ms ("0": release). Returns 1 when `token` held the lease.
constexpr const char* kRenewOrRelease = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
)lua";

// KEYS: lease, hash. ARGV: token, TTL in s, then field, value, ... Returns 1 when written.
constexpr const char* kHashSetIfHeld = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
)lua";

int64_t IntegerReply(const RedisReply& reply, const std::string& what) {
  if (reply->type == REDIS_REPLY_INTEGER) return reply->integer;
  std::string detail = reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len) : "";
  throw RedisError("unexpected reply to " + what + " " + detail);
}

}  // namespace

UserLeases::UserLeases(RedisPool& redis, std::string purpose, std::chrono::milliseconds ttl)
    : redis_(redis), purpose_(std::move(purpose)), ttl_(ttl) {}

std::string UserLeases::LeaseKey(const std::string& aor) const {
  return "dims:lease:" + purpose_ + ":{" + aor + "}";
}

std::string UserLeases::FenceKey(const std::string& aor) const {
  return "dims:fence:" + purpose_ + ":{" + aor + "}";
}

std::optional<Lease> UserLeases::TryAcquire(const std::string& aor) {
  auto reply = redis_.Command(
      {"EVAL", kAcquire, "2", LeaseKey(aor), FenceKey(aor), std::to_string(ttl_.count())});
  int64_t token = IntegerReply(reply, "the lease of " + aor);
  if (token <= 0) return std::nullopt;
  return Lease{aor, static_cast<uint64_t>(token)};
}

bool UserLeases::Renew(const Lease& lease) {
  auto reply = redis_.Command({"EVAL", kRenewOrRelease, "1", LeaseKey(lease.aor),
                               std::to_string(lease.token), std::to_string(ttl_.count())});
  return IntegerReply(reply, "the renewal of " + lease.aor) == 1;
}

void UserLeases::Release(const Lease& lease) {
  auto reply = redis_.Command(
      {"EVAL", kRenewOrRelease, "1", LeaseKey(lease.aor), std::to_string(lease.token), "0"});
  IntegerReply(reply, "the release of " + lease.aor);
}

bool UserLeases::HashSetIfHeld(const Lease& lease, const std::string& key,
                               const std::vector<std::pair<std::string, std::string>>& fields,
                               std::chrono::seconds ttl) {
  std::vector<std::string> args = {"EVAL",
                                   kHashSetIfHeld,
                                   "2",
                                   LeaseKey(lease.aor),
                                   key,
                                   std::to_string(lease.token),
                                   std::to_string(ttl.count())};
  for (const auto& [field, value] : fields) {
    args.push_back(field);
    args.push_back(value);
  }
  return IntegerReply(redis_.Command(args), "the fenced write of " + lease.aor) == 1;
}

}  // namespace dims
