#include "delivery_runner.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <set>

#include "bus_event.h"
#include "log.h"
#include "message_summary.h"
#include "user_contacts.h"
#include "user_records.h"

namespace dims::delivery {
namespace v1 = dims::v1;

namespace {

std::string NewRunId(const std::string& instance) {
  static std::atomic<uint64_t> next{0};
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, "-%llx-%llu",
                static_cast<unsigned long long>(
                    std::chrono::system_clock::now().time_since_epoch().count() & 0xffffffffff),
                static_cast<unsigned long long>(++next));
  return instance + suffix;
}

// Failures worth another attempt by themselves; the others wait for the user's state to
// change (the next trigger).
bool Transient(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::CANCELLED:
      return true;
    default:
      return false;
  }
}

}  // namespace

struct DeliveryRunner::Attempt {
  DeliverySchedule::Claim claim;
  Lease lease;
  DeliverySchedule::Record previous;
  UserView user;
  DeliveryPlan plan;
  v1::DeliveryAttempt record;
  uint64_t message_notified_version = 0;
  bool failed = false;   // something failed that is worth retrying
  bool gave_up = false;  // something failed that waits for the next trigger
  bool lease_lost = false;
  std::optional<Clock::time_point> again;  // the retry, when one is due
};

DeliveryRunner::DeliveryRunner(RedisPool& redis, DeliverySchedule& schedule, UserLeases& leases,
                               std::shared_ptr<grpc::Channel> settings,
                               std::shared_ptr<grpc::Channel> storage,
                               std::shared_ptr<grpc::Channel> relay, MetricsRegistry& metrics,
                               RunnerOptions options)
    : redis_(redis),
      schedule_(schedule),
      leases_(leases),
      settings_(v1::Settings::NewStub(settings)),
      storage_(v1::Storage::NewStub(storage)),
      options_(std::move(options)),
      pusher_(relay, storage, edges_, metrics, options_.push),
      evaluations_(metrics.CounterFamily(
          "evaluations_total", "Evaluations of a user, by the action decided and how it ended.")),
      notifications_(metrics.CounterFamily(
          "notifications_total",
          "Notifications by channel (notify, message) and result (sent, skipped: the subscriber "
          "had seen that version, gone: the subscription no longer exists, failed).")),
      registration_waits_(metrics.CounterFamily(
          "registration_waits_total",
          "New registrations evaluated, by what ended their wait for the client's settings "
          "publication (publication, other_trigger, elapsed).")),
      lease_busy_(metrics
                      .CounterFamily("lease_busy_total",
                                     "Due users put back because another replica held them.")
                      .Add({})),
      duration_(metrics
                    .HistogramFamily("evaluation_duration_seconds",
                                     "Time from taking a user's lease to recording the outcome.")
                    .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01,
                                                                     0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                                     2.5, 5, 10, 30})) {}

std::chrono::milliseconds DeliveryRunner::NextDelay(uint32_t failures) {
  std::lock_guard lock(random_mu_);
  return RetryDelay(failures, options_.first_retry, options_.max_retry, random_);
}

void DeliveryRunner::Run(const DeliverySchedule::Claim& claim) {
  Attempt attempt;
  attempt.claim = claim;
  bool leased = false;
  try {
    auto lease = leases_.TryAcquire(claim.aor);
    if (!lease) {
      lease_busy_.Increment();
      schedule_.Finish(claim, Clock::now() + options_.busy_retry);
      return;
    }
    leased = true;
    attempt.lease = *lease;
    auto started = std::chrono::steady_clock::now();
    Evaluate(attempt);
    duration_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    // The claim as a push may have extended it.
    if (attempt.lease_lost) {
      schedule_.Finish(attempt.claim, Clock::now() + options_.busy_retry);
    } else {
      schedule_.FinishEvaluation(attempt.claim, attempt.again);
    }
  } catch (const std::exception& e) {
    log::Warn("delivery evaluation interrupted", {{"aor", claim.aor}, {"error", e.what()}});
    try {
      schedule_.Finish(attempt.claim, Clock::now() + options_.first_retry);
    } catch (const std::exception&) {
      // Redis is away: the claim lapses by itself and the user comes due again.
    }
  }
  if (!leased) return;
  try {
    leases_.Release(attempt.lease);
  } catch (const std::exception& e) {
    log::Warn("lease not released; it runs out", {{"aor", claim.aor}, {"error", e.what()}});
  }
}

void DeliveryRunner::Evaluate(Attempt& a) {
  const std::string& aor = a.claim.aor;
  auto now = Clock::now();
  v1::DeliveryLock lock;
  lock.set_holder_instance_id(options_.instance_id);
  lock.set_fencing_token(a.lease.token);
  ToTimestamp(now, lock.mutable_acquired_at());
  if (!schedule_.WriteHolder(leases_, a.lease, lock)) {
    a.lease_lost = true;
    return;
  }
  a.previous = schedule_.Take(aor);
  const auto& triggers = a.previous.pending;
  a.message_notified_version = a.previous.message_notified_version;

  a.record.set_run_id(NewRunId(options_.instance_id));
  a.record.set_trigger(LeadingTrigger(triggers));
  if (auto ended = RegistrationWaitEnd(triggers)) {
    registration_waits_.Add({{"ended", std::string(*ended)}}).Increment();
  }
  ToTimestamp(now, a.record.mutable_started_at());

  // A push recorded as running was cut off (its replica died): it is resumed. One backing off
  // keeps to its retry time unless something that may start a push came.
  EarlierPush earlier = EarlierPush::kNone;
  if (a.previous.state && a.previous.state->decision() == v1::DELIVERY_ACTION_PUSH) {
    if (a.previous.state->phase() == v1::DELIVERY_PHASE_RUNNING) {
      earlier = EarlierPush::kInterrupted;
    } else if (a.previous.state->phase() == v1::DELIVERY_PHASE_BACKING_OFF) {
      earlier = EarlierPush::kBackingOff;
    }
  }
  const bool push_triggered = MayStartPush(triggers, earlier);

  // What an earlier push had confirmed leaves the store first: whatever is decided now, the
  // client must not get it again.
  AcknowledgeEarlierConfirmations(a);

  if (!a.failed && !a.lease_lost && ReadUser(a)) {
    a.user.push_triggered = push_triggered;
    a.plan = PlanDelivery(a.user, Clock::now(), options_.by_message);
    a.record.set_action(a.plan.action);
    for (const auto& subscription : a.plan.notify) {
      if (a.lease_lost) break;
      NotifySubscription(a, subscription);
    }
    if (a.plan.message_to && !a.lease_lost) SendNotificationMessage(a, *a.plan.message_to);
    if (a.plan.push_to && !a.lease_lost) PushMessages(a, *a.plan.push_to);
  }
  if (a.lease_lost) return;

  bool failed = a.failed || a.gave_up;
  a.record.set_outcome(failed && a.record.messages_delivered() > 0 ? v1::ATTEMPT_OUTCOME_PARTIAL
                       : failed                                    ? v1::ATTEMPT_OUTCOME_FAILED
                       : a.plan.action == v1::DELIVERY_ACTION_NONE ? v1::ATTEMPT_OUTCOME_SKIPPED
                                                                   : v1::ATTEMPT_OUTCOME_SUCCEEDED);
  ToTimestamp(Clock::now(), a.record.mutable_finished_at());
  evaluations_
      .Add({{"action", v1::DeliveryAction_Name(a.record.action())},
            {"outcome", v1::AttemptOutcome_Name(a.record.outcome())}})
      .Increment();

  v1::DeliveryState state;
  state.mutable_aor()->set_uri(aor);
  state.set_decision(a.record.action());
  state.set_decision_reason(a.plan.reason);
  if (a.record.action() == v1::DELIVERY_ACTION_UNSPECIFIED && a.previous.state) {
    // Nothing was decided (a step before the decision failed): the earlier decision stands, so
    // a push that backs off is still known as one.
    state.set_decision(a.previous.state->decision());
    state.set_decision_reason(a.previous.state->decision_reason());
  }
  *state.mutable_last_attempt() = a.record;
  // Only failures worth retrying count towards the backoff. A run that a real trigger started,
  // after delivery had given up, starts the count afresh.
  uint32_t before = a.previous.consecutive_failures;
  if (!a.previous.pending.empty() && before >= options_.max_failures) before = 0;
  uint32_t failures = a.failed ? before + 1 : 0;
  if (a.failed && !a.gave_up && failures >= options_.max_failures) {
    a.gave_up = true;  // enough: the next trigger tries again
  }
  state.set_phase(v1::DELIVERY_PHASE_IDLE);
  if (a.failed && !a.gave_up) {
    a.again = Clock::now() + NextDelay(failures);
    state.set_phase(v1::DELIVERY_PHASE_BACKING_OFF);
    ToTimestamp(*a.again, state.mutable_next_retry_at());
  } else if (earlier == EarlierPush::kBackingOff && !failed && a.plan.push_withheld) {
    // This evaluation could not push (a store change came first): the push's retry stands.
    failures = a.previous.consecutive_failures;
    auto retry_at = FromTimestamp(a.previous.state->next_retry_at());
    a.again = std::max(retry_at, Clock::now());
    state.set_decision(v1::DELIVERY_ACTION_PUSH);
    state.set_phase(v1::DELIVERY_PHASE_BACKING_OFF);
    ToTimestamp(*a.again, state.mutable_next_retry_at());
  }
  state.set_consecutive_failures(failures);
  if (!schedule_.WriteOutcome(leases_, a.lease, state, a.message_notified_version)) {
    a.lease_lost = true;
    return;
  }
  log::Info("user evaluated", {{"aor", aor},
                               {"run", a.record.run_id()},
                               {"trigger", v1::TriggerReason_Name(a.record.trigger())},
                               {"decision", v1::DeliveryAction_Name(a.record.action())},
                               {"outcome", v1::AttemptOutcome_Name(a.record.outcome())},
                               {"reason", a.plan.reason}});
}

bool DeliveryRunner::ReadUser(Attempt& a) {
  const std::string& aor = a.claim.aor;
  // Subscriptions before the summary: a subscription recorded after this read reads its own
  // summary later, so no store change falls between the two (docs/notifications.md).
  a.user = ReadContacts(redis_, {aor}).front();
  // Most stored messages are for users who are away: nothing can reach them, and their settings
  // and store need not be read.
  if (!CanBeTold(a.user, Clock::now())) return true;

  grpc::ClientContext settings_context;
  SetDeadline(settings_context, options_.read_timeout);
  v1::SettingsGetRequest settings_request;
  settings_request.mutable_aor()->set_uri(aor);
  v1::SettingsGetResponse settings;
  grpc::Status status = settings_->Get(&settings_context, settings_request, &settings);
  if (!status.ok()) {
    Fail(a, status, ErrorDetailOf(settings_context));
    return false;
  }
  a.user.settings = settings.effective();

  grpc::ClientContext storage_context;
  SetDeadline(storage_context, options_.read_timeout);
  v1::StorageGetSummaryRequest summary_request;
  summary_request.mutable_recipient()->set_uri(aor);
  // A push decision needs only the counts: the entries are read when they may be shown.
  if (MayShowEntries(a.user, Clock::now(), options_.by_message)) {
    summary_request.set_max_entries(options_.summary_entries);
  }
  v1::StorageGetSummaryResponse summary;
  status = storage_->GetSummary(&storage_context, summary_request, &summary);
  if (!status.ok()) {
    Fail(a, status, ErrorDetailOf(storage_context));
    return false;
  }
  a.user.summary = summary.summary();
  return true;
}

void DeliveryRunner::NotifySubscription(Attempt& a, const v1::Subscription& subscription) {
  if (!leases_.Renew(a.lease)) {
    a.lease_lost = true;
    return;
  }
  grpc::ClientContext context;
  SetDeadline(context, options_.edge_timeout);
  v1::EdgeControlNotifyRequest request;
  request.set_subscription_id(subscription.subscription_id());
  request.mutable_aor()->set_uri(a.claim.aor);
  *request.mutable_summary() = a.user.summary;
  request.set_only_if_newer(true);
  v1::EdgeControlNotifyResponse response;
  grpc::Status status = edges_.At(subscription.edge_address()).Notify(&context, request, &response);
  auto count = [&](const char* result) {
    notifications_.Add({{"channel", "notify"}, {"result", result}}).Increment();
  };
  if (status.ok()) {
    count(response.stale_skipped() ? "skipped" : "sent");
    if (response.has_sip()) *a.record.mutable_sip() = response.sip();
    return;
  }
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    // The edge no longer holds it (481 from the client, expiry, the edge restarted).
    count("gone");
    redis_.Command({"HDEL", SubscriptionsKey(a.claim.aor), subscription.subscription_id()});
    log::Info("subscription gone; record removed",
              {{"aor", a.claim.aor}, {"subscription", subscription.subscription_id()}});
    return;
  }
  count("failed");
  Fail(a, status, ErrorDetailOf(context));
}

void DeliveryRunner::SendNotificationMessage(Attempt& a, const v1::Binding& client) {
  if (!leases_.Renew(a.lease)) {
    a.lease_lost = true;
    return;
  }
  v1::StoreSummary shown = a.user.summary;
  if (shown.entries_size() > options_.message_entries) {
    shown.mutable_entries()->DeleteSubrange(options_.message_entries,
                                            shown.entries_size() - options_.message_entries);
    shown.set_entries_truncated(true);
  }
  grpc::ClientContext context;
  SetDeadline(context, options_.edge_timeout);
  v1::EdgeControlSendMessageRequest request;
  request.mutable_target()->mutable_aor()->set_uri(a.claim.aor);
  request.mutable_target()->set_contact_uri(client.contact_uri());
  request.set_content_type(kMessageSummaryContentType);
  request.set_body(RenderMessageSummary(shown));
  v1::EdgeControlSendMessageResponse response;
  grpc::Status status = edges_.At(client.edge_address()).SendMessage(&context, request, &response);
  if (!status.ok()) {
    notifications_.Add({{"channel", "message"}, {"result", "failed"}}).Increment();
    // Not retried by itself: a client that could not take it now is not to be pressed; the
    // next trigger (a new message, a registration) tells it, as nothing was marked told.
    Fail(a, status, ErrorDetailOf(context), /*retry=*/false);
    return;
  }
  notifications_.Add({{"channel", "message"}, {"result", "sent"}}).Increment();
  *a.record.mutable_sip() = response.sip();
  a.message_notified_version = a.user.summary.version();
  // The messages shown now count as old (RFC 3842); should this fail, they stay "new" and
  // the version watermark above still keeps the same notification from going out twice.
  grpc::ClientContext mark_context;
  SetDeadline(mark_context, options_.read_timeout);
  v1::StorageMarkNotifiedRequest mark;
  mark.mutable_recipient()->set_uri(a.claim.aor);
  mark.set_through_version(a.user.summary.version());
  v1::StorageMarkNotifiedResponse marked;
  grpc::Status mark_status = storage_->MarkNotified(&mark_context, mark, &marked);
  if (!mark_status.ok()) {
    log::Warn("MarkNotified failed", {{"aor", a.claim.aor}, {"grpc", mark_status.error_message()}});
  }
}

void DeliveryRunner::PushMessages(Attempt& a, const v1::Binding& client) {
  if (!leases_.Renew(a.lease)) {
    a.lease_lost = true;
    return;
  }
  const uint32_t stored = a.user.summary.new_count() + a.user.summary.old_count();
  // Recorded as running, so that a replica taking the user over after this one died resumes it.
  v1::DeliveryState running;
  running.mutable_aor()->set_uri(a.claim.aor);
  running.set_decision(v1::DELIVERY_ACTION_PUSH);
  running.set_decision_reason(a.plan.reason);
  running.set_phase(v1::DELIVERY_PHASE_RUNNING);
  *running.mutable_last_attempt() = a.record;
  if (!schedule_.WriteState(leases_, a.lease, running)) {
    a.lease_lost = true;
    return;
  }
  PushTarget target{
      .aor = a.claim.aor, .client = client, .run_id = a.record.run_id(), .backlog = stored};
  // The push outlasts a lease and a claim: both are renewed while it runs.
  PushReport report = pusher_.Push(target, [&] {
    if (!leases_.Renew(a.lease)) return false;
    schedule_.Extend(a.claim);
    return true;
  });
  a.record.set_messages_delivered(report.delivered);
  a.record.set_messages_remaining(stored > report.delivered ? stored - report.delivered : 0);
  if (report.sip.status_code() != 0) *a.record.mutable_sip() = report.sip;
  a.record.set_msrp_status(report.msrp_status);
  if (!report.unacknowledged.empty()) {
    // Recorded whether or not this replica still holds the user: they must not be pushed again.
    try {
      schedule_.AddOwedAcks(a.claim.aor, report.unacknowledged);
    } catch (const RedisError& e) {
      log::Warn("confirmed messages not recorded as owed; they may be pushed again",
                {{"aor", a.claim.aor},
                 {"count", std::to_string(report.unacknowledged.size())},
                 {"error", e.what()}});
    }
  }
  if (report.stopped) {
    a.lease_lost = true;
    return;
  }
  if (!report.ok()) Fail(a, report.status, report.detail);
}

void DeliveryRunner::AcknowledgeEarlierConfirmations(Attempt& a) {
  const std::string& aor = a.claim.aor;
  const auto& owed = a.previous.owed_acks;
  if (owed.empty()) return;
  if (!leases_.Renew(a.lease)) {
    a.lease_lost = true;
    return;
  }
  std::vector<std::string> left = owed;
  grpc::Status status = pusher_.Acknowledge({.aor = aor, .run_id = a.record.run_id()}, left);
  if (!status.ok() && !Transient(status.error_code())) {
    // Storage refused them for good (a malformed id): retrying cannot help, and they must not
    // hold the user's deliveries back.
    log::Warn(
        "owed Acks refused; dropped",
        {{"aor", aor}, {"count", std::to_string(left.size())}, {"grpc", status.error_message()}});
    left.clear();
  }
  std::set<std::string> still(left.begin(), left.end());
  std::vector<std::string> settled;
  for (const auto& id : owed) {
    if (!still.count(id)) settled.push_back(id);
  }
  schedule_.RemoveOwedAcks(aor, settled);
  log::Info("owed Acks made", {{"aor", aor},
                               {"acknowledged", std::to_string(settled.size())},
                               {"still_owed", std::to_string(still.size())}});
  // Still owed: nothing is decided until storage takes them (a retry with backoff).
  if (!still.empty()) Fail(a, status, {});
}

void DeliveryRunner::Fail(Attempt& a, const grpc::Status& status, const v1::ErrorDetail& detail,
                          bool retry) {
  if (retry && Transient(status.error_code())) {
    a.failed = true;
  } else {
    a.gave_up = true;
  }
  a.record.set_error_code(StatusCodeName(status.error_code()));
  a.record.set_error_message(status.error_message());
  if (detail.has_sip()) *a.record.mutable_sip() = detail.sip();
  log::Info("delivery step failed", {{"aor", a.claim.aor},
                                     {"grpc", StatusCodeName(status.error_code())},
                                     {"message", status.error_message()}});
}

}  // namespace dims::delivery
