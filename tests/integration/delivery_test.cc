// The delivery service's first part through the whole DIMS set (seeds 000, 002, 004; DESIGN flow
// 4), with real Redis and PostgreSQL, two delivery replicas, sipp and our Sofia-SIP agent: every
// store change reaches a message-summary subscriber as one NOTIFY, however the replicas share the
// events; an IM client without a subscription is told by one notification MESSAGE; an event a
// dead consumer took is handled by another; the Delivery API records triggers and reports state.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dims/v1/delivery.grpc.pb.h"
#include "dims/v1/storage.grpc.pb.h"
#include "dims_stack.h"
#include "sofia_agent.h"
#include "test_clients.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;

class DeliveryTest : public ::testing::Test {
 protected:
  // The whole set with a second delivery replica; `env` goes to every service.
  void Start(const std::map<std::string, std::string>& env = {}) {
    stack_.AddReplica("delivery", "delivery-2");
    auto names = stack_.service_names();
    names.push_back("delivery-2");
    for (const auto& name : names) {
      stack_.StartService(name, env);
      ASSERT_TRUE(stack_.WaitServing(name, 30s)) << name << ": " << stack_.process(name).ReadLog();
    }
    storage_ = dims::v1::Storage::NewStub(NewChannel(stack_.endpoints("storage").grpc_address()));
    delivery_ =
        dims::v1::Delivery::NewStub(NewChannel(stack_.endpoints("delivery-2").grpc_address()));
  }

  SofiaAgent::Options AgentOptions() {
    return {.next_hop = "127.0.0.1:" + std::to_string(stack_.sip_port())};
  }

  int SendMessage(SofiaAgent& from, const std::string& to_user, const std::string& subject) {
    auto answer = from.SendRequest({.method = "MESSAGE",
                                    .request_uri = "sip:" + to_user + "@dims.test",
                                    .from = "<sip:bob@dims.test>",
                                    .to = "<sip:" + to_user + "@dims.test>",
                                    .headers = {{"Subject", subject}},
                                    .content_type = "text/plain",
                                    .body = "about " + subject});
    return answer.status;
  }

  dims::v1::StoreSummary Summary(const std::string& aor) { return StoreSummaryOf(*storage_, aor); }

  dims::v1::DeliveryState State(const std::string& aor) {
    dims::v1::DeliveryGetDeliveryStateRequest request;
    request.mutable_aor()->set_uri(aor);
    dims::v1::DeliveryGetDeliveryStateResponse response;
    grpc::Status status = CallWithDeadline(*delivery_, &dims::v1::Delivery::Stub::GetDeliveryState,
                                           request, &response, nullptr, nullptr, 5s);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return response.state();
  }

  // A delivery counter summed over both replicas.
  double DeliveryCount(const std::string& name, const std::map<std::string, std::string>& labels) {
    double sum = 0;
    for (const char* replica : {"delivery", "delivery-2"}) {
      auto page = HttpGet(stack_.endpoints(replica).metrics_port, "/metrics");
      if (page) sum += MetricSum(*page, name, labels).value_or(0);
    }
    return sum;
  }
  double NotifiesSent() {
    return DeliveryCount("dims_delivery_notifications_total",
                         {{"channel", "notify"}, {"result", "sent"}});
  }

  std::string Logs() {
    return stack_.process("delivery").LogTail(40) + stack_.process("delivery-2").LogTail(40) +
           stack_.process("sip-edge").LogTail(30);
  }

  DimsStack stack_;
  std::unique_ptr<dims::v1::Storage::Stub> storage_;
  std::unique_ptr<dims::v1::Delivery::Stub> delivery_;
};

TEST_F(DeliveryTest, EveryStoreChangeReachesASubscriberAsOneNotifyWithTwoReplicasRunning) {
  Start();
  const std::string aor = "sip:alice@dims.test";
  auto sipp = stack_.StartSipp("subscribe_follow", "u1", 1, 1, "alice");
  ASSERT_TRUE(WaitFor(
      [&] { return !RedisHashValues(stack_.redis().port(), "dims:sub:{" + aor + "}").empty(); },
      20s))
      << sipp.Report();
  SofiaAgent bob(AgentOptions());

  // The first message: one NOTIFY (sipp checks it lists the message as new).
  ASSERT_EQ(SendMessage(bob, "alice", "first"), 202);
  ASSERT_TRUE(WaitFor([&] { return NotifiesSent() == 1; }, 20s)) << Logs() << sipp.Report();
  // Its 200 made the message old (MarkNotified) before the next one arrives.
  ASSERT_TRUE(WaitFor([&] { return Summary(aor).old_count() == 1; }, 10s));

  ASSERT_EQ(SendMessage(bob, "alice", "second"), 202);
  ASSERT_TRUE(WaitFor([&] { return NotifiesSent() == 2; }, 20s)) << Logs() << sipp.Report();

  // Messages leaving the store (store-changed) are announced too.
  dims::v1::StorageDeleteRequest remove;
  remove.mutable_recipient()->set_uri(aor);
  remove.set_all(true);
  remove.set_actor(dims::v1::DELETION_ACTOR_USER);
  dims::v1::StorageDeleteResponse removed;
  ASSERT_TRUE(CallWithDeadline(*storage_, &dims::v1::Storage::Stub::Delete, remove, &removed,
                               nullptr, nullptr, 5s)
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return NotifiesSent() == 3; }, 20s)) << Logs() << sipp.Report();

  // sipp saw exactly these three NOTIFYs after the immediate one, nothing during five quiet
  // seconds, and the final NOTIFY of its removal.
  EXPECT_TRUE(sipp.Passed(60s)) << sipp.Report() << Logs();
  EXPECT_EQ(NotifiesSent(), 3);
  // Both replicas took events; the per-user lease let only one work for alice at a time.
  EXPECT_GE(DeliveryCount("dims_delivery_events_total", {{"result", "scheduled"}}), 3);
  auto state = State(aor);
  EXPECT_EQ(state.decision(), dims::v1::DELIVERY_ACTION_NOTIFY) << state.ShortDebugString();
  EXPECT_EQ(state.last_attempt().outcome(), dims::v1::ATTEMPT_OUTCOME_SUCCEEDED);
  EXPECT_EQ(state.phase(), dims::v1::DELIVERY_PHASE_IDLE);
}

TEST_F(DeliveryTest, AnImClientWithoutASubscriptionIsToldOnceByANotificationMessage) {
  Start();
  const std::string aor = "sip:carol@dims.test";
  SofiaAgent carol(AgentOptions());
  std::mutex mu;
  std::vector<IncomingSipRequest> notifications;
  // The client cannot take chat now (480), so the MESSAGE is stored; it takes notifications.
  carol.OnRequest([&](const IncomingSipRequest& in) {
    if (in.content_type != "application/simple-message-summary") {
      return SofiaAgent::Answer{480, "Temporarily Unavailable"};
    }
    std::lock_guard lock(mu);
    notifications.push_back(in);
    return SofiaAgent::Answer{200, "OK"};
  });
  auto registered =
      carol.Register({.aor = aor, .contact_params = ";+g.oma.sip-im", .expires = 600});
  ASSERT_EQ(registered.status, 200) << registered.raw;
  SofiaAgent bob(AgentOptions());
  ASSERT_EQ(SendMessage(bob, "carol", "lunch"), 202) << Logs();

  auto count = [&] {
    std::lock_guard lock(mu);
    return notifications.size();
  };
  ASSERT_TRUE(WaitFor([&] { return count() == 1; }, 20s)) << Logs();
  {
    std::lock_guard lock(mu);
    const auto& n = notifications[0];
    EXPECT_EQ(n.method, "MESSAGE");
    EXPECT_NE(n.raw.find("Accept-Contact: *;+g.oma.sip-im"), std::string::npos) << n.raw;
    EXPECT_NE(n.body.find("Messages-Waiting: yes"), std::string::npos) << n.body;
    EXPECT_NE(n.body.find("Message-Account: sip:carol@dims.test"), std::string::npos);
    EXPECT_NE(n.body.find("text-message: 1/0"), std::string::npos) << n.body;
    EXPECT_NE(n.body.find("Subject: lunch"), std::string::npos) << n.body;
    EXPECT_NE(n.body.find("From: <sip:bob@dims.test>"), std::string::npos) << n.body;
  }
  // The 200 counts as told: the message is old now, and the state says how it went.
  ASSERT_TRUE(WaitFor([&] { return Summary(aor).old_count() == 1; }, 10s));
  // The outcome is written before the evaluation ends its claim and lease: wait for both.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = State(aor);
        return s.last_attempt().outcome() == dims::v1::ATTEMPT_OUTCOME_SUCCEEDED &&
               s.phase() != dims::v1::DELIVERY_PHASE_RUNNING;
      },
      10s));
  auto state = State(aor);
  EXPECT_EQ(state.decision(), dims::v1::DELIVERY_ACTION_NOTIFY_BY_MESSAGE);
  EXPECT_EQ(state.last_attempt().sip().status_code(), 200u);
  EXPECT_EQ(state.lock().holder_instance_id(), "");

  // Asking again changes nothing: carol has been told about this store.
  dims::v1::DeliveryTriggerRequest trigger;
  trigger.mutable_aor()->set_uri(aor);
  trigger.set_reason(dims::v1::TRIGGER_REASON_OPERATOR);
  dims::v1::DeliveryTriggerResponse triggered;
  ASSERT_TRUE(CallWithDeadline(*delivery_, &dims::v1::Delivery::Stub::Trigger, trigger, &triggered,
                               nullptr, nullptr, 5s)
                  .ok());
  ASSERT_TRUE(WaitFor(
      [&] { return State(aor).last_attempt().trigger() == dims::v1::TRIGGER_REASON_OPERATOR; },
      10s))
      << Logs();
  EXPECT_EQ(State(aor).decision(), dims::v1::DELIVERY_ACTION_NONE);
  EXPECT_EQ(count(), 1u);

  // A second message is news again.
  ASSERT_EQ(SendMessage(bob, "carol", "dinner"), 202);
  ASSERT_TRUE(WaitFor([&] { return count() == 2; }, 20s)) << Logs();
  std::lock_guard lock(mu);
  EXPECT_NE(notifications[1].body.find("text-message: 1/1"), std::string::npos)
      << notifications[1].body;
}

TEST_F(DeliveryTest, EventsADeadConsumerTookAreHandledByAnother) {
  Start({{"DIMS_CLAIM_IDLE_MS", "1000"}});
  const std::string aor = "sip:dave@dims.test";
  SofiaAgent dave(AgentOptions());
  std::atomic<int> told{0};
  dave.OnRequest([&](const IncomingSipRequest& in) {
    if (in.content_type != "application/simple-message-summary") {
      return SofiaAgent::Answer{480, "Temporarily Unavailable"};
    }
    ++told;
    return SofiaAgent::Answer{200, "OK"};
  });
  // Both replicas stop, so that the message's event waits in the stream for the test's consumer.
  for (const char* replica : {"delivery", "delivery-2"}) {
    stack_.process(replica).Signal(SIGTERM);
    ASSERT_TRUE(stack_.process(replica).Wait(20s));
  }
  ASSERT_EQ(dave.Register({.aor = aor, .contact_params = ";+g.oma.sip-im", .expires = 600}).status,
            200);
  SofiaAgent bob(AgentOptions());
  ASSERT_EQ(SendMessage(bob, "dave", "while delivery was away"), 202);
  ASSERT_TRUE(WaitFor(
      [&] { return TakeEventsAndDie(stack_.redis().port(), "delivery", "dead") > 0; }, 10s));

  // A replica comes back: the event is pending at "dead", idle, and is taken over.
  stack_.StartService("delivery", {{"DIMS_CLAIM_IDLE_MS", "1000"}});
  ASSERT_TRUE(stack_.WaitServing("delivery", 30s));
  EXPECT_TRUE(WaitFor([&] { return told == 1; }, 30s)) << stack_.process("delivery").LogTail(40);
  EXPECT_GE(DeliveryCount("dims_delivery_events_total", {{"type", "message_stored"}}), 1);
}

TEST_F(DeliveryTest, ASubscriptionNotRefreshedEndsWithAFinalNotifyAndLeavesRedis) {
  Start({{"DIMS_SUBSCRIBE_MIN_EXPIRES_SECONDS", "1"}});
  const std::string key = "dims:sub:{sip:gina@dims.test}";
  auto sipp = stack_.StartSipp("subscribe_expire", "u1", 1, 1, "gina");
  ASSERT_TRUE(WaitFor([&] { return !RedisHashValues(stack_.redis().port(), key).empty(); }, 20s))
      << sipp.Report();
  EXPECT_TRUE(sipp.Passed(60s)) << sipp.Report() << Logs();
  EXPECT_TRUE(WaitFor([&] { return RedisHashValues(stack_.redis().port(), key).empty(); }, 10s));
}

TEST_F(DeliveryTest, TheDeliveryApiChecksItsArgumentsAndReportsAnUnknownUserIdle) {
  Start();
  dims::v1::DeliveryTriggerRequest trigger;
  trigger.mutable_aor()->set_uri("not an aor");
  trigger.set_reason(dims::v1::TRIGGER_REASON_OPERATOR);
  dims::v1::DeliveryTriggerResponse triggered;
  dims::v1::ErrorDetail detail;
  auto status = CallWithDeadline(*delivery_, &dims::v1::Delivery::Stub::Trigger, trigger,
                                 &triggered, &detail, nullptr, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_EQ(detail.reason(), "INVALID_AOR");

  trigger.mutable_aor()->set_uri("sip:erin@dims.test");
  trigger.set_reason(dims::v1::TRIGGER_REASON_UNSPECIFIED);
  status = CallWithDeadline(*delivery_, &dims::v1::Delivery::Stub::Trigger, trigger, &triggered,
                            &detail, nullptr, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(detail.reason(), "INVALID_REASON");

  auto idle = State("sip:frank@dims.test");
  EXPECT_EQ(idle.phase(), dims::v1::DELIVERY_PHASE_IDLE);
  EXPECT_FALSE(idle.has_last_attempt());

  // A message for someone who is away and subscribed to nothing: nothing can be done, and the
  // event is dropped as it comes in, without an evaluation.
  SofiaAgent bob(AgentOptions());
  ASSERT_EQ(SendMessage(bob, "frank", "while away"), 202);
  EXPECT_TRUE(WaitFor(
      [&] {
        return DeliveryCount("dims_delivery_events_total",
                             {{"type", "message_stored"}, {"result", "unreachable"}}) == 1;
      },
      10s))
      << Logs();
  EXPECT_FALSE(State("sip:frank@dims.test").has_last_attempt());

  // A delayed trigger waits, scheduled, with its time; a second one joins it.
  trigger.set_reason(dims::v1::TRIGGER_REASON_OPERATOR);
  trigger.mutable_delay()->set_seconds(600);
  status = CallWithDeadline(*delivery_, &dims::v1::Delivery::Stub::Trigger, trigger, &triggered,
                            &detail, nullptr, 5s);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_FALSE(triggered.coalesced());
  EXPECT_EQ(triggered.state().phase(), dims::v1::DELIVERY_PHASE_SCHEDULED);
  EXPECT_GT(triggered.state().next_retry_at().seconds(), std::time(nullptr) + 500);
  ASSERT_EQ(triggered.state().pending_triggers_size(), 1);
  EXPECT_EQ(triggered.state().pending_triggers(0), dims::v1::TRIGGER_REASON_OPERATOR);
  status = CallWithDeadline(*delivery_, &dims::v1::Delivery::Stub::Trigger, trigger, &triggered,
                            &detail, nullptr, 5s);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(triggered.coalesced());

  // Without delay it runs now: erin has no client to tell, so nothing is done.
  trigger.clear_delay();
  status = CallWithDeadline(*delivery_, &dims::v1::Delivery::Stub::Trigger, trigger, &triggered,
                            &detail, nullptr, 5s);
  ASSERT_TRUE(status.ok());
  // The outcome is written before the evaluation ends its claim and lease: wait for both.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = State("sip:erin@dims.test");
        return s.has_last_attempt() && s.phase() != dims::v1::DELIVERY_PHASE_RUNNING;
      },
      10s))
      << Logs();
  auto state = State("sip:erin@dims.test");
  EXPECT_EQ(state.phase(), dims::v1::DELIVERY_PHASE_IDLE) << state.ShortDebugString();
  EXPECT_EQ(state.last_attempt().outcome(), dims::v1::ATTEMPT_OUTCOME_SKIPPED);
  EXPECT_EQ(state.decision_reason(), "no subscription; no registered IM client");
}

}  // namespace
}  // namespace dims::testing
