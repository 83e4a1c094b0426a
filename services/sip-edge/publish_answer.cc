#include "publish_answer.h"

namespace dims::edge {

SipAnswer PublishAnswer(const grpc::Status& status, const dims::v1::ErrorDetail& detail,
                        const dims::v1::SettingsPublishResponse& response,
                        const std::string& allowed_events) {
  SipAnswer a;
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      a.status = 200;
      a.phrase = "OK";
      if (!response.etag().empty()) a.etag = response.etag();
      a.expires = static_cast<int>(response.expires().seconds());
      return a;
    case grpc::StatusCode::INVALID_ARGUMENT:
      if (detail.reason() == "BAD_EVENT") {
        a = {489, "Bad Event"};
        a.allow_events = allowed_events;
      } else if (detail.reason() == "UNSUPPORTED_MEDIA_TYPE") {
        a = {415, "Unsupported Media Type"};
        a.accept = kSettingsContentType;
      } else if (detail.reason() == "BODY_TOO_LARGE") {
        a = {413, "Request Entity Too Large"};
      } else {
        // The reason phrase says what is wrong with the document or the request.
        a = {400, status.error_message()};
      }
      return a;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return {412, "Conditional Request Failed"};
    case grpc::StatusCode::OUT_OF_RANGE:
      a = {423, "Interval Too Brief"};
      a.min_expires = static_cast<int>(detail.min_expires().seconds());
      return a;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      a = {503, "Service Unavailable"};
      a.retry_after = kRetryAfterSeconds;
      return a;
    default:
      return {500, "Server Internal Error"};
  }
}

}  // namespace dims::edge
