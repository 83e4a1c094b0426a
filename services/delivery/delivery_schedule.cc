#include "delivery_schedule.h"

#include <hiredis/hiredis.h>

#include "bus_event.h"

namespace dims::delivery {
namespace v1 = dims::v1;

namespace {

// KEYS: due. ARGV: aor, due time (ms), kClaimedScore. A user not claimed is due at the earlier of
// its due time and this one; a claimed one is left to its claim. Returns 1 when the user was not
// scheduled before, else 0.
constexpr const char* kScheduleDue = R"lua(
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) >= tonumber(ARGV[3]) then return 0 end
return redis.call('ZADD', KEYS[1], 'LT', ARGV[2], ARGV[1])
)lua";

// KEYS: due. ARGV: now (ms), claimed score to set, count, kClaimedScore. Claims users due by
// now, then users whose claim ended by now (their holder died). Returns the claimed AORs.
constexpr const char* kClaimDue = R"lua(
local claimed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local room = tonumber(ARGV[3]) - #claimed
if room > 0 then
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[4],
                            tostring(tonumber(ARGV[4]) + tonumber(ARGV[1])), 'LIMIT', 0, room)
  for _, aor in ipairs(lapsed) do table.insert(claimed, aor) end
end
for _, aor in ipairs(claimed) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], aor) end
return claimed
)lua";

// KEYS: due. ARGV: aor, claimed score, the next score (a due time, a longer claim's score) or
// "" to unschedule. The claim still stands only while the score is its own (else it lapsed and
// another replica holds the user now; then the user stays as it is). Returns 1 when it stood.
constexpr const char* kFinish = R"lua(
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1])
else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1
)lua";

// KEYS: the user's record. ARGV: trigger field ("t:<reason>"), its due time (ms), TTL (s).
// Records the trigger; one already recorded keeps the earlier due time.
constexpr const char* kRecordTrigger = R"lua(
local due = redis.call('HGET', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return redis.call('EXPIRE', KEYS[1], ARGV[3])
)lua";

// KEYS: the user's record. The earliest due time (ms) of the triggers recorded in it
// ("t:<reason>"), or nil when there are none.
constexpr const char* kEarliestTrigger = R"lua(
local earliest = nil
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local is_trigger = string.sub(all[i], 1, 2) == 't:'
  if is_trigger and (not earliest or tonumber(all[i + 1]) < tonumber(earliest)) then
    earliest = all[i + 1]
  end
end
return earliest
)lua";

// KEYS: the user's record. Removes the trigger fields ("t:<reason>") and returns them, then
// what remains of the record (HGETALL).
constexpr const char* kTake = R"lua(
local taken = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 't:' then
    table.insert(taken, all[i])
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return {taken, redis.call('HGETALL', KEYS[1])}
)lua";

int64_t Ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string ClaimedScore(int64_t until_ms) { return std::to_string(kClaimedScore + until_ms); }

std::string Text(const redisReply* r) { return std::string(r->str, r->len); }

// The strings of an array reply (SMEMBERS); none for anything else.
std::vector<std::string> Texts(const redisReply* r) {
  std::vector<std::string> texts;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i) {
    texts.push_back(Text(r->element[i]));
  }
  return texts;
}

void ThrowOnError(const RedisReply& reply, const std::string& what) {
  if (reply->type == REDIS_REPLY_ERROR) throw RedisError(what + ": " + Text(reply.get()));
}

std::optional<v1::TriggerReason> ReasonOfField(const std::string& field) {
  if (field.rfind("t:", 0) != 0) return std::nullopt;
  int value = std::atoi(field.c_str() + 2);
  if (!v1::TriggerReason_IsValid(value) || value == 0) return std::nullopt;
  return static_cast<v1::TriggerReason>(value);
}

}  // namespace

std::string DeliveryRecordKey(const std::string& aor) { return "dims:delivery:{" + aor + "}"; }

std::string OwedAcksKey(const std::string& aor) { return "dims:delivery:owed:{" + aor + "}"; }

namespace {

// The fields of a user's record (HGETALL) into `record`; returns the holder field, if any.
std::optional<v1::DeliveryLock> ReadFields(const redisReply* fields,
                                           DeliverySchedule::Record& record) {
  std::optional<v1::DeliveryLock> holder;
  for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
    std::string name = Text(fields->element[i]);
    std::string value = Text(fields->element[i + 1]);
    if (auto reason = ReasonOfField(name)) {
      record.pending.push_back(*reason);
    } else if (name == "state") {
      v1::DeliveryState state;
      if (state.ParseFromString(value)) record.state = state;
    } else if (name == "holder") {
      v1::DeliveryLock lock;
      if (lock.ParseFromString(value)) holder = lock;
    } else if (name == "failures") {
      record.consecutive_failures = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (name == "message_notified") {
      record.message_notified_version = std::strtoull(value.c_str(), nullptr, 10);
    }
  }
  return holder;
}

}  // namespace

DeliverySchedule::DeliverySchedule(RedisPool& redis, Options options)
    : redis_(redis), options_(options) {}

std::vector<bool> DeliverySchedule::Schedule(const std::vector<DueTrigger>& triggers) {
  std::vector<std::vector<std::string>> commands;
  const std::string ttl = std::to_string(options_.record_ttl.count());
  const std::string claimed = std::to_string(kClaimedScore);
  for (const auto& [t, due] : triggers) {
    const std::string due_ms = std::to_string(Ms(due));
    // The record first, with the due time: a claim that ends between the two finds the
    // trigger there and schedules the user for it (FinishEvaluation).
    commands.push_back({"EVAL", kRecordTrigger, "1", DeliveryRecordKey(t.aor),
                        "t:" + std::to_string(t.reason), due_ms, ttl});
    commands.push_back({"EVAL", kScheduleDue, "1", kDueKey, t.aor, due_ms, claimed});
  }
  auto replies = redis_.Pipeline(commands);
  std::vector<bool> joined;
  for (size_t i = 0; i < triggers.size(); ++i) {
    for (size_t k = 0; k < 2; ++k)
      ThrowOnError(replies[2 * i + k], "scheduling " + triggers[i].trigger.aor);
    joined.push_back(replies[2 * i + 1]->integer == 0);
  }
  return joined;
}

std::vector<DeliverySchedule::Claim> DeliverySchedule::ClaimDue(Clock::time_point now, int count) {
  int64_t until = Ms(now + options_.claim_visibility);
  auto reply =
      redis_.Command({"EVAL", kClaimDue, "1", kDueKey, std::to_string(Ms(now)), ClaimedScore(until),
                      std::to_string(count), std::to_string(kClaimedScore)});
  ThrowOnError(reply, "claiming due users");
  std::vector<Claim> claims;
  if (reply->type != REDIS_REPLY_ARRAY) return claims;
  for (size_t i = 0; i < reply->elements; ++i) claims.push_back({Text(reply->element[i]), until});
  return claims;
}

void DeliverySchedule::Extend(Claim& claim) {
  int64_t until = Ms(Clock::now() + options_.claim_visibility);
  auto reply = redis_.Command({"EVAL", kFinish, "1", kDueKey, claim.aor,
                               ClaimedScore(claim.until_ms), ClaimedScore(until)});
  ThrowOnError(reply, "extending the claim of " + claim.aor);
  if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) claim.until_ms = until;
}

bool DeliverySchedule::Finish(const Claim& claim, std::optional<Clock::time_point> again) {
  auto reply =
      redis_.Command({"EVAL", kFinish, "1", kDueKey, claim.aor, ClaimedScore(claim.until_ms),
                      again ? std::to_string(Ms(*again)) : std::string()});
  ThrowOnError(reply, "finishing " + claim.aor);
  return reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
}

void DeliverySchedule::FinishEvaluation(const Claim& claim,
                                        std::optional<Clock::time_point> again) {
  if (!Finish(claim, again)) return;
  // After the claim ended, so that a trigger is either seen here or schedules the user itself.
  // A trigger keeps its own due time (a registration still waiting for its publication).
  auto earliest = redis_.Command({"EVAL", kEarliestTrigger, "1", DeliveryRecordKey(claim.aor)});
  ThrowOnError(earliest, "reading the triggers of " + claim.aor);
  if (earliest->type != REDIS_REPLY_STRING) return;
  ThrowOnError(redis_.Command({"EVAL", kScheduleDue, "1", kDueKey, claim.aor, Text(earliest.get()),
                               std::to_string(kClaimedScore)}),
               "scheduling " + claim.aor + " again");
}

DeliverySchedule::Record DeliverySchedule::Take(const std::string& aor) {
  auto replies = redis_.Pipeline(
      {{"EVAL", kTake, "1", DeliveryRecordKey(aor)}, {"SMEMBERS", OwedAcksKey(aor)}});
  for (const auto& r : replies) ThrowOnError(r, "taking the record of " + aor);
  Record record;
  record.owed_acks = Texts(replies[1].get());
  const redisReply* reply = replies[0].get();
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return record;
  ReadFields(reply->element[1], record);
  record.pending.clear();
  const redisReply* taken = reply->element[0];
  for (size_t i = 0; taken->type == REDIS_REPLY_ARRAY && i < taken->elements; ++i) {
    if (auto reason = ReasonOfField(Text(taken->element[i]))) record.pending.push_back(*reason);
  }
  return record;
}

DeliverySchedule::Record DeliverySchedule::Read(const std::string& aor, const UserLeases& leases) {
  auto replies = redis_.Pipeline({{"HGETALL", DeliveryRecordKey(aor)},
                                  {"ZSCORE", kDueKey, aor},
                                  {"GET", leases.LeaseKey(aor)},
                                  {"SMEMBERS", OwedAcksKey(aor)}});
  for (const auto& r : replies) ThrowOnError(r, "reading the delivery record of " + aor);
  Record record;
  std::optional<v1::DeliveryLock> holder = ReadFields(replies[0].get(), record);
  if (replies[1]->type == REDIS_REPLY_STRING) {
    // A claimed user: the claim's end, when a holder that died would leave it due again.
    auto score = static_cast<int64_t>(std::strtod(Text(replies[1].get()).c_str(), nullptr));
    record.due_ms = score >= kClaimedScore ? score - kClaimedScore : score;
  }
  if (replies[2]->type == REDIS_REPLY_STRING && holder &&
      std::to_string(holder->fencing_token()) == Text(replies[2].get())) {
    record.lock = holder;
  }
  record.owed_acks = Texts(replies[3].get());
  return record;
}

bool DeliverySchedule::WriteHolder(UserLeases& leases, const Lease& lease,
                                   const v1::DeliveryLock& lock) {
  return leases.HashSetIfHeld(lease, DeliveryRecordKey(lease.aor),
                              {{"holder", lock.SerializeAsString()}}, options_.record_ttl);
}

bool DeliverySchedule::WriteOutcome(UserLeases& leases, const Lease& lease,
                                    const v1::DeliveryState& state,
                                    uint64_t message_notified_version) {
  return leases.HashSetIfHeld(lease, DeliveryRecordKey(lease.aor),
                              {{"state", state.SerializeAsString()},
                               {"failures", std::to_string(state.consecutive_failures())},
                               {"message_notified", std::to_string(message_notified_version)}},
                              options_.record_ttl);
}

bool DeliverySchedule::WriteState(UserLeases& leases, const Lease& lease,
                                  const v1::DeliveryState& state) {
  return leases.HashSetIfHeld(lease, DeliveryRecordKey(lease.aor),
                              {{"state", state.SerializeAsString()}}, options_.record_ttl);
}

void DeliverySchedule::AddOwedAcks(const std::string& aor,
                                   const std::vector<std::string>& message_ids) {
  if (message_ids.empty()) return;
  std::vector<std::string> add = {"SADD", OwedAcksKey(aor)};
  add.insert(add.end(), message_ids.begin(), message_ids.end());
  auto replies = redis_.Pipeline(
      {add, {"EXPIRE", OwedAcksKey(aor), std::to_string(options_.record_ttl.count())}});
  for (const auto& r : replies) ThrowOnError(r, "recording the owed Acks of " + aor);
}

void DeliverySchedule::RemoveOwedAcks(const std::string& aor,
                                      const std::vector<std::string>& message_ids) {
  if (message_ids.empty()) return;
  std::vector<std::string> remove = {"SREM", OwedAcksKey(aor)};
  remove.insert(remove.end(), message_ids.begin(), message_ids.end());
  ThrowOnError(redis_.Command(remove), "removing the owed Acks of " + aor);
}

void DeliverySchedule::ResetFailures(const std::string& aor) {
  ThrowOnError(redis_.Command({"HDEL", DeliveryRecordKey(aor), "failures"}),
               "resetting the failures of " + aor);
}

int64_t DeliverySchedule::Size() {
  auto reply = redis_.Command({"ZCARD", kDueKey});
  ThrowOnError(reply, "counting due users");
  return reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
}

}  // namespace dims::delivery
