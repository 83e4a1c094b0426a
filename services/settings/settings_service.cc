#include "settings_service.h"

#include <hiredis/hiredis.h>

#include <cstdio>
#include <random>

#include "aor.h"
#include "bus_event.h"
#include "log.h"
#include "settings_proto.h"

namespace dims::settings {
namespace {

using grpc::Status;
using grpc::StatusCode;
namespace v1 = dims::v1;

std::string RandomHex(int bytes) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::string out;
  char buf[3];
  for (int i = 0; i < bytes; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(random() & 0xff));
    out += buf;
  }
  return out;
}

v1::PublicationKind ToProto(PublishKind kind) {
  switch (kind) {
    case PublishKind::kInitial:
      return v1::PUBLICATION_KIND_INITIAL;
    case PublishKind::kRefresh:
      return v1::PUBLICATION_KIND_REFRESH;
    case PublishKind::kModify:
      return v1::PUBLICATION_KIND_MODIFY;
    case PublishKind::kRemove:
      return v1::PUBLICATION_KIND_REMOVE;
  }
  return v1::PUBLICATION_KIND_UNSPECIFIED;
}

void FillEffective(const UserSettings& state, v1::ImSettings* out) {
  auto effective = Resolve(state, Clock::now());
  ToProto(effective.values, effective.source, out);
}

}  // namespace

SettingsService::SettingsService(SettingsStore& store, RedisPool& bus, WorkerPool& workers,
                                 SettingsConfig config)
    : store_(store), bus_(bus), workers_(workers), config_(std::move(config)) {}

void SettingsService::Announce(const std::string& aor, const std::string& type,
                               const std::string& event) {
  try {
    auto reply = bus_.Command(AppendEventCommand(aor, type, event));
    if (reply->type == REDIS_REPLY_ERROR) {
      log::Warn("event not appended", {{"type", type}, {"aor", aor}});
    }
  } catch (const std::exception& e) {
    log::Warn("event not appended", {{"type", type}, {"aor", aor}, {"error", e.what()}});
  }
}

grpc::ServerUnaryReactor* SettingsService::Publish(grpc::CallbackServerContext* context,
                                                   const v1::SettingsPublishRequest* request,
                                                   v1::SettingsPublishResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto aor = AorOrFinish(request->aor(), "aor", context, reactor);
  if (!aor) return reactor;
  if (!config_.event_packages.count(request->event_package())) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                         "event package '" + request->event_package() + "' is not served",
                         "BAD_EVENT", "event_package"));
    return reactor;
  }
  PublishRequest publish;
  publish.event_package = request->event_package();
  publish.if_match = request->if_match();
  if (request->has_expires()) {
    if (request->expires().seconds() < 0) {
      reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT, "expires must not be negative",
                           "INVALID_EXPIRES", "expires"));
      return reactor;
    }
    publish.expires = std::chrono::seconds(request->expires().seconds());
  }
  if (!request->body().empty()) {
    if (request->body().size() > config_.max_document_bytes) {
      reactor->Finish(Fail(
          context, StatusCode::INVALID_ARGUMENT,
          "settings document larger than " + std::to_string(config_.max_document_bytes) + " bytes",
          "BODY_TOO_LARGE", "body"));
      return reactor;
    }
    if (!IsSettingsContentType(request->content_type())) {
      reactor->Finish(
          Fail(context, StatusCode::INVALID_ARGUMENT,
               "content type '" + request->content_type() + "' is not application/poc-settings+xml",
               "UNSUPPORTED_MEDIA_TYPE", "content_type"));
      return reactor;
    }
    auto document = ParseSettingsDocument(request->body());
    if (!document.settings) {
      reactor->Finish(
          Fail(context, StatusCode::INVALID_ARGUMENT, document.error, document.reason, "body"));
      return reactor;
    }
    publish.document = document.settings;
  }

  RunOnPool(
      workers_, context, reactor,
      [this, context, aor = *aor, publish, response, call_id = request->call_id()] {
        PublishOutcome outcome;
        auto state = store_.Update(aor, [&](UserSettings& s) {
          outcome =
              ApplyPublish(s, publish, Clock::now(), config_.limits, [] { return RandomHex(12); });
          return outcome.error == PublishOutcome::Error::kNone;
        });
        using Error = PublishOutcome::Error;
        switch (outcome.error) {
          case Error::kNone:
            break;
          case Error::kMissingBody:
            return Fail(context, StatusCode::INVALID_ARGUMENT,
                        "an initial publication needs a settings document", "MISSING_BODY", "body");
          case Error::kRemoveWithoutEtag:
            return Fail(context, StatusCode::INVALID_ARGUMENT,
                        "Expires: 0 removes a publication and needs SIP-If-Match",
                        "REMOVE_WITHOUT_ETAG", "if_match");
          case Error::kUnknownEtag:
            return Fail(context, StatusCode::FAILED_PRECONDITION,
                        "no live publication with entity-tag '" + publish.if_match + "'",
                        "UNKNOWN_ETAG", "if_match");
          case Error::kTooBrief: {
            v1::ErrorDetail detail;
            detail.set_reason("INTERVAL_TOO_BRIEF");
            detail.set_field("expires");
            detail.mutable_min_expires()->set_seconds(config_.limits.min_expires.count());
            return Fail(context, StatusCode::OUT_OF_RANGE,
                        "expires is shorter than the minimum of " +
                            std::to_string(config_.limits.min_expires.count()) + " seconds",
                        std::move(detail));
          }
          case Error::kTooMany: {
            v1::ErrorDetail detail;
            detail.set_reason("TOO_MANY_PUBLICATIONS");
            detail.set_limit("USER_PUBLICATIONS");
            return Fail(context, StatusCode::RESOURCE_EXHAUSTED,
                        "USER_PUBLICATIONS: the user already has " +
                            std::to_string(config_.limits.max_publications) + " live publications",
                        std::move(detail));
          }
        }
        response->set_etag(outcome.etag);
        response->mutable_expires()->set_seconds(outcome.granted.count());
        ToTimestamp(outcome.expires_at, response->mutable_expires_at());
        response->set_kind(ToProto(outcome.kind));
        FillEffective(state, response->mutable_effective());

        v1::BusEvent event = NewBusEvent(config_.producer);
        auto* published = event.mutable_settings_published();
        published->mutable_aor()->set_uri(aor);
        published->set_kind(ToProto(outcome.kind));
        *published->mutable_effective() = response->effective();
        if (outcome.kind != PublishKind::kRemove) {
          ToTimestamp(outcome.expires_at, published->mutable_expires_at());
        }
        Announce(aor, "settings_published", event.SerializeAsString());
        log::Info("settings published", {{"aor", aor},
                                         {"kind", v1::PublicationKind_Name(ToProto(outcome.kind))},
                                         {"call_id", call_id}});
        return Status::OK;
      });
  return reactor;
}

grpc::ServerUnaryReactor* SettingsService::Get(grpc::CallbackServerContext* context,
                                               const v1::SettingsGetRequest* request,
                                               v1::SettingsGetResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto aor = AorOrFinish(request->aor(), "aor", context, reactor);
  if (!aor) return reactor;
  RunOnPool(workers_, context, reactor, [this, aor = *aor, response] {
    auto state = store_.Load(aor);
    FillEffective(state, response->mutable_effective());
    for (const auto& p : NewestFirst(state, Clock::now())) ToProto(p, response->add_publications());
    if (state.backend) ToProto(*state.backend, Source::kBackend, response->mutable_backend());
    return Status::OK;
  });
  return reactor;
}

grpc::ServerUnaryReactor* SettingsService::Put(grpc::CallbackServerContext* context,
                                               const v1::SettingsPutRequest* request,
                                               v1::SettingsPutResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto aor = AorOrFinish(request->aor(), "aor", context, reactor);
  if (!aor) return reactor;
  static const std::set<std::string> kFields = {"incoming_session_barring",
                                                "incoming_pager_large_barring",
                                                "invisibility",
                                                "offline_delivery_active",
                                                "store_session_conversations",
                                                "store_pager_large_conversations"};
  std::set<std::string> mask;
  for (const auto& path : request->update_mask().paths()) {
    if (!kFields.count(path)) {
      reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                           "update_mask path '" + path + "' is not one of the six settings",
                           "INVALID_FIELD_MASK", "update_mask"));
      return reactor;
    }
    mask.insert(path);
  }
  if (mask.empty()) mask = kFields;
  ImSettingsValues given = FromProto(request->settings());
  RunOnPool(workers_, context, reactor, [this, aor = *aor, mask, given, response] {
    auto state = store_.Update(aor, [&](UserSettings& s) {
      ImSettingsValues v = s.backend.value_or(ImSettingsValues{});
      auto pick = [&](const char* name, bool& field, bool value) {
        if (mask.count(name)) field = value;
      };
      pick("incoming_session_barring", v.incoming_session_barring, given.incoming_session_barring);
      pick("incoming_pager_large_barring", v.incoming_pager_large_barring,
           given.incoming_pager_large_barring);
      pick("invisibility", v.invisibility, given.invisibility);
      pick("offline_delivery_active", v.offline_delivery_active, given.offline_delivery_active);
      pick("store_session_conversations", v.store_session_conversations,
           given.store_session_conversations);
      pick("store_pager_large_conversations", v.store_pager_large_conversations,
           given.store_pager_large_conversations);
      s.backend = v;
      return true;
    });
    ToProto(*state.backend, Source::kBackend, response->mutable_backend());
    FillEffective(state, response->mutable_effective());

    v1::BusEvent event = NewBusEvent(config_.producer);
    auto* updated = event.mutable_settings_updated();
    updated->mutable_aor()->set_uri(aor);
    updated->set_cause(v1::SETTINGS_UPDATE_CAUSE_BACKEND_PUT);
    *updated->mutable_effective() = response->effective();
    Announce(aor, "settings_updated", event.SerializeAsString());
    return Status::OK;
  });
  return reactor;
}

grpc::ServerUnaryReactor* SettingsService::Delete(grpc::CallbackServerContext* context,
                                                  const v1::SettingsDeleteRequest* request,
                                                  v1::SettingsDeleteResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto aor = AorOrFinish(request->aor(), "aor", context, reactor);
  if (!aor) return reactor;
  auto scope = request->scope();
  if (scope != v1::SETTINGS_DELETE_SCOPE_BACKEND &&
      scope != v1::SETTINGS_DELETE_SCOPE_PUBLICATIONS && scope != v1::SETTINGS_DELETE_SCOPE_ALL) {
    reactor->Finish(Fail(context, StatusCode::INVALID_ARGUMENT,
                         "scope must be BACKEND, PUBLICATIONS or ALL", "INVALID_SCOPE", "scope"));
    return reactor;
  }
  log::Info("settings delete requested", {{"aor", *aor},
                                          {"scope", v1::SettingsDeleteScope_Name(scope)},
                                          {"reason", request->reason()}});
  RunOnPool(workers_, context, reactor, [this, aor = *aor, scope, response] {
    bool deleted = false;
    bool backend = scope != v1::SETTINGS_DELETE_SCOPE_PUBLICATIONS;
    bool publications = scope != v1::SETTINGS_DELETE_SCOPE_BACKEND;
    auto state = store_.Update(aor, [&](UserSettings& s) {
      DropExpired(s, Clock::now());
      deleted = (backend && s.backend) || (publications && !s.publications.empty());
      if (backend) s.backend.reset();
      if (publications) s.publications.clear();
      return deleted;
    });
    response->set_deleted(deleted);
    FillEffective(state, response->mutable_effective());
    if (deleted) {
      v1::BusEvent event = NewBusEvent(config_.producer);
      auto* updated = event.mutable_settings_updated();
      updated->mutable_aor()->set_uri(aor);
      updated->set_cause(backend && !publications ? v1::SETTINGS_UPDATE_CAUSE_BACKEND_DELETED
                                                  : v1::SETTINGS_UPDATE_CAUSE_PUBLICATIONS_DELETED);
      *updated->mutable_effective() = response->effective();
      Announce(aor, "settings_updated", event.SerializeAsString());
    }
    return Status::OK;
  });
  return reactor;
}

}  // namespace dims::settings
