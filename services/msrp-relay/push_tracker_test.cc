#include "push_tracker.h"

#include <gtest/gtest.h>

namespace dims::relay {
namespace {

using dims::v1::PUSH_OUTCOME_DELIVERED;
using dims::v1::PUSH_OUTCOME_FAILED;
using dims::v1::PUSH_OUTCOME_REJECTED;

TEST(PushTrackerTest, DeliveredOnlyOnTheFinalChunksOk) {
  PushTracker tracker(false);
  tracker.Begin(1, "m1", "M1", 10);
  tracker.ChunkSent(1, "t1", 6);
  auto first = tracker.OnResponse("t1", 200, "OK");
  EXPECT_TRUE(first.known);
  EXPECT_FALSE(first.finished);
  tracker.ChunkSent(1, "t2", 4);
  auto last = tracker.OnResponse("t2", 200, "OK");
  ASSERT_TRUE(last.finished);
  EXPECT_EQ(last.finished->outcome, PUSH_OUTCOME_DELIVERED);
  EXPECT_EQ(last.finished->msrp_status, 200u);
  EXPECT_EQ(last.finished->bytes_sent, 10u);
  EXPECT_EQ(tracker.open_messages(), 0u);
  EXPECT_FALSE(tracker.OnResponse("t2", 200, "OK").known);
}

TEST(PushTrackerTest, AFinalChunkAnsweredFirstWaitsForTheEarlierChunks) {
  PushTracker tracker(false);
  tracker.Begin(1, "m1", "M1", 10);
  tracker.ChunkSent(1, "t1", 6);
  tracker.ChunkSent(1, "t2", 4);
  EXPECT_FALSE(tracker.OnResponse("t2", 200, "OK").finished);
  // An earlier chunk still open can fail the message.
  auto step = tracker.OnResponse("t1", 400, "bad chunk");
  ASSERT_TRUE(step.finished);
  EXPECT_EQ(step.finished->outcome, PUSH_OUTCOME_REJECTED);
  EXPECT_EQ(step.transactions, (std::vector<std::string>{"t1", "t2"}));

  tracker.Begin(2, "m2", "M2", 10);
  tracker.ChunkSent(2, "t3", 6);
  tracker.ChunkSent(2, "t4", 4);
  EXPECT_FALSE(tracker.OnResponse("t4", 200, "OK").finished);
  auto delivered = tracker.OnResponse("t3", 200, "OK");
  ASSERT_TRUE(delivered.finished);
  EXPECT_EQ(delivered.finished->outcome, PUSH_OUTCOME_DELIVERED);
}

TEST(PushTrackerTest, ErrorOnAnyChunkRejects) {
  PushTracker tracker(false);
  tracker.Begin(1, "m1", "M1", 10);
  tracker.ChunkSent(1, "t1", 6);
  auto step = tracker.OnResponse("t1", 413, "too big");
  ASSERT_TRUE(step.finished);
  EXPECT_EQ(step.finished->outcome, PUSH_OUTCOME_REJECTED);
  EXPECT_EQ(step.finished->msrp_status, 413u);
  EXPECT_EQ(step.finished->msrp_comment, "too big");
}

TEST(PushTrackerTest, TimeoutFailsWith408) {
  PushTracker tracker(false);
  tracker.Begin(1, "m1", "M1", 3);
  tracker.ChunkSent(1, "t1", 3);
  auto step = tracker.OnTimeout("t1");
  ASSERT_TRUE(step.finished);
  EXPECT_EQ(step.finished->outcome, PUSH_OUTCOME_FAILED);
  EXPECT_EQ(step.finished->msrp_status, 408u);
  EXPECT_FALSE(tracker.OnTimeout("t1").known);
}

TEST(PushTrackerTest, WithSuccessReportsTheReportDecides) {
  PushTracker tracker(true);
  tracker.Begin(1, "m1", "M1", 5);
  tracker.ChunkSent(1, "t1", 5);
  auto ok = tracker.OnResponse("t1", 200, "OK");
  EXPECT_FALSE(ok.finished);
  EXPECT_TRUE(ok.awaiting_report);
  EXPECT_FALSE(tracker.OnReport("M1", {0, 200, "OK"}, {1, 3, 5}).finished);  // partial
  auto report = tracker.OnReport("M1", {0, 200, "OK"}, {1, 5, 5});
  ASSERT_TRUE(report.finished);
  EXPECT_EQ(report.finished->outcome, PUSH_OUTCOME_DELIVERED);
  // The step names the message's transactions, so that the timer awaiting the REPORT goes.
  EXPECT_EQ(report.transactions, std::vector<std::string>{"t1"});

  tracker.Begin(2, "m2", "M2", 5);
  tracker.ChunkSent(2, "t2", 5);
  tracker.OnResponse("t2", 200, "OK");
  auto timeout = tracker.OnTimeout("t2");
  ASSERT_TRUE(timeout.finished);
  EXPECT_EQ(timeout.finished->outcome, PUSH_OUTCOME_FAILED);

  tracker.Begin(3, "m3", "M3", 5);
  tracker.ChunkSent(3, "t3", 5);
  auto negative = tracker.OnReport("M3", {0, 415, "Unsupported"}, {1, 5, 5});
  ASSERT_TRUE(negative.finished);
  EXPECT_EQ(negative.finished->outcome, PUSH_OUTCOME_REJECTED);
  EXPECT_EQ(negative.finished->msrp_status, 415u);
}

TEST(PushTrackerTest, FailAllInRequestOrder) {
  PushTracker tracker(false);
  tracker.Begin(2, "m2", "M2", 1);
  tracker.Begin(1, "m1", "M1", 1);
  tracker.ChunkSent(1, "t1", 1);
  auto failed = tracker.FailAll(0, "connection lost");
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[0].message_id, "m1");
  EXPECT_EQ(failed[1].message_id, "m2");
  EXPECT_EQ(failed[0].outcome, PUSH_OUTCOME_FAILED);
  EXPECT_EQ(tracker.open_messages(), 0u);
  EXPECT_FALSE(tracker.OnResponse("t1", 200, "OK").known);
}

}  // namespace
}  // namespace dims::relay
