#include "publish_answer.h"

#include <gtest/gtest.h>

namespace dims::edge {
namespace {

dims::v1::ErrorDetail Reason(const std::string& reason) {
  dims::v1::ErrorDetail d;
  d.set_reason(reason);
  return d;
}

TEST(PublishAnswer, OkCarriesTheEntityTagAndTheGrantedInterval) {
  dims::v1::SettingsPublishResponse r;
  r.set_etag("a1b2");
  r.mutable_expires()->set_seconds(1800);
  auto a = PublishAnswer(grpc::Status::OK, {}, r, "poc-settings");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.etag, "a1b2");
  EXPECT_EQ(a.expires, 1800);
}

TEST(PublishAnswer, RemovalAnswersWithoutEntityTag) {
  dims::v1::SettingsPublishResponse r;
  auto a = PublishAnswer(grpc::Status::OK, {}, r, "poc-settings");
  EXPECT_EQ(a.status, 200);
  EXPECT_FALSE(a.etag);
  EXPECT_EQ(a.expires, 0);
}

TEST(PublishAnswer, EachRefusalGetsTheStatusRfc3903Names) {
  dims::v1::SettingsPublishResponse none;
  grpc::Status invalid(grpc::StatusCode::INVALID_ARGUMENT, "active=\"yes\" is not true or false");
  auto bad_event = PublishAnswer(invalid, Reason("BAD_EVENT"), none, "poc-settings, im-settings");
  EXPECT_EQ(bad_event.status, 489);
  EXPECT_EQ(bad_event.allow_events, "poc-settings, im-settings");
  auto media = PublishAnswer(invalid, Reason("UNSUPPORTED_MEDIA_TYPE"), none, "");
  EXPECT_EQ(media.status, 415);
  EXPECT_EQ(media.accept, "application/poc-settings+xml");
  auto schema = PublishAnswer(invalid, Reason("SCHEMA_VIOLATION"), none, "");
  EXPECT_EQ(schema.status, 400);
  EXPECT_EQ(schema.phrase, "active=\"yes\" is not true or false");
  EXPECT_EQ(PublishAnswer(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, ""),
                          Reason("UNKNOWN_ETAG"), none, "")
                .status,
            412);
  dims::v1::ErrorDetail brief = Reason("INTERVAL_TOO_BRIEF");
  brief.mutable_min_expires()->set_seconds(60);
  auto too_brief = PublishAnswer(grpc::Status(grpc::StatusCode::OUT_OF_RANGE, ""), brief, none, "");
  EXPECT_EQ(too_brief.status, 423);
  EXPECT_EQ(too_brief.min_expires, 60);
  for (auto code : {grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::DEADLINE_EXCEEDED,
                    grpc::StatusCode::RESOURCE_EXHAUSTED}) {
    auto busy = PublishAnswer(grpc::Status(code, ""), {}, none, "");
    EXPECT_EQ(busy.status, 503);
    EXPECT_EQ(busy.retry_after, kRetryAfterSeconds);
  }
}

}  // namespace
}  // namespace dims::edge
