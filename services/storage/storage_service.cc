#include "storage_service.h"

#include <set>

#include "bus_event.h"
#include "bus_events.h"
#include "log.h"

namespace dims::storage {
namespace {

using grpc::Status;
using grpc::StatusCode;
namespace v1 = dims::v1;

constexpr int kMaxIdsPerCall = 1000;
constexpr int kFetchPage = 32;
// A Fetch response carries messages up to this size (always at least one), and at most a page.
constexpr size_t kFetchResponseBytes = 1 << 20;

// RESOURCE_EXHAUSTED naming the limit, in the message and in ErrorDetail.limit.
Status QuotaExceeded(grpc::CallbackServerContext* context, const StoreLimits& limits,
                     const std::string& limit) {
  v1::ErrorDetail detail;
  detail.set_reason("QUOTA_EXCEEDED");
  detail.set_limit(limit);
  return Fail(context, StatusCode::RESOURCE_EXHAUSTED, DescribeLimit(limits, limit),
              std::move(detail));
}

void ToProto(const StoredMessage& m, v1::DeferredMessage* out) {
  out->set_message_id(m.message_id);
  out->mutable_recipient()->set_uri(m.recipient);
  out->set_kind(m.kind == MessageKind::kLarge ? v1::MESSAGE_KIND_LARGE : v1::MESSAGE_KIND_PAGER);
  ToTimestamp(m.received_at, out->mutable_received_at());
  ToTimestamp(m.expires_at, out->mutable_expires_at());
  ToHeaders(m.headers, out->mutable_headers());
  out->set_size_bytes(static_cast<uint64_t>(m.size_bytes));
  out->set_is_new(m.is_new);
  if (m.content) {
    if (m.kind == MessageKind::kLarge) {
      out->mutable_large()->ParseFromString(*m.content);
    } else {
      out->set_sip_request(*m.content);
    }
  }
}

Status Unavailable(grpc::CallbackServerContext* context, const std::string& why) {
  return Fail(context, StatusCode::UNAVAILABLE, why, "UNAVAILABLE");
}

std::optional<std::vector<std::string>> MessageIds(
    const google::protobuf::RepeatedPtrField<std::string>& ids,
    grpc::CallbackServerContext* context, Status* error) {
  if (ids.size() > kMaxIdsPerCall) {
    *error = Fail(context, StatusCode::INVALID_ARGUMENT,
                  "at most " + std::to_string(kMaxIdsPerCall) + " message ids per call",
                  "TOO_MANY_IDS", "message_ids");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& id : ids) {
    auto normal = NormalizeMessageId(id);
    if (!normal) {
      *error = Fail(context, StatusCode::INVALID_ARGUMENT,
                    "'" + id + "' is not a Message-ID of the form <digits>@<host>",
                    "INVALID_MESSAGE_ID", "message_ids");
      return std::nullopt;
    }
    out.push_back(*normal);
  }
  return out;
}

// One Message-ID argument, normalised; otherwise finishes the call with INVALID_ARGUMENT.
std::optional<std::string> MessageIdOrFinish(const std::string& raw,
                                             grpc::CallbackServerContext* context,
                                             grpc::ServerUnaryReactor* reactor) {
  auto id = NormalizeMessageId(raw);
  if (!id) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                         "message_id must be <digits>@<host>", "INVALID_MESSAGE_ID", "message_id"));
  }
  return id;
}

// Finishes a call whose group commit failed (true then): UNAVAILABLE when the database was
// away, INTERNAL otherwise.
template <typename Outcome>
bool FinishedAsFailed(const CommitResult<Outcome>& result, const std::string& nothing_done,
                      grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor) {
  switch (result.status) {
    case CommitResult<Outcome>::Status::kOk:
      return false;
    case CommitResult<Outcome>::Status::kUnavailable:
      reactor->Finish(Unavailable(context, nothing_done + ": " + result.error));
      return true;
    case CommitResult<Outcome>::Status::kInternal:
      break;
  }
  reactor->Finish(Status(StatusCode::INTERNAL, nothing_done + ": " + result.error));
  return true;
}

// Ack and Delete answer alike.
template <typename Response>
void ToResponse(const RemovalResult& r, Response* response) {
  for (const auto& id : r.removed) response->add_removed(id);
  for (const auto& id : r.already_gone) response->add_already_gone(id);
  response->set_store_version(static_cast<uint64_t>(r.store_version));
}

Status MessageNotFound(grpc::CallbackServerContext* context, const std::string& recipient,
                       const std::string& id) {
  return Fail(context, StatusCode::NOT_FOUND,
              "no message " + id + " for " + recipient +
                  " (never stored, or delivered, deleted or expired)",
              "MESSAGE_NOT_FOUND");
}

}  // namespace

StorageService::StorageService(DeferredStore& store, StoreBatcher& batcher, AckBatcher& acks,
                               WorkerPool& workers, StoreLimits limits, RetentionPolicy retention)
    : store_(store),
      batcher_(batcher),
      acks_(acks),
      workers_(workers),
      limits_(limits),
      retention_(retention) {}

grpc::ServerUnaryReactor* StorageService::Store(grpc::CallbackServerContext* context,
                                                const v1::StorageStoreRequest* request,
                                                v1::StorageStoreResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto recipient = AorOrFinish(request->recipient(), "recipient", context, reactor);
  if (!recipient) return reactor;
  const auto& h = request->headers();
  if (h.call_id().empty()) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                         "headers.call_id is required (it is part of the dedupe key)",
                         "MISSING_CALL_ID", "headers.call_id"));
    return reactor;
  }
  for (const auto* text : {&h.from(), &h.to(), &h.p_asserted_identity(), &h.subject(), &h.date(),
                           &h.priority(), &h.call_id(), &h.content_type()}) {
    if (!IsStorableText(*text)) {
      reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                           "a header value is not UTF-8 text without NUL", "INVALID_HEADER",
                           "headers"));
      return reactor;
    }
  }
  NewMessage m;
  m.recipient = *recipient;
  m.reason = static_cast<int>(request->reason());
  m.headers = {h.from(),     h.to(),      h.p_asserted_identity(), h.subject(), h.date(),
               h.priority(), h.call_id(), h.content_type(),        h.cseq()};
  switch (request->content_case()) {
    case v1::StorageStoreRequest::kSipRequest:
      if (request->sip_request().empty()) {
        reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT, "sip_request is empty",
                             "MISSING_CONTENT", "sip_request"));
        return reactor;
      }
      m.kind = MessageKind::kPager;
      m.content = request->sip_request();
      m.size_bytes = PagerBodySize(m.content);
      break;
    case v1::StorageStoreRequest::kLarge:
      if (request->large().msrp_message_id().empty()) {
        reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                             "large.msrp_message_id is required (it is part of the dedupe key)",
                             "MISSING_MSRP_MESSAGE_ID", "large.msrp_message_id"));
        return reactor;
      }
      if (!IsStorableText(request->large().msrp_message_id())) {
        reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                             "large.msrp_message_id is not UTF-8 text", "INVALID_HEADER",
                             "large.msrp_message_id"));
        return reactor;
      }
      m.kind = MessageKind::kLarge;
      m.msrp_message_id = request->large().msrp_message_id();
      m.size_bytes = static_cast<int64_t>(request->large().content().size());
      m.content = request->large().SerializeAsString();
      break;
    default:
      reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                           "no content: set sip_request (pager) or large", "MISSING_CONTENT",
                           "content"));
      return reactor;
  }
  if (m.size_bytes > limits_.max_message_bytes) {
    reactor->Finish(QuotaExceeded(context, limits_, "MESSAGE_BYTES"));
    return reactor;
  }
  std::optional<std::chrono::seconds> requested;
  if (request->has_retention()) requested = std::chrono::seconds(request->retention().seconds());
  auto retention =
      EffectiveRetention(requested, retention_.default_retention, retention_.max_retention);
  if (!retention) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT, "retention must be positive",
                         "INVALID_RETENTION", "retention"));
    return reactor;
  }
  m.received_at = request->has_received_at() ? FromTimestamp(request->received_at()) : Clock::now();
  m.expires_at = Clock::now() + *retention;

  bool queued = batcher_.Submit(
      std::move(m), [context, reactor, response, limits = limits_](const StoreResult& result) {
        if (FinishedAsFailed(result, "nothing stored", context, reactor)) return;
        const StoreOutcome& o = result.outcome;
        if (o.result == StoreOutcome::Result::kOverLimit) {
          reactor->Finish(QuotaExceeded(context, limits, o.limit));
          return;
        }
        response->set_message_id(o.message_id);
        response->set_duplicate(o.result == StoreOutcome::Result::kDuplicate);
        ToTimestamp(o.received_at, response->mutable_received_at());
        ToTimestamp(o.expires_at, response->mutable_expires_at());
        response->set_store_version(static_cast<uint64_t>(o.store_version));
        reactor->Finish(Status::OK);
      });
  if (!queued) reactor->Finish(Unavailable(context, "storage is overloaded; nothing stored"));
  return reactor;
}

grpc::ServerUnaryReactor* StorageService::GetSummary(grpc::CallbackServerContext* context,
                                                     const v1::StorageGetSummaryRequest* request,
                                                     v1::StorageGetSummaryResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto recipient = AorOrFinish(request->recipient(), "recipient", context, reactor);
  if (!recipient) return reactor;
  int max_entries = std::clamp(request->max_entries(), 0, 100);
  RunOnPool(workers_, context, reactor, [this, recipient = *recipient, max_entries, response] {
    // One more entry than asked tells whether the list is truncated.
    StoreSummary s = store_.Summary(recipient, max_entries ? max_entries + 1 : 0);
    auto* out = response->mutable_summary();
    out->mutable_aor()->set_uri(recipient);
    out->set_version(static_cast<uint64_t>(s.version));
    auto fill = [](const KindCounts& k, v1::KindCounts* o) {
      o->set_new_count(k.new_count);
      o->set_old_count(k.old_count);
      o->set_urgent_new_count(k.urgent_new);
      o->set_urgent_old_count(k.urgent_old);
      o->set_size_bytes(static_cast<uint64_t>(k.bytes));
    };
    fill(s.pager, out->mutable_pager());
    fill(s.large, out->mutable_large());
    out->set_new_count(s.pager.new_count + s.large.new_count);
    out->set_old_count(s.pager.old_count + s.large.old_count);
    out->set_total_bytes(static_cast<uint64_t>(s.pager.bytes + s.large.bytes));
    if (s.oldest) ToTimestamp(*s.oldest, out->mutable_oldest_received_at());
    if (s.newest) ToTimestamp(*s.newest, out->mutable_newest_received_at());
    for (size_t i = 0; i < s.entries.size() && static_cast<int>(i) < max_entries; ++i) {
      ToSummaryEntry(s.entries[i], out->add_entries());
    }
    out->set_entries_truncated(static_cast<int>(s.entries.size()) > max_entries);
    return Status::OK;
  });
  return reactor;
}

grpc::ServerUnaryReactor* StorageService::List(grpc::CallbackServerContext* context,
                                               const v1::StorageListRequest* request,
                                               v1::StorageListResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto recipient = AorOrFinish(request->recipient(), "recipient", context, reactor);
  if (!recipient) return reactor;
  if (request->page_size() < 0) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT, "page_size must not be negative",
                         "INVALID_PAGE_SIZE", "page_size"));
    return reactor;
  }
  int page_size = request->page_size() == 0 ? 50 : std::min(request->page_size(), 100);
  int kind = static_cast<int>(request->kind());
  int64_t after = 0;
  if (!request->page_token().empty()) {
    auto decoded = DecodePageToken(request->page_token(), *recipient, kind);
    if (!decoded) {
      reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                           "page_token was not issued for this recipient and kind",
                           "INVALID_PAGE_TOKEN", "page_token"));
      return reactor;
    }
    after = *decoded;
  }
  bool full = request->view() == v1::MESSAGE_VIEW_FULL;
  RunOnPool(workers_, context, reactor,
            [this, recipient = *recipient, after, page_size, kind, full, response] {
              auto page = store_.List(recipient, after, page_size + 1, kind, full, {});
              for (size_t i = 0; i < page.size() && static_cast<int>(i) < page_size; ++i) {
                ToProto(page[i], response->add_messages());
              }
              if (static_cast<int>(page.size()) > page_size) {
                response->set_next_page_token(EncodePageToken(
                    page[static_cast<size_t>(page_size) - 1].number, recipient, kind));
              }
              return Status::OK;
            });
  return reactor;
}

grpc::ServerUnaryReactor* StorageService::Get(grpc::CallbackServerContext* context,
                                              const v1::StorageGetRequest* request,
                                              v1::StorageGetResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto recipient = AorOrFinish(request->recipient(), "recipient", context, reactor);
  if (!recipient) return reactor;
  auto id = MessageIdOrFinish(request->message_id(), context, reactor);
  if (!id) return reactor;
  bool full = request->view() == v1::MESSAGE_VIEW_FULL;
  RunOnPool(workers_, context, reactor,
            [this, context, recipient = *recipient, id = *id, full, response] {
              auto m = store_.Get(recipient, id, full);
              if (!m) return MessageNotFound(context, recipient, id);
              ToProto(*m, response->mutable_message());
              return Status::OK;
            });
  return reactor;
}

namespace {

// A header field as a SIP message can carry it: a token name, a value on one line.
bool IsHeaderField(const v1::HeaderField& field) {
  if (field.name().empty()) return false;
  for (char ch : field.name()) {
    auto u = static_cast<unsigned char>(ch);
    if (u <= 0x20 || u >= 0x7f || ch == ':') return false;
  }
  return IsStorableText(field.value()) && field.value().find_first_of("\r\n") == std::string::npos;
}

}  // namespace

grpc::ServerUnaryReactor* StorageService::AttachSessionHeaders(
    grpc::CallbackServerContext* context, const v1::StorageAttachSessionHeadersRequest* request,
    v1::StorageAttachSessionHeadersResponse* /*response*/) {
  auto* reactor = context->DefaultReactor();
  auto recipient = AorOrFinish(request->recipient(), "recipient", context, reactor);
  if (!recipient) return reactor;
  auto id = MessageIdOrFinish(request->message_id(), context, reactor);
  if (!id) return reactor;
  if (request->ok_headers().empty() && request->bye_headers().empty()) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                         "nothing to attach: give ok_headers, bye_headers or both",
                         "NOTHING_TO_ATTACH"));
    return reactor;
  }
  for (const auto* list : {&request->ok_headers(), &request->bye_headers()}) {
    for (const auto& field : *list) {
      if (!IsHeaderField(field)) {
        reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                             "header field '" + field.name().substr(0, 64) +
                                 "' is not a token name with a one-line UTF-8 value",
                             "INVALID_HEADER",
                             list == &request->ok_headers() ? "ok_headers" : "bye_headers"));
        return reactor;
      }
    }
  }
  RunOnPool(workers_, context, reactor, [this, context, recipient = *recipient, id = *id, request] {
    auto result = store_.RewriteLargeContent(recipient, id, [request](const std::string& stored) {
      v1::LargeMessageContent content;
      if (!content.ParseFromString(stored)) {
        throw std::runtime_error("stored large-message content does not parse");
      }
      if (!request->ok_headers().empty()) {
        *content.mutable_ok_headers() = request->ok_headers();
      }
      if (!request->bye_headers().empty()) {
        *content.mutable_bye_headers() = request->bye_headers();
      }
      return content.SerializeAsString();
    });
    switch (result) {
      case DeferredStore::RewriteResult::kRewritten:
        return Status::OK;
      case DeferredStore::RewriteResult::kNotLarge:
        return Fail(context, StatusCode::FAILED_PRECONDITION,
                    id + " is a pager-mode message: it has no session headers",
                    "NOT_LARGE_MESSAGE");
      case DeferredStore::RewriteResult::kNotFound:
        break;
    }
    return MessageNotFound(context, recipient, id);
  });
  return reactor;
}

namespace {

// Streams a user's messages page by page: the next page is read only when the previous one has
// been written, so a slow reader holds neither memory nor a database transaction.
class FetchReactor : public grpc::ServerWriteReactor<v1::StorageFetchResponse> {
 public:
  FetchReactor(DeferredStore& store, WorkerPool& pool, std::string recipient,
               std::vector<std::string> ids, int max_messages)
      : store_(store),
        pool_(pool),
        recipient_(std::move(recipient)),
        ids_(std::move(ids)),
        max_messages_(max_messages) {
    LoadPage();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(Status(StatusCode::CANCELLED, "reader went away"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  void LoadPage() {
    bool queued = pool_.Post([this] {
      try {
        page_ = store_.List(recipient_, after_, kFetchPage, 0, true, ids_);
        next_ = 0;
        WriteNext();
      } catch (const StoreUnavailable& e) {
        Finish(Status(StatusCode::UNAVAILABLE, e.what()));
      } catch (const std::exception& e) {
        Finish(Status(StatusCode::INTERNAL, e.what()));
      }
    });
    if (!queued) Finish(Status(StatusCode::UNAVAILABLE, "storage is overloaded; retry later"));
  }

  // Writes what is left of the page, as many messages as fit in one response (a response never
  // spans two pages: at most kFetchPage messages).
  void WriteNext() {
    response_.Clear();
    size_t bytes = 0;
    while (next_ < page_.size() && (max_messages_ == 0 || sent_ < max_messages_)) {
      const StoredMessage& m = page_[next_];
      v1::DeferredMessage message;
      ToProto(m, &message);
      size_t size = message.ByteSizeLong();
      if (response_.messages_size() > 0 && bytes + size > kFetchResponseBytes) break;
      response_.add_messages()->Swap(&message);
      bytes += size;
      after_ = m.number;
      ++next_;
      ++sent_;
    }
    if (response_.messages_size() > 0) {
      StartWrite(&response_);
    } else if ((max_messages_ > 0 && sent_ >= max_messages_) ||
               page_.size() < static_cast<size_t>(kFetchPage)) {
      Finish(Status::OK);
    } else {
      LoadPage();
    }
  }

  DeferredStore& store_;
  WorkerPool& pool_;
  std::string recipient_;
  std::vector<std::string> ids_;
  int max_messages_;
  int sent_ = 0;
  int64_t after_ = 0;
  std::vector<StoredMessage> page_;
  size_t next_ = 0;
  v1::StorageFetchResponse response_;
};

class FailedFetch : public grpc::ServerWriteReactor<v1::StorageFetchResponse> {
 public:
  explicit FailedFetch(const Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<v1::StorageFetchResponse>* StorageService::Fetch(
    grpc::CallbackServerContext* context, const v1::StorageFetchRequest* request) {
  Status error;
  auto recipient = NormalizedAor(request->recipient(), "recipient", context, &error);
  if (!recipient) return new FailedFetch(error);
  auto ids = MessageIds(request->message_ids(), context, &error);
  if (!ids) return new FailedFetch(error);
  if (request->max_messages() < 0) {
    return new FailedFetch(Fail(context, StatusCode::INVALID_ARGUMENT,
                                "max_messages must not be negative", "INVALID_MAX_MESSAGES",
                                "max_messages"));
  }
  return new FetchReactor(store_, workers_, *recipient, *ids, request->max_messages());
}

grpc::ServerUnaryReactor* StorageService::Ack(grpc::CallbackServerContext* context,
                                              const v1::StorageAckRequest* request,
                                              v1::StorageAckResponse* response) {
  auto* reactor = context->DefaultReactor();
  Status error;
  auto recipient = NormalizedAor(request->recipient(), "recipient", context, &error);
  auto ids = recipient ? MessageIds(request->message_ids(), context, &error) : std::nullopt;
  if (!recipient || !ids) {
    reactor->Finish(error);
    return reactor;
  }
  if (ids->empty()) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT, "message_ids is empty",
                         "NOTHING_SELECTED", "message_ids"));
    return reactor;
  }
  bool queued = acks_.Submit({*recipient, std::move(*ids), false, RemovalCause::kDelivered},
                             [context, reactor, response](const AckResult& result) {
                               if (FinishedAsFailed(result, "nothing removed", context, reactor))
                                 return;
                               ToResponse(result.outcome, response);
                               reactor->Finish(Status::OK);
                             });
  if (!queued) reactor->Finish(Unavailable(context, "storage is overloaded; nothing removed"));
  return reactor;
}

grpc::ServerUnaryReactor* StorageService::MarkNotified(
    grpc::CallbackServerContext* context, const v1::StorageMarkNotifiedRequest* request,
    v1::StorageMarkNotifiedResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto recipient = AorOrFinish(request->recipient(), "recipient", context, reactor);
  if (!recipient) return reactor;
  auto through = static_cast<int64_t>(request->through_version());
  RunOnPool(workers_, context, reactor, [this, recipient = *recipient, through, response] {
    response->set_marked_count(store_.MarkNotified(recipient, through));
    return Status::OK;
  });
  return reactor;
}

grpc::ServerUnaryReactor* StorageService::Delete(grpc::CallbackServerContext* context,
                                                 const v1::StorageDeleteRequest* request,
                                                 v1::StorageDeleteResponse* response) {
  auto* reactor = context->DefaultReactor();
  Status error;
  auto recipient = NormalizedAor(request->recipient(), "recipient", context, &error);
  auto ids = recipient ? MessageIds(request->message_ids(), context, &error) : std::nullopt;
  if (!recipient || !ids) {
    reactor->Finish(error);
    return reactor;
  }
  if (ids->empty() && !request->all()) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT, "select message_ids or set all",
                         "NOTHING_SELECTED", "message_ids"));
    return reactor;
  }
  if (!ids->empty() && request->all()) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                         "message_ids and all exclude each other", "AMBIGUOUS_SELECTION", "all"));
    return reactor;
  }
  RemovalCause cause;
  switch (request->actor()) {
    case v1::DELETION_ACTOR_USER:
      cause = RemovalCause::kDeletedByUser;
      break;
    case v1::DELETION_ACTOR_BACKEND:
      cause = RemovalCause::kDeletedByBackend;
      break;
    case v1::DELETION_ACTOR_OPERATOR:
      cause = RemovalCause::kDeletedByOperator;
      break;
    default:
      reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                           "actor must be USER, BACKEND or OPERATOR", "ACTOR_UNSPECIFIED",
                           "actor"));
      return reactor;
  }
  bool all = request->all();
  RunOnPool(workers_, context, reactor,
            [this, recipient = *recipient, ids = *ids, all, cause, response] {
              ToResponse(store_.Remove(recipient, ids, all, cause), response);
              return Status::OK;
            });
  return reactor;
}

grpc::ServerUnaryReactor* StorageService::Purge(grpc::CallbackServerContext* context,
                                                const v1::StoragePurgeRequest* request,
                                                v1::StoragePurgeResponse* response) {
  auto* reactor = context->DefaultReactor();
  RemovalCause cause;
  if (request->basis() == v1::PURGE_BASIS_EXPIRES_AT) {
    cause = RemovalCause::kExpired;
  } else if (request->basis() == v1::PURGE_BASIS_RECEIVED_AT) {
    cause = RemovalCause::kPurged;
  } else {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                         "basis must be EXPIRES_AT or RECEIVED_AT", "BASIS_UNSPECIFIED", "basis"));
    return reactor;
  }
  auto now = Clock::now();
  auto cutoff = request->has_cutoff() ? FromTimestamp(request->cutoff()) : now;
  if (cause == RemovalCause::kPurged && cutoff > now) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                         "a RECEIVED_AT cutoff in the future would remove messages just stored",
                         "CUTOFF_IN_FUTURE", "cutoff"));
    return reactor;
  }
  std::string only;
  if (request->has_recipient()) {
    Status error;
    auto recipient = NormalizedAor(request->recipient(), "recipient", context, &error);
    if (!recipient) {
      reactor->Finish(error);
      return reactor;
    }
    only = *recipient;
  }
  uint32_t max = request->max_messages() == 0 ? 10000 : request->max_messages();
  bool dry_run = request->dry_run();
  log::Info(
      "purge requested",
      {{"basis", request->basis() == v1::PURGE_BASIS_EXPIRES_AT ? "expires_at" : "received_at"},
       {"recipient", only},
       {"dry_run", dry_run},
       {"reason", request->reason()}});
  RunOnPool(workers_, context, reactor, [this, cutoff, cause, only, max, dry_run, response] {
    auto r = store_.Purge(cutoff, cause, only, max, dry_run);
    if (!dry_run && on_purged_) on_purged_(r);
    response->set_purged_messages(r.messages);
    response->set_purged_bytes(r.bytes);
    response->set_users_affected(r.users);
    response->set_more_remaining(r.more_remaining);
    return Status::OK;
  });
  return reactor;
}

}  // namespace dims::storage
