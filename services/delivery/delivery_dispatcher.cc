#include "delivery_dispatcher.h"

#include "log.h"
#include "user_contacts.h"

namespace dims::delivery {

DeliveryDispatcher::DeliveryDispatcher(RedisPool& redis, DeliverySchedule& schedule,
                                       DeliveryRunner& runner, MetricsRegistry& metrics,
                                       int max_in_flight,
                                       std::chrono::milliseconds registration_settle)
    : redis_(redis),
      schedule_(schedule),
      runner_(runner),
      max_in_flight_(max_in_flight),
      registration_settle_(registration_settle),
      events_(metrics.CounterFamily(
          "events_total",
          "Bus events taken, by type and result (scheduled: the user is to be evaluated; "
          "unreachable: the user has no subscription and no client to tell; no_subscriber: a "
          "removal from the store of a user without a subscription; ignored: nothing for "
          "delivery).")),
      scheduled_users_(
          metrics.GaugeFamily("scheduled_users", "Users in the shared schedule, due now or later.")
              .Add({})),
      workers_("delivery-runs", max_in_flight, static_cast<size_t>(max_in_flight)),
      // Due users are claimed when woken (an event, a finished run) and at least this often
      // (retries and delays coming due, work a dead replica left).
      task_("delivery-due", std::chrono::milliseconds(200), [this] { ClaimAndRun(); }) {}

DeliveryDispatcher::~DeliveryDispatcher() { Stop(); }

void DeliveryDispatcher::Stop() {
  task_.Stop();
  workers_.Stop();
}

bool DeliveryDispatcher::Accept(const std::vector<dims::v1::BusEvent>& events) {
  std::vector<Trigger> triggers;
  std::vector<std::string> types;
  for (const auto& event : events) {
    const auto* payload = dims::v1::BusEvent::descriptor()->FindFieldByNumber(event.payload_case());
    std::string type = payload ? payload->name() : "unknown";
    if (auto trigger = TriggerFor(event)) {
      triggers.push_back(*trigger);
      types.push_back(type);
    } else {
      events_.Add({{"type", type}, {"result", "ignored"}}).Increment();
    }
  }
  if (triggers.empty()) return true;
  std::vector<DeliverySchedule::DueTrigger> due;
  bool due_now = false;  // then the claimer is woken
  try {
    // Most events are about users who are away: no subscription, no client to reach. Nothing
    // can be done for them, and they are dropped here, one round trip for the whole batch. A
    // subscription or registration that comes later brings its own NOTIFY or event. So are
    // removals from the store of users without a subscription (a push's own deliveries).
    std::vector<std::string> aors;
    for (const auto& t : triggers) aors.push_back(t.aor);
    auto contacts = ReadContacts(redis_, aors);
    auto now = Clock::now();
    for (size_t i = 0; i < triggers.size(); ++i) {
      bool concerned = TriggerConcerns(triggers[i].reason, contacts[i], now);
      const char* result = concerned                     ? "scheduled"
                           : CanBeTold(contacts[i], now) ? "no_subscriber"
                                                         : "unreachable";
      events_.Add({{"type", types[i]}, {"result", result}}).Increment();
      if (!concerned) continue;
      auto wait = WaitBeforeEvaluation(triggers[i], registration_settle_);
      due_now = due_now || wait.count() == 0;
      due.push_back({triggers[i], now + wait});
    }
    // In the bus's order: a registration is recorded before the publication that ends its wait.
    if (!due.empty()) schedule_.Schedule(due);
  } catch (const RedisError& e) {
    log::Warn("triggers not recorded; the events stay pending", {{"error", e.what()}});
    return false;
  }
  if (due_now) Wake();
  return true;
}

void DeliveryDispatcher::ClaimAndRun() {
  try {
    // The gauge is counted at most once a second, not on every wake (every event batch and
    // every finished evaluation wakes this).
    auto now = std::chrono::steady_clock::now();
    if (now >= next_count_) {
      next_count_ = now + std::chrono::seconds(1);
      scheduled_users_.Set(static_cast<double>(schedule_.Size()));
    }
    int free = max_in_flight_ - in_flight_.load();
    if (free <= 0) return;
    for (const auto& claim : schedule_.ClaimDue(Clock::now(), free)) {
      ++in_flight_;
      bool posted = workers_.Post([this, claim] {
        runner_.Run(claim);
        --in_flight_;
        Wake();
      });
      if (!posted) {  // stopping: hand the user back at once
        --in_flight_;
        try {
          schedule_.Finish(claim, Clock::now());
        } catch (const RedisError&) {
          // Its claim lapses by itself; the rest of the batch is still handed back.
        }
      }
    }
  } catch (const RedisError& e) {
    log::Warn("due users not claimed", {{"error", e.what()}});
  }
}

}  // namespace dims::delivery
