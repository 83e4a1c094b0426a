// message-summary subscriptions (RFC 3842, RFC 6665; seed 004 11.3.2.8, seed 002): a user
// SUBSCRIBEs to what waits in their own deferred store; the edge records the subscription in
// Redis (so that delivery knows whom to notify and through which edge instance), then reads
// storage's summary for the immediate NOTIFY, and later NOTIFYs on EdgeControl.Notify.
// A subscription exists in memory from the moment its SUBSCRIBE passes the checks ("pending"
// until it is answered), so that a Notify from delivery, which may see the record before the
// SUBSCRIBE is answered, waits for the immediate NOTIFY instead of being refused.
// NOTIFYs of one subscription go out one at a time, in order; a summary older than the last one
// sent or waiting (with only_if_newer: not newer) is skipped.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "dims/v1/common.pb.h"
#include "dims/v1/storage.grpc.pb.h"
#include "redis_pool.h"
#include "sip_answer.h"
#include "sip_stack.h"
#include "user_records.h"
#include "worker_pool.h"

namespace dims::edge {

inline constexpr const char* kMessageSummaryEvent = "message-summary";

struct SubscriptionLimits {
  int min_expires = 60;        // 423 below it (RFC 6665 4.2.1.1)
  int max_expires = 3600;      // longer requests are granted this
  int default_expires = 3600;  // RFC 3842: the package's default
};

// The checks on an initial SUBSCRIBE that need no I/O: the event package, the user's own AOR
// only (P-Asserted-Identity from the core, else From), a served domain, the interval, Accept.
struct SubscribeVerdict {
  std::optional<SipAnswer> refusal;
  std::string aor;  // when accepted
  int expires = 0;  // granted; 0 is a one-time fetch (RFC 6665 4.2.1.1)
};
SubscribeVerdict CheckSummarySubscribe(const IncomingSubscribe& in,
                                       const std::set<std::string>& domains,
                                       const SubscriptionLimits& limits);

struct SubscriptionsConfig {
  std::set<std::string> domains;
  SubscriptionLimits limits;
  std::string edge_instance_id;
  std::string edge_address;
  int summary_entries = 50;  // per-message blocks in a NOTIFY
};

class SummarySubscriptions {
 public:
  SummarySubscriptions(SipStack& stack, RedisPool& redis, WorkerPool& workers,
                       std::shared_ptr<grpc::Channel> storage, SubscriptionsConfig config);
  ~SummarySubscriptions();

  void Handle(const IncomingSubscribe& in);         // SIP loop thread
  void OnChange(const SubscriptionChange& change);  // SIP loop thread

  struct NotifyResult {
    grpc::Status status;
    dims::v1::ErrorDetail detail;
    dims::v1::SipOutcome sip;
    bool stale_skipped = false;
    uint64_t last_sent_version = 0;
  };
  using NotifyDone = std::function<void(const NotifyResult&)>;
  // SIP loop thread: a NOTIFY with `summary`, or the final NOTIFY (`terminate_reason` set).
  // `only_if_newer`: a summary whose version is not higher than the last one sent or waiting
  // is skipped too, not only a lower one.
  void Notify(const std::string& subscription_id, const std::string& aor,
              std::optional<dims::v1::StoreSummary> summary,
              std::optional<std::string> terminate_reason, bool only_if_newer, NotifyDone done);

 private:
  struct Subscription;
  struct Request;
  void ReadSummary(const std::shared_ptr<Request>& request);  // any thread
  void Accept(const std::shared_ptr<Request>& request);       // SIP loop thread
  void SendNext(Subscription& subscription);                  // SIP loop thread
  // SIP loop thread: what follows the answer to a NOTIFY built from `version`.
  SipStack::SentCallback AfterNotify(const std::string& id, const std::string& aor,
                                     uint64_t version, bool terminate, NotifyDone done);
  void Forget(const std::string& id);                      // SIP loop thread
  void WriteRecord(const dims::v1::Subscription& record);  // worker thread
  void EraseRecord(const std::string& aor, const std::string& id);
  void MarkNotified(const std::string& aor, uint64_t version);

  SipStack& stack_;
  RedisPool& redis_;
  WorkerPool& workers_;
  std::unique_ptr<dims::v1::Storage::Stub> storage_;
  SubscriptionsConfig config_;
  std::string id_prefix_;  // unique to this process: ids of an earlier run are unknown
  uint64_t next_id_ = 1;
  std::map<std::string, std::unique_ptr<Subscription>> by_id_;  // SIP loop thread
  std::map<uint64_t, std::string> id_of_dialog_;                // SIP loop thread

  std::mutex mu_;
  std::condition_variable idle_;
  int calls_in_flight_ = 0;
};

}  // namespace dims::edge
