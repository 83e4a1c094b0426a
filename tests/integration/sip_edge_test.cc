// The sip-edge with real SIP peers (sipp scenarios in tests/sip/, and our own Sofia-SIP agent
// for flows sipp expresses badly), Redis and the settings service: IM service settings by
// PUBLISH and registrations by REGISTER, over UDP and TCP.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "dims/v1/settings.grpc.pb.h"
#include "dims_stack.h"
#include "sofia_agent.h"
#include "test_clients.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;
using google::protobuf::util::MessageDifferencer;

constexpr const char* kSettingsType = "application/poc-settings+xml";

// An IM settings document with one setting that tells two versions apart.
std::string SettingsDocument(bool offline_delivery) {
  return std::string(
             "<im-settings xmlns=\"urn:oma:xml:im:service-settings\"><deferred-settings>"
             "<offline-delivery active=\"") +
         (offline_delivery ? "true" : "false") + "\"/></deferred-settings></im-settings>";
}

// The expires parameter the answer lists for the contact `uri`; nothing when it is not listed.
std::optional<int> ListedExpires(const SipResponse& answer, const std::string& uri) {
  std::string prefix = "<" + uri + ">;expires=";
  for (const auto& contact : answer.contacts) {
    if (contact.rfind(prefix, 0) == 0) return std::atoi(contact.c_str() + prefix.size());
  }
  return std::nullopt;
}

std::string AnswerText(const SipResponse& answer) {
  return std::to_string(answer.status) + " " + answer.phrase + "\n" + answer.raw;
}

class SipEdgeTest : public ::testing::Test {
 protected:
  // Runs one sipp scenario as user `user`; returns sipp's exit code (0: every call passed).
  int RunSipp(const std::string& scenario, const std::string& user, const std::string& transport) {
    auto users = stack_.dir().path() / ("users-" + user + ".csv");
    std::ofstream(users) << "SEQUENTIAL\n" << user << ";\n";
    auto errors = stack_.dir().path() / (scenario + "-" + transport + "-errors.log");
    auto args =
        SippClientArgs(stack_.sip_port(), std::string(DIMS_SIP_SCENARIOS) + "/" + scenario + ".xml",
                       transport, 1, 1);
    args.insert(args.end(), {"-inf", users.string(), "-timeout", "40", "-timeout_error",
                             "-trace_err", "-error_file", errors.string()});
    Process sipp({.program = "/usr/bin/sipp",
                  .args = std::move(args),
                  .log = stack_.dir().path() / (scenario + "-" + transport + ".log")});
    auto status = sipp.Wait(60s);
    if (!status) return -1;
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      ADD_FAILURE() << scenario << " over " << transport << " failed:\n"
                    << sipp.ReadLog() << "\n"
                    << ReadFile(errors) << "\nedge log:\n"
                    << stack_.process("sip-edge").ReadLog();
    }
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : 128;
  }

  // Runs `calls` calls of a load scenario at `rate` calls per second, at most 100 at once;
  // returns sipp's exit code (0: every call got its expected answers).
  int RunSippLoad(const std::string& scenario, int calls, int rate) {
    auto errors = stack_.dir().path() / (scenario + "-errors.log");
    auto args =
        SippClientArgs(stack_.sip_port(), std::string(DIMS_SIP_SCENARIOS) + "/" + scenario + ".xml",
                       "u1", calls, 100);
    args.insert(args.end(), {"-r", std::to_string(rate), "-timeout", "120", "-timeout_error",
                             "-trace_err", "-error_file", errors.string()});
    Process sipp({.program = "/usr/bin/sipp",
                  .args = std::move(args),
                  .log = stack_.dir().path() / (scenario + ".log")});
    auto status = sipp.Wait(150s);
    if (!status) return -1;
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      ADD_FAILURE() << scenario << " failed:\n"
                    << sipp.LogTail(40) << "\n"
                    << ReadFile(errors).substr(0, 4000);
    }
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : 128;
  }

  dims::v1::SettingsGetResponse Settings(const std::string& aor) {
    if (!settings_) {
      settings_ =
          dims::v1::Settings::NewStub(NewChannel(stack_.endpoints("settings").grpc_address()));
    }
    dims::v1::SettingsGetRequest request;
    request.mutable_aor()->set_uri(aor);
    dims::v1::SettingsGetResponse response;
    grpc::Status status = CallWithDeadline(*settings_, &dims::v1::Settings::Stub::Get, request,
                                           &response, nullptr, nullptr, 5s);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return response;
  }

  // The user's registration as the edge keeps it in Redis; empty when there is none.
  std::optional<dims::v1::Registration> Registration(const std::string& aor) {
    auto raw = RedisGet(stack_.redis().port(), "dims:reg:{" + aor + "}");
    dims::v1::Registration r;
    if (!raw || !r.ParseFromString(*raw)) return std::nullopt;
    return r;
  }

  std::vector<StreamEntry> EventsOf(const std::string& type, const std::string& aor) {
    std::vector<StreamEntry> found;
    for (auto& e : ReadEventStream(stack_.redis().port())) {
      if (e.fields["type"] == type && e.fields["aor"] == aor) found.push_back(e);
    }
    return found;
  }

  // Starts the edge (and the settings service first when `with_settings`); fatal on failure.
  void StartEdge(bool with_settings) {
    if (with_settings) {
      stack_.StartService("settings");
      ASSERT_TRUE(stack_.WaitServing("settings", 20s)) << stack_.process("settings").ReadLog();
    }
    stack_.StartService("sip-edge");
    ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  }

  SofiaAgent::Options AgentOptions() {
    return {.next_hop = "127.0.0.1:" + std::to_string(stack_.sip_port())};
  }

  DimsStack stack_{DimsStack::Options{.start_postgres = false}};
  std::unique_ptr<dims::v1::Settings::Stub> settings_;  // made on first use
};

TEST_F(SipEdgeTest, PublishFollowsRfc3903OverUdpAndTcp) {
  stack_.StartService("settings");
  stack_.StartService("sip-edge");
  ASSERT_TRUE(stack_.WaitServing("settings", 20s));
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  for (std::string transport : {"u1", "t1"}) {
    std::string user = "alice-" + transport;
    EXPECT_EQ(RunSipp("publish_settings", user, transport), 0);
    // The scenario ends by removing its publication: the defaults apply again.
    auto after = Settings("sip:" + user + "@dims.test");
    EXPECT_EQ(after.publications_size(), 0);
    EXPECT_EQ(after.effective().source(), dims::v1::SETTINGS_SOURCE_DEFAULT);
  }
  // Operators see what happened, by method and status.
  auto metrics = HttpGet(stack_.endpoints("sip-edge").metrics_port, "/metrics");
  ASSERT_TRUE(metrics);
  for (const char* line : {
           "dims_sip_edge_sip_requests_total{method=\"PUBLISH\"} 14",
           "dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"200\"} 6",
           "dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"412\"} 2",
           "dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"423\"} 2",
           "dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"404\"} 2",
           "dims_sip_edge_sip_answer_duration_seconds_count{method=\"PUBLISH\"} 14",
       }) {
    EXPECT_NE(metrics->find(line), std::string::npos) << line << "\n" << *metrics;
  }
  EXPECT_NE(metrics->find("dims_sip_edge_loop_queue_delay_seconds_count "), std::string::npos);
}

TEST_F(SipEdgeTest, PublishWhileSettingsIsAwayGets503ThenIsServedWhenItReturns) {
  stack_.StartService("sip-edge");  // settings never started
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSipp("publish_unavailable", "bob", "u1"), 0);
  // The settings service comes (back): the same edge, without a restart, serves PUBLISH.
  stack_.StartService("settings");
  ASSERT_TRUE(stack_.WaitServing("settings", 20s));
  EXPECT_EQ(RunSipp("publish_settings", "bob", "u1"), 0);
  EXPECT_TRUE(stack_.process("sip-edge").running());
}

TEST_F(SipEdgeTest, RegisterKeepsBindingsInRedisAndAnnouncesEveryChange) {
  stack_.StartService("sip-edge");
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  for (std::string transport : {"u1", "t1"}) {
    std::string user = "carol-" + transport;
    std::string aor = "sip:" + user + "@dims.test";
    EXPECT_EQ(RunSipp("register_bind", user, transport), 0);

    auto registration = Registration(aor);
    ASSERT_TRUE(registration) << "no registration in Redis for " << aor;
    ASSERT_EQ(registration->bindings_size(), 2) << registration->ShortDebugString();
    for (const auto& b : registration->bindings()) {
      EXPECT_EQ(b.aor().uri(), aor);
      EXPECT_EQ(b.feature_tags().count("+g.oma.sip-im"), 1u) << b.ShortDebugString();
      EXPECT_EQ(b.mode(), dims::v1::REGISTRATION_MODE_REGISTRAR);
      EXPECT_EQ(b.edge_address(), stack_.endpoints("sip-edge").grpc_address());
      EXPECT_FALSE(b.edge_instance_id().empty());
    }
    // Out of order and too brief changed nothing: still two, each announced once.
    EXPECT_EQ(EventsOf("registered", aor).size(), 2u);
    EXPECT_EQ(registration->bindings(0).feature_tags().at("+sip.instance"),
              "<urn:uuid:00000000-0000-1000-8000-000000000001>");

    EXPECT_EQ(RunSipp("register_unbind", user, transport), 0);
    EXPECT_FALSE(Registration(aor)) << "bindings left after Contact: *";
    auto gone = EventsOf("deregistered", aor);
    ASSERT_EQ(gone.size(), 2u);
    EXPECT_TRUE(gone.back().decoded);
    EXPECT_EQ(gone.back().event.deregistered().remaining_bindings(), 0u);
  }
}

TEST_F(SipEdgeTest, ThirdPartyRegisterFromTheCoreIsRecordedAsSuch) {
  stack_.StartService(
      "sip-edge", {{"DIMS_TRUSTED_CORE_ADDRESSES", "127.0.0.1"}, {"DIMS_REGISTRAR_MODE", "false"}});
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSipp("register_third_party", "dave", "u1"), 0);
  auto registration = Registration("sip:dave@dims.test");
  ASSERT_TRUE(registration);
  ASSERT_EQ(registration->bindings_size(), 1);
  const auto& b = registration->bindings(0);
  EXPECT_EQ(b.mode(), dims::v1::REGISTRATION_MODE_THIRD_PARTY);
  EXPECT_EQ(b.contact_uri().rfind("sip:scscf.core.test", 0), 0u) << b.contact_uri();
  EXPECT_EQ(b.feature_tags().count("+g.oma.sip-im"), 1u);
  EXPECT_EQ(EventsOf("registered", "sip:dave@dims.test").size(), 1u);
}

TEST_F(SipEdgeTest, RegisterFromOutsideTheCoreIsRefusedWhenOnlyTheCoreMayRegister) {
  stack_.StartService(
      "sip-edge", {{"DIMS_TRUSTED_CORE_ADDRESSES", "127.0.0.2"}, {"DIMS_REGISTRAR_MODE", "false"}});
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSipp("register_forbidden", "eve", "u1"), 0);
  EXPECT_FALSE(Registration("sip:eve@dims.test"));
  EXPECT_TRUE(EventsOf("registered", "sip:eve@dims.test").empty());
}

TEST_F(SipEdgeTest, ABindingIsGoneFromRedisWhenItExpires) {
  stack_.StartService("sip-edge", {{"DIMS_REGISTER_MIN_EXPIRES_SECONDS", "1"}});
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSipp("register_short", "frank", "u1"), 0);
  auto registration = Registration("sip:frank@dims.test");
  ASSERT_TRUE(registration);
  EXPECT_EQ(registration->bindings_size(), 1);
  // Nobody sweeps: the record expires with its last binding.
  EXPECT_TRUE(WaitFor([&] { return !Registration("sip:frank@dims.test"); }, 10s))
      << "the binding outlived its 2 s";
}

// Bounded load: 10,000 REGISTERs and 10,000 PUBLISHes at a steady rate, every one answered
// as expected (sipp fails a call on a missing or unexpected answer).
TEST_F(SipEdgeTest, TenThousandRegistersAndPublishesAtASteadyRateAreAllAnswered) {
  stack_.StartService("settings");
  stack_.StartService("sip-edge");
  ASSERT_TRUE(stack_.WaitServing("settings", 20s));
  ASSERT_TRUE(stack_.WaitServing("sip-edge", 20s)) << stack_.process("sip-edge").ReadLog();
  EXPECT_EQ(RunSippLoad("load_register", 10000, 400), 0);
  EXPECT_EQ(RunSippLoad("load_publish", 10000, 400), 0);
  auto metrics = HttpGet(stack_.endpoints("sip-edge").metrics_port, "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->find("dims_sip_edge_sip_answers_total{method=\"REGISTER\",status=\"200\"} "
                          "10000"),
            std::string::npos);
  EXPECT_NE(metrics->find("dims_sip_edge_sip_answers_total{method=\"PUBLISH\",status=\"200\"} "
                          "10000"),
            std::string::npos);
  EXPECT_TRUE(Registration("sip:load-9999@dims.test").has_value());
  // What the services hold, as operators see it (the gauges count every 15 s).
  auto gauge_reads = [&](const std::string& service, const std::string& line) {
    return WaitFor(
        [&] {
          auto page = HttpGet(stack_.endpoints(service).metrics_port, "/metrics");
          return page && page->find("\n" + line + "\n") != std::string::npos;
        },
        40s);
  };
  EXPECT_TRUE(gauge_reads("sip-edge", "dims_sip_edge_registrations 10000"));
  EXPECT_TRUE(gauge_reads("settings", "dims_settings_users 10000"));
}

// RFC 3261 10.3 step 7: a refresh from the same Call-ID must carry a higher CSeq. sipp cannot
// send a lower CSeq after a higher one without taking the first answer for the second, so our
// agent does it, one transaction per request.
TEST_F(SipEdgeTest, ARefreshFromTheSameCallIdWithoutAHigherCSeqIsRefusedAndChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartEdge(false));
  SofiaAgent agent(AgentOptions());
  for (SipTransport transport : {SipTransport::kUdp, SipTransport::kTcp}) {
    std::string user = transport == SipTransport::kUdp ? "grace-udp" : "grace-tcp";
    std::string aor = "sip:" + user + "@dims.test";
    std::string contact = agent.ContactUri(user, transport);
    std::string call_id = user + "-refresh@127.0.0.1";
    SofiaAgent::RegisterOptions request{.aor = aor,
                                        .contact_params = ";+g.oma.sip-im",
                                        .expires = 600,
                                        .call_id = call_id,
                                        .cseq = 7,
                                        .transport = transport};
    auto first = agent.Register(request);
    ASSERT_EQ(first.status, 200) << AnswerText(first);
    EXPECT_EQ(first.call_id, call_id);
    EXPECT_EQ(first.cseq, 7u);
    EXPECT_EQ(first.server.rfind("IM-serv/OMA1.0", 0), 0u) << first.server;
    EXPECT_FALSE(first.date.empty());
    auto listed = ListedExpires(first, contact);
    ASSERT_TRUE(listed) << AnswerText(first);
    EXPECT_GE(*listed, 599);
    EXPECT_LE(*listed, 600);
    auto stored = Registration(aor);
    ASSERT_TRUE(stored);
    ASSERT_EQ(stored->bindings_size(), 1);
    EXPECT_EQ(stored->bindings(0).call_id(), call_id);
    EXPECT_EQ(stored->bindings(0).cseq(), 7u);

    // The same CSeq, then a lower one, each asking for a longer expiry that would show.
    for (uint32_t cseq : {7u, 3u}) {
      request.expires = 1200;
      request.cseq = cseq;
      auto refused = agent.Register(request);
      EXPECT_EQ(refused.status, 500) << AnswerText(refused);
      EXPECT_EQ(refused.phrase, "Out of order CSeq for this Call-ID");
      EXPECT_EQ(refused.cseq, cseq) << "the answer belongs to another request";
      EXPECT_TRUE(refused.contacts.empty());
      auto after = Registration(aor);
      ASSERT_TRUE(after);
      EXPECT_TRUE(MessageDifferencer::Equals(*after, *stored))
          << "binding changed by CSeq " << cseq << ":\n"
          << after->ShortDebugString() << "\nwas\n"
          << stored->ShortDebugString();
    }
    EXPECT_EQ(EventsOf("registered", aor).size(), 1u) << "a refused refresh was announced";

    // The next CSeq is taken: the refusals were about the order and nothing else.
    request.cseq = 8;
    auto refreshed = agent.Register(request);
    ASSERT_EQ(refreshed.status, 200) << AnswerText(refreshed);
    listed = ListedExpires(refreshed, contact);
    ASSERT_TRUE(listed) << AnswerText(refreshed);
    EXPECT_GE(*listed, 1199);
    auto after = Registration(aor);
    ASSERT_TRUE(after);
    ASSERT_EQ(after->bindings_size(), 1);
    EXPECT_EQ(after->bindings(0).cseq(), 8u);

    // Order is per Call-ID: another Call-ID may start low.
    request.call_id = user + "-rebooted@127.0.0.1";
    request.cseq = 1;
    auto rebooted = agent.Register(request);
    EXPECT_EQ(rebooted.status, 200) << AnswerText(rebooted);
    after = Registration(aor);
    ASSERT_TRUE(after);
    ASSERT_EQ(after->bindings_size(), 1);
    EXPECT_EQ(after->bindings(0).call_id(), request.call_id);
    EXPECT_EQ(after->bindings(0).cseq(), 1u);
  }
}

// RFC 3903 end to end, each answer's entity-tag carried into the next request: initial, refresh
// without a body, modify, removal, and the removed publication's entity-tag then gives 412.
TEST_F(SipEdgeTest, APublicationIsRefreshedModifiedAndRemovedByItsEntityTags) {
  ASSERT_NO_FATAL_FAILURE(StartEdge(true));
  SofiaAgent agent(AgentOptions());
  for (SipTransport transport : {SipTransport::kUdp, SipTransport::kTcp}) {
    std::string aor = std::string("sip:heidi-") +
                      (transport == SipTransport::kUdp ? "udp" : "tcp") + "@dims.test";
    auto initial = agent.Publish({.aor = aor,
                                  .content_type = kSettingsType,
                                  .body = SettingsDocument(true),
                                  .expires = 600,
                                  .transport = transport});
    ASSERT_EQ(initial.status, 200) << AnswerText(initial);
    EXPECT_FALSE(initial.etag.empty()) << AnswerText(initial);
    EXPECT_EQ(initial.expires, 600);
    EXPECT_EQ(initial.server.rfind("IM-serv/OMA1.0", 0), 0u) << initial.server;
    EXPECT_FALSE(initial.date.empty());
    auto settings = Settings(aor);
    ASSERT_EQ(settings.publications_size(), 1);
    EXPECT_EQ(settings.publications(0).etag(), initial.etag);
    EXPECT_EQ(settings.effective().source(), dims::v1::SETTINGS_SOURCE_PUBLISHED);
    EXPECT_TRUE(settings.effective().offline_delivery_active());

    // Refresh: no body, a new entity-tag, the document kept.
    auto refresh = agent.Publish(
        {.aor = aor, .if_match = initial.etag, .expires = 600, .transport = transport});
    ASSERT_EQ(refresh.status, 200) << AnswerText(refresh);
    EXPECT_FALSE(refresh.etag.empty());
    EXPECT_NE(refresh.etag, initial.etag);
    EXPECT_EQ(refresh.expires, 600);
    settings = Settings(aor);
    ASSERT_EQ(settings.publications_size(), 1);
    EXPECT_EQ(settings.publications(0).etag(), refresh.etag);
    EXPECT_TRUE(settings.effective().offline_delivery_active());

    // Modify: a new document under the current entity-tag.
    auto modify = agent.Publish({.aor = aor,
                                 .content_type = kSettingsType,
                                 .body = SettingsDocument(false),
                                 .if_match = refresh.etag,
                                 .expires = 900,
                                 .transport = transport});
    ASSERT_EQ(modify.status, 200) << AnswerText(modify);
    EXPECT_FALSE(modify.etag.empty());
    EXPECT_NE(modify.etag, refresh.etag);
    EXPECT_EQ(modify.expires, 900);
    settings = Settings(aor);
    ASSERT_EQ(settings.publications_size(), 1);
    EXPECT_EQ(settings.publications(0).etag(), modify.etag);
    EXPECT_EQ(settings.effective().source(), dims::v1::SETTINGS_SOURCE_PUBLISHED);
    EXPECT_FALSE(settings.effective().offline_delivery_active());

    // Removal: Expires 0; the defaults apply again.
    auto removal =
        agent.Publish({.aor = aor, .if_match = modify.etag, .expires = 0, .transport = transport});
    ASSERT_EQ(removal.status, 200) << AnswerText(removal);
    EXPECT_EQ(removal.expires, 0);
    settings = Settings(aor);
    EXPECT_EQ(settings.publications_size(), 0);
    EXPECT_EQ(settings.effective().source(), dims::v1::SETTINGS_SOURCE_DEFAULT);

    // The removed publication's entity-tag, and an older one, match nothing now.
    for (const std::string& etag : {modify.etag, initial.etag}) {
      auto stale =
          agent.Publish({.aor = aor, .if_match = etag, .expires = 600, .transport = transport});
      EXPECT_EQ(stale.status, 412) << AnswerText(stale);
      EXPECT_TRUE(stale.etag.empty()) << AnswerText(stale);
    }
    EXPECT_EQ(Settings(aor).publications_size(), 0);
  }
}

// Two user agents of one user, each with its own address, instance and Call-ID: the 200 OK of
// each REGISTER lists every binding of the user, and each agent removes only its own.
TEST_F(SipEdgeTest, TwoUserAgentsOfOneUserAreBothListedAndEachLeavesAlone) {
  ASSERT_NO_FATAL_FAILURE(StartEdge(false));
  SofiaAgent phone(AgentOptions());
  SofiaAgent tablet(AgentOptions());
  const std::string aor = "sip:ivan@dims.test";
  std::string phone_uri = phone.ContactUri("ivan", SipTransport::kUdp);
  std::string tablet_uri = tablet.ContactUri("ivan", SipTransport::kTcp);

  auto first = phone.Register(
      {.aor = aor,
       .contact_params =
           ";+g.oma.sip-im;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0000000000a1>\"",
       .expires = 600});
  ASSERT_EQ(first.status, 200) << AnswerText(first);
  ASSERT_EQ(first.contacts.size(), 1u) << AnswerText(first);
  EXPECT_TRUE(ListedExpires(first, phone_uri)) << AnswerText(first);

  auto second = tablet.Register(
      {.aor = aor,
       .contact_params =
           ";+g.oma.sip-im;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0000000000b2>\"",
       .expires = 1200,
       .transport = SipTransport::kTcp});
  ASSERT_EQ(second.status, 200) << AnswerText(second);
  EXPECT_EQ(second.contacts.size(), 2u) << AnswerText(second);
  auto phone_left = ListedExpires(second, phone_uri);
  auto tablet_left = ListedExpires(second, tablet_uri);
  ASSERT_TRUE(phone_left) << AnswerText(second);
  ASSERT_TRUE(tablet_left) << AnswerText(second);
  EXPECT_GE(*phone_left, 590);
  EXPECT_LE(*phone_left, 600);
  EXPECT_GE(*tablet_left, 1199);
  EXPECT_LE(*tablet_left, 1200);

  auto registration = Registration(aor);
  ASSERT_TRUE(registration);
  ASSERT_EQ(registration->bindings_size(), 2);
  std::set<std::string> instances;
  for (const auto& b : registration->bindings()) {
    instances.insert(b.feature_tags().at("+sip.instance"));
  }
  EXPECT_EQ(instances, (std::set<std::string>{"<urn:uuid:00000000-0000-1000-8000-0000000000a1>",
                                              "<urn:uuid:00000000-0000-1000-8000-0000000000b2>"}));

  // The tablet leaves (its own Contact, Expires 0): the phone stays, and is listed.
  auto gone = tablet.Register({.aor = aor, .expires = 0, .transport = SipTransport::kTcp});
  ASSERT_EQ(gone.status, 200) << AnswerText(gone);
  EXPECT_EQ(gone.contacts.size(), 1u) << AnswerText(gone);
  EXPECT_TRUE(ListedExpires(gone, phone_uri)) << AnswerText(gone);
  EXPECT_FALSE(ListedExpires(gone, tablet_uri)) << AnswerText(gone);
  registration = Registration(aor);
  ASSERT_TRUE(registration);
  ASSERT_EQ(registration->bindings_size(), 1);
  EXPECT_EQ(registration->bindings(0).contact_uri(), phone_uri);
  EXPECT_EQ(EventsOf("deregistered", aor).size(), 1u);
}

}  // namespace
}  // namespace dims::testing
