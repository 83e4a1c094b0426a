#include "delivery_service.h"

#include "bus_event.h"
#include "grpc_call.h"

namespace dims::delivery {
namespace v1 = dims::v1;

namespace {

int64_t Ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Clock::time_point FromMs(int64_t ms) { return Clock::time_point(std::chrono::milliseconds(ms)); }

}  // namespace

DeliveryService::DeliveryService(DeliverySchedule& schedule, const UserLeases& leases,
                                 WorkerPool& workers, std::function<void()> wake)
    : schedule_(schedule), leases_(leases), workers_(workers), wake_(std::move(wake)) {}

v1::DeliveryState DeliveryService::StateOf(const std::string& aor) {
  auto record = schedule_.Read(aor, leases_);
  v1::DeliveryState state = record.state.value_or(v1::DeliveryState());
  state.mutable_aor()->set_uri(aor);
  state.set_consecutive_failures(record.consecutive_failures);
  for (auto reason : record.pending) state.add_pending_triggers(reason);
  for (const auto& id : record.owed_acks) state.add_unacknowledged_message_ids(id);
  state.clear_lock();
  if (record.lock) {
    state.set_phase(v1::DELIVERY_PHASE_RUNNING);
    *state.mutable_lock() = *record.lock;
  } else if (record.due_ms) {
    // A retry keeps the time it was scheduled for; anything else due is a trigger's.
    bool retrying =
        state.has_next_retry_at() && Ms(FromTimestamp(state.next_retry_at())) == *record.due_ms;
    state.set_phase(retrying ? v1::DELIVERY_PHASE_BACKING_OFF : v1::DELIVERY_PHASE_SCHEDULED);
    if (!retrying) {
      state.clear_next_retry_at();
      if (*record.due_ms > Ms(Clock::now())) {
        ToTimestamp(FromMs(*record.due_ms), state.mutable_next_retry_at());
      }
    }
  } else {
    state.set_phase(v1::DELIVERY_PHASE_IDLE);
    state.clear_next_retry_at();
  }
  return state;
}

grpc::ServerUnaryReactor* DeliveryService::Trigger(grpc::CallbackServerContext* context,
                                                   const v1::DeliveryTriggerRequest* request,
                                                   v1::DeliveryTriggerResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto aor = AorOrFinish(request->aor(), "aor", context, reactor);
  if (!aor) return reactor;
  if (request->reason() == v1::TRIGGER_REASON_UNSPECIFIED ||
      !v1::TriggerReason_IsValid(request->reason())) {
    reactor->Finish(Fail(context, grpc::StatusCode::INVALID_ARGUMENT,
                         "reason must be one of the TriggerReason values", "INVALID_REASON",
                         "reason"));
    return reactor;
  }
  auto delay = std::chrono::seconds(request->delay().seconds()) +
               std::chrono::nanoseconds(request->delay().nanos());
  if (delay.count() < 0) {
    reactor->Finish(Fail(context, grpc::StatusCode::INVALID_ARGUMENT, "delay must not be negative",
                         "INVALID_DELAY", "delay"));
    return reactor;
  }
  RunOnPool(workers_, context, reactor, [=, this, aor = *aor] {
    try {
      if (request->reset_backoff()) schedule_.ResetFailures(aor);
      auto due = Clock::now() + std::chrono::duration_cast<std::chrono::milliseconds>(delay);
      auto joined = schedule_.Schedule({{{aor, request->reason()}, due}});
      response->set_coalesced(joined.front());
      *response->mutable_state() = StateOf(aor);
    } catch (const RedisError& e) {
      throw DependencyUnavailable(std::string("the trigger was not recorded: ") + e.what());
    }
    if (delay.count() == 0) wake_();
    return grpc::Status::OK;
  });
  return reactor;
}

grpc::ServerUnaryReactor* DeliveryService::GetDeliveryState(
    grpc::CallbackServerContext* context, const v1::DeliveryGetDeliveryStateRequest* request,
    v1::DeliveryGetDeliveryStateResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto aor = AorOrFinish(request->aor(), "aor", context, reactor);
  if (!aor) return reactor;
  RunOnPool(workers_, context, reactor, [=, this, aor = *aor] {
    try {
      *response->mutable_state() = StateOf(aor);
    } catch (const RedisError& e) {
      throw DependencyUnavailable(std::string("Redis unreachable: ") + e.what());
    }
    return grpc::Status::OK;
  });
  return reactor;
}

}  // namespace dims::delivery
