#include "summary_subscriptions.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "aor.h"
#include "bus_event.h"
#include "grpc_client.h"
#include "log.h"
#include "message_summary.h"
#include "sip_outcome.h"

namespace dims::edge {
namespace {

constexpr auto kStorageDeadline = std::chrono::milliseconds(3000);

bool AcceptsSummary(const std::vector<std::string>& accept) {
  if (accept.empty()) return true;  // RFC 6665: the package's default type
  for (const auto& type : accept) {
    if (type == kMessageSummaryContentType || type == "*/*" || type == "application/*") {
      return true;
    }
  }
  return false;
}

// A summary against the newest version sent or waiting on its subscription.
bool IsStale(uint64_t version, bool only_if_newer, uint64_t newest) {
  return version < newest || (only_if_newer && version == newest);
}

}  // namespace

SubscribeVerdict CheckSummarySubscribe(const IncomingSubscribe& in,
                                       const std::set<std::string>& domains,
                                       const SubscriptionLimits& limits) {
  SubscribeVerdict v;
  if (in.event != kMessageSummaryEvent) {
    SipAnswer bad{489, "Bad Event"};
    bad.allow_events = kMessageSummaryEvent;
    v.refusal = bad;
    return v;
  }
  auto target = ParseAor(in.request_uri);
  if (!target.aor) {
    v.refusal = SipAnswer{400, "Bad Request-URI: " + target.error};
    return v;
  }
  if (!domains.count(target.aor->Domain())) {
    v.refusal = SipAnswer{404, "Not Found (domain not served)"};
    return v;
  }
  // The core asserts who the subscriber is; without it, From is all there is.
  auto subscriber = NormalizeAor(in.asserted_identity.empty() ? in.from : in.asserted_identity);
  if (!subscriber || *subscriber != target.aor->ToString()) {
    v.refusal = SipAnswer{403, "Forbidden (only the user may subscribe to their own store)"};
    return v;
  }
  if (!AcceptsSummary(in.accept)) {
    SipAnswer refuse{406, "Not Acceptable"};
    refuse.accept = kMessageSummaryContentType;
    v.refusal = refuse;
    return v;
  }
  int expires = in.expires.value_or(limits.default_expires);
  if (expires > 0 && expires < limits.min_expires) {
    SipAnswer brief{423, "Interval Too Brief"};
    brief.min_expires = limits.min_expires;
    v.refusal = brief;
    return v;
  }
  v.aor = target.aor->ToString();
  v.expires = std::min(expires, limits.max_expires);
  return v;
}

// One subscription, on the SIP loop thread: pending (no dialog yet) from the checks of its
// SUBSCRIBE until it is answered, then accepted.
struct SummarySubscriptions::Subscription {
  std::string id;
  std::string aor;
  uint64_t dialog = 0;  // 0 while pending
  dims::v1::Subscription record;
  uint64_t last_sent_version = 0;
  bool sending = false;
  // The next NOTIFY, waiting for the one in flight (or, while pending, for the immediate
  // NOTIFY); a newer summary replaces it.
  struct Queued {
    NotifyContent content;
    uint64_t version = 0;
    bool only_if_newer = false;
    bool terminate = false;
    NotifyDone done;
  };
  std::optional<Queued> queued;

  bool pending() const { return dialog == 0; }
  NotifyResult Skipped() const {
    NotifyResult stale;
    stale.stale_skipped = true;
    stale.last_sent_version = last_sent_version;
    return stale;
  }
};

// An initial SUBSCRIBE while its record is written and its store summary read.
struct SummarySubscriptions::Request {
  IncomingSubscribe in;
  SubscribeVerdict verdict;
  std::string id;
  grpc::ClientContext context;
  dims::v1::StorageGetSummaryRequest summary_request;
  dims::v1::StorageGetSummaryResponse summary_response;
  grpc::Status status;
  dims::v1::Subscription record;
  bool recorded = false;
};

SummarySubscriptions::SummarySubscriptions(SipStack& stack, RedisPool& redis, WorkerPool& workers,
                                           std::shared_ptr<grpc::Channel> storage,
                                           SubscriptionsConfig config)
    : stack_(stack),
      redis_(redis),
      workers_(workers),
      storage_(dims::v1::Storage::NewStub(storage)),
      config_(std::move(config)) {
  std::random_device random;
  char prefix[24];
  std::snprintf(prefix, sizeof prefix, "%08x%08x", random(), random());
  id_prefix_ = prefix;
}

SummarySubscriptions::~SummarySubscriptions() {
  std::unique_lock lock(mu_);
  idle_.wait_for(lock, std::chrono::seconds(5), [&] { return calls_in_flight_ == 0; });
}

void SummarySubscriptions::Handle(const IncomingSubscribe& in) {
  auto request = std::make_shared<Request>();
  request->in = in;
  request->verdict = CheckSummarySubscribe(in, config_.domains, config_.limits);
  if (request->verdict.refusal) {
    stack_.Respond(in.id, *request->verdict.refusal);
    return;
  }
  request->id = id_prefix_ + "-" + std::to_string(next_id_++);
  if (request->verdict.expires == 0) {  // a one-time fetch: nothing recorded, nothing pending
    ReadSummary(request);
    return;
  }
  // Pending from now on: delivery may find the record and call Notify before the SUBSCRIBE is
  // answered, and must not be told that the subscription does not exist.
  auto subscription = std::make_unique<Subscription>();
  subscription->id = request->id;
  subscription->aor = request->verdict.aor;
  by_id_[request->id] = std::move(subscription);
  // The record before the summary: a store change that delivery handled without seeing the
  // record happened before the summary was read, so the immediate NOTIFY shows it.
  bool posted = workers_.Post([this, request] {
    dims::v1::Subscription record;
    record.mutable_aor()->set_uri(request->verdict.aor);
    record.set_subscription_id(request->id);
    record.set_event_package(kMessageSummaryEvent);
    ToTimestamp(std::chrono::system_clock::now() + std::chrono::seconds(request->verdict.expires),
                record.mutable_expires_at());
    record.set_contact_uri(request->in.contact);
    record.set_edge_instance_id(config_.edge_instance_id);
    record.set_edge_address(config_.edge_address);
    try {
      WriteRecord(record);
      request->record = record;
      request->recorded = true;
    } catch (const RedisError& e) {
      log::Warn("subscription not recorded", {{"aor", request->verdict.aor}, {"error", e.what()}});
    }
    if (request->recorded) {
      ReadSummary(request);
    } else {
      stack_.Post([this, request] { Accept(request); });
    }
  });
  if (!posted) Accept(request);  // not recorded: refused
}

void SummarySubscriptions::ReadSummary(const std::shared_ptr<Request>& request) {
  auto& r = request->summary_request;
  r.mutable_recipient()->set_uri(request->verdict.aor);
  r.set_max_entries(config_.summary_entries);
  SetDeadline(request->context, kStorageDeadline);
  request->context.set_wait_for_ready(true);
  {
    std::lock_guard lock(mu_);
    ++calls_in_flight_;
  }
  storage_->async()->GetSummary(&request->context, &request->summary_request,
                                &request->summary_response, [this, request](grpc::Status status) {
                                  request->status = std::move(status);
                                  stack_.Post([this, request] { Accept(request); });
                                  std::lock_guard lock(mu_);
                                  --calls_in_flight_;
                                  idle_.notify_all();
                                });
}

void SummarySubscriptions::Accept(const std::shared_ptr<Request>& request) {
  const auto& in = request->in;
  bool fetch = request->verdict.expires == 0;
  std::optional<SipAnswer> refusal;
  if (!request->status.ok()) {
    log::Info("SUBSCRIBE refused: summary not read",
              {{"aor", request->verdict.aor}, {"grpc", request->status.error_message()}});
    refusal = ServiceUnavailable("Service Unavailable (deferred store unavailable)");
  } else if (!fetch && !request->recorded) {
    refusal = ServiceUnavailable("Service Unavailable (subscription not recorded)");
  }
  if (refusal) {
    stack_.Respond(in.id, *refusal);
    // The pending subscription goes, with its record if written; a Notify waiting on it hears
    // NOT_FOUND, as it would have without the pending state.
    if (!fetch) Forget(request->id);
    return;
  }
  const auto& summary = request->summary_response.summary();
  NotifyContent first{kMessageSummaryEvent, kMessageSummaryContentType,
                      RenderMessageSummary(summary), fetch, fetch ? "timeout" : ""};
  std::string aor = request->verdict.aor;
  uint64_t version = summary.version();
  if (fetch) {
    stack_.AcceptSubscription(in.id, 0, first, [this, aor, version](const SentAnswer& answer) {
      if (answer.status >= 200 && answer.status < 300) MarkNotified(aor, version);
    });
    return;
  }
  // Only Accept removes a pending subscription, so it is still there.
  Subscription& s = *by_id_.at(request->id);
  uint64_t dialog = stack_.AcceptSubscription(in.id, request->verdict.expires, first,
                                              AfterNotify(s.id, aor, version, false, nullptr));
  if (dialog == 0) {  // the SUBSCRIBE was answered meanwhile (guard timer)
    Forget(request->id);
    return;
  }
  // A Notify queued while pending follows once the immediate NOTIFY is answered, unless it is
  // stale against this version (SendNext).
  s.dialog = dialog;
  s.record = request->record;
  s.last_sent_version = version;
  s.sending = true;
  id_of_dialog_[dialog] = s.id;
  log::Info("message-summary subscription accepted",
            {{"aor", aor}, {"subscription", s.id}, {"expires", request->verdict.expires}});
}

void SummarySubscriptions::OnChange(const SubscriptionChange& change) {
  auto it = id_of_dialog_.find(change.dialog);
  if (it == id_of_dialog_.end()) return;
  auto sub = by_id_.find(it->second);
  if (sub == by_id_.end()) return;
  if (change.terminated) {
    Forget(it->second);
    return;
  }
  dims::v1::Subscription& record = sub->second->record;
  ToTimestamp(std::chrono::system_clock::now() + std::chrono::seconds(change.expires),
              record.mutable_expires_at());
  workers_.Post([this, record = record] {
    try {
      WriteRecord(record);
    } catch (const RedisError& e) {
      log::Warn("subscription refresh not recorded",
                {{"aor", record.aor().uri()}, {"error", e.what()}});
    }
  });
}

void SummarySubscriptions::Notify(const std::string& subscription_id, const std::string& aor,
                                  std::optional<dims::v1::StoreSummary> summary,
                                  std::optional<std::string> terminate_reason, bool only_if_newer,
                                  NotifyDone done) {
  auto it = by_id_.find(subscription_id);
  if (it == by_id_.end()) {
    NotifyResult gone;
    gone.status = grpc::Status(grpc::StatusCode::NOT_FOUND,
                               "no subscription " + subscription_id + " at this edge instance");
    gone.detail.set_reason("UNKNOWN_SUBSCRIPTION");
    done(gone);
    return;
  }
  Subscription& s = *it->second;
  if (s.aor != aor) {
    NotifyResult mismatch;
    mismatch.status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "the subscription belongs to another user");
    mismatch.detail.set_reason("AOR_MISMATCH");
    done(mismatch);
    return;
  }
  Subscription::Queued next;
  next.done = std::move(done);
  if (terminate_reason) {
    next.terminate = true;
    next.content = {kMessageSummaryEvent, kMessageSummaryContentType,
                    summary ? RenderMessageSummary(*summary) : "", true, *terminate_reason};
  } else {
    next.version = summary->version();
    next.only_if_newer = only_if_newer;
    uint64_t newest = std::max(s.last_sent_version, s.queued ? s.queued->version : 0);
    if (IsStale(next.version, only_if_newer, newest)) {
      next.done(s.Skipped());
      return;
    }
    next.content = {kMessageSummaryEvent, kMessageSummaryContentType,
                    RenderMessageSummary(*summary), false, ""};
  }
  if (s.queued && !s.queued->terminate) {
    // Superseded before it went out: the newer state is what the user will see.
    s.queued->done(s.Skipped());
  }
  if (!s.queued || !s.queued->terminate) s.queued = std::move(next);
  if (!s.pending() && !s.sending) SendNext(s);
}

void SummarySubscriptions::SendNext(Subscription& s) {
  if (!s.queued) return;
  Subscription::Queued next = std::move(*s.queued);
  s.queued.reset();
  // Checked again when its turn comes: the NOTIFY it waited for (the immediate one, for a
  // summary that came while the subscription was pending) may have been at least as new.
  if (!next.terminate && IsStale(next.version, next.only_if_newer, s.last_sent_version)) {
    next.done(s.Skipped());
    return;
  }
  s.sending = true;
  stack_.Notify(s.dialog, next.content,
                AfterNotify(s.id, s.aor, next.version, next.terminate, std::move(next.done)));
}

SipStack::SentCallback SummarySubscriptions::AfterNotify(const std::string& id,
                                                         const std::string& aor, uint64_t version,
                                                         bool terminate, NotifyDone done) {
  return [this, id, aor, version, terminate, done = std::move(done)](const SentAnswer& answer) {
    NotifyResult result;
    result.sip = SipOutcomeOf(answer);
    grpc::StatusCode code = StatusForSipAnswer(answer.status);
    bool ok = code == grpc::StatusCode::OK;
    if (ok && !terminate) MarkNotified(aor, version);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) {
      Subscription& current = *it->second;
      current.sending = false;
      if (ok && !terminate) {
        current.last_sent_version = std::max(current.last_sent_version, version);
      }
      result.last_sent_version = current.last_sent_version;
    }
    if (!ok) {
      result.status = grpc::Status(
          code, "the NOTIFY got " + std::to_string(answer.status) + " " + answer.phrase);
      *result.detail.mutable_sip() = result.sip;
    }
    if (done) done(result);  // none for the immediate NOTIFY
    if (terminate || answer.status == 481) {
      Forget(id);
    } else if (it != by_id_.end()) {
      SendNext(*it->second);
    }
  };
}

void SummarySubscriptions::Forget(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  std::string aor = it->second->aor;
  bool accepted = !it->second->pending();
  if (it->second->queued) {
    NotifyResult gone;
    gone.status = grpc::Status(grpc::StatusCode::NOT_FOUND, "the subscription ended");
    gone.detail.set_reason("UNKNOWN_SUBSCRIPTION");
    it->second->queued->done(gone);
  }
  if (accepted) id_of_dialog_.erase(it->second->dialog);
  by_id_.erase(it);
  workers_.Post([this, aor, id] { EraseRecord(aor, id); });
  if (accepted) {
    log::Info("message-summary subscription ended", {{"aor", aor}, {"subscription", id}});
  }
}

void SummarySubscriptions::WriteRecord(const dims::v1::Subscription& record) {
  const std::string key = SubscriptionsKey(record.aor().uri());
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                     FromTimestamp(record.expires_at()) - std::chrono::system_clock::now())
                     .count();
  std::string ttl = std::to_string(std::max<long long>(1, seconds));
  // The key lives as long as its longest subscription; readers skip expired entries.
  redis_.Pipeline({{"HSET", key, record.subscription_id(), record.SerializeAsString()},
                   {"EXPIRE", key, ttl, "NX"},
                   {"EXPIRE", key, ttl, "GT"}});
}

void SummarySubscriptions::EraseRecord(const std::string& aor, const std::string& id) {
  try {
    redis_.Command({"HDEL", SubscriptionsKey(aor), id});
  } catch (const RedisError& e) {
    log::Warn("subscription record not removed; it expires", {{"aor", aor}, {"error", e.what()}});
  }
}

void SummarySubscriptions::MarkNotified(const std::string& aor, uint64_t version) {
  struct Call {
    grpc::ClientContext context;
    dims::v1::StorageMarkNotifiedRequest request;
    dims::v1::StorageMarkNotifiedResponse response;
  };
  auto call = std::make_shared<Call>();
  call->request.mutable_recipient()->set_uri(aor);
  call->request.set_through_version(version);
  SetDeadline(call->context, kStorageDeadline);
  {
    std::lock_guard lock(mu_);
    ++calls_in_flight_;
  }
  storage_->async()->MarkNotified(
      &call->context, &call->request, &call->response, [this, call](grpc::Status status) {
        if (!status.ok()) {
          log::Debug("MarkNotified failed", {{"grpc", status.error_message()}});
        }
        std::lock_guard lock(mu_);
        --calls_in_flight_;
        idle_.notify_all();
      });
}

}  // namespace dims::edge
