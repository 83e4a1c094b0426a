// The push of deferred messages over MSRP through the whole DIMS set (seeds 001, 002, 004;
// DESIGN flow 5), with real Redis and PostgreSQL, all five services, and a client of ours: a
// Sofia-SIP agent that registers, publishes its settings and answers the push INVITE, and an
// MSRP peer that takes the SENDs over TCP. Messages are pushed only after the settings
// publication, in arrival order, each as the stored request byte for byte; a message leaves the
// store only once the client confirmed it, so a rejected INVITE, a dropped connection or a
// delivery replica killed mid-push loses nothing.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "dims/v1/delivery.grpc.pb.h"
#include "dims/v1/storage.grpc.pb.h"
#include "dims_stack.h"
#include "msrp_test_peer.h"
#include "push_client.h"
#include "sofia_agent.h"
#include "test_clients.h"

namespace dims::testing {
namespace {
namespace v1 = dims::v1;
using namespace std::chrono_literals;

std::string SettingsDocument(bool offline_delivery) {
  return std::string(
             "<poc-settings xmlns=\"urn:oma:params:xml:ns:poc:poc-settings\" "
             "xmlns:im=\"urn:oma:xml:im:service-settings\"><entity id=\"a\">"
             "<im:deferred-settings><im:offline-delivery active=\"") +
         (offline_delivery ? "true" : "false") +
         "\"/></im:deferred-settings></entity></poc-settings>";
}

// A user's IM client: the SIP side (agent) and the MSRP side (peer). Every push INVITE gets a
// session of its own at the peer ("<user>-<n>"), so that each push can be looked at alone.
class ImClient {
 public:
  ImClient(const SofiaAgent::Options& options, std::string user)
      : user_(std::move(user)), agent_(options) {
    agent_.OnRequest([this](const IncomingSipRequest& in) { return Answer(in); });
  }

  // The status INVITEs get from the `from`-th on (counted from the first); 200 answers with the
  // SDP of a new peer session. Earlier ones are answered 200.
  void AnswerInvitesWith(int status, int from = 1) {
    invite_status_from_ = from;
    invite_status_ = status;
  }
  // Behaviour of the sessions made from now on.
  void SessionBehaviour(MsrpTestPeer::Behaviour behaviour) {
    std::lock_guard lock(mu_);
    behaviour_ = behaviour;
  }

  int Register() {
    return agent_
        .Register({.aor = Aor(), .contact_params = ";+g.oma.sip-im", .expires = 600},
                  SofiaAgent::kDefaultTimeout)
        .status;
  }
  int Publish(bool offline_delivery) {
    return agent_
        .Publish({.aor = Aor(),
                  .content_type = "application/poc-settings+xml",
                  .body = SettingsDocument(offline_delivery),
                  .expires = 600})
        .status;
  }

  std::string Aor() const { return "sip:" + user_ + "@dims.test"; }
  const std::string& user() const { return user_; }
  SofiaAgent& agent() { return agent_; }
  MsrpTestPeer& msrp() { return msrp_; }
  std::vector<std::string> sessions() const {
    std::lock_guard lock(mu_);
    return sessions_;
  }
  // Every complete message of every session, in order.
  std::vector<MsrpReceivedMessage> AllMessages() const {
    std::vector<MsrpReceivedMessage> all;
    for (const auto& session : sessions()) {
      for (auto& m : msrp_.messages(session)) all.push_back(std::move(m));
    }
    return all;
  }
  size_t DistinctMessages() const {
    std::set<std::string> ids;
    for (const auto& m : AllMessages()) ids.insert(m.message_id);
    return ids.size();
  }

 private:
  SofiaAgent::Answer Answer(const IncomingSipRequest& in) {
    // No chat now: a MESSAGE forwarded to the client ends stored (and a notification MESSAGE
    // goes unread).
    if (in.method == "MESSAGE") return {.status = 480, .phrase = "Temporarily Unavailable"};
    if (in.method != "INVITE") return {};
    int invite = ++invites_;
    int status = invite >= invite_status_from_ ? invite_status_.load() : 200;
    if (status != 200) return {.status = status, .phrase = "Not Now"};
    std::string session = user_ + "-" + std::to_string(invite);
    SofiaAgent::Answer answer;
    try {
      answer = AcceptPushInvite(agent_, msrp_, in, session);
    } catch (const std::exception&) {
      return {.status = 488, .phrase = "Not Acceptable Here"};
    }
    std::lock_guard lock(mu_);
    sessions_.push_back(session);
    msrp_.SetBehaviour(session, behaviour_);
    return answer;
  }

  std::string user_;
  MsrpTestPeer msrp_;
  SofiaAgent agent_;
  std::atomic<int> invite_status_{200};
  std::atomic<int> invite_status_from_{1};
  std::atomic<int> invites_{0};
  mutable std::mutex mu_;
  MsrpTestPeer::Behaviour behaviour_;
  std::vector<std::string> sessions_;
};

class PushDeliveryTest : public ::testing::Test {
 protected:
  // The whole set, with a second delivery replica when asked; `env` goes to every service.
  void Start(const std::map<std::string, std::string>& env = {}, bool two_replicas = false) {
    auto names = stack_.service_names();
    if (two_replicas) {
      stack_.AddReplica("delivery", "delivery-2");
      names.push_back("delivery-2");
      delivery_replicas_.push_back("delivery-2");
    }
    for (const auto& name : names) {
      stack_.StartService(name, env);
      ASSERT_TRUE(stack_.WaitServing(name, 30s)) << name << ": " << stack_.process(name).ReadLog();
    }
    storage_ = v1::Storage::NewStub(NewChannel(stack_.endpoints("storage").grpc_address()));
    delivery_ = v1::Delivery::NewStub(NewChannel(stack_.endpoints("delivery").grpc_address()));
    bob_ = std::make_unique<SofiaAgent>(AgentOptions());
  }

  SofiaAgent::Options AgentOptions() {
    return {.next_hop = "127.0.0.1:" + std::to_string(stack_.sip_port())};
  }

  // Bob sends `count` MESSAGEs to the offline `user`; each must be stored (202).
  void StoreMessages(const std::string& user, int count) {
    for (int i = 1; i <= count; ++i) {
      auto answer = bob_->SendRequest(
          {.method = "MESSAGE",
           .request_uri = "sip:" + user + "@dims.test",
           .from = "<sip:bob@dims.test>",
           .to = "<sip:" + user + "@dims.test>",
           .headers = {{"Subject", "note " + std::to_string(i)}, {"Priority", "normal"}},
           .content_type = "text/plain",
           .body = "deferred message number " + std::to_string(i)});
      ASSERT_EQ(answer.status, 202) << answer.raw;
    }
  }

  // Waits until delivery has taken `count` message-stored events off the bus, so that events of
  // messages stored before a step do not reach delivery after it.
  void WaitForStoredEvents(double count) {
    ASSERT_TRUE(WaitFor(
        [&] {
          return DeliveryCount("dims_delivery_events_total", {{"type", "message_stored"}}) >= count;
        },
        20s))
        << Logs();
  }

  // `count` messages stored for `client`, their events handled, then a push to the client, slow
  // (100 ms a message: it takes seconds), under way with five delivered.
  void BeginSlowPush(ImClient& client, int count) {
    ASSERT_NO_FATAL_FAILURE(StoreMessages(client.user(), count));
    ASSERT_NO_FATAL_FAILURE(WaitForStoredEvents(count));
    ASSERT_EQ(client.Register(), 200);
    client.SessionBehaviour({.delay = 100ms});
    ASSERT_EQ(client.Publish(true), 200);
    ASSERT_TRUE(WaitFor([&] { return client.DistinctMessages() >= 5; }, 30s)) << Logs();
  }

  // Every event written so far went through delivery's dispatcher: storage's outbox is empty
  // (its relay deletes rows in the transaction that published them) and delivery counted as
  // many events as the bus holds. What they could start has been scheduled by then.
  void WaitForEveryEventHandled() {
    ASSERT_TRUE(WaitFor(
        [&] {
          pqxx::connection db(stack_.postgres().dsn());
          pqxx::work tx(db);
          if (tx.exec1("SELECT count(*) FROM event_outbox_rows")[0].as<int64_t>() != 0) {
            return false;
          }
          auto bus = ReadEventStream(stack_.redis().port()).size();
          return DeliveryCount("dims_delivery_events_total", {}) >= static_cast<double>(bus);
        },
        20s))
        << Logs();
  }

  // Everything stored for `aor`, complete, in arrival order.
  std::vector<v1::DeferredMessage> Stored(const std::string& aor) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::StorageFetchRequest request;
    request.mutable_recipient()->set_uri(aor);
    auto reader = storage_->Fetch(&context, request);
    std::vector<v1::DeferredMessage> messages;
    v1::StorageFetchResponse item;
    while (reader->Read(&item)) {
      for (const auto& message : item.messages()) messages.push_back(message);
    }
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << Describe(status);
    return messages;
  }
  uint32_t StoredCount(const std::string& aor) {
    auto summary = StoreSummaryOf(*storage_, aor);
    return summary.new_count() + summary.old_count();
  }

  v1::DeliveryState State(const std::string& aor) {
    v1::DeliveryGetDeliveryStateRequest request;
    request.mutable_aor()->set_uri(aor);
    v1::DeliveryGetDeliveryStateResponse response;
    grpc::Status status = CallWithDeadline(*delivery_, &v1::Delivery::Stub::GetDeliveryState,
                                           request, &response, nullptr, nullptr, 5s);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return response.state();
  }

  // Waits until `aor`'s delivery state satisfies `holds`.
  bool WaitForState(const std::string& aor,
                    const std::function<bool(const v1::DeliveryState&)>& holds,
                    std::chrono::milliseconds timeout = 10s) {
    return WaitFor([&] { return holds(State(aor)); }, timeout);
  }

  void OperatorTrigger(const std::string& aor) {
    v1::DeliveryTriggerRequest request;
    request.mutable_aor()->set_uri(aor);
    request.set_reason(v1::TRIGGER_REASON_OPERATOR);
    request.set_reset_backoff(true);
    v1::DeliveryTriggerResponse response;
    grpc::Status status = CallWithDeadline(*delivery_, &v1::Delivery::Stub::Trigger, request,
                                           &response, nullptr, nullptr, 5s);
    ASSERT_TRUE(status.ok()) << Describe(status);
  }

  // A delivery counter summed over the replicas still running.
  double DeliveryCount(const std::string& name, const std::map<std::string, std::string>& labels) {
    double sum = 0;
    for (const auto& replica : delivery_replicas_) {
      auto page = HttpGet(stack_.endpoints(replica).metrics_port, "/metrics");
      if (!page) {
        ADD_FAILURE() << "no /metrics from " << replica;
        continue;
      }
      sum += MetricSum(*page, name, labels).value_or(0);
    }
    return sum;
  }

  std::string Logs() {
    std::string logs;
    for (const char* name : {"delivery", "msrp-relay", "sip-edge"}) {
      logs += stack_.process(name).LogTail(40);
    }
    return logs;
  }

  DimsStack stack_;
  std::unique_ptr<v1::Storage::Stub> storage_;
  std::unique_ptr<v1::Delivery::Stub> delivery_;
  std::unique_ptr<SofiaAgent> bob_;
  std::vector<std::string> delivery_replicas_ = {"delivery"};
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(PushDeliveryTest, FiftyMessagesArePushedAfterPublishInOrderByteForByteAndLeaveTheStore) {
  Start();
  ImClient alice(AgentOptions(), "alice");
  ASSERT_NO_FATAL_FAILURE(StoreMessages("alice", 50));
  auto stored = Stored(alice.Aor());
  ASSERT_EQ(stored.size(), 50u);
  ASSERT_NO_FATAL_FAILURE(
      WaitForStoredEvents(50));  // their events, for a user away, change nothing later

  // A registration alone pushes nothing (seed 002). When no publication follows, the user is
  // evaluated once the registration has waited for one (--registration-settle-ms, 2 s): the
  // default settings have offline delivery inactive, so a notification MESSAGE tells of the
  // messages instead.
  ASSERT_EQ(alice.Register(), 200);
  ASSERT_TRUE(WaitForState(
      alice.Aor(),
      [](const v1::DeliveryState& state) {
        return state.last_attempt().trigger() == v1::TRIGGER_REASON_REGISTERED &&
               state.phase() != v1::DELIVERY_PHASE_RUNNING;
      },
      20s))
      << Logs();
  EXPECT_EQ(State(alice.Aor()).decision(), v1::DELIVERY_ACTION_NOTIFY_BY_MESSAGE);
  EXPECT_EQ(alice.agent().received("MESSAGE").size(), 1u);
  EXPECT_TRUE(alice.agent().received("INVITE").empty());
  EXPECT_EQ(DeliveryCount("dims_delivery_registration_waits_total", {{"ended", "elapsed"}}), 1);
  EXPECT_EQ(StoredCount(alice.Aor()), 50u);

  // The settings publication with offline delivery active starts the push.
  ASSERT_EQ(alice.Publish(true), 200);
  ASSERT_TRUE(alice.agent().WaitForReceived("INVITE", 1, 20s)) << Logs();
  const auto invite = alice.agent().received("INVITE").front();
  // The INVITE of seed 004, field by field.
  EXPECT_EQ(invite.request_uri, "sip:alice@dims.test");
  EXPECT_TRUE(Contains(invite.raw, "Accept-Contact: *;+g.oma.sip-im;require;explicit\r\n"))
      << invite.raw;
  EXPECT_TRUE(Contains(invite.raw, "User-Agent: IM-serv/OMA1.0 DIMS/")) << invite.raw;
  EXPECT_TRUE(Contains(invite.raw, "Allow: INVITE, ACK, CANCEL, BYE, UPDATE\r\n")) << invite.raw;
  EXPECT_TRUE(Contains(invite.raw, ";+g.oma.sip-im;automata")) << invite.raw;
  EXPECT_TRUE(Contains(invite.raw, "Session-Expires: 1800;refresher=uac")) << invite.raw;
  EXPECT_EQ(invite.content_type, "application/sdp");
  EXPECT_TRUE(Contains(invite.body, "m=message ")) << invite.body;
  EXPECT_TRUE(Contains(invite.body, " TCP/MSRP *")) << invite.body;
  EXPECT_TRUE(Contains(invite.body, "a=sendonly")) << invite.body;
  EXPECT_TRUE(Contains(invite.body, "a=path:msrp://127.0.0.1:")) << invite.body;
  EXPECT_TRUE(Contains(invite.body, "a=accept-types:")) << invite.body;
  EXPECT_TRUE(Contains(invite.body, "a=setup:actpass")) << invite.body;

  // The relay connects once the INVITE is answered: its binding SEND names the session.
  ASSERT_TRUE(WaitFor([&] { return alice.sessions().size() == 1; }, 20s)) << Logs();
  const std::string session = alice.sessions().front();
  ASSERT_TRUE(alice.msrp().WaitForMessages(session, 50, 60s)) << Logs();
  auto received = alice.msrp().messages(session);
  ASSERT_EQ(received.size(), 50u);
  for (size_t i = 0; i < received.size(); ++i) {
    SCOPED_TRACE("message " + std::to_string(i + 1));
    EXPECT_TRUE(Contains(received[i].content_type, "multipart/mixed"));
    std::string error;
    auto parts = ParseMultipartMixed(received[i].content_type, received[i].body, &error);
    ASSERT_TRUE(parts) << error << "\n" << received[i].body;
    ASSERT_EQ(parts->size(), 1u);
    EXPECT_TRUE(Contains(FieldOf((*parts)[0].headers, "Content-Type"), "message/sip"));
    EXPECT_FALSE(FieldOf((*parts)[0].headers, "Date").empty());  // when DIMS received it
    // In arrival order, and the stored request unchanged (its Call-ID with it).
    EXPECT_EQ((*parts)[0].body, stored[i].sip_request());
  }
  EXPECT_EQ(alice.msrp().duplicate_messages(), 0);
  EXPECT_TRUE(alice.msrp().violations().empty());

  // Confirmed messages leave the store; then the BYE.
  EXPECT_TRUE(WaitFor([&] { return StoredCount(alice.Aor()) == 0; }, 20s)) << Logs();
  EXPECT_TRUE(alice.agent().WaitForReceived("BYE", 1, 20s)) << Logs();
  EXPECT_FALSE(alice.agent().received("ACK").empty());
  EXPECT_EQ(DeliveryCount("dims_delivery_push_messages_total", {{"outcome", "delivered"}}), 50);
  EXPECT_EQ(DeliveryCount("dims_delivery_push_sessions_total", {{"result", "completed"}}), 1);
  EXPECT_TRUE(WaitForState(alice.Aor(), [](const v1::DeliveryState& state) {
    return state.decision() == v1::DELIVERY_ACTION_PUSH &&
           state.phase() == v1::DELIVERY_PHASE_IDLE &&
           state.last_attempt().outcome() == v1::ATTEMPT_OUTCOME_SUCCEEDED;
  })) << Logs();
  // Nothing more was pushed after the store emptied. The push's own Acks announced removals,
  // which concern subscribers only: alice has none, so they were not evaluated at all, and
  // nobody found alice's lease busy.
  ASSERT_NO_FATAL_FAILURE(WaitForEveryEventHandled());
  EXPECT_EQ(alice.agent().received("INVITE").size(), 1u);
  EXPECT_GE(DeliveryCount("dims_delivery_events_total",
                          {{"type", "store_changed"}, {"result", "no_subscriber"}}),
            1);
  EXPECT_EQ(DeliveryCount("dims_delivery_events_total",
                          {{"type", "store_changed"}, {"result", "scheduled"}}),
            0);
  EXPECT_EQ(DeliveryCount("dims_delivery_evaluations_total", {}), 2);  // registration, push
  EXPECT_EQ(DeliveryCount("dims_delivery_lease_busy_total", {}), 0);
}

TEST_F(PushDeliveryTest, AClientPublishingRightAfterItsRegistrationGetsThePushAndNoNotification) {
  // The registration waits for the publication (long enough here for a loaded machine).
  Start({{"DIMS_REGISTRATION_SETTLE_MS", "10000"}});
  ImClient alice(AgentOptions(), "alice");
  ASSERT_NO_FATAL_FAILURE(StoreMessages("alice", 3));
  ASSERT_NO_FATAL_FAILURE(
      WaitForStoredEvents(3));  // their events, for a user away, change nothing later
  ASSERT_EQ(alice.Register(), 200);
  ASSERT_EQ(alice.Publish(true), 200);
  ASSERT_TRUE(alice.agent().WaitForReceived("INVITE", 1, 20s)) << Logs();
  ASSERT_TRUE(WaitFor([&] { return alice.sessions().size() == 1; }, 20s)) << Logs();
  ASSERT_TRUE(alice.msrp().WaitForMessages(alice.sessions().front(), 3, 30s)) << Logs();
  EXPECT_TRUE(WaitFor([&] { return StoredCount(alice.Aor()) == 0; }, 20s)) << Logs();
  EXPECT_TRUE(alice.agent().WaitForReceived("BYE", 1, 20s)) << Logs();
  // The evaluation is counted once it has recorded its outcome.
  EXPECT_TRUE(WaitForState(alice.Aor(), [](const v1::DeliveryState& state) {
    return state.decision() == v1::DELIVERY_ACTION_PUSH &&
           state.phase() == v1::DELIVERY_PHASE_IDLE &&
           state.last_attempt().trigger() == v1::TRIGGER_REASON_SETTINGS_PUBLISHED;
  })) << State(alice.Aor()).DebugString();
  // One evaluation took the registration and the publication together: the settings were
  // known, so nothing was decided on the defaults, and no notification MESSAGE went out.
  EXPECT_TRUE(alice.agent().received("MESSAGE").empty());
  EXPECT_EQ(DeliveryCount("dims_delivery_evaluations_total",
                          {{"action", "DELIVERY_ACTION_NOTIFY_BY_MESSAGE"}}),
            0);
  EXPECT_EQ(DeliveryCount("dims_delivery_evaluations_total", {{"action", "DELIVERY_ACTION_PUSH"}}),
            1);
  EXPECT_EQ(DeliveryCount("dims_delivery_registration_waits_total", {{"ended", "publication"}}), 1);
  EXPECT_EQ(DeliveryCount("dims_delivery_registration_waits_total", {{"ended", "elapsed"}}), 0);
}

TEST_F(PushDeliveryTest, WithOfflineDeliveryInactiveTheSubscriberGetsANotifyAndNoInvite) {
  Start();
  ImClient alice(AgentOptions(), "alice");
  ASSERT_EQ(alice.Register(), 200);
  ASSERT_EQ(alice.Publish(false), 200);
  // sipp subscribes to alice's store, sees it empty, then one message.
  auto sipp = stack_.StartSipp("subscribe_one_message", "u1", 1, 1, "alice");
  ASSERT_TRUE(WaitFor(
      [&] {
        return !RedisHashValues(stack_.redis().port(), "dims:sub:{" + alice.Aor() + "}").empty();
      },
      20s))
      << sipp.Report();
  StoreMessages("alice", 1);
  EXPECT_TRUE(sipp.Passed(30s)) << sipp.Report() << Logs();
  EXPECT_TRUE(alice.agent().received("INVITE").empty());
  EXPECT_EQ(StoredCount(alice.Aor()), 1u);
  EXPECT_EQ(State(alice.Aor()).decision(), v1::DELIVERY_ACTION_NOTIFY);
}

TEST_F(PushDeliveryTest, ARejectedInviteLosesNothingBusyIsRetriedDeclineWaitsForATrigger) {
  Start();
  ImClient alice(AgentOptions(), "alice");
  StoreMessages("alice", 5);
  ASSERT_EQ(alice.Register(), 200);

  // 486 Busy Here: retried by itself after its backoff, and then everything arrives.
  alice.AnswerInvitesWith(486);
  ASSERT_EQ(alice.Publish(true), 200);
  ASSERT_TRUE(alice.agent().WaitForReceived("INVITE", 1, 20s)) << Logs();
  ASSERT_TRUE(
      WaitFor([&] { return State(alice.Aor()).last_attempt().sip().status_code() == 486; }, 10s))
      << Logs();
  EXPECT_EQ(StoredCount(alice.Aor()), 5u);
  EXPECT_EQ(State(alice.Aor()).last_attempt().outcome(), v1::ATTEMPT_OUTCOME_FAILED);
  alice.AnswerInvitesWith(200);
  ASSERT_TRUE(WaitFor([&] { return alice.DistinctMessages() == 5; }, 30s)) << Logs();
  EXPECT_TRUE(WaitFor([&] { return StoredCount(alice.Aor()) == 0; }, 20s));

  // 603 Decline: nothing is retried until something happens; an operator's trigger pushes.
  ImClient carol(AgentOptions(), "carol");
  StoreMessages("carol", 3);
  WaitForStoredEvents(8);
  ASSERT_EQ(carol.Register(), 200);
  carol.AnswerInvitesWith(603);
  ASSERT_EQ(carol.Publish(true), 200);
  ASSERT_TRUE(carol.agent().WaitForReceived("INVITE", 1, 20s)) << Logs();
  ASSERT_TRUE(
      WaitFor([&] { return State(carol.Aor()).last_attempt().sip().status_code() == 603; }, 10s));
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(carol.agent().received("INVITE").size(), 1u) << Logs();
  EXPECT_EQ(StoredCount(carol.Aor()), 3u);
  carol.AnswerInvitesWith(200);
  OperatorTrigger(carol.Aor());
  ASSERT_TRUE(WaitFor([&] { return carol.DistinctMessages() == 3; }, 30s)) << Logs();
  EXPECT_TRUE(WaitFor([&] { return StoredCount(carol.Aor()) == 0; }, 20s));
}

TEST_F(PushDeliveryTest, AConnectionDroppedAfterTenMessagesLeavesExactlyTheRestStored) {
  Start();
  ImClient alice(AgentOptions(), "alice");
  StoreMessages("alice", 30);
  auto stored = Stored(alice.Aor());
  ASSERT_EQ(alice.Register(), 200);
  // The first session ends its connection after ten messages; later INVITEs wait (480) until
  // the test has looked at the store.
  alice.SessionBehaviour({.close_after_messages = 10});
  alice.AnswerInvitesWith(480, /*from=*/2);
  ASSERT_EQ(alice.Publish(true), 200);
  ASSERT_TRUE(WaitFor([&] { return alice.sessions().size() == 1; }, 20s)) << Logs();
  alice.SessionBehaviour({});
  // The push ends interrupted with ten confirmed (counted by the metrics: the user's recorded
  // state moves on with the evaluations that follow).
  ASSERT_TRUE(WaitFor(
      [&] {
        return DeliveryCount("dims_delivery_push_sessions_total", {{"result", "interrupted"}}) >= 1;
      },
      30s))
      << Logs();
  EXPECT_EQ(DeliveryCount("dims_delivery_push_messages_total", {{"outcome", "delivered"}}), 10);
  // Exactly the ten confirmed left the store: the first ten.
  auto left = Stored(alice.Aor());
  ASSERT_EQ(left.size(), 20u);
  for (size_t i = 0; i < left.size(); ++i)
    EXPECT_EQ(left[i].message_id(), stored[10 + i].message_id());

  // The next attempt delivers the rest; at most the one message in flight came twice.
  alice.AnswerInvitesWith(200);
  OperatorTrigger(alice.Aor());
  ASSERT_TRUE(WaitFor([&] { return alice.DistinctMessages() == 30; }, 30s)) << Logs();
  EXPECT_TRUE(WaitFor([&] { return StoredCount(alice.Aor()) == 0; }, 20s));
  EXPECT_LE(alice.AllMessages().size(), 31u);
  EXPECT_TRUE(alice.msrp().violations().empty());
}

TEST_F(PushDeliveryTest, AReplicaKilledMidPushLeavesTheRestToAnotherAndNothingIsLost) {
  // Short leases, so that the takeover is quick.
  Start({{"DIMS_LEASE_MS", "2000"}}, /*two_replicas=*/true);
  ImClient alice(AgentOptions(), "alice");
  // Their events are behind us: what resumes the push is the record of the one cut off.
  ASSERT_NO_FATAL_FAILURE(BeginSlowPush(alice, 40));

  std::string holder = State(alice.Aor()).lock().holder_instance_id();
  ASSERT_TRUE(holder == "delivery" || holder == "delivery-2") << holder;
  stack_.process(holder).Signal(SIGKILL);
  std::erase(delivery_replicas_, holder);
  const size_t before_kill = alice.DistinctMessages();
  ASSERT_LT(before_kill, 40u);

  alice.SessionBehaviour({});
  ASSERT_TRUE(WaitFor([&] { return alice.DistinctMessages() == 40; }, 60s)) << Logs();
  EXPECT_TRUE(WaitFor([&] { return StoredCount(alice.Aor()) == 0; }, 20s));
  EXPECT_GE(alice.sessions().size(), 2u);
  // Sent again at most: the SEND in flight, and one the client had confirmed whose Ack the
  // killed replica had not yet made (results linger 10 ms at the relay and 20 ms before the Ack;
  // the client takes 100 ms a message).
  EXPECT_LE(alice.AllMessages().size(), 42u);
}

TEST_F(PushDeliveryTest, WhatTheClientConfirmedWhileStorageWasAwayIsRemovedLaterNotSentAgain) {
  Start();
  ImClient alice(AgentOptions(), "alice");
  ASSERT_NO_FATAL_FAILURE(BeginSlowPush(alice, 40));

  // Storage goes away mid-push. The relay still sends what it was given, and the client
  // confirms it, but those Acks fail: the messages are recorded as owed to the store.
  stack_.process("storage").Signal(SIGKILL);
  ASSERT_TRUE(WaitForState(
      alice.Aor(),
      [](const v1::DeliveryState& state) { return state.unacknowledged_message_ids_size() > 0; },
      30s))
      << State(alice.Aor()).DebugString() << Logs();
  const auto owing = State(alice.Aor());
  const auto owed = owing.unacknowledged_message_ids_size();
  EXPECT_EQ(owing.phase(), v1::DELIVERY_PHASE_BACKING_OFF);
  alice.SessionBehaviour({});

  // Back again: the owed messages leave the store first, and only the rest is pushed.
  stack_.StartService("storage");
  ASSERT_TRUE(stack_.WaitServing("storage", 30s)) << stack_.process("storage").ReadLog();
  ASSERT_TRUE(WaitFor([&] { return alice.DistinctMessages() == 40; }, 60s)) << Logs();
  EXPECT_TRUE(WaitFor([&] { return StoredCount(alice.Aor()) == 0; }, 20s)) << Logs();
  // Not one message twice, although `owed` were confirmed and still stored when the first push
  // ended (whether the relay had been given all 40 before storage went away or not).
  EXPECT_EQ(alice.AllMessages().size(), 40u)
      << owed << " were owed; sessions: " << alice.sessions().size();
  EXPECT_EQ(State(alice.Aor()).unacknowledged_message_ids_size(), 0);
  EXPECT_EQ(DeliveryCount("dims_delivery_push_messages_total", {{"outcome", "delivered"}}), 40);
}

TEST_F(PushDeliveryTest, AFiveMegabyteLargeModeMessageIsChunkedAndConfirmed) {
  Start({{"DIMS_MAX_MESSAGE_BYTES", "8388608"}});
  ImClient alice(AgentOptions(), "alice");
  // A large-mode message as msrp-relay would have stored it (seed 004 11.3.2.5).
  std::string content(5 * 1024 * 1024, 'x');
  for (size_t i = 0; i < content.size(); i += 997) content[i] = static_cast<char>('a' + i % 26);
  v1::StorageStoreRequest store;
  store.mutable_recipient()->set_uri(alice.Aor());
  auto* headers = store.mutable_headers();
  headers->set_from("<sip:bob@dims.test>");
  headers->set_to("<sip:alice@dims.test>");
  headers->set_call_id("large-1@dims.test");
  headers->set_cseq(1);
  headers->set_content_type("application/octet-stream");
  store.set_reason(v1::STORE_REASON_LARGE_MESSAGE_SESSION);
  auto* large = store.mutable_large();
  large->set_msrp_message_id("L4rgeMessage01");
  auto* field = large->add_msrp_headers();
  field->set_name("Content-Type");
  field->set_value("application/octet-stream");
  large->set_content(content);
  v1::StorageStoreResponse stored;
  grpc::Status status =
      CallWithDeadline(*storage_, &v1::Storage::Stub::Store, store, &stored, nullptr, nullptr, 20s);
  ASSERT_TRUE(status.ok()) << Describe(status);

  ASSERT_EQ(alice.Register(), 200);
  ASSERT_EQ(alice.Publish(true), 200);
  ASSERT_TRUE(WaitFor([&] { return alice.DistinctMessages() == 1; }, 60s)) << Logs();
  auto message = alice.AllMessages().front();
  EXPECT_GT(message.chunks, 1);
  std::string error;
  auto parts = ParseMultipartMixed(message.content_type, message.body, &error);
  ASSERT_TRUE(parts) << error;
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_TRUE(Contains(FieldOf((*parts)[0].headers, "Content-Type"), "message/msrp"));
  EXPECT_TRUE(Contains((*parts)[0].body, "L4rgeMessage01"));
  EXPECT_TRUE(Contains((*parts)[0].body, content));
  EXPECT_TRUE(WaitFor([&] { return StoredCount(alice.Aor()) == 0; }, 20s)) << Logs();
  EXPECT_TRUE(alice.msrp().violations().empty());
}

}  // namespace
}  // namespace dims::testing
