#include "settings_proto.h"

namespace dims::settings {

void ToProto(const ImSettingsValues& v, Source source, dims::v1::ImSettings* out) {
  out->set_incoming_session_barring(v.incoming_session_barring);
  out->set_incoming_pager_large_barring(v.incoming_pager_large_barring);
  out->set_invisibility(v.invisibility);
  out->set_offline_delivery_active(v.offline_delivery_active);
  out->set_store_session_conversations(v.store_session_conversations);
  out->set_store_pager_large_conversations(v.store_pager_large_conversations);
  out->set_source(source == Source::kPublished ? dims::v1::SETTINGS_SOURCE_PUBLISHED
                  : source == Source::kBackend ? dims::v1::SETTINGS_SOURCE_BACKEND
                                               : dims::v1::SETTINGS_SOURCE_DEFAULT);
}

ImSettingsValues FromProto(const dims::v1::ImSettings& in) {
  return {in.incoming_session_barring(),
          in.incoming_pager_large_barring(),
          in.invisibility(),
          in.offline_delivery_active(),
          in.store_session_conversations(),
          in.store_pager_large_conversations()};
}

void ToProto(const Publication& p, dims::v1::Publication* out) {
  out->set_etag(p.etag);
  ToProto(p.settings, Source::kPublished, out->mutable_settings());
  ToTimestamp(p.updated_at, out->mutable_updated_at());
  ToTimestamp(p.expires_at, out->mutable_expires_at());
  out->set_event_package(p.event_package);
}

Publication FromProto(const dims::v1::Publication& in) {
  return {in.etag(), FromProto(in.settings()), FromTimestamp(in.updated_at()),
          FromTimestamp(in.expires_at()), in.event_package()};
}

}  // namespace dims::settings
