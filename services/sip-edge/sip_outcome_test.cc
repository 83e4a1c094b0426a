#include "sip_outcome.h"

#include <gtest/gtest.h>

namespace dims::edge {
namespace {

TEST(SipOutcome, FollowsTheEdgeControlContract) {
  using grpc::StatusCode;
  EXPECT_EQ(StatusForSipAnswer(200), StatusCode::OK);
  EXPECT_EQ(StatusForSipAnswer(202), StatusCode::OK);
  EXPECT_EQ(StatusForSipAnswer(408), StatusCode::DEADLINE_EXCEEDED);
  for (int s : {404, 410, 481, 484, 604}) EXPECT_EQ(StatusForSipAnswer(s), StatusCode::NOT_FOUND);
  EXPECT_EQ(StatusForSipAnswer(480), StatusCode::UNAVAILABLE);
  EXPECT_EQ(StatusForSipAnswer(500), StatusCode::UNAVAILABLE);
  EXPECT_EQ(StatusForSipAnswer(503), StatusCode::UNAVAILABLE);
  EXPECT_EQ(StatusForSipAnswer(501), StatusCode::FAILED_PRECONDITION);
  for (int s : {486, 600, 491}) EXPECT_EQ(StatusForSipAnswer(s), StatusCode::ABORTED);
  for (int s : {603, 606, 415, 488, 302, 420}) {
    EXPECT_EQ(StatusForSipAnswer(s), StatusCode::FAILED_PRECONDITION) << s;
  }
  EXPECT_EQ(StatusForSipAnswer(401), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(StatusForSipAnswer(403), StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace dims::edge
