// How the answer of the settings service to a PUBLISH becomes the SIP answer (RFC 3903,
// settings.proto): pure mapping, unit-tested.
#pragma once

#include <grpcpp/grpcpp.h>

#include "dims/v1/common.pb.h"
#include "dims/v1/settings.pb.h"
#include "sip_answer.h"

namespace dims::edge {

inline constexpr int kRetryAfterSeconds = 5;
inline constexpr const char* kSettingsContentType = "application/poc-settings+xml";

// `detail` is the ErrorDetail from the "dims-error-bin" trailer (empty when absent).
SipAnswer PublishAnswer(const grpc::Status& status, const dims::v1::ErrorDetail& detail,
                        const dims::v1::SettingsPublishResponse& response,
                        const std::string& allowed_events);

}  // namespace dims::edge
