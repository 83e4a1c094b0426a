#include "pusher.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "log.h"
#include "periodic_task.h"

namespace dims::delivery {
namespace v1 = dims::v1;

namespace {

// Storage.Ack takes at most this many ids per call.
constexpr size_t kMaxAckBatch = 1000;

// Acknowledges confirmed messages to storage on a thread of its own, so that the results of
// the relay are read without waiting for the database: what is confirmed within the linger, or
// while an Ack runs, goes in the next one, so the batches grow with the load.
class Acknowledger {
 public:
  Acknowledger(v1::Storage::Stub& storage, const PushTarget& target,
               std::chrono::milliseconds linger)
      : storage_(storage), target_(target), linger_(linger), thread_([this] { Loop(); }) {}
  ~Acknowledger() { Close(); }

  void Add(std::vector<std::string> message_ids) {
    if (message_ids.empty()) return;
    bool wake;
    {
      std::lock_guard lock(mu_);
      // Only what ends a wait: the first ids (the thread sleeps until there are some) or a full
      // batch (it lingers for more).
      wake = waiting_.empty();
      for (auto& id : message_ids) waiting_.push_back(std::move(id));
      wake = wake || waiting_.size() >= kMaxAckBatch;
    }
    if (wake) wake_.notify_one();
  }

  // Acknowledges what is left and returns how many messages left the store (removed now or
  // already gone); `failure()` and `unacknowledged()` tell of the Acks that failed for good.
  uint32_t Close() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    return acknowledged_;
  }
  const grpc::Status& failure() const { return failure_; }
  // Confirmed by the client, still stored: the caller keeps them for a later Ack.
  std::vector<std::string>& unacknowledged() { return unacknowledged_; }
  // An Ack failed for good: sending more would only add to the messages owed.
  bool failed() const { return failed_; }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return closing_ || !waiting_.empty(); });
      if (waiting_.empty()) return;
      wake_.wait_for(lock, linger_, [this] { return closing_ || waiting_.size() >= kMaxAckBatch; });
      size_t n = std::min(waiting_.size(), kMaxAckBatch);
      std::vector<std::string> batch(std::make_move_iterator(waiting_.begin()),
                                     std::make_move_iterator(waiting_.begin() + n));
      waiting_.erase(waiting_.begin(), waiting_.begin() + n);
      lock.unlock();
      Acknowledge(batch);
      lock.lock();
    }
  }

  void Acknowledge(const std::vector<std::string>& ids) {
    if (failed_) {  // storage already refused: these wait for a later attempt at once
      unacknowledged_.insert(unacknowledged_.end(), ids.begin(), ids.end());
      return;
    }
    v1::StorageAckRequest request;
    request.mutable_recipient()->set_uri(target_.aor);
    for (const auto& id : ids) request.add_message_ids(id);
    request.set_run_id(target_.run_id);
    // A failed Ack leaves confirmed messages stored, to be pushed again: worth a few tries.
    grpc::Status status;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
      grpc::ClientContext context;
      // Not bounded by the push's deadline: what the client confirmed must leave the store
      // even when the transfer ran out of time.
      SetDeadline(context, std::chrono::seconds(5));
      v1::StorageAckResponse response;
      status = storage_.Ack(&context, request, &response);
      if (status.ok()) {
        acknowledged_ +=
            static_cast<uint32_t>(response.removed_size() + response.already_gone_size());
        return;
      }
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
          status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        break;
      }
    }
    failure_ = status;
    unacknowledged_.insert(unacknowledged_.end(), ids.begin(), ids.end());
    failed_ = true;
    log::Warn("confirmed messages not acknowledged; kept for the next attempt",
              {{"aor", target_.aor},
               {"run", target_.run_id},
               {"count", std::to_string(ids.size())},
               {"grpc", status.error_message()}});
  }

  v1::Storage::Stub& storage_;
  const PushTarget& target_;
  const std::chrono::milliseconds linger_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::string> waiting_;
  bool closing_ = false;
  uint32_t acknowledged_ = 0;                // Loop's thread until joined
  grpc::Status failure_;                     // likewise
  std::vector<std::string> unacknowledged_;  // likewise
  std::atomic<bool> failed_{false};
  std::thread thread_;
};

prometheus::Family<prometheus::Counter>& PushMessages(MetricsRegistry& metrics) {
  return metrics.CounterFamily(
      "push_messages_total",
      "Deferred messages pushed, by outcome: sent (handed to the relay), delivered (confirmed by "
      "the client and removed from the store), rejected (an MSRP error status), failed (no "
      "confirmation; stays stored).");
}

const char* StageName(PushReport::Stage stage) {
  switch (stage) {
    case PushReport::Stage::kOpen:
      return "relay_failed";
    case PushReport::Stage::kInvite:
      return "invite_failed";
    case PushReport::Stage::kConnect:
      return "connect_failed";
    case PushReport::Stage::kTransfer:
      return "interrupted";
    case PushReport::Stage::kDone:
      break;
  }
  return "completed";
}

}  // namespace

// The state of one push, shared with its keep-alive thread.
struct Pusher::Run {
  explicit Run(const PushTarget& t) : target(t) {}

  const PushTarget& target;
  PushReport report;
  std::chrono::system_clock::time_point deadline;
  std::string session_id;
  std::string relay_address;
  std::string sdp_offer;
  std::string dialog_id;
  std::string sdp_answer;
  bool through_msrp_relay = false;

  // Calls in progress, cancelled when the keep-alive says stop.
  std::mutex mu;
  std::set<grpc::ClientContext*> calls;
  bool stop = false;

  // Registers a call for cancellation; false when the push is already stopping.
  bool Watch(grpc::ClientContext& context) {
    std::lock_guard lock(mu);
    if (stop) return false;
    calls.insert(&context);
    return true;
  }
  void Unwatch(grpc::ClientContext& context) {
    std::lock_guard lock(mu);
    calls.erase(&context);
  }
  void Stop() {
    std::lock_guard lock(mu);
    stop = true;
    for (auto* context : calls) context->TryCancel();
  }
  bool Stopped() {
    std::lock_guard lock(mu);
    return stop;
  }

  // Records the failure that decides the push (the first one); always false.
  bool Fail(PushReport::Stage stage, const grpc::Status& status,
            const grpc::ClientContext* context) {
    if (report.stage != PushReport::Stage::kDone || !report.status.ok()) return false;
    report.stage = stage;
    report.status = status;
    if (context) report.detail = ErrorDetailOf(*context);
    if (report.detail.has_sip()) report.sip = report.detail.sip();
    if (report.detail.msrp_status() != 0) report.msrp_status = report.detail.msrp_status();
    return false;
  }
};

Pusher::Pusher(std::shared_ptr<grpc::Channel> relay, std::shared_ptr<grpc::Channel> storage,
               StubsByAddress<v1::EdgeControl>& edges, MetricsRegistry& metrics,
               PushOptions options)
    : relay_(v1::Relay::NewStub(relay)),
      storage_(v1::Storage::NewStub(storage)),
      edges_(edges),
      options_(std::move(options)),
      sessions_(metrics.CounterFamily(
          "push_sessions_total",
          "Push sessions by result (completed, relay_failed, invite_failed, connect_failed, "
          "interrupted, stopped) and the gRPC code that decided a failure.")),
      messages_sent_(PushMessages(metrics).Add({{"outcome", "sent"}})),
      messages_delivered_(PushMessages(metrics).Add({{"outcome", "delivered"}})),
      messages_rejected_(PushMessages(metrics).Add({{"outcome", "rejected"}})),
      messages_failed_(PushMessages(metrics).Add({{"outcome", "failed"}})),
      bytes_(
          metrics.CounterFamily("push_bytes_total", "Bytes of MSRP SEND bodies pushed.").Add({})),
      duration_(
          metrics
              .HistogramFamily("push_duration_seconds",
                               "Time from opening the relay session to the BYE.")
              .Add({}, prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                                               30, 60, 120, 300, 600})),
      backlog_(metrics
                   .HistogramFamily("push_backlog_messages",
                                    "Deferred messages stored when a push was decided.")
                   .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 5, 10, 20, 50, 100, 200,
                                                                    500, 1000, 5000})) {}

grpc::Status Pusher::Acknowledge(const PushTarget& target, std::vector<std::string>& message_ids) {
  Acknowledger acknowledger(*storage_, target, std::chrono::milliseconds(0));
  acknowledger.Add(std::move(message_ids));
  uint32_t removed = acknowledger.Close();
  messages_delivered_.Increment(removed);
  message_ids = std::move(acknowledger.unacknowledged());
  return acknowledger.failure();
}

PushReport Pusher::Push(const PushTarget& target, const std::function<bool()>& keep_alive) {
  Run run(target);
  auto started = std::chrono::steady_clock::now();
  run.deadline = std::chrono::system_clock::now() + options_.max_duration;
  backlog_.Observe(target.backlog);

  // Renews the lease (and the schedule's claim) while the push runs; a lost lease stops it.
  PeriodicTask keep_alive_task(
      "push-keep-alive", options_.keep_alive_every,
      [&] {
        if (run.Stopped()) return;
        bool keep = false;
        try {
          keep = keep_alive();
        } catch (const std::exception& e) {
          log::Warn("push keep-alive failed", {{"aor", target.aor}, {"error", e.what()}});
        }
        if (!keep) run.Stop();
      },
      /*run_first=*/false);

  if (OpenRelaySession(run) && Invite(run) && ConnectRelaySession(run)) Transfer(run);
  if (run.Stopped()) {
    run.Fail(PushReport::Stage::kTransfer,
             grpc::Status(grpc::StatusCode::CANCELLED, "the user's lease was lost"), nullptr);
  }
  Finish(run);
  keep_alive_task.Stop();

  PushReport& report = run.report;
  report.stopped = run.Stopped();
  const char* result = report.stopped ? "stopped" : StageName(report.stage);
  if (report.stage == PushReport::Stage::kDone && report.delivered < report.sent) {
    result = "interrupted";
  }
  sessions_
      .Add({{"result", result},
            {"code", report.status.ok() ? "OK" : StatusCodeName(report.status.error_code())}})
      .Increment();
  duration_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  log::Info("push finished", {{"aor", target.aor},
                              {"run", target.run_id},
                              {"result", result},
                              {"sent", std::to_string(report.sent)},
                              {"delivered", std::to_string(report.delivered)},
                              {"rejected", std::to_string(report.rejected)},
                              {"grpc", report.status.error_message()}});
  return report;
}

bool Pusher::OpenRelaySession(Run& run) {
  grpc::ClientContext context;
  SetDeadline(context, options_.relay_timeout);
  v1::RelayOpenSessionRequest request;
  request.mutable_aor()->set_uri(run.target.aor);
  request.set_run_id(run.target.run_id);
  v1::RelayOpenSessionResponse response;
  grpc::Status status = relay_->OpenSession(&context, request, &response);
  if (!status.ok()) return run.Fail(PushReport::Stage::kOpen, status, &context);
  if (response.relay_address().empty() || response.session_id().empty()) {
    return run.Fail(
        PushReport::Stage::kOpen,
        grpc::Status(grpc::StatusCode::INTERNAL, "the relay named no session or no address for it"),
        nullptr);
  }
  run.session_id = response.session_id();
  run.relay_address = response.relay_address();
  run.sdp_offer = response.sdp_offer();
  return true;
}

bool Pusher::Invite(Run& run) {
  grpc::ClientContext context;
  SetDeadline(context, options_.invite_timeout);
  if (!run.Watch(context)) return false;
  v1::EdgeControlStartPushSessionRequest request;
  request.mutable_target()->mutable_aor()->set_uri(run.target.aor);
  request.mutable_target()->set_contact_uri(run.target.client.contact_uri());
  request.set_sdp_offer(run.sdp_offer);
  request.set_run_id(run.target.run_id);
  v1::EdgeControlStartPushSessionResponse response;
  grpc::Status status =
      edges_.At(run.target.client.edge_address()).StartPushSession(&context, request, &response);
  run.Unwatch(context);
  if (!status.ok()) return run.Fail(PushReport::Stage::kInvite, status, &context);
  run.report.sip = response.sip();
  run.dialog_id = response.dialog_id();
  run.sdp_answer = response.sdp_answer();
  return true;
}

bool Pusher::ConnectRelaySession(Run& run) {
  grpc::ClientContext context;
  // The client may be the one to connect (a=setup:active): give it the relay's own time.
  SetDeadline(context, 2 * options_.relay_timeout);
  if (!run.Watch(context)) return false;
  v1::RelayConnectSessionRequest request;
  request.set_session_id(run.session_id);
  request.set_sdp_answer(run.sdp_answer);
  v1::RelayConnectSessionResponse response;
  grpc::Status status = relays_.At(run.relay_address).ConnectSession(&context, request, &response);
  run.Unwatch(context);
  if (!status.ok()) return run.Fail(PushReport::Stage::kConnect, status, &context);
  // With an MSRP relay between DIMS and the client (a path of several URIs), a 200 only says
  // the next hop took the SEND: only the client's success REPORT confirms it (RFC 4975 7.1.2).
  run.through_msrp_relay = response.peer_path_size() > 1;
  return true;
}

void Pusher::Transfer(Run& run) {
  PushReport& report = run.report;
  grpc::ClientContext fetch_context;
  fetch_context.set_deadline(run.deadline);
  grpc::ClientContext push_context;
  push_context.set_deadline(run.deadline);
  if (!run.Watch(fetch_context) || !run.Watch(push_context)) return;

  v1::StorageFetchRequest fetch_request;
  fetch_request.mutable_recipient()->set_uri(run.target.aor);
  auto fetch = storage_->Fetch(&fetch_context, fetch_request);
  auto push = relays_.At(run.relay_address).Push(&push_context);

  Acknowledger acknowledger(*storage_, run.target, options_.ack_linger);
  uint32_t reported = 0;  // results read, of any outcome
  std::thread results([&] {
    v1::RelayPushResponse response;
    std::vector<std::string> delivered;
    while (push->Read(&response)) {
      reported += static_cast<uint32_t>(response.results_size());
      for (auto& result : *response.mutable_results()) {
        bytes_.Increment(static_cast<double>(result.bytes_sent()));
        switch (result.outcome()) {
          case v1::PUSH_OUTCOME_DELIVERED:
            delivered.push_back(std::move(*result.mutable_message_id()));
            break;
          case v1::PUSH_OUTCOME_REJECTED:
            ++report.rejected;
            messages_rejected_.Increment();
            if (result.msrp_status() != 0) report.msrp_status = result.msrp_status();
            break;
          default:
            messages_failed_.Increment();
            if (result.msrp_status() != 0) report.msrp_status = result.msrp_status();
            break;
        }
      }
      acknowledger.Add(std::move(delivered));
      delivered.clear();
    }
  });

  v1::RelayPushRequest item;
  auto* start = item.mutable_start();
  start->set_session_id(run.session_id);
  start->set_max_in_flight(options_.window);
  start->set_request_success_report(run.through_msrp_relay);
  start->set_run_id(run.target.run_id);
  bool writing = push->Write(item);
  v1::StorageFetchResponse fetched;
  bool fetch_ended = false;
  while (writing && !acknowledger.failed()) {
    if (!fetch->Read(&fetched)) {
      fetch_ended = true;
      break;
    }
    if (fetched.messages().empty()) continue;
    // Each batch storage sends goes to the relay as it is.
    item.Clear();
    item.mutable_messages()->mutable_messages()->Swap(fetched.mutable_messages());
    writing = push->Write(item);
    if (writing) {
      uint32_t count = static_cast<uint32_t>(item.messages().messages_size());
      report.sent += count;
      messages_sent_.Increment(count);
    }
  }
  if (!fetch_ended) fetch_context.TryCancel();  // the relay's stream broke first
  grpc::Status fetch_status = fetch->Finish();
  push->WritesDone();
  results.join();
  grpc::Status push_status = push->Finish();
  run.Unwatch(fetch_context);
  run.Unwatch(push_context);

  report.delivered = acknowledger.Close();
  report.unacknowledged = std::move(acknowledger.unacknowledged());
  messages_delivered_.Increment(report.delivered);
  // An item the relay had not taken when the push ended gets no results: not confirmed either.
  if (reported < report.sent) messages_failed_.Increment(report.sent - reported);
  if (!push_status.ok()) {
    run.Fail(PushReport::Stage::kTransfer, push_status, &push_context);
  } else if (fetch_ended && !fetch_status.ok()) {
    run.Fail(PushReport::Stage::kTransfer, fetch_status, &fetch_context);
  } else if (!acknowledger.failure().ok()) {
    run.Fail(PushReport::Stage::kTransfer, acknowledger.failure(), nullptr);
  } else if (report.delivered + report.rejected < report.sent) {
    run.Fail(PushReport::Stage::kTransfer,
             grpc::Status(grpc::StatusCode::ABORTED,
                          std::to_string(report.sent - report.delivered) + " of " +
                              std::to_string(report.sent) + " messages not confirmed"),
             nullptr);
  } else if (report.rejected > 0) {
    // The client refused these for good (an MSRP error status): they stay stored, and a retry
    // would only send them again; the next trigger does.
    run.Fail(PushReport::Stage::kTransfer,
             grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          std::to_string(report.rejected) + " of " + std::to_string(report.sent) +
                              " messages refused by the client"),
             nullptr);
  }
}

void Pusher::Finish(Run& run) {
  const bool ok = run.report.ok() && !run.Stopped();
  if (!run.dialog_id.empty()) {
    grpc::ClientContext context;
    SetDeadline(context, options_.bye_timeout);
    v1::EdgeControlEndSessionRequest request;
    request.set_dialog_id(run.dialog_id);
    request.set_reason(ok ? options_.session_label : "delivery interrupted");
    v1::EdgeControlEndSessionResponse response;
    grpc::Status status =
        edges_.At(run.target.client.edge_address()).EndSession(&context, request, &response);
    if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND) {
      log::Warn("BYE of a push session failed; the session timer ends it",
                {{"aor", run.target.aor}, {"grpc", status.error_message()}});
    }
  }
  if (!run.session_id.empty()) {
    grpc::ClientContext context;
    SetDeadline(context, options_.relay_timeout);
    v1::RelayCloseSessionRequest request;
    request.set_session_id(run.session_id);
    request.set_reason(ok ? v1::CLOSE_REASON_DONE
                       : run.report.stage == PushReport::Stage::kInvite
                           ? v1::CLOSE_REASON_SIP_FAILED
                           : v1::CLOSE_REASON_CANCELLED);
    v1::RelayCloseSessionResponse response;
    grpc::Status status = relays_.At(run.relay_address).CloseSession(&context, request, &response);
    if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND) {
      log::Warn("relay session not closed; the relay reaps it",
                {{"aor", run.target.aor}, {"grpc", status.error_message()}});
    }
  }
}

}  // namespace dims::delivery
