// Turns triggers into evaluations: bus events are recorded as triggers in the shared schedule
// (DeliverySchedule), and due users are claimed from it, as many as there are free workers,
// and evaluated (DeliveryRunner). Every replica does both; the schedule's claims and the
// per-user lease keep two replicas from working on one user at once.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "delivery_runner.h"
#include "delivery_schedule.h"
#include "dims/v1/delivery.pb.h"
#include "metrics.h"
#include "periodic_task.h"
#include "worker_pool.h"

namespace dims::delivery {

class DeliveryDispatcher {
 public:
  DeliveryDispatcher(RedisPool& redis, DeliverySchedule& schedule, DeliveryRunner& runner,
                     MetricsRegistry& metrics, int max_in_flight,
                     std::chrono::milliseconds registration_settle);
  ~DeliveryDispatcher();

  // Records the triggers a batch of bus events calls for, for the users who can be told
  // anything; true once they are in the schedule.
  bool Accept(const std::vector<dims::v1::BusEvent>& events);
  // Something is due now: claim without waiting for the next poll.
  void Wake() { task_.Wake(); }
  // Stops claiming, then lets the evaluations under way finish.
  void Stop();

 private:
  void ClaimAndRun();

  RedisPool& redis_;
  DeliverySchedule& schedule_;
  DeliveryRunner& runner_;
  int max_in_flight_;
  std::chrono::milliseconds registration_settle_;  // see WaitBeforeEvaluation
  std::atomic<int> in_flight_{0};
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Gauge& scheduled_users_;
  std::chrono::steady_clock::time_point next_count_{};  // claim thread only
  WorkerPool workers_;
  PeriodicTask task_;  // last: starts once everything above is ready
};

}  // namespace dims::delivery
