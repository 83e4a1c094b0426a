// When each user is to be evaluated, and what delivery remembers about them, in Redis:
//
//   dims:delivery:due     a sorted set, AOR -> when its evaluation is due (ms since the epoch).
//                         Shared by every delivery replica; whoever claims a due user first
//                         moves it to kClaimedScore plus the end of its claim, so that a
//                         replica dying mid-work leaves the user due again, not lost.
//   dims:delivery:{aor}   a hash per user: "t:<reason>" -> due time (ms) for each trigger
//                         recorded since the last evaluation began, "state" (a serialized
//                         dims.v1.DeliveryState without the parts read live), "holder" (instance
//                         and token of the current lease holder), "failures" (consecutive failed
//                         attempts), "message_notified" (the store version of the last notification
//                         MESSAGE that got a 2xx).
//   dims:delivery:owed:{aor}  a set per user: messages the client confirmed whose Ack to storage
//                         failed, written without the lease and emptied by the next evaluation.
//
// Triggers of a user already due coalesce: the earlier due time wins. A trigger that comes while
// the user is claimed leaves the claim alone (another replica taking the user now would only
// find its lease busy); it is recorded in the user's hash, and the evaluation's end makes the
// user due again at the trigger's due time (at once, but for a registration still waiting for
// its publication), so the change it announces is looked at.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dims/v1/delivery.pb.h"
#include "redis_pool.h"
#include "trigger_rules.h"
#include "user_lease.h"

namespace dims::delivery {

inline constexpr const char* kDueKey = "dims:delivery:due";
// A claimed user's score is this plus the claim's end (ms since the epoch): above any due time,
// and still exact in a double.
inline constexpr int64_t kClaimedScore = int64_t{1} << 50;
std::string DeliveryRecordKey(const std::string& aor);
// The messages a client confirmed whose Ack to storage failed (a set of message ids).
std::string OwedAcksKey(const std::string& aor);

using Clock = std::chrono::system_clock;

class DeliverySchedule {
 public:
  struct Options {
    // How long a claim keeps a user from other replicas; a claim not finished by then (its
    // holder died) makes the user due again.
    std::chrono::milliseconds claim_visibility{60000};
    // How long a user's record outlives the last write.
    std::chrono::seconds record_ttl{7 * 24 * 3600};
  };
  DeliverySchedule(RedisPool& redis, Options options);

  struct DueTrigger {
    Trigger trigger;
    Clock::time_point due;
  };
  // Records the triggers, in one round trip and in their order, and makes each one's user due
  // at its due time, or keeps an earlier one. Returns, per trigger, whether its user was already
  // due (the trigger joined that). Throws RedisError; then nothing may have been recorded, and
  // the caller retries.
  std::vector<bool> Schedule(const std::vector<DueTrigger>& triggers);

  struct Claim {
    std::string aor;
    int64_t until_ms = 0;  // the claim's end: finishing checks the score is still the claim's
  };
  // Up to `count` users due by `now`, each claimed for the visibility period. Throws RedisError.
  std::vector<Claim> ClaimDue(Clock::time_point now, int count);

  // Keeps a long evaluation (a push) claimed for another visibility period from now. A claim
  // that is no longer this one (it lapsed and another replica took the user) is left alone:
  // the lease, not the claim, keeps two replicas apart. Throws RedisError.
  void Extend(Claim& claim);

  // Ends a claim that did not evaluate the user (its lease was busy, or the replica stops).
  // Without `again`, the user leaves the schedule; with it, the user is due then. Returns false
  // when the claim was no longer this one (nothing changed). Throws RedisError.
  bool Finish(const Claim& claim, std::optional<Clock::time_point> again);
  // Ends the claim of an evaluation that took the user's record (Take): as Finish, and a trigger
  // recorded since then makes the user due at its due time. Throws RedisError.
  void FinishEvaluation(const Claim& claim, std::optional<Clock::time_point> again);

  // What delivery remembers about a user.
  struct Record {
    std::optional<dims::v1::DeliveryState> state;
    uint64_t message_notified_version = 0;
    uint32_t consecutive_failures = 0;
    std::vector<dims::v1::TriggerReason> pending;
    std::optional<int64_t> due_ms;               // when the user is due, if scheduled
    std::optional<dims::v1::DeliveryLock> lock;  // while a replica works for the user
    std::vector<std::string> owed_acks;          // ids of dims:delivery:owed:{aor}
  };
  Record Read(const std::string& aor, const UserLeases& leases);
  // At the start of an evaluation: the user's record, with the triggers recorded since the last
  // evaluation began taken out of it (in `pending`). Throws RedisError.
  Record Take(const std::string& aor);

  // The lease holder records who it is (for GetDeliveryState), then the outcome of its work;
  // a holder whose lease ran out writes nothing (false).
  bool WriteHolder(UserLeases& leases, const Lease& lease, const dims::v1::DeliveryLock& lock);
  bool WriteOutcome(UserLeases& leases, const Lease& lease, const dims::v1::DeliveryState& state,
                    uint64_t message_notified_version);
  // The state alone, while the work runs (a push), so that whoever takes the user over after
  // this holder died knows what was going on.
  bool WriteState(UserLeases& leases, const Lease& lease, const dims::v1::DeliveryState& state);

  // Messages the client confirmed but storage has not removed (their Ack failed): they must
  // leave the store before anything is pushed again. Kept apart from the lease-guarded record:
  // whoever holds the user, removing a confirmed message is right. Throw RedisError.
  // (Read and Take return them in Record::owed_acks.)
  void AddOwedAcks(const std::string& aor, const std::vector<std::string>& message_ids);
  void RemoveOwedAcks(const std::string& aor, const std::vector<std::string>& message_ids);

  // Forgets a user's failed attempts, so that the next failure starts the backoff afresh (an
  // operator's reset_backoff). Throws RedisError.
  void ResetFailures(const std::string& aor);

  // Users scheduled (due now or later), for the gauge.
  int64_t Size();

 private:
  RedisPool& redis_;
  Options options_;
};

}  // namespace dims::delivery
