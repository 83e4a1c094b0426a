// The deferred store as the storage service sees it: plain types and one interface, with
// PostgreSQL behind it (postgres_deferred_store.h). Methods block; they run on worker threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "grpc_call.h"
#include "store_policy.h"

namespace dims::storage {

using Clock = std::chrono::system_clock;

// Thrown when the database cannot be reached or went away mid-operation: the operation
// changed nothing (its transaction did not commit) and may be retried.
class StoreUnavailable : public DependencyUnavailable {
 public:
  using DependencyUnavailable::DependencyUnavailable;
};

enum class MessageKind { kPager = 1, kLarge = 2 };

struct MessageHeaders {
  std::string from, to, p_asserted_identity, subject, date, priority, call_id, content_type;
  int64_t cseq = 0;
};

// A message to store, validated by the caller.
struct NewMessage {
  std::string recipient;  // normalised AOR
  MessageKind kind = MessageKind::kPager;
  MessageHeaders headers;
  std::string msrp_message_id;  // large messages: part of the dedupe key
  Clock::time_point received_at;
  Clock::time_point expires_at;
  int64_t size_bytes = 0;  // body or MSRP content size: what quotas count
  std::string content;     // pager: the complete request; large: serialized content
  int reason = 0;          // dims.v1.StoreReason, carried into the message_stored event
};

struct StoreOutcome {
  enum class Result { kStored, kDuplicate, kOverLimit };
  Result result = Result::kStored;
  std::string message_id;
  Clock::time_point received_at;
  Clock::time_point expires_at;
  int64_t store_version = 0;
  std::string limit;  // kOverLimit: "MESSAGE_BYTES", "USER_MESSAGES" or "USER_BYTES"
};

struct StoredMessage {
  std::string message_id;
  int64_t number = 0;
  std::string recipient;
  MessageKind kind = MessageKind::kPager;
  MessageHeaders headers;
  std::string msrp_message_id;
  Clock::time_point received_at;
  Clock::time_point expires_at;
  int64_t size_bytes = 0;
  bool is_new = true;
  std::optional<std::string> content;  // only when asked for
};

struct KindCounts {
  uint32_t new_count = 0, old_count = 0, urgent_new = 0, urgent_old = 0;
  int64_t bytes = 0;
};

struct StoreSummary {
  int64_t version = 0;
  KindCounts pager, large;
  std::optional<Clock::time_point> oldest, newest;
  std::vector<StoredMessage> entries;  // oldest first, without content
};

// Why messages leave a store without delivery (maps to StoreChangeCause).
enum class RemovalCause {
  kDelivered,
  kDeletedByUser,
  kDeletedByBackend,
  kDeletedByOperator,
  kExpired,
  kPurged,
};

// One call's removal: the given messages of one user, or all of them.
struct Removal {
  std::string recipient;
  std::vector<std::string> ids;
  bool all = false;
  RemovalCause cause = RemovalCause::kDelivered;
};

struct RemovalResult {
  std::vector<std::string> removed;
  std::vector<std::string> already_gone;
  int64_t store_version = 0;
};

struct PurgeResult {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint32_t users = 0;
  bool more_remaining = false;
};

// Builds the serialized bus events the store appends to its outbox; kept outside the store so
// that the store needs no knowledge of the event format.
class EventFactory {
 public:
  virtual ~EventFactory() = default;
  virtual std::string MessageStored(const StoredMessage& message, int64_t store_version,
                                    int reason) = 0;
  virtual std::string StoreChanged(const std::string& recipient, RemovalCause cause,
                                   const std::vector<StoredMessage>& removed, int64_t store_version,
                                   int64_t remaining) = 0;
};

class DeferredStore {
 public:
  virtual ~DeferredStore() = default;

  // Stores a batch in one transaction and returns one outcome per message, in order.
  // Messages with the same dedupe key (recipient, Call-ID, CSeq, MSRP Message-ID) as a stored
  // one, or as an earlier one of the batch, are duplicates. Throws StoreUnavailable.
  virtual std::vector<StoreOutcome> StoreBatch(const std::vector<NewMessage>& batch) = 0;

  virtual StoreSummary Summary(const std::string& recipient, int max_entries) = 0;
  // Messages after `after_number` in arrival order; kind 0 means both kinds.
  virtual std::vector<StoredMessage> List(const std::string& recipient, int64_t after_number,
                                          int limit, int kind, bool with_content,
                                          const std::vector<std::string>& only_ids) = 0;
  virtual std::optional<StoredMessage> Get(const std::string& recipient,
                                           const std::string& message_id, bool with_content) = 0;
  // Removes the removals' messages in one transaction and returns one result per removal, in
  // order, each what it would have been alone, had the removals run one after the other in that
  // order: each removal is one change of its user's store (one version, one store_changed event
  // when it removed something). Throws StoreUnavailable (nothing removed).
  virtual std::vector<RemovalResult> RemoveBatch(const std::vector<Removal>& batch) = 0;
  // One removal in a transaction of its own.
  RemovalResult Remove(const std::string& recipient, const std::vector<std::string>& ids, bool all,
                       RemovalCause cause) {
    return RemoveBatch({Removal{recipient, ids, all, cause}}).front();
  }
  // Removes up to `max_messages` messages whose expiry (or receipt, for kPurged) is before
  // `cutoff`, across users or for one, one transaction per call.
  virtual PurgeResult Purge(Clock::time_point cutoff, RemovalCause cause,
                            const std::string& only_recipient, uint32_t max_messages,
                            bool dry_run) = 0;
  // Marks every message up to `through_version` as notified; returns how many turned old.
  virtual uint32_t MarkNotified(const std::string& recipient, int64_t through_version) = 0;

  enum class RewriteResult { kRewritten, kNotFound, kNotLarge };
  // Replaces the content of a large message with `rewrite(stored content)`, under the message's
  // row lock (a large message's session headers may arrive after its content).
  virtual RewriteResult RewriteLargeContent(
      const std::string& recipient, const std::string& message_id,
      const std::function<std::string(const std::string&)>& rewrite) = 0;
};

}  // namespace dims::storage
