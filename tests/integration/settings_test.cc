// The settings service against real Redis, through its gRPC contract
// (proto/dims/v1/settings.proto): the RFC 3903 publication cycle, the settings document DIMS
// defines (docs, oma-simple-im-notes "DIMS decisions"), validation that changes nothing,
// intervals and expiry, the three layers, the publication limit, AOR normalisation, events on
// the bus, concurrent publishers, and Redis going away.
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dims/v1/delivery.pb.h"
#include "dims/v1/settings.grpc.pb.h"
#include "service_test.h"
#include "test_clients.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;
namespace v1 = ::dims::v1;
using google::protobuf::util::MessageDifferencer;
using google::protobuf::util::TimeUtil;

constexpr char kEventStream[] = "dims:events";
constexpr char kPocNs[] = "urn:oma:params:xml:ns:poc:poc-settings";
constexpr char kImNs[] = "urn:oma:xml:im:service-settings";
constexpr char kDimsNs[] = "urn:dims:params:xml:ns:im-settings-ext";
constexpr char kPocType[] = "application/poc-settings+xml";

std::string Aor(const std::string& user) { return "sip:" + user + "@dims.test"; }

// ---------------------------------------------------------------------------------------
// Settings values
// ---------------------------------------------------------------------------------------

// ImSettings from six flags in field order: bit 0 incoming_session_barring,
// 1 incoming_pager_large_barring, 2 invisibility, 3 offline_delivery_active,
// 4 store_session_conversations, 5 store_pager_large_conversations.
v1::ImSettings FromBits(int bits, v1::SettingsSource source = v1::SETTINGS_SOURCE_UNSPECIFIED) {
  v1::ImSettings s;
  s.set_incoming_session_barring(bits & 1);
  s.set_incoming_pager_large_barring(bits & 2);
  s.set_invisibility(bits & 4);
  s.set_offline_delivery_active(bits & 8);
  s.set_store_session_conversations(bits & 16);
  s.set_store_pager_large_conversations(bits & 32);
  s.set_source(source);
  return s;
}
constexpr int kIsb = 1, kPagerLargeBarring = 2, kInvisible = 4, kOffline = 8, kHistSession = 16,
              kHistPagerLarge = 32, kAll = 63;

v1::ImSettings Published(int bits) { return FromBits(bits, v1::SETTINGS_SOURCE_PUBLISHED); }
v1::ImSettings Backend(int bits) { return FromBits(bits, v1::SETTINGS_SOURCE_BACKEND); }
v1::ImSettings Defaults() { return FromBits(0, v1::SETTINGS_SOURCE_DEFAULT); }

::testing::AssertionResult SameSettings(const v1::ImSettings& expected,
                                        const v1::ImSettings& actual) {
  if (MessageDifferencer::Equals(expected, actual)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected {" << expected.ShortDebugString() << "}, got {"
                                       << actual.ShortDebugString() << "}";
}

// ---------------------------------------------------------------------------------------
// Settings documents
// ---------------------------------------------------------------------------------------

const char* Bool(bool value) { return value ? "true" : "false"; }

// `text` with $POC, $IM and $DIMS replaced by the namespace names of the settings document.
std::string Xml(std::string text) {
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"$POC", kPocNs}, {"$IM", kImNs}, {"$DIMS", kDimsNs}}) {
    for (size_t at = text.find(name); at != std::string::npos; at = text.find(name, at)) {
      text.replace(at, name.size(), value);
      at += value.size();
    }
  }
  return text;
}

// The RFC 4354 container with the prefixes this file uses: poc (default), im:, dims:.
std::string Container(const std::string& entity_content) {
  return std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") + "<poc-settings xmlns=\"" +
         kPocNs + "\" xmlns:im=\"" + kImNs + "\" xmlns:dims=\"" + kDimsNs + "\">\n" +
         "  <entity id=\"do39s8zksn2d98x\">\n" + entity_content + "  </entity>\n" +
         "</poc-settings>\n";
}

// A complete DIMS settings document: every element present, values from `s`.
std::string Document(const v1::ImSettings& s) {
  std::ostringstream d;
  d << "    <isb-settings><incoming-session-barring active=\"" << Bool(s.incoming_session_barring())
    << "\"/></isb-settings>\n"
    << "    <im:deferred-settings><im:offline-delivery active=\""
    << Bool(s.offline_delivery_active()) << "\"/></im:deferred-settings>\n"
    << "    <im:vis-settings><im:vis-status active=\"" << Bool(s.invisibility())
    << "\"/></im:vis-settings>\n"
    << "    <im:hist-settings>\n"
    << "      <im:hist-activation type=\"session-mode\" active=\""
    << Bool(s.store_session_conversations()) << "\"/>\n"
    << "      <im:hist-activation type=\"pager-large-mode\" active=\""
    << Bool(s.store_pager_large_conversations()) << "\"/>\n"
    << "    </im:hist-settings>\n"
    << "    <dims:pager-large-barring active=\"" << Bool(s.incoming_pager_large_barring())
    << "\"/>\n";
  return Container(d.str());
}
std::string Document(int bits) { return Document(FromBits(bits)); }

// `document` grown to exactly `size` bytes by a comment after the root element.
std::string PaddedTo(const std::string& document, size_t size) {
  const size_t overhead = document.size() + 7;  // "<!--" + "-->"
  EXPECT_GE(size, overhead) << "document too large to pad to " << size;
  if (size < overhead) return document;
  return document + "<!--" + std::string(size - overhead, 'x') + "-->";
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

std::atomic<int> call_counter{0};

v1::SettingsPublishRequest PublishRequest(const std::string& aor) {
  v1::SettingsPublishRequest r;
  r.mutable_aor()->set_uri(aor);
  r.set_event_package("poc-settings");
  r.set_call_id("settings-test-" + std::to_string(++call_counter) + "@dims.test");
  return r;
}

// Initial publication (no SIP-If-Match, body); no Expires header when `expires` is empty.
v1::SettingsPublishRequest Initial(const std::string& aor, const std::string& body,
                                   std::optional<int64_t> expires = std::nullopt) {
  v1::SettingsPublishRequest r = PublishRequest(aor);
  if (expires) r.mutable_expires()->set_seconds(*expires);
  r.set_content_type(kPocType);
  r.set_body(body);
  return r;
}

// Refresh (SIP-If-Match, no body).
v1::SettingsPublishRequest Refresh(const std::string& aor, const std::string& etag,
                                   std::optional<int64_t> expires = std::nullopt) {
  v1::SettingsPublishRequest r = PublishRequest(aor);
  r.set_if_match(etag);
  if (expires) r.mutable_expires()->set_seconds(*expires);
  return r;
}

// Modify (SIP-If-Match and a body).
v1::SettingsPublishRequest Modify(const std::string& aor, const std::string& etag,
                                  const std::string& body,
                                  std::optional<int64_t> expires = std::nullopt) {
  v1::SettingsPublishRequest r = Initial(aor, body, expires);
  r.set_if_match(etag);
  return r;
}

// Removal (SIP-If-Match, Expires: 0, no body).
v1::SettingsPublishRequest Remove(const std::string& aor, const std::string& etag) {
  v1::SettingsPublishRequest r = Refresh(aor, etag);
  r.mutable_expires()->set_seconds(0);
  return r;
}

v1::SettingsPublishRequest WithContentType(v1::SettingsPublishRequest r, const std::string& type) {
  r.set_content_type(type);
  return r;
}

v1::SettingsPublishRequest WithEvent(v1::SettingsPublishRequest r, const std::string& event) {
  r.set_event_package(event);
  return r;
}

// ---------------------------------------------------------------------------------------
// A Settings client whose every call carries a deadline
// ---------------------------------------------------------------------------------------

class SettingsClient {
 public:
  explicit SettingsClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::Settings::NewStub(std::move(channel))) {}

  template <typename Req, typename Resp>
  using Method = grpc::Status (v1::Settings::Stub::*)(grpc::ClientContext*, const Req&, Resp*);

  // One unary call; `detail` receives the "dims-error-bin" ErrorDetail (see CallWithDeadline).
  template <typename Req, typename Resp>
  grpc::Status Call(Method<Req, Resp> method, const Req& request, Resp* response,
                    v1::ErrorDetail* detail = nullptr, std::chrono::milliseconds timeout = 10s) {
    return CallWithDeadline(*stub_, method, request, response, detail, nullptr, timeout);
  }

  grpc::Status Publish(const v1::SettingsPublishRequest& request,
                       v1::SettingsPublishResponse* response, v1::ErrorDetail* detail = nullptr,
                       std::chrono::milliseconds timeout = 10s) {
    return Call(&v1::Settings::Stub::Publish, request, response, detail, timeout);
  }

  grpc::Status Get(const std::string& aor, v1::SettingsGetResponse* response,
                   v1::ErrorDetail* detail = nullptr, std::chrono::milliseconds timeout = 10s) {
    v1::SettingsGetRequest request;
    request.mutable_aor()->set_uri(aor);
    return Call(&v1::Settings::Stub::Get, request, response, detail, timeout);
  }

  grpc::Status Put(const std::string& aor, const v1::ImSettings& settings,
                   const std::vector<std::string>& mask, v1::SettingsPutResponse* response,
                   v1::ErrorDetail* detail = nullptr, std::chrono::milliseconds timeout = 10s) {
    v1::SettingsPutRequest request;
    request.mutable_aor()->set_uri(aor);
    *request.mutable_settings() = settings;
    for (const auto& path : mask) request.mutable_update_mask()->add_paths(path);
    return Call(&v1::Settings::Stub::Put, request, response, detail, timeout);
  }

  grpc::Status Delete(const std::string& aor, v1::SettingsDeleteScope scope,
                      v1::SettingsDeleteResponse* response, v1::ErrorDetail* detail = nullptr,
                      std::chrono::milliseconds timeout = 10s) {
    v1::SettingsDeleteRequest request;
    request.mutable_aor()->set_uri(aor);
    request.set_scope(scope);
    request.set_reason("settings_test");
    return Call(&v1::Settings::Stub::Delete, request, response, detail, timeout);
  }

 private:
  std::unique_ptr<v1::Settings::Stub> stub_;
};

// A non-OK answer with the expected code and ErrorDetail.reason.
::testing::AssertionResult IsError(const grpc::Status& status, const v1::ErrorDetail& detail,
                                   grpc::StatusCode code, const std::string& reason) {
  if (status.error_code() == code && detail.reason() == reason) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "expected " << CodeName(code) << " reason " << reason << ", got " << Describe(status)
         << " reason '" << detail.reason() << "'";
}

// An RFC 3903 entity-tag is a SIP token (RFC 3261 25.1).
bool IsSipToken(const std::string& value) {
  if (value.empty()) return false;
  return std::all_of(value.begin(), value.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("-.!%*_+`'~").find(c) != std::string_view::npos;
  });
}

// Seconds from now until `t` (negative when `t` has passed).
double SecondsFromNow(const google::protobuf::Timestamp& t) {
  return static_cast<double>(TimeUtil::DurationToMilliseconds(t - TimeUtil::GetCurrentTime())) /
         1000.0;
}

std::vector<std::string> Etags(const v1::SettingsGetResponse& response) {
  std::vector<std::string> etags;
  for (const auto& p : response.publications()) etags.push_back(p.etag());
  return etags;
}

const v1::Publication* FindPublication(const v1::SettingsGetResponse& response,
                                       const std::string& etag) {
  for (const auto& p : response.publications()) {
    if (p.etag() == etag) return &p;
  }
  return nullptr;
}

// Get lists live publications newest first (by updated_at).
::testing::AssertionResult NewestFirst(const v1::SettingsGetResponse& response) {
  for (int i = 1; i < response.publications_size(); ++i) {
    if (response.publications(i - 1).updated_at() < response.publications(i).updated_at()) {
      return ::testing::AssertionFailure() << "publication " << i << " is newer than " << i - 1
                                           << ": " << response.ShortDebugString();
    }
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------
// Redis, read with a plain connection
// ---------------------------------------------------------------------------------------

using Reply = std::unique_ptr<redisReply, void (*)(void*)>;

class RedisConnection {
 public:
  explicit RedisConnection(int port) {
    timeval timeout{2, 0};
    context_ = redisConnectWithTimeout("127.0.0.1", port, timeout);
    if (context_ == nullptr || context_->err) {
      ADD_FAILURE() << "redis connect: " << (context_ ? context_->errstr : "out of memory");
    }
  }
  ~RedisConnection() {
    if (context_) redisFree(context_);
  }
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // One command; a null reply when the connection failed or closed.
  Reply Command(const std::vector<std::string>& args) {
    if (context_ == nullptr || context_->err) return Reply(nullptr, freeReplyObject);
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    void* reply =
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data());
    return Reply(static_cast<redisReply*>(reply), freeReplyObject);
  }

 private:
  redisContext* context_ = nullptr;
};

std::vector<std::string> AllKeys(int port) {
  RedisConnection redis(port);
  std::vector<std::string> keys;
  Reply reply = redis.Command({"KEYS", "*"});
  if (reply && reply->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < reply->elements; ++i) {
      keys.emplace_back(reply->element[i]->str, reply->element[i]->len);
    }
  }
  return keys;
}

// Keys that mention `user_and_host` ("alice@dims.test") anywhere in their name.
std::vector<std::string> KeysOf(int port, const std::string& user_and_host) {
  std::vector<std::string> keys;
  for (auto& key : AllKeys(port)) {
    if (key.find(user_and_host) != std::string::npos) keys.push_back(std::move(key));
  }
  return keys;
}

long long Pttl(int port, const std::string& key) {
  RedisConnection redis(port);
  Reply reply = redis.Command({"PTTL", key});
  return reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -3;
}

long long StreamLength(int port) {
  RedisConnection redis(port);
  Reply reply = redis.Command({"XLEN", kEventStream});
  return reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
}

// Entries of `type` for `aor` (by the informative fields), in stream order.
std::vector<StreamEntry> EntriesOf(const std::vector<StreamEntry>& entries, const std::string& type,
                                   const std::string& aor) {
  std::vector<StreamEntry> found;
  for (const auto& e : entries) {
    auto t = e.fields.find("type");
    auto a = e.fields.find("aor");
    if (t != e.fields.end() && a != e.fields.end() && t->second == type && a->second == aor) {
      found.push_back(e);
    }
  }
  return found;
}

std::string Dump(const std::vector<StreamEntry>& entries) {
  std::string dump;
  for (const auto& e : entries) {
    dump += e.id + ":";
    for (const auto& [k, v] : e.fields) {
      dump += " " + k + "=" + (k == "event" ? "<" + std::to_string(v.size()) + " bytes>" : v);
    }
    if (e.decoded) dump += " {" + e.event.ShortDebugString() + "}";
    dump += "\n";
  }
  return dump;
}

// ---------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------

class SettingsTest : public ServiceTest {
 protected:
  SettingsTest() : ServiceTest("settings") {}

  // Starts dims-settings with extra DIMS_* variables and waits until it serves.
  void Start(const std::map<std::string, std::string>& env = {}) {
    ASSERT_NO_FATAL_FAILURE(StartService(env));
    client_ = std::make_unique<SettingsClient>(NewChannel(address()));
  }
  int redis_port() { return stack_.redis().port(); }
  SettingsClient& client() { return *client_; }

  v1::SettingsPublishResponse MustPublish(const v1::SettingsPublishRequest& request) {
    v1::SettingsPublishResponse response;
    v1::ErrorDetail detail;
    grpc::Status status = client().Publish(request, &response, &detail);
    EXPECT_TRUE(status.ok()) << "Publish " << request.ShortDebugString() << ": " << Describe(status)
                             << " reason '" << detail.reason() << "'";
    return response;
  }

  // A Publish expected to fail with `code` and `reason`.
  void ExpectPublishFails(const v1::SettingsPublishRequest& request, grpc::StatusCode code,
                          const std::string& reason, v1::ErrorDetail* detail_out = nullptr,
                          grpc::Status* status_out = nullptr) {
    v1::SettingsPublishResponse response;
    v1::ErrorDetail detail;
    grpc::Status status = client().Publish(request, &response, &detail);
    EXPECT_TRUE(IsError(status, detail, code, reason))
        << "request {" << request.ShortDebugString() << "}";
    if (detail_out) *detail_out = detail;
    if (status_out) *status_out = status;
  }

  v1::SettingsGetResponse MustGet(const std::string& aor) {
    v1::SettingsGetResponse response;
    grpc::Status status = client().Get(aor, &response);
    EXPECT_TRUE(status.ok()) << "Get " << aor << ": " << Describe(status);
    return response;
  }

  v1::SettingsPutResponse MustPut(const std::string& aor, const v1::ImSettings& settings,
                                  const std::vector<std::string>& mask = {}) {
    v1::SettingsPutResponse response;
    grpc::Status status = client().Put(aor, settings, mask, &response);
    EXPECT_TRUE(status.ok()) << "Put " << aor << ": " << Describe(status);
    return response;
  }

  v1::SettingsDeleteResponse MustDelete(const std::string& aor, v1::SettingsDeleteScope scope) {
    v1::SettingsDeleteResponse response;
    grpc::Status status = client().Delete(aor, scope, &response);
    EXPECT_TRUE(status.ok()) << "Delete " << aor << " scope " << scope << ": " << Describe(status);
    return response;
  }

  struct Outcome {
    grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
    std::string reason;
    v1::SettingsPublishResponse response;
  };

  // Sends request(i) for i in [0, n) from n threads, each on its own connection, all
  // released at once.
  std::vector<Outcome> PublishConcurrently(
      int n, const std::function<v1::SettingsPublishRequest(int)>& request) {
    std::vector<std::unique_ptr<SettingsClient>> clients;
    for (int i = 0; i < n; ++i) {
      auto channel = NewChannel(address());
      EXPECT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + 5s));
      clients.push_back(std::make_unique<SettingsClient>(channel));
    }
    std::vector<Outcome> outcomes(static_cast<size_t>(n));
    std::latch start(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        auto r = request(i);
        auto& outcome = outcomes[static_cast<size_t>(i)];
        v1::ErrorDetail detail;
        start.arrive_and_wait();
        grpc::Status status =
            clients[static_cast<size_t>(i)]->Publish(r, &outcome.response, &detail, 20s);
        outcome.code = status.error_code();
        outcome.reason = detail.reason();
      });
    }
    for (auto& t : threads) t.join();
    return outcomes;
  }

  std::unique_ptr<SettingsClient> client_;
};

// ---------------------------------------------------------------------------------------
// RFC 3903: initial, refresh, modify, remove
// ---------------------------------------------------------------------------------------

TEST_F(SettingsTest, InitialPublicationAnswersEtagGrantedExpiryAndTheDocumentsSettings) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string alice = Aor("alice");
  auto before = TimeUtil::GetCurrentTime();
  v1::SettingsPublishResponse first = MustPublish(Initial(alice, Document(kAll)));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(first.kind(), v1::PUBLICATION_KIND_INITIAL);
  EXPECT_TRUE(IsSipToken(first.etag())) << "SIP-ETag must be a SIP token: '" << first.etag() << "'";
  EXPECT_EQ(first.expires().seconds(), 3600) << "no Expires: the default interval";
  EXPECT_NEAR(SecondsFromNow(first.expires_at()), 3600, 3);
  EXPECT_TRUE(SameSettings(Published(kAll), first.effective()));

  v1::SettingsGetResponse got = MustGet(alice);
  EXPECT_TRUE(SameSettings(Published(kAll), got.effective()));
  EXPECT_FALSE(got.has_backend()) << "no backend layer was written";
  ASSERT_EQ(got.publications_size(), 1) << got.ShortDebugString();
  const auto& p = got.publications(0);
  EXPECT_EQ(p.etag(), first.etag());
  EXPECT_TRUE(SameSettings(Published(kAll), p.settings()));
  EXPECT_EQ(p.expires_at(), first.expires_at());
  EXPECT_EQ(p.event_package(), "poc-settings");
  EXPECT_GE(p.updated_at(), before - TimeUtil::SecondsToDuration(1));
  EXPECT_LE(p.updated_at(), TimeUtil::GetCurrentTime() + TimeUtil::SecondsToDuration(1));

  // A second initial PUBLISH (another device) is a second publication with its own ETag.
  v1::SettingsPublishResponse second = MustPublish(Initial(alice, Document(kOffline), 600));
  EXPECT_EQ(second.kind(), v1::PUBLICATION_KIND_INITIAL);
  EXPECT_NE(second.etag(), first.etag());
  EXPECT_EQ(second.expires().seconds(), 600);
  got = MustGet(alice);
  EXPECT_EQ(got.publications_size(), 2) << got.ShortDebugString();
  EXPECT_TRUE(NewestFirst(got));

  // ETags are not shared between users.
  v1::SettingsPublishResponse bob = MustPublish(Initial(Aor("bob"), Document(kAll)));
  EXPECT_NE(bob.etag(), first.etag());
  EXPECT_NE(bob.etag(), second.etag());
}

TEST_F(SettingsTest, RefreshGivesANewEtagKeepsTheDocumentAndRetiresTheOldEtag) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("refresher");
  v1::SettingsPublishResponse initial =
      MustPublish(Initial(aor, Document(kOffline | kInvisible), 120));
  ASSERT_FALSE(HasFailure());
  v1::SettingsGetResponse before = MustGet(aor);
  ASSERT_EQ(before.publications_size(), 1);

  v1::SettingsPublishResponse refreshed = MustPublish(Refresh(aor, initial.etag(), 600));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(refreshed.kind(), v1::PUBLICATION_KIND_REFRESH);
  EXPECT_TRUE(IsSipToken(refreshed.etag()));
  EXPECT_NE(refreshed.etag(), initial.etag()) << "a refresh gets a new entity-tag (RFC 3903)";
  EXPECT_EQ(refreshed.expires().seconds(), 600);
  EXPECT_NEAR(SecondsFromNow(refreshed.expires_at()), 600, 3);
  EXPECT_TRUE(SameSettings(Published(kOffline | kInvisible), refreshed.effective()));

  v1::SettingsGetResponse after = MustGet(aor);
  ASSERT_EQ(after.publications_size(), 1)
      << "a refresh must not add a publication: " << after.ShortDebugString();
  const auto& p = after.publications(0);
  EXPECT_EQ(p.etag(), refreshed.etag());
  EXPECT_EQ(p.expires_at(), refreshed.expires_at());
  EXPECT_TRUE(SameSettings(Published(kOffline | kInvisible), p.settings()));
  EXPECT_EQ(p.updated_at(), before.publications(0).updated_at())
      << "updated_at is when the document was last set; a refresh does not set it";

  // The replaced ETag is gone; the new one works, without Expires the default applies.
  ExpectPublishFails(Refresh(aor, initial.etag()), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");
  v1::SettingsPublishResponse again = MustPublish(Refresh(aor, refreshed.etag()));
  EXPECT_EQ(again.kind(), v1::PUBLICATION_KIND_REFRESH);
  EXPECT_EQ(again.expires().seconds(), 3600);
  EXPECT_NE(again.etag(), refreshed.etag());
}

TEST_F(SettingsTest, ModifyReplacesTheDocumentUnderANewEtag) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("modifier");
  v1::SettingsPublishResponse initial = MustPublish(Initial(aor, Document(kAll)));
  ASSERT_FALSE(HasFailure());
  v1::SettingsGetResponse before = MustGet(aor);

  auto request = Modify(aor, initial.etag(), Document(kHistSession), 900);
  request.set_content_type("application/xml");
  v1::SettingsPublishResponse modified = MustPublish(request);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(modified.kind(), v1::PUBLICATION_KIND_MODIFY);
  EXPECT_TRUE(IsSipToken(modified.etag()));
  EXPECT_NE(modified.etag(), initial.etag());
  EXPECT_EQ(modified.expires().seconds(), 900);
  EXPECT_TRUE(SameSettings(Published(kHistSession), modified.effective()))
      << "the new document replaces the old one as a whole";

  v1::SettingsGetResponse after = MustGet(aor);
  ASSERT_EQ(after.publications_size(), 1) << after.ShortDebugString();
  EXPECT_EQ(after.publications(0).etag(), modified.etag());
  EXPECT_TRUE(SameSettings(Published(kHistSession), after.publications(0).settings()));
  EXPECT_GE(after.publications(0).updated_at(), before.publications(0).updated_at());
  EXPECT_TRUE(SameSettings(Published(kHistSession), after.effective()));

  ExpectPublishFails(Modify(aor, initial.etag(), Document(kAll)),
                     grpc::StatusCode::FAILED_PRECONDITION, "UNKNOWN_ETAG");
  EXPECT_TRUE(SameSettings(Published(kHistSession), MustGet(aor).effective()));
}

TEST_F(SettingsTest, RemoveDeletesThePublicationAndFallsBackToTheLowerLayer) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // With a backend layer underneath.
  const std::string carol = Aor("carol");
  MustPut(carol, FromBits(kInvisible));
  v1::SettingsPublishResponse initial = MustPublish(Initial(carol, Document(kOffline)));
  ASSERT_FALSE(HasFailure());
  EXPECT_TRUE(SameSettings(Published(kOffline), initial.effective()));

  v1::SettingsPublishResponse removed = MustPublish(Remove(carol, initial.etag()));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(removed.kind(), v1::PUBLICATION_KIND_REMOVE);
  EXPECT_TRUE(removed.etag().empty()) << removed.etag();
  EXPECT_EQ(removed.expires().seconds(), 0);
  EXPECT_TRUE(SameSettings(Backend(kInvisible), removed.effective()));
  v1::SettingsGetResponse got = MustGet(carol);
  EXPECT_EQ(got.publications_size(), 0) << got.ShortDebugString();
  EXPECT_TRUE(SameSettings(Backend(kInvisible), got.effective()));
  ExpectPublishFails(Refresh(carol, initial.etag()), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");
  ExpectPublishFails(Remove(carol, initial.etag()), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");

  // Without one: back to the defaults.
  const std::string dave = Aor("dave");
  v1::SettingsPublishResponse dave_initial = MustPublish(Initial(dave, Document(kAll)));
  v1::SettingsPublishResponse dave_removed = MustPublish(Remove(dave, dave_initial.etag()));
  EXPECT_EQ(dave_removed.kind(), v1::PUBLICATION_KIND_REMOVE);
  EXPECT_TRUE(SameSettings(Defaults(), dave_removed.effective()));
  got = MustGet(dave);
  EXPECT_EQ(got.publications_size(), 0);
  EXPECT_TRUE(SameSettings(Defaults(), got.effective()));

  // Removing one of two publications leaves the other in force.
  const std::string erin = Aor("erin");
  v1::SettingsPublishResponse older = MustPublish(Initial(erin, Document(kIsb)));
  v1::SettingsPublishResponse newer = MustPublish(Initial(erin, Document(kHistPagerLarge)));
  MustPublish(Remove(erin, newer.etag()));
  got = MustGet(erin);
  EXPECT_EQ(Etags(got), std::vector<std::string>{older.etag()});
  EXPECT_TRUE(SameSettings(Published(kIsb), got.effective()));
}

TEST_F(SettingsTest, UnknownEtagIsAConditionalFailureForRefreshModifyAndRemove) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string alice = Aor("alice");
  const std::string bob = Aor("bob");
  v1::SettingsPublishResponse alices = MustPublish(Initial(alice, Document(kOffline)));
  ASSERT_FALSE(HasFailure());
  v1::SettingsGetResponse alice_before = MustGet(alice);

  for (const std::string& etag : {std::string("no-such-etag"), alices.etag()}) {
    SCOPED_TRACE("bob uses etag " + etag);
    ExpectPublishFails(Refresh(bob, etag), grpc::StatusCode::FAILED_PRECONDITION, "UNKNOWN_ETAG");
    ExpectPublishFails(Modify(bob, etag, Document(kAll)), grpc::StatusCode::FAILED_PRECONDITION,
                       "UNKNOWN_ETAG");
    ExpectPublishFails(Remove(bob, etag), grpc::StatusCode::FAILED_PRECONDITION, "UNKNOWN_ETAG");
  }
  ExpectPublishFails(Refresh(alice, "no-such-etag"), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");

  v1::SettingsGetResponse bob_after = MustGet(bob);
  EXPECT_EQ(bob_after.publications_size(), 0) << bob_after.ShortDebugString();
  EXPECT_TRUE(SameSettings(Defaults(), bob_after.effective()));
  EXPECT_TRUE(MessageDifferencer::Equals(alice_before, MustGet(alice)))
      << "another user's use of alice's ETag changed alice's publication";
  EXPECT_TRUE(MustPublish(Refresh(alice, alices.etag())).kind() == v1::PUBLICATION_KIND_REFRESH);
}

// ---------------------------------------------------------------------------------------
// Intervals and expiry
// ---------------------------------------------------------------------------------------

TEST_F(SettingsTest, ExpiresIsDefaultedCappedAndRefusedBelowTheMinimum) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("interval");
  auto granted = [&](const v1::SettingsPublishRequest& request) {
    v1::SettingsPublishResponse r = MustPublish(request);
    EXPECT_NEAR(SecondsFromNow(r.expires_at()), static_cast<double>(r.expires().seconds()), 3);
    return r.expires().seconds();
  };
  EXPECT_EQ(granted(Initial(aor, Document(kOffline))), 3600);
  EXPECT_EQ(granted(Initial(aor, Document(kOffline), 60)), 60);
  EXPECT_EQ(granted(Initial(aor, Document(kOffline), 86400)), 86400);
  EXPECT_EQ(granted(Initial(aor, Document(kOffline), 86401)), 86400);
  EXPECT_EQ(granted(Initial(aor, Document(kOffline), 1'000'000'000)), 86400);

  v1::SettingsGetResponse before = MustGet(aor);
  for (int64_t brief : {1, 59}) {
    SCOPED_TRACE("expires " + std::to_string(brief));
    v1::ErrorDetail detail;
    grpc::Status status;
    ExpectPublishFails(Initial(aor, Document(kAll), brief), grpc::StatusCode::OUT_OF_RANGE,
                       "INTERVAL_TOO_BRIEF", &detail, &status);
    EXPECT_EQ(detail.min_expires().seconds(), 60) << detail.ShortDebugString();
    EXPECT_NE(status.error_message().find("60"), std::string::npos)
        << "the message states the minimum: " << status.error_message();
  }

  // Refresh and modify follow the same rules, and a refused one changes nothing.
  const std::string etag = before.publications(0).etag();
  ExpectPublishFails(Refresh(aor, etag, 59), grpc::StatusCode::OUT_OF_RANGE, "INTERVAL_TOO_BRIEF");
  ExpectPublishFails(Modify(aor, etag, Document(kAll), 30), grpc::StatusCode::OUT_OF_RANGE,
                     "INTERVAL_TOO_BRIEF");
  EXPECT_TRUE(MessageDifferencer::Equals(before, MustGet(aor)))
      << "a refused PUBLISH changed the state";
  v1::SettingsPublishResponse refreshed = MustPublish(Refresh(aor, etag, 200'000));
  EXPECT_EQ(refreshed.expires().seconds(), 86400);
  v1::SettingsPublishResponse modified = MustPublish(Modify(aor, refreshed.etag(), Document(0)));
  EXPECT_EQ(modified.expires().seconds(), 3600);
}

TEST_F(SettingsTest, ConfiguredIntervalsApply) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_PUBLISH_MIN_EXPIRES_SECONDS", "10"},
                                 {"DIMS_PUBLISH_MAX_EXPIRES_SECONDS", "100"},
                                 {"DIMS_PUBLISH_DEFAULT_EXPIRES_SECONDS", "50"}}));
  const std::string aor = Aor("configured");
  EXPECT_EQ(MustPublish(Initial(aor, Document(kOffline))).expires().seconds(), 50);
  EXPECT_EQ(MustPublish(Initial(aor, Document(kOffline), 10)).expires().seconds(), 10);
  EXPECT_EQ(MustPublish(Initial(aor, Document(kOffline), 101)).expires().seconds(), 100);
  v1::ErrorDetail detail;
  ExpectPublishFails(Initial(aor, Document(kOffline), 9), grpc::StatusCode::OUT_OF_RANGE,
                     "INTERVAL_TOO_BRIEF", &detail);
  EXPECT_EQ(detail.min_expires().seconds(), 10);
}

TEST_F(SettingsTest, PublicationWithTheMinimumIntervalIsGoneAfterItExpires) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_PUBLISH_MIN_EXPIRES_SECONDS", "1"}}));
  const std::string alone = Aor("short-alone");
  const std::string layered = Aor("short-layered");
  MustPut(layered, FromBits(kIsb));
  const auto sent = std::chrono::steady_clock::now();
  v1::SettingsPublishResponse a = MustPublish(Initial(alone, Document(kAll), 1));
  v1::SettingsPublishResponse b = MustPublish(Initial(layered, Document(kOffline), 1));
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(a.expires().seconds(), 1);
  EXPECT_TRUE(SameSettings(Published(kAll), a.effective()));
  EXPECT_TRUE(SameSettings(Published(kOffline), b.effective()));

  std::optional<std::chrono::steady_clock::duration> gone_after;
  bool gone = WaitFor(
      [&] {
        v1::SettingsGetResponse got = MustGet(alone);
        if (got.publications_size() != 0 ||
            got.effective().source() != v1::SETTINGS_SOURCE_DEFAULT) {
          return false;
        }
        gone_after = std::chrono::steady_clock::now() - sent;
        return true;
      },
      10s);
  ASSERT_TRUE(gone) << "a 1 s publication is still in force after 10 s: "
                    << MustGet(alone).ShortDebugString();
  EXPECT_GE(*gone_after, 900ms) << "the publication ended before its interval";
  EXPECT_TRUE(SameSettings(Defaults(), MustGet(alone).effective()));
  ExpectPublishFails(Refresh(alone, a.etag()), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");
  ExpectPublishFails(Modify(alone, a.etag(), Document(kAll)), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");
  ExpectPublishFails(Remove(alone, a.etag()), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");

  v1::SettingsGetResponse got = MustGet(layered);
  EXPECT_EQ(got.publications_size(), 0);
  EXPECT_TRUE(SameSettings(Backend(kIsb), got.effective()));
  ExpectPublishFails(Refresh(layered, b.etag()), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");
}

TEST_F(SettingsTest, ExpiredPublicationsNoLongerCountAgainstTheLimit) {
  ASSERT_NO_FATAL_FAILURE(
      Start({{"DIMS_PUBLISH_MIN_EXPIRES_SECONDS", "1"}, {"DIMS_MAX_PUBLICATIONS_PER_USER", "1"}}));
  const std::string aor = Aor("limited");
  MustPublish(Initial(aor, Document(kOffline), 1));
  v1::ErrorDetail detail;
  ExpectPublishFails(Initial(aor, Document(kOffline), 1), grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "TOO_MANY_PUBLICATIONS", &detail);
  EXPECT_EQ(detail.limit(), "USER_PUBLICATIONS");
  // No read in between: the limit itself must not count the expired publication.
  std::this_thread::sleep_for(1500ms);
  v1::SettingsPublishResponse fresh = MustPublish(Initial(aor, Document(kInvisible), 60));
  EXPECT_EQ(fresh.kind(), v1::PUBLICATION_KIND_INITIAL);
  EXPECT_TRUE(SameSettings(Published(kInvisible), fresh.effective()));
}

// DESIGN.md: every key of a user carries the hash tag {aor}; a publication is kept in Redis for
// its lifetime, not longer (issue 4: "gone after it").
TEST_F(SettingsTest, RedisHoldsAPublicationOnlyForItsLifetimeUnderTheUsersHashTag) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_PUBLISH_MIN_EXPIRES_SECONDS", "1"}}));
  const std::string kept = "kept@dims.test";          // backend layer: persistent
  const std::string expiring = "expiring@dims.test";  // one 2 s publication
  const std::string removed = "removed@dims.test";    // one publication, removed
  MustPut("sip:" + kept, FromBits(kOffline));
  MustPublish(Initial("sip:" + expiring, Document(kAll), 2));
  v1::SettingsPublishResponse r = MustPublish(Initial("sip:" + removed, Document(kAll), 600));
  ASSERT_FALSE(HasFailure());

  for (const std::string& user : std::vector<std::string>{kept, expiring, removed}) {
    auto keys = KeysOf(redis_port(), user);
    EXPECT_FALSE(keys.empty()) << "no Redis key names " << user;
    for (const auto& key : keys) {
      EXPECT_NE(key.find("{sip:" + user + "}"), std::string::npos)
          << "key " << key << " lacks the hash tag {sip:" << user << "}";
    }
  }
  for (const auto& key : KeysOf(redis_port(), expiring)) {
    long long pttl = Pttl(redis_port(), key);
    EXPECT_GT(pttl, 0) << "key " << key << " of a user with only a 2 s publication has PTTL "
                       << pttl;
    EXPECT_LE(pttl, 2000 + 1000) << "key " << key << " outlives the publication";
  }

  MustPublish(Remove("sip:" + removed, r.etag()));
  auto left = KeysOf(redis_port(), removed);
  EXPECT_TRUE(left.empty()) << "after removing the only publication, Redis still holds "
                            << left.size() << " key(s), e.g. " << left.front();

  // Not a single read of the user meanwhile: Redis forgets it on its own.
  bool forgotten = WaitFor([&] { return KeysOf(redis_port(), expiring).empty(); }, 10s);
  auto lingering = KeysOf(redis_port(), expiring);
  EXPECT_TRUE(forgotten) << "10 s after a 2 s publication expired Redis still holds "
                         << lingering.size() << " key(s) of the user, e.g. "
                         << (lingering.empty() ? "" : lingering.front());
  EXPECT_FALSE(KeysOf(redis_port(), kept).empty()) << "the backend layer must persist";
  EXPECT_TRUE(SameSettings(Backend(kOffline), MustGet("sip:" + kept).effective()));
}

// ---------------------------------------------------------------------------------------
// The settings document
// ---------------------------------------------------------------------------------------

TEST_F(SettingsTest, EachElementSetsExactlyItsOwnSetting) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // Each element alone, as the only element of the entity.
  const std::map<int, std::string> alone = {
      {kIsb, "<isb-settings><incoming-session-barring active=\"true\"/></isb-settings>"},
      {kPagerLargeBarring, "<dims:pager-large-barring active=\"true\"/>"},
      {kInvisible, "<im:vis-settings><im:vis-status active=\"true\"/></im:vis-settings>"},
      {kOffline,
       "<im:deferred-settings><im:offline-delivery active=\"true\"/></im:deferred-settings>"},
      {kHistSession,
       "<im:hist-settings><im:hist-activation type=\"session-mode\" active=\"true\"/>"
       "</im:hist-settings>"},
      {kHistPagerLarge,
       "<im:hist-settings><im:hist-activation type=\"pager-large-mode\" active=\"true\"/>"
       "</im:hist-settings>"},
  };
  for (const auto& [bit, element] : alone) {
    const std::string aor = Aor("alone" + std::to_string(bit));
    SCOPED_TRACE(element);
    v1::SettingsPublishResponse r = MustPublish(Initial(aor, Container("    " + element + "\n")));
    EXPECT_TRUE(SameSettings(Published(bit), r.effective()));
    EXPECT_TRUE(SameSettings(Published(bit), MustGet(aor).effective()));
  }
  // Each setting true in a document that names all six.
  for (int bit = 1; bit <= 32; bit <<= 1) {
    const std::string aor = Aor("full" + std::to_string(bit));
    v1::SettingsPublishResponse r = MustPublish(Initial(aor, Document(bit)));
    EXPECT_TRUE(SameSettings(Published(bit), r.effective())) << Document(bit);
    // And each false with the other five true.
    v1::SettingsPublishResponse m = MustPublish(Modify(aor, r.etag(), Document(kAll & ~bit)));
    EXPECT_TRUE(SameSettings(Published(kAll & ~bit), m.effective())) << Document(kAll & ~bit);
  }
}

TEST_F(SettingsTest, ActiveTakesTheFourXsBooleanForms) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // `t` in isb, vis-status and pager-large hist; `f` in the other three.
  auto with = [](const std::string& t, const std::string& f) {
    std::string entity = R"(
      <isb-settings><incoming-session-barring active="T"/></isb-settings>
      <im:deferred-settings><im:offline-delivery active="F"/></im:deferred-settings>
      <im:vis-settings><im:vis-status active="T"/></im:vis-settings>
      <im:hist-settings>
        <im:hist-activation type="session-mode" active="F"/>
        <im:hist-activation type="pager-large-mode" active="T"/>
      </im:hist-settings>
      <dims:pager-large-barring active="F"/>
)";
    for (size_t at = entity.find("\"T\""); at != std::string::npos; at = entity.find("\"T\"")) {
      entity.replace(at, 3, "\"" + t + "\"");
    }
    for (size_t at = entity.find("\"F\""); at != std::string::npos; at = entity.find("\"F\"")) {
      entity.replace(at, 3, "\"" + f + "\"");
    }
    return Container(entity);
  };
  const std::string aor = Aor("booleans");
  const int t_bits = kIsb | kInvisible | kHistPagerLarge;
  v1::SettingsPublishResponse r = MustPublish(Initial(aor, with("1", "0")));
  EXPECT_TRUE(SameSettings(Published(t_bits), r.effective()));
  r = MustPublish(Modify(aor, r.etag(), with("0", "1")));
  EXPECT_TRUE(SameSettings(Published(kAll & ~t_bits), r.effective()));
  r = MustPublish(Modify(aor, r.etag(), with("true", "false")));
  EXPECT_TRUE(SameSettings(Published(t_bits), r.effective()));
  r = MustPublish(Modify(aor, r.etag(), with("false", "true")));
  EXPECT_TRUE(SameSettings(Published(kAll & ~t_bits), r.effective()));
}

TEST_F(SettingsTest, PrefixesAreFreeAndOnlyNamespacePlusLocalNameCounts) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // Other prefixes, the IM namespace as default, declarations on inner elements.
  const std::string reprefixed = Xml(R"(<?xml version="1.0"?>
<p:poc-settings xmlns:p="$POC" xmlns="$IM">
  <p:entity id="x">
    <p:isb-settings><p:incoming-session-barring active="true"/></p:isb-settings>
    <deferred-settings><offline-delivery active="true"/></deferred-settings>
    <hist-settings><hist-activation type="session-mode" active="true"/></hist-settings>
    <ext:pager-large-barring xmlns:ext="$DIMS" active="true"/>
    <v:vis-settings xmlns:v="$IM"><v:vis-status active="false"/></v:vis-settings>
  </p:entity>
</p:poc-settings>
)");
  v1::SettingsPublishResponse r = MustPublish(Initial(Aor("prefixes"), reprefixed));
  EXPECT_TRUE(
      SameSettings(Published(kIsb | kOffline | kHistSession | kPagerLargeBarring), r.effective()))
      << reprefixed;

  // Unknown elements (foreign namespace, unknown IM element, unknown attributes, comments)
  // are ignored; so are known local names in the wrong namespace.
  const std::string extended = Container(R"(
    <!-- a comment -->
    <foo:future xmlns:foo="urn:example:future"><foo:offline-delivery active="true"/></foo:future>
    <im:future-settings><im:thing active="maybe"/></im:future-settings>
    <deferred-settings><offline-delivery active="true"/></deferred-settings>
    <im:vis-settings>
      <im:vis-status xmlns:x="urn:example:x" x:since="2020" active="true"/>
    </im:vis-settings>
    <unknown-poc-element foo="bar"/>
)");
  v1::SettingsPublishResponse e = MustPublish(Initial(Aor("extended"), extended));
  EXPECT_TRUE(SameSettings(Published(kInvisible), e.effective()))
      << "only im:vis-status is a known element here (offline-delivery appears only in a "
         "foreign and in the poc namespace):\n"
      << extended;
}

TEST_F(SettingsTest, BareImElementsWithoutTheContainerAreAccepted) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string bare = Xml(R"(<im-settings xmlns="$IM">
  <deferred-settings><offline-delivery active="true"/></deferred-settings>
  <vis-settings><vis-status active="true"/></vis-settings>
  <hist-settings><hist-activation type="pager-large-mode" active="true"/></hist-settings>
</im-settings>)");
  v1::SettingsPublishResponse r = MustPublish(Initial(Aor("bare"), bare));
  EXPECT_TRUE(SameSettings(Published(kOffline | kInvisible | kHistPagerLarge), r.effective()))
      << bare;

  const std::string prefixed = Xml(R"(<?xml version="1.0" encoding="UTF-8"?>
<i:im-settings xmlns:i="$IM">
  <i:deferred-settings><i:offline-delivery active="1"/></i:deferred-settings>
</i:im-settings>)");
  auto request = Initial(Aor("bare-prefixed"), prefixed);
  request.set_content_type("application/xml");
  v1::SettingsPublishResponse p = MustPublish(request);
  EXPECT_TRUE(SameSettings(Published(kOffline), p.effective())) << prefixed;
}

TEST_F(SettingsTest, APublishedDocumentIsWholeSettingsMissingOnesAreFalse) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("whole");
  MustPut(aor, FromBits(kAll));
  v1::SettingsPublishResponse r = MustPublish(
      Initial(aor, Container("<im:deferred-settings><im:offline-delivery active=\"true\"/>"
                             "</im:deferred-settings>")));
  EXPECT_TRUE(SameSettings(Published(kOffline), r.effective()))
      << "the backend layer must not fill in what the document leaves out";
  r = MustPublish(Modify(aor, r.etag(), Container("")));
  EXPECT_TRUE(SameSettings(Published(0), r.effective())) << "an empty entity: all false";
  v1::SettingsGetResponse got = MustGet(aor);
  EXPECT_TRUE(SameSettings(Published(0), got.effective()));
  EXPECT_TRUE(SameSettings(Backend(kAll), got.backend()));
}

// ---------------------------------------------------------------------------------------
// Validation: bad input gets its precise reason and changes nothing
// ---------------------------------------------------------------------------------------

TEST_F(SettingsTest, BadPublishesGetTheirReasonChangeNothingAndEmitNothing) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("validated");
  MustPut(aor, FromBits(kIsb));
  v1::SettingsPublishResponse live = MustPublish(Initial(aor, Document(kOffline)));
  ASSERT_FALSE(HasFailure());
  const std::string good = Document(kAll);

  auto offline_with = [](const std::string& attributes) {
    return Container("<im:deferred-settings><im:offline-delivery" + attributes +
                     "/></im:deferred-settings>");
  };
  struct Case {
    std::string name;
    v1::SettingsPublishRequest request;
    grpc::StatusCode code;
    std::string reason;
  };
  const auto bad_argument = grpc::StatusCode::INVALID_ARGUMENT;
  std::vector<Case> cases = {
      {"not XML", Initial(aor, "offline-delivery=true"), bad_argument, "INVALID_XML"},
      {"truncated", Initial(aor, good.substr(0, good.size() / 2)), bad_argument, "INVALID_XML"},
      {"mismatched end tag",
       Initial(aor, Xml(R"(<poc-settings xmlns="$POC"><entity id="x"></poc-settings>)")),
       bad_argument, "INVALID_XML"},
      {"two root elements", Initial(aor, good + "<poc-settings/>"), bad_argument, "INVALID_XML"},
      {"undeclared entity",
       Initial(aor, Container("<im:deferred-settings>&nbsp;</im:deferred-settings>")), bad_argument,
       "INVALID_XML"},
      {"bare ampersand", Initial(aor, Container("<im:note>this & that</im:note>")), bad_argument,
       "INVALID_XML"},
      {"duplicate attribute", Initial(aor, offline_with(" active=\"true\" active=\"false\"")),
       bad_argument, "INVALID_XML"},
      {"not UTF-8", Initial(aor, Container("<im:note>\xff\xfe</im:note>")), bad_argument,
       "INVALID_XML"},
      {"root in a foreign namespace",
       Initial(aor, Xml(R"(<poc-settings xmlns="urn:example:not-poc"><entity id="x">
  <im:deferred-settings xmlns:im="$IM"><im:offline-delivery active="true"/></im:deferred-settings>
</entity></poc-settings>)")),
       bad_argument, "SCHEMA_VIOLATION"},
      {"root without namespace", Initial(aor, "<poc-settings><entity id=\"x\"/></poc-settings>"),
       bad_argument, "SCHEMA_VIOLATION"},
      {"active missing", Initial(aor, offline_with("")), bad_argument, "SCHEMA_VIOLATION"},
      {"active yes", Initial(aor, offline_with(" active=\"yes\"")), bad_argument,
       "SCHEMA_VIOLATION"},
      {"active empty", Initial(aor, offline_with(" active=\"\"")), bad_argument,
       "SCHEMA_VIOLATION"},
      {"active True (xs:boolean is case-sensitive)", Initial(aor, offline_with(" active=\"True\"")),
       bad_argument, "SCHEMA_VIOLATION"},
      {"isb active maybe",
       Initial(aor, Container("<isb-settings><incoming-session-barring active=\"maybe\"/>"
                              "</isb-settings>")),
       bad_argument, "SCHEMA_VIOLATION"},
      {"vis-status active no",
       Initial(aor, Container("<im:vis-settings><im:vis-status active=\"no\"/></im:vis-settings>")),
       bad_argument, "SCHEMA_VIOLATION"},
      {"pager-large-barring active on",
       Initial(aor, Container("<dims:pager-large-barring active=\"on\"/>")), bad_argument,
       "SCHEMA_VIOLATION"},
      {"hist-activation type unknown",
       Initial(aor, Container("<im:hist-settings><im:hist-activation type=\"group-mode\" "
                              "active=\"true\"/></im:hist-settings>")),
       bad_argument, "SCHEMA_VIOLATION"},
      {"hist-activation without type",
       Initial(aor, Container("<im:hist-settings><im:hist-activation active=\"true\"/>"
                              "</im:hist-settings>")),
       bad_argument, "SCHEMA_VIOLATION"},
      {"hist-activation active missing",
       Initial(aor, Container("<im:hist-settings><im:hist-activation type=\"session-mode\"/>"
                              "</im:hist-settings>")),
       bad_argument, "SCHEMA_VIOLATION"},
      {"too large", Initial(aor, PaddedTo(good, 70'000)), bad_argument, "BODY_TOO_LARGE"},
      {"initial without body", Initial(aor, ""), bad_argument, "MISSING_BODY"},
      {"expires 0 without if_match", Initial(aor, good, 0), bad_argument, "REMOVE_WITHOUT_ETAG"},
      {"text/plain", WithContentType(Initial(aor, good), "text/plain"), bad_argument,
       "UNSUPPORTED_MEDIA_TYPE"},
      {"event presence", WithEvent(Initial(aor, good), "presence"), bad_argument, "BAD_EVENT"},
      {"too brief", Initial(aor, good, 59), grpc::StatusCode::OUT_OF_RANGE, "INTERVAL_TOO_BRIEF"},
      // The same faults in a modify of the live publication.
      {"modify: not XML", Modify(aor, live.etag(), "<poc-settings"), bad_argument, "INVALID_XML"},
      {"modify: active yes", Modify(aor, live.etag(), offline_with(" active=\"yes\"")),
       bad_argument, "SCHEMA_VIOLATION"},
      {"modify: too large", Modify(aor, live.etag(), PaddedTo(good, 70'000)), bad_argument,
       "BODY_TOO_LARGE"},
      {"modify: text/plain", WithContentType(Modify(aor, live.etag(), good), "text/plain"),
       bad_argument, "UNSUPPORTED_MEDIA_TYPE"},
      {"modify: event presence", WithEvent(Modify(aor, live.etag(), good), "presence"),
       bad_argument, "BAD_EVENT"},
      {"modify: too brief", Modify(aor, live.etag(), good, 30), grpc::StatusCode::OUT_OF_RANGE,
       "INTERVAL_TOO_BRIEF"},
      {"refresh: too brief", Refresh(aor, live.etag(), 30), grpc::StatusCode::OUT_OF_RANGE,
       "INTERVAL_TOO_BRIEF"},
      {"refresh: event presence", WithEvent(Refresh(aor, live.etag()), "presence"), bad_argument,
       "BAD_EVENT"},
  };

  ASSERT_FALSE(HasFailure());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const v1::SettingsGetResponse before = MustGet(aor);
    const long long events_before = StreamLength(redis_port());
    v1::SettingsPublishResponse response;
    v1::ErrorDetail detail;
    grpc::Status status = client().Publish(c.request, &response, &detail);
    EXPECT_TRUE(IsError(status, detail, c.code, c.reason));
    EXPECT_TRUE(response.etag().empty());
    v1::SettingsGetResponse after = MustGet(aor);
    EXPECT_TRUE(MessageDifferencer::Equals(before, after))
        << "state changed:\nbefore " << before.ShortDebugString() << "\nafter  "
        << after.ShortDebugString();
    EXPECT_EQ(StreamLength(redis_port()), events_before) << "a refused PUBLISH emitted an event";
    // A wrongly accepted initial PUBLISH is taken back, so that the next case starts clean.
    if (status.ok() && c.request.if_match().empty() && !response.etag().empty()) {
      MustPublish(Remove(aor, response.etag()));
    }
  }
  // The live publication survived all of it under its ETag.
  EXPECT_EQ(MustPublish(Refresh(aor, live.etag())).kind(), v1::PUBLICATION_KIND_REFRESH);
}

TEST_F(SettingsTest, BadAorsAreRefusedByEveryRpc) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (const std::string& bad : std::vector<std::string>{
           "mailto:alice@dims.test", "", "sip:", "sip:alice@", "sip:@dims.test", "tel:"}) {
    SCOPED_TRACE("aor '" + bad + "'");
    ExpectPublishFails(Initial(bad, Document(kAll)), grpc::StatusCode::INVALID_ARGUMENT,
                       "INVALID_AOR");
    v1::ErrorDetail detail;
    v1::SettingsGetResponse got;
    EXPECT_TRUE(IsError(client().Get(bad, &got, &detail), detail,
                        grpc::StatusCode::INVALID_ARGUMENT, "INVALID_AOR"));
    v1::SettingsPutResponse put;
    EXPECT_TRUE(IsError(client().Put(bad, FromBits(kAll), {}, &put, &detail), detail,
                        grpc::StatusCode::INVALID_ARGUMENT, "INVALID_AOR"));
    v1::SettingsDeleteResponse deleted;
    EXPECT_TRUE(IsError(client().Delete(bad, v1::SETTINGS_DELETE_SCOPE_ALL, &deleted, &detail),
                        detail, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_AOR"));
  }
  EXPECT_EQ(StreamLength(redis_port()), 0) << "a refused call emitted an event";
}

TEST_F(SettingsTest, BodyLimitIsExactlyTheConfiguredSize) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_MAX_DOCUMENT_BYTES", "2048"}}));
  const std::string aor = Aor("sized");
  v1::SettingsPublishResponse r = MustPublish(Initial(aor, PaddedTo(Document(kOffline), 2048)));
  EXPECT_TRUE(SameSettings(Published(kOffline), r.effective()));
  ExpectPublishFails(Initial(aor, PaddedTo(Document(kAll), 2049)),
                     grpc::StatusCode::INVALID_ARGUMENT, "BODY_TOO_LARGE");
  ExpectPublishFails(Modify(aor, r.etag(), PaddedTo(Document(kAll), 2049)),
                     grpc::StatusCode::INVALID_ARGUMENT, "BODY_TOO_LARGE");
  EXPECT_TRUE(SameSettings(Published(kOffline), MustGet(aor).effective()));
}

TEST_F(SettingsTest, DefaultBodyLimitIs64KiB) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("sized");
  MustPublish(Initial(aor, PaddedTo(Document(kOffline), 65536)));
  ExpectPublishFails(Initial(aor, PaddedTo(Document(kAll), 65537)),
                     grpc::StatusCode::INVALID_ARGUMENT, "BODY_TOO_LARGE");
  EXPECT_EQ(MustGet(aor).publications_size(), 1);
}

TEST_F(SettingsTest, OnlyTheTwoXmlContentTypesAreAccepted) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_MAX_PUBLICATIONS_PER_USER", "100"}}));
  const std::string aor = Aor("typed");
  for (const std::string& type : std::vector<std::string>{
           "application/poc-settings+xml", "application/xml",
           "application/poc-settings+xml;charset=UTF-8", "Application/XML;charset=\"utf-8\"",
           "APPLICATION/POC-SETTINGS+XML", "application/xml ; charset=UTF-8"}) {
    auto request = Initial(aor, Document(kOffline));
    request.set_content_type(type);
    v1::SettingsPublishResponse response;
    v1::ErrorDetail detail;
    grpc::Status status = client().Publish(request, &response, &detail);
    EXPECT_TRUE(status.ok()) << "'" << type << "': " << Describe(status) << " reason "
                             << detail.reason();
  }
  const int accepted = MustGet(aor).publications_size();
  for (const std::string& type : std::vector<std::string>{
           "text/plain", "text/xml", "application/pidf+xml", "application/poc-settings",
           "application/xml-patch+xml", "application/xmlx", "application/poc-settings+xmlx",
           "multipart/mixed;boundary=x"}) {
    SCOPED_TRACE("'" + type + "'");
    auto request = Initial(aor, Document(kOffline));
    request.set_content_type(type);
    ExpectPublishFails(request, grpc::StatusCode::INVALID_ARGUMENT, "UNSUPPORTED_MEDIA_TYPE");
  }
  EXPECT_EQ(MustGet(aor).publications_size(), accepted);
}

TEST_F(SettingsTest, PocSettingsAndTheDefaultAliasAreTheOnlyEventPackages) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("evented");
  auto poc = Initial(aor, Document(kOffline));
  v1::SettingsPublishResponse a = MustPublish(poc);
  auto im = Initial(aor, Document(kInvisible));
  im.set_event_package("im-settings");
  v1::SettingsPublishResponse b = MustPublish(im);
  ASSERT_FALSE(HasFailure());
  v1::SettingsGetResponse got = MustGet(aor);
  ASSERT_EQ(got.publications_size(), 2);
  ASSERT_NE(FindPublication(got, a.etag()), nullptr);
  ASSERT_NE(FindPublication(got, b.etag()), nullptr);
  EXPECT_EQ(FindPublication(got, a.etag())->event_package(), "poc-settings");
  EXPECT_EQ(FindPublication(got, b.etag())->event_package(), "im-settings");

  for (const std::string& event : std::vector<std::string>{
           "presence", "message-summary", "poc-settings2", "im-settings-x", "settings", ""}) {
    SCOPED_TRACE("event '" + event + "'");
    auto request = Initial(aor, Document(kAll));
    request.set_event_package(event);
    ExpectPublishFails(request, grpc::StatusCode::INVALID_ARGUMENT, "BAD_EVENT");
  }
  EXPECT_EQ(MustGet(aor).publications_size(), 2);
}

TEST_F(SettingsTest, AConfiguredAliasReplacesTheDefaultAliasButNeverPocSettings) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_SETTINGS_EVENT_ALIASES", "x-im-settings"}}));
  const std::string aor = Aor("aliased");
  auto request = Initial(aor, Document(kOffline));
  request.set_event_package("x-im-settings");
  v1::SettingsPublishResponse r = MustPublish(request);
  EXPECT_EQ(MustPublish(Initial(aor, Document(kOffline))).kind(), v1::PUBLICATION_KIND_INITIAL);
  request.set_event_package("im-settings");
  ExpectPublishFails(request, grpc::StatusCode::INVALID_ARGUMENT, "BAD_EVENT");
  v1::SettingsGetResponse got = MustGet(aor);
  EXPECT_EQ(got.publications_size(), 2);
  const v1::Publication* p = FindPublication(got, r.etag());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->event_package(), "x-im-settings");
}

// ---------------------------------------------------------------------------------------
// Layers: publications over the backend layer over the defaults
// ---------------------------------------------------------------------------------------

TEST_F(SettingsTest, AUserNeverSeenGetsTheDefaults) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::SettingsGetResponse got = MustGet(Aor("stranger"));
  EXPECT_TRUE(SameSettings(Defaults(), got.effective()));
  EXPECT_EQ(got.publications_size(), 0);
  EXPECT_FALSE(got.has_backend());
}

TEST_F(SettingsTest, PutWritesTheBackendLayerAndTheMaskKeepsTheOtherFields) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("backend");
  v1::ImSettings in = FromBits(kOffline | kHistSession | kIsb);
  in.set_source(v1::SETTINGS_SOURCE_PUBLISHED);  // output only: ignored
  v1::SettingsPutResponse put = MustPut(aor, in);
  EXPECT_TRUE(SameSettings(Backend(kOffline | kHistSession | kIsb), put.backend()));
  EXPECT_TRUE(SameSettings(Backend(kOffline | kHistSession | kIsb), put.effective()));
  v1::SettingsGetResponse got = MustGet(aor);
  EXPECT_TRUE(SameSettings(Backend(kOffline | kHistSession | kIsb), got.backend()));
  EXPECT_TRUE(SameSettings(Backend(kOffline | kHistSession | kIsb), got.effective()));
  EXPECT_EQ(got.publications_size(), 0);

  // Only the masked fields change: invisibility on, offline off; isb and hist stay.
  put = MustPut(aor, FromBits(kInvisible), {"invisibility", "offline_delivery_active"});
  EXPECT_TRUE(SameSettings(Backend(kInvisible | kHistSession | kIsb), put.backend()));
  EXPECT_TRUE(SameSettings(Backend(kInvisible | kHistSession | kIsb), MustGet(aor).effective()));

  // The same Put again: same result.
  put = MustPut(aor, FromBits(kInvisible), {"invisibility", "offline_delivery_active"});
  EXPECT_TRUE(SameSettings(Backend(kInvisible | kHistSession | kIsb), put.backend()));

  // An empty mask writes all six.
  put = MustPut(aor, FromBits(kPagerLargeBarring | kHistPagerLarge));
  EXPECT_TRUE(SameSettings(Backend(kPagerLargeBarring | kHistPagerLarge), put.backend()));

  // A masked write to a user without a backend layer: the rest are defaults.
  const std::string fresh = Aor("backend-fresh");
  put = MustPut(fresh, FromBits(kAll), {"store_pager_large_conversations"});
  EXPECT_TRUE(SameSettings(Backend(kHistPagerLarge), put.backend()));
  EXPECT_TRUE(SameSettings(Backend(kHistPagerLarge), MustGet(fresh).backend()));
}

TEST_F(SettingsTest, PutWithAMaskNamingNoSettingIsRefusedAndWritesNothing) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("masked");
  MustPut(aor, FromBits(kOffline));
  const v1::SettingsGetResponse before = MustGet(aor);
  const long long events_before = StreamLength(redis_port());
  for (const auto& mask : std::vector<std::vector<std::string>>{
           {"source"}, {"no_such_field"}, {"invisibility", "bogus"}, {"Invisibility"}}) {
    std::string name;
    for (const auto& path : mask) name += path + " ";
    SCOPED_TRACE("mask " + name);
    v1::SettingsPutResponse put;
    v1::ErrorDetail detail;
    EXPECT_TRUE(IsError(client().Put(aor, FromBits(kAll), mask, &put, &detail), detail,
                        grpc::StatusCode::INVALID_ARGUMENT, "INVALID_FIELD_MASK"));
    EXPECT_TRUE(MessageDifferencer::Equals(before, MustGet(aor)));
  }
  EXPECT_EQ(StreamLength(redis_port()), events_before);
}

TEST_F(SettingsTest, APublicationShadowsTheBackendLayerWhileItLives) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("shadowed");
  MustPut(aor, FromBits(kAll));
  v1::SettingsPublishResponse r = MustPublish(Initial(aor, Document(0)));
  EXPECT_TRUE(SameSettings(Published(0), r.effective()))
      << "an all-false publication wins over an all-true backend layer";

  v1::SettingsPutResponse put = MustPut(aor, FromBits(0), {"invisibility"});
  EXPECT_TRUE(SameSettings(Backend(kAll & ~kInvisible), put.backend()));
  EXPECT_TRUE(SameSettings(Published(0), put.effective()))
      << "Put while a publication lives: effective stays the publication";
  v1::SettingsGetResponse got = MustGet(aor);
  EXPECT_TRUE(SameSettings(Published(0), got.effective()));
  EXPECT_TRUE(SameSettings(Backend(kAll & ~kInvisible), got.backend()));
  EXPECT_EQ(Etags(got), std::vector<std::string>{r.etag()}) << "Put touched the publication";

  v1::SettingsPublishResponse removed = MustPublish(Remove(aor, r.etag()));
  EXPECT_TRUE(SameSettings(Backend(kAll & ~kInvisible), removed.effective()));
}

TEST_F(SettingsTest, TheMostRecentlyCreatedOrModifiedPublicationWinsARefreshDoesNotPromote) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("two-devices");
  MustPut(aor, FromBits(kIsb));
  v1::SettingsPublishResponse a = MustPublish(Initial(aor, Document(kOffline)));
  v1::SettingsPublishResponse b = MustPublish(Initial(aor, Document(kInvisible)));
  ASSERT_FALSE(HasFailure());
  EXPECT_TRUE(SameSettings(Published(kInvisible), b.effective()));
  v1::SettingsGetResponse got = MustGet(aor);
  EXPECT_TRUE(SameSettings(Published(kInvisible), got.effective()));
  EXPECT_EQ(Etags(got), (std::vector<std::string>{b.etag(), a.etag()}));
  EXPECT_TRUE(NewestFirst(got));

  // Modifying A makes it the newest.
  v1::SettingsPublishResponse a2 = MustPublish(Modify(aor, a.etag(), Document(kHistSession)));
  EXPECT_TRUE(SameSettings(Published(kHistSession), a2.effective()));
  got = MustGet(aor);
  EXPECT_TRUE(SameSettings(Published(kHistSession), got.effective()));
  EXPECT_EQ(Etags(got), (std::vector<std::string>{a2.etag(), b.etag()}));
  EXPECT_TRUE(NewestFirst(got));

  // Refreshing B does not: its document was not set again.
  v1::SettingsPublishResponse b2 = MustPublish(Refresh(aor, b.etag()));
  EXPECT_TRUE(SameSettings(Published(kHistSession), b2.effective()))
      << "a refresh must not change which publication is in force";
  got = MustGet(aor);
  EXPECT_TRUE(SameSettings(Published(kHistSession), got.effective()));
  EXPECT_EQ(Etags(got), (std::vector<std::string>{a2.etag(), b2.etag()}));

  // Removing A leaves B in force; removing B too leaves the backend layer.
  v1::SettingsPublishResponse gone_a = MustPublish(Remove(aor, a2.etag()));
  EXPECT_TRUE(SameSettings(Published(kInvisible), gone_a.effective()));
  v1::SettingsPublishResponse gone_b = MustPublish(Remove(aor, b2.etag()));
  EXPECT_TRUE(SameSettings(Backend(kIsb), gone_b.effective()));
}

TEST_F(SettingsTest, DeleteRemovesTheScopedLayersAndSaysWhetherAnythingExisted) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // Nothing to delete.
  const std::string stranger = Aor("stranger");
  for (auto scope : {v1::SETTINGS_DELETE_SCOPE_BACKEND, v1::SETTINGS_DELETE_SCOPE_PUBLICATIONS,
                     v1::SETTINGS_DELETE_SCOPE_ALL}) {
    v1::SettingsDeleteResponse d = MustDelete(stranger, scope);
    EXPECT_FALSE(d.deleted()) << "scope " << scope;
    EXPECT_TRUE(SameSettings(Defaults(), d.effective())) << "scope " << scope;
  }

  const std::string aor = Aor("deleted");
  MustPut(aor, FromBits(kInvisible));
  v1::SettingsPublishResponse p1 = MustPublish(Initial(aor, Document(kOffline)));
  v1::SettingsPublishResponse p2 = MustPublish(Initial(aor, Document(kHistSession)));
  ASSERT_FALSE(HasFailure());

  v1::SettingsDeleteResponse d = MustDelete(aor, v1::SETTINGS_DELETE_SCOPE_PUBLICATIONS);
  EXPECT_TRUE(d.deleted());
  EXPECT_TRUE(SameSettings(Backend(kInvisible), d.effective()));
  v1::SettingsGetResponse got = MustGet(aor);
  EXPECT_EQ(got.publications_size(), 0);
  EXPECT_TRUE(SameSettings(Backend(kInvisible), got.backend()));
  ExpectPublishFails(Refresh(aor, p1.etag()), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");
  ExpectPublishFails(Refresh(aor, p2.etag()), grpc::StatusCode::FAILED_PRECONDITION,
                     "UNKNOWN_ETAG");
  EXPECT_FALSE(MustDelete(aor, v1::SETTINGS_DELETE_SCOPE_PUBLICATIONS).deleted());

  v1::SettingsPublishResponse p3 = MustPublish(Initial(aor, Document(kOffline)));
  d = MustDelete(aor, v1::SETTINGS_DELETE_SCOPE_BACKEND);
  EXPECT_TRUE(d.deleted());
  EXPECT_TRUE(SameSettings(Published(kOffline), d.effective()));
  got = MustGet(aor);
  EXPECT_FALSE(got.has_backend());
  EXPECT_EQ(Etags(got), std::vector<std::string>{p3.etag()}) << "BACKEND scope hit a publication";
  EXPECT_FALSE(MustDelete(aor, v1::SETTINGS_DELETE_SCOPE_BACKEND).deleted());
  MustPublish(Remove(aor, p3.etag()));
  EXPECT_TRUE(SameSettings(Defaults(), MustGet(aor).effective()));

  MustPut(aor, FromBits(kAll));
  MustPublish(Initial(aor, Document(kOffline)));
  d = MustDelete(aor, v1::SETTINGS_DELETE_SCOPE_ALL);
  EXPECT_TRUE(d.deleted());
  EXPECT_TRUE(SameSettings(Defaults(), d.effective()));
  got = MustGet(aor);
  EXPECT_EQ(got.publications_size(), 0);
  EXPECT_FALSE(got.has_backend());
  EXPECT_TRUE(SameSettings(Defaults(), got.effective()));
  EXPECT_FALSE(MustDelete(aor, v1::SETTINGS_DELETE_SCOPE_ALL).deleted());

  // Backend only, scope ALL: deleted.
  MustPut(aor, FromBits(kIsb));
  EXPECT_TRUE(MustDelete(aor, v1::SETTINGS_DELETE_SCOPE_ALL).deleted());

  MustPut(aor, FromBits(kIsb));
  const v1::SettingsGetResponse before = MustGet(aor);
  v1::SettingsDeleteResponse unspecified;
  v1::ErrorDetail detail;
  EXPECT_TRUE(
      IsError(client().Delete(aor, v1::SETTINGS_DELETE_SCOPE_UNSPECIFIED, &unspecified, &detail),
              detail, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SCOPE"));
  EXPECT_TRUE(MessageDifferencer::Equals(before, MustGet(aor)));
}

TEST_F(SettingsTest, MorePublicationsThanTheLimitAreRefused) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_MAX_PUBLICATIONS_PER_USER", "3"}}));
  const std::string aor = Aor("crowded");
  std::vector<v1::SettingsPublishResponse> live;
  for (int i = 0; i < 3; ++i) live.push_back(MustPublish(Initial(aor, Document(1 << i))));
  ASSERT_FALSE(HasFailure());
  const v1::SettingsGetResponse before = MustGet(aor);
  v1::ErrorDetail detail;
  ExpectPublishFails(Initial(aor, Document(kAll)), grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "TOO_MANY_PUBLICATIONS", &detail);
  EXPECT_EQ(detail.limit(), "USER_PUBLICATIONS");
  EXPECT_TRUE(MessageDifferencer::Equals(before, MustGet(aor)));

  // At the limit, the live ones can still be refreshed and modified.
  v1::SettingsPublishResponse refreshed = MustPublish(Refresh(aor, live[0].etag()));
  v1::SettingsPublishResponse modified = MustPublish(Modify(aor, live[1].etag(), Document(kAll)));
  EXPECT_EQ(refreshed.kind(), v1::PUBLICATION_KIND_REFRESH);
  EXPECT_EQ(modified.kind(), v1::PUBLICATION_KIND_MODIFY);
  // Other users are not affected.
  MustPublish(Initial(Aor("roomy"), Document(kAll)));
  // After a removal there is room again.
  MustPublish(Remove(aor, live[2].etag()));
  EXPECT_EQ(MustPublish(Initial(aor, Document(kAll))).kind(), v1::PUBLICATION_KIND_INITIAL);
  EXPECT_EQ(MustGet(aor).publications_size(), 3);
}

TEST_F(SettingsTest, DefaultPublicationLimitIsEight) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("eight");
  for (int i = 0; i < 8; ++i) MustPublish(Initial(aor, Document(kOffline)));
  v1::ErrorDetail detail;
  ExpectPublishFails(Initial(aor, Document(kOffline)), grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "TOO_MANY_PUBLICATIONS", &detail);
  EXPECT_EQ(detail.limit(), "USER_PUBLICATIONS");
  EXPECT_EQ(MustGet(aor).publications_size(), 8);
}

// ---------------------------------------------------------------------------------------
// AOR normalisation
// ---------------------------------------------------------------------------------------

TEST_F(SettingsTest, EveryFormOfOneAorReachesTheSameSettings) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::SettingsPublishResponse r =
      MustPublish(Initial("SIP:Alice@DIMS.test;transport=tcp", Document(kOffline)));
  ASSERT_FALSE(HasFailure());
  for (const std::string& form : std::vector<std::string>{
           "sip:Alice@dims.test", "<sip:Alice@dims.test:5060>", "sips:Alice@DIMS.TEST",
           "\"Alice\" <sip:Alice@dims.test;user=phone>"}) {
    v1::SettingsGetResponse got = MustGet(form);
    EXPECT_EQ(Etags(got), std::vector<std::string>{r.etag()}) << form;
    EXPECT_TRUE(SameSettings(Published(kOffline), got.effective())) << form;
  }
  // The user part keeps its case: alice is somebody else.
  v1::SettingsGetResponse other = MustGet("sip:alice@dims.test");
  EXPECT_EQ(other.publications_size(), 0) << other.ShortDebugString();

  // The ETag works through another form of the AOR; Put and Delete normalise too.
  v1::SettingsPublishResponse refreshed =
      MustPublish(Refresh("sip:Alice@dims.test:5060", r.etag()));
  EXPECT_EQ(refreshed.kind(), v1::PUBLICATION_KIND_REFRESH);
  MustPut("<sip:Alice@Dims.Test>", FromBits(kIsb));
  EXPECT_TRUE(SameSettings(Backend(kIsb), MustGet("sip:Alice@dims.test").backend()));
  EXPECT_TRUE(MustDelete("SIP:Alice@DIMS.TEST", v1::SETTINGS_DELETE_SCOPE_ALL).deleted());
  EXPECT_TRUE(SameSettings(Defaults(), MustGet("sip:Alice@dims.test").effective()));

  v1::SettingsPublishResponse tel = MustPublish(Initial("tel:+46-70-123(45)67", Document(kAll)));
  EXPECT_EQ(Etags(MustGet("tel:+46701234567")), std::vector<std::string>{tel.etag()});
}

// ---------------------------------------------------------------------------------------
// Events on the bus
// ---------------------------------------------------------------------------------------

TEST_F(SettingsTest, EveryPublishAppendsSettingsPublishedWithItsKindAndEffectiveSettings) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string written = "SIP:Evented@DIMS.test;transport=tcp";
  const std::string aor = "sip:Evented@dims.test";
  std::vector<v1::SettingsPublishResponse> responses;
  responses.push_back(MustPublish(Initial(written, Document(kOffline))));
  responses.push_back(MustPublish(Refresh(written, responses.back().etag(), 300)));
  responses.push_back(MustPublish(Modify(written, responses.back().etag(), Document(kAll))));
  responses.push_back(MustPublish(Remove(written, responses.back().etag())));
  ASSERT_FALSE(HasFailure());

  std::vector<StreamEntry> entries;
  std::vector<StreamEntry> published;
  bool all_there = WaitFor(
      [&] {
        entries = ReadEventStream(redis_port());
        published = EntriesOf(entries, "settings_published", aor);
        return published.size() >= 4;
      },
      10s);
  ASSERT_TRUE(all_there) << "stream " << kEventStream << " holds:\n" << Dump(entries);
  EXPECT_EQ(published.size(), 4u) << Dump(entries);

  const v1::PublicationKind kinds[] = {v1::PUBLICATION_KIND_INITIAL, v1::PUBLICATION_KIND_REFRESH,
                                       v1::PUBLICATION_KIND_MODIFY, v1::PUBLICATION_KIND_REMOVE};
  std::set<std::string> event_ids;
  for (size_t i = 0; i < 4 && i < published.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i));
    const auto& e = published[i];
    ASSERT_TRUE(e.decoded) << "the event field is not a BusEvent";
    ASSERT_TRUE(e.event.has_settings_published()) << e.event.ShortDebugString();
    const auto& p = e.event.settings_published();
    EXPECT_EQ(p.aor().uri(), aor);
    EXPECT_EQ(p.kind(), kinds[i]);
    EXPECT_TRUE(SameSettings(responses[i].effective(), p.effective()));
    if (kinds[i] == v1::PUBLICATION_KIND_REMOVE) {
      EXPECT_FALSE(p.has_expires_at());
    } else {
      EXPECT_EQ(p.expires_at(), responses[i].expires_at());
    }
    EXPECT_FALSE(e.event.event_id().empty());
    EXPECT_TRUE(event_ids.insert(e.event.event_id()).second) << "event_id reused";
    EXPECT_EQ(e.event.producer().rfind("settings/", 0), 0u) << e.event.producer();
    EXPECT_GT(e.event.emitted_at().seconds(), 0);
  }
  EXPECT_TRUE(
      SameSettings(Published(kOffline), published[0].event.settings_published().effective()));
  EXPECT_TRUE(SameSettings(Published(kAll), published[2].event.settings_published().effective()));
  EXPECT_TRUE(SameSettings(Defaults(), published[3].event.settings_published().effective()));
}

TEST_F(SettingsTest, PutAndDeleteAppendSettingsUpdatedWithTheirCause) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("updated");
  MustPut(aor, FromBits(kOffline));
  MustDelete(aor, v1::SETTINGS_DELETE_SCOPE_BACKEND);
  MustPublish(Initial(aor, Document(kInvisible)));
  MustPut(aor, FromBits(kIsb));  // shadowed: effective stays the publication
  MustDelete(aor, v1::SETTINGS_DELETE_SCOPE_PUBLICATIONS);
  ASSERT_FALSE(HasFailure());

  struct Expected {
    v1::SettingsUpdateCause cause;
    v1::ImSettings effective;
  };
  const std::vector<Expected> expected = {
      {v1::SETTINGS_UPDATE_CAUSE_BACKEND_PUT, Backend(kOffline)},
      {v1::SETTINGS_UPDATE_CAUSE_BACKEND_DELETED, Defaults()},
      {v1::SETTINGS_UPDATE_CAUSE_BACKEND_PUT, Published(kInvisible)},
      {v1::SETTINGS_UPDATE_CAUSE_PUBLICATIONS_DELETED, Backend(kIsb)},
  };
  std::vector<StreamEntry> entries;
  std::vector<StreamEntry> updated;
  bool all_there = WaitFor(
      [&] {
        entries = ReadEventStream(redis_port());
        updated = EntriesOf(entries, "settings_updated", aor);
        return updated.size() >= expected.size();
      },
      10s);
  ASSERT_TRUE(all_there) << "stream " << kEventStream << " holds:\n" << Dump(entries);
  EXPECT_EQ(updated.size(), expected.size()) << Dump(entries);
  for (size_t i = 0; i < expected.size() && i < updated.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i));
    ASSERT_TRUE(updated[i].decoded);
    ASSERT_TRUE(updated[i].event.has_settings_updated()) << updated[i].event.ShortDebugString();
    const auto& u = updated[i].event.settings_updated();
    EXPECT_EQ(u.aor().uri(), aor);
    EXPECT_EQ(u.cause(), expected[i].cause);
    EXPECT_TRUE(SameSettings(expected[i].effective, u.effective()));
    EXPECT_FALSE(updated[i].event.event_id().empty());
  }
  EXPECT_EQ(EntriesOf(entries, "settings_published", aor).size(), 1u) << Dump(entries);
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

TEST_F(SettingsTest, SixteenConcurrentInitialPublicationsAreAllKept) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_MAX_PUBLICATIONS_PER_USER", "64"}}));
  constexpr int kThreads = 16;
  const std::string aor = Aor("crowd");
  auto initial =
      PublishConcurrently(kThreads, [&](int i) { return Initial(aor, Document(i), 600 + i); });
  std::map<std::string, int> bits_by_etag;
  for (int i = 0; i < kThreads; ++i) {
    const auto& o = initial[static_cast<size_t>(i)];
    EXPECT_EQ(o.code, grpc::StatusCode::OK)
        << "thread " << i << ": " << CodeName(o.code) << " " << o.reason;
    if (o.code != grpc::StatusCode::OK) continue;
    EXPECT_EQ(o.response.kind(), v1::PUBLICATION_KIND_INITIAL);
    EXPECT_TRUE(bits_by_etag.emplace(o.response.etag(), i).second)
        << "ETag " << o.response.etag() << " handed out twice";
  }
  v1::SettingsGetResponse got = MustGet(aor);
  ASSERT_EQ(got.publications_size(), kThreads) << "lost publications: " << got.ShortDebugString();
  EXPECT_TRUE(NewestFirst(got));
  for (const auto& p : got.publications()) {
    auto it = bits_by_etag.find(p.etag());
    ASSERT_NE(it, bits_by_etag.end()) << "unknown publication " << p.ShortDebugString();
    EXPECT_TRUE(SameSettings(Published(it->second), p.settings()));
  }
  EXPECT_TRUE(SameSettings(got.publications(0).settings(), got.effective()))
      << "effective is not the newest publication";

  // Each modifies its own publication at the same moment: none is lost either.
  std::vector<std::string> etags;
  for (const auto& o : initial) etags.push_back(o.response.etag());
  auto modified = PublishConcurrently(kThreads, [&](int i) {
    return Modify(aor, etags[static_cast<size_t>(i)], Document(kAll - i));
  });
  std::map<std::string, int> modified_bits;
  for (int i = 0; i < kThreads; ++i) {
    const auto& o = modified[static_cast<size_t>(i)];
    EXPECT_EQ(o.code, grpc::StatusCode::OK)
        << "modify " << i << ": " << CodeName(o.code) << " " << o.reason;
    if (o.code == grpc::StatusCode::OK) modified_bits[o.response.etag()] = kAll - i;
  }
  got = MustGet(aor);
  ASSERT_EQ(got.publications_size(), kThreads) << got.ShortDebugString();
  for (const auto& p : got.publications()) {
    auto it = modified_bits.find(p.etag());
    ASSERT_NE(it, modified_bits.end()) << "stale or unknown publication " << p.ShortDebugString();
    EXPECT_TRUE(SameSettings(Published(it->second), p.settings()));
  }

  std::vector<StreamEntry> entries;
  bool all_events = WaitFor(
      [&] {
        entries = ReadEventStream(redis_port());
        return EntriesOf(entries, "settings_published", aor).size() >= 2 * kThreads;
      },
      10s);
  EXPECT_TRUE(all_events) << EntriesOf(entries, "settings_published", aor).size()
                          << " settings_published events for " << 2 * kThreads << " publishes";
}

TEST_F(SettingsTest, ConcurrentInitialPublicationsNeverExceedTheLimit) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_MAX_PUBLICATIONS_PER_USER", "4"}}));
  constexpr int kThreads = 16;
  const std::string aor = Aor("race");
  auto outcomes =
      PublishConcurrently(kThreads, [&](int i) { return Initial(aor, Document(i % 64)); });
  int ok = 0, exhausted = 0;
  for (const auto& o : outcomes) {
    if (o.code == grpc::StatusCode::OK) ++ok;
    if (o.code == grpc::StatusCode::RESOURCE_EXHAUSTED && o.reason == "TOO_MANY_PUBLICATIONS") {
      ++exhausted;
    }
  }
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(exhausted, kThreads - 4);
  EXPECT_EQ(MustGet(aor).publications_size(), 4);
}

TEST_F(SettingsTest, ConcurrentRefreshesOfOneEtagLetExactlyOneWin) {
  ASSERT_NO_FATAL_FAILURE(Start());
  constexpr int kThreads = 8;
  const std::string aor = Aor("contested");
  v1::SettingsPublishResponse live = MustPublish(Initial(aor, Document(kOffline)));
  ASSERT_FALSE(HasFailure());
  auto outcomes = PublishConcurrently(kThreads, [&](int i) {
    return i % 2 ? Refresh(aor, live.etag()) : Modify(aor, live.etag(), Document(i));
  });
  std::vector<std::string> winners;
  int unknown = 0;
  for (const auto& o : outcomes) {
    if (o.code == grpc::StatusCode::OK) winners.push_back(o.response.etag());
    if (o.code == grpc::StatusCode::FAILED_PRECONDITION && o.reason == "UNKNOWN_ETAG") ++unknown;
  }
  ASSERT_EQ(winners.size(), 1u) << "one ETag, " << winners.size() << " successful uses";
  EXPECT_EQ(unknown, kThreads - 1);
  EXPECT_EQ(Etags(MustGet(aor)), winners) << "the publication forked or vanished";
}

// ---------------------------------------------------------------------------------------
// Health and Redis
// ---------------------------------------------------------------------------------------

TEST_F(SettingsTest, WithoutRedisHealthIsNotServingAndCallsAreUnavailable) {
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(HealthStatus(address()), "SERVING");
  const std::string aor = Aor("outage");
  v1::SettingsPublishResponse live = MustPublish(Initial(aor, Document(kOffline)));
  ASSERT_FALSE(HasFailure());

  // RedisServer has no Stop(); the server's own SHUTDOWN stops it for good.
  {
    RedisConnection redis(redis_port());
    redis.Command({"SHUTDOWN", "NOSAVE"});
  }
  bool not_serving = WaitFor([&] { return HealthStatus(address()) == "NOT_SERVING"; }, 15s);
  EXPECT_TRUE(not_serving) << "health is " << HealthStatus(address()) << " without Redis";

  v1::SettingsPublishResponse response;
  v1::ErrorDetail detail;
  grpc::Status status = client().Publish(Initial(aor, Document(kAll)), &response, &detail, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(status);
  status = client().Publish(Refresh(aor, live.etag()), &response, &detail, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(status);
  v1::SettingsGetResponse got;
  status = client().Get(aor, &got, &detail, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(status);
  v1::SettingsPutResponse put;
  status = client().Put(aor, FromBits(kAll), {}, &put, &detail, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(status);
  v1::SettingsDeleteResponse deleted;
  status = client().Delete(aor, v1::SETTINGS_DELETE_SCOPE_ALL, &deleted, &detail, 5s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(status);
  EXPECT_TRUE(stack_.process("settings").running()) << "the service died with Redis";
}

}  // namespace
}  // namespace dims::testing
