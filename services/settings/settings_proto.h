// Conversions between the settings domain types and dims.v1 messages.
#pragma once

#include "bus_event.h"
#include "dims/v1/common.pb.h"
#include "dims/v1/settings.pb.h"
#include "publication_rules.h"

namespace dims::settings {

void ToProto(const ImSettingsValues& values, Source source, dims::v1::ImSettings* out);
ImSettingsValues FromProto(const dims::v1::ImSettings& in);
void ToProto(const Publication& p, dims::v1::Publication* out);
Publication FromProto(const dims::v1::Publication& in);

}  // namespace dims::settings
