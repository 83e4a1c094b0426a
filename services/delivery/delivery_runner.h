// One evaluation of one user, on a worker thread: take the user's lease (one replica at a time
// per user, with a fencing token), read what the user's state is now (subscriptions,
// registration, settings, store summary), decide (PlanDelivery), carry the plan out
// through the EdgeControl API of the edge instance holding each subscription or registration
// and, for a push, through msrp-relay (Pusher), and record the outcome. Every read is fresh, so
// evaluations are idempotent: a repeated or coalesced trigger sends nothing the user has
// already been shown, and a push sends only what is still stored.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "delivery_plan.h"
#include "delivery_schedule.h"
#include "dims/v1/edge_control.grpc.pb.h"
#include "dims/v1/settings.grpc.pb.h"
#include "dims/v1/storage.grpc.pb.h"
#include "grpc_client.h"
#include "metrics.h"
#include "pusher.h"
#include "redis_pool.h"
#include "retry_delay.h"
#include "user_lease.h"

namespace dims::delivery {

struct RunnerOptions {
  std::string instance_id;
  MessageNotification by_message = MessageNotification::kUnsubscribed;
  int summary_entries = 50;  // per-message blocks in a NOTIFY
  int message_entries = 5;   // in a notification MESSAGE (RFC 3428's 1300 bytes over UDP)
  std::chrono::milliseconds read_timeout{2000};   // Redis-only peers: settings, storage
  std::chrono::milliseconds edge_timeout{10000};  // a NOTIFY or MESSAGE and its answer
  std::chrono::milliseconds busy_retry{250};      // another replica holds the user
  std::chrono::milliseconds first_retry{1000};
  std::chrono::milliseconds max_retry{300000};
  uint32_t max_failures = 6;  // then wait for the next trigger
  PushOptions push;
};

class DeliveryRunner {
 public:
  DeliveryRunner(RedisPool& redis, DeliverySchedule& schedule, UserLeases& leases,
                 std::shared_ptr<grpc::Channel> settings, std::shared_ptr<grpc::Channel> storage,
                 std::shared_ptr<grpc::Channel> relay, MetricsRegistry& metrics,
                 RunnerOptions options);

  // Evaluates the claimed user and ends the claim. Never throws.
  void Run(const DeliverySchedule::Claim& claim);

 private:
  struct Attempt;
  void Evaluate(Attempt& attempt);
  bool ReadUser(Attempt& attempt);
  void NotifySubscription(Attempt& attempt, const dims::v1::Subscription& subscription);
  void SendNotificationMessage(Attempt& attempt, const dims::v1::Binding& client);
  void PushMessages(Attempt& attempt, const dims::v1::Binding& client);
  // Removes from the store what an earlier push had confirmed but could not acknowledge.
  void AcknowledgeEarlierConfirmations(Attempt& attempt);
  // Records a failed step; a transient one, where `retry` allows, schedules another attempt.
  void Fail(Attempt& attempt, const grpc::Status& status, const dims::v1::ErrorDetail& detail,
            bool retry = true);
  std::chrono::milliseconds NextDelay(uint32_t failures);

  RedisPool& redis_;
  DeliverySchedule& schedule_;
  UserLeases& leases_;
  std::unique_ptr<dims::v1::Settings::Stub> settings_;
  std::unique_ptr<dims::v1::Storage::Stub> storage_;
  StubsByAddress<dims::v1::EdgeControl> edges_;
  RunnerOptions options_;
  Pusher pusher_;
  prometheus::Family<prometheus::Counter>& evaluations_;
  prometheus::Family<prometheus::Counter>& notifications_;
  prometheus::Family<prometheus::Counter>& registration_waits_;
  prometheus::Counter& lease_busy_;
  prometheus::Histogram& duration_;
  std::mutex random_mu_;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace dims::delivery
