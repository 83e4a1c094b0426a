// The storage service against real Redis and PostgreSQL, through its gRPC contract
// (proto/dims/v1/storage.proto): byte-exact round trip, idempotency, arrival order, Ack and
// Delete, group commit of Acks, quotas, invalid input, expiry, events, load, and a database outage
// under load.
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dims/v1/delivery.pb.h"
#include "dims/v1/storage.grpc.pb.h"
#include "service_test.h"
#include "test_clients.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;
namespace v1 = ::dims::v1;
using google::protobuf::util::MessageDifferencer;
using google::protobuf::util::TimeUtil;

constexpr char kEventStream[] = "dims:events";

// ---------------------------------------------------------------------------------------
// Building requests
// ---------------------------------------------------------------------------------------

std::string Aor(const std::string& user) { return "sip:" + user + "@dims.test"; }

// A SIP request: each line ends with CRLF, then an empty line and the body.
std::string SipRequest(const std::vector<std::string>& lines, const std::string& body) {
  std::string request;
  for (const auto& line : lines) request += line + "\r\n";
  return request + "\r\n" + body;
}

// A plain SIP MESSAGE as an edge would store it.
std::string SipMessage(const std::string& aor, const std::string& call_id, uint32_t cseq,
                       const std::string& body) {
  return SipRequest(
      {
          "MESSAGE " + aor + " SIP/2.0",
          "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1",
          "Max-Forwards: 70",
          "From: <sip:sender@dims.test>;tag=s1",
          "To: <" + aor + ">",
          "Call-ID: " + call_id,
          "CSeq: " + std::to_string(cseq) + " MESSAGE",
          "Content-Type: text/plain",
          "Content-Length: " + std::to_string(body.size()),
      },
      body);
}

v1::StorageStoreRequest StoreRequest(const std::string& aor, const std::string& call_id,
                                     uint32_t cseq = 1, const std::string& body = "hello") {
  v1::StorageStoreRequest request;
  request.mutable_recipient()->set_uri(aor);
  auto* headers = request.mutable_headers();
  headers->set_from("<sip:sender@dims.test>;tag=s1");
  headers->set_to("<" + aor + ">");
  headers->set_call_id(call_id);
  headers->set_cseq(cseq);
  headers->set_content_type("text/plain");
  request.set_reason(v1::STORE_REASON_OFFLINE);
  request.set_sip_request(SipMessage(aor, call_id, cseq, body));
  return request;
}

// The digits of "<digits>@host", compared as numbers of any length.
bool IdNumberLess(const std::string& a, const std::string& b) {
  auto digits = [](const std::string& id) {
    std::string d = id.substr(0, id.find('@'));
    d.erase(0, std::min(d.find_first_not_of('0'), d.size()));
    return d;
  };
  std::string da = digits(a), db = digits(b);
  return da.size() != db.size() ? da.size() < db.size() : da < db;
}

// ---------------------------------------------------------------------------------------
// A Storage client whose every call carries a deadline
// ---------------------------------------------------------------------------------------

class StorageClient {
 public:
  explicit StorageClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::Storage::NewStub(std::move(channel))) {}

  template <typename Req, typename Resp>
  using Method = grpc::Status (v1::Storage::Stub::*)(grpc::ClientContext*, const Req&, Resp*);

  // One unary call; `detail` receives the "dims-error-bin" ErrorDetail (see CallWithDeadline).
  template <typename Req, typename Resp>
  grpc::Status Call(Method<Req, Resp> method, const Req& request, Resp* response,
                    v1::ErrorDetail* detail = nullptr, bool* has_detail = nullptr,
                    std::chrono::milliseconds timeout = 10s) {
    return CallWithDeadline(*stub_, method, request, response, detail, has_detail, timeout);
  }

  grpc::Status Store(const v1::StorageStoreRequest& request, v1::StorageStoreResponse* response,
                     std::chrono::milliseconds timeout = 10s) {
    return Call(&v1::Storage::Stub::Store, request, response, nullptr, nullptr, timeout);
  }

  grpc::Status Get(const std::string& aor, const std::string& message_id,
                   v1::DeferredMessage* message, v1::MessageView view = v1::MESSAGE_VIEW_FULL) {
    v1::StorageGetRequest request;
    request.mutable_recipient()->set_uri(aor);
    request.set_message_id(message_id);
    request.set_view(view);
    v1::StorageGetResponse response;
    grpc::Status status = Call(&v1::Storage::Stub::Get, request, &response);
    if (message) *message = response.message();
    return status;
  }

  grpc::Status Summary(const std::string& aor, v1::StoreSummary* summary, int max_entries = 0) {
    v1::StorageGetSummaryRequest request;
    request.mutable_recipient()->set_uri(aor);
    request.set_max_entries(max_entries);
    v1::StorageGetSummaryResponse response;
    grpc::Status status = Call(&v1::Storage::Stub::GetSummary, request, &response);
    *summary = response.summary();
    return status;
  }

  // Messages stored for `aor` (new + old), or -1 when GetSummary failed.
  int64_t Count(const std::string& aor) {
    v1::StoreSummary summary;
    grpc::Status status = Summary(aor, &summary);
    if (!status.ok()) {
      ADD_FAILURE() << "GetSummary(" << aor << "): " << status.error_code() << " "
                    << status.error_message();
      return -1;
    }
    return int64_t{summary.new_count()} + summary.old_count();
  }

  grpc::Status Fetch(const std::string& aor, std::vector<v1::DeferredMessage>* messages,
                     const std::vector<std::string>& ids = {}, int* responses = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 30s);
    v1::StorageFetchRequest request;
    request.mutable_recipient()->set_uri(aor);
    for (const auto& id : ids) request.add_message_ids(id);
    auto reader = stub_->Fetch(&context, request);
    v1::StorageFetchResponse response;
    messages->clear();
    if (responses) *responses = 0;
    while (reader->Read(&response)) {
      EXPECT_GT(response.messages_size(), 0) << "an empty Fetch response";
      if (responses) ++*responses;
      for (const auto& message : response.messages()) messages->push_back(message);
    }
    return reader->Finish();
  }

  // Follows next_page_token to the end; `pages` receives each page's size.
  grpc::Status ListAll(const std::string& aor, int page_size, v1::MessageView view,
                       std::vector<v1::DeferredMessage>* messages, std::vector<int>* pages) {
    messages->clear();
    if (pages) pages->clear();
    std::string token;
    for (int page = 0; page < 1000; ++page) {
      v1::StorageListRequest request;
      request.mutable_recipient()->set_uri(aor);
      request.set_page_size(page_size);
      request.set_page_token(token);
      request.set_view(view);
      v1::StorageListResponse response;
      grpc::Status status = Call(&v1::Storage::Stub::List, request, &response);
      if (!status.ok()) return status;
      if (pages) pages->push_back(response.messages_size());
      for (const auto& m : response.messages()) messages->push_back(m);
      token = response.next_page_token();
      if (token.empty()) return grpc::Status::OK;
    }
    return grpc::Status(grpc::StatusCode::INTERNAL, "list did not end after 1000 pages");
  }

  grpc::Status Ack(const std::string& aor, const std::vector<std::string>& ids,
                   v1::StorageAckResponse* response) {
    v1::StorageAckRequest request;
    request.mutable_recipient()->set_uri(aor);
    for (const auto& id : ids) request.add_message_ids(id);
    request.set_run_id("storage-test");
    return Call(&v1::Storage::Stub::Ack, request, response);
  }

  grpc::Status Delete(const v1::StorageDeleteRequest& request, v1::StorageDeleteResponse* response,
                      v1::ErrorDetail* detail = nullptr) {
    return Call(&v1::Storage::Stub::Delete, request, response, detail);
  }

 private:
  std::unique_ptr<v1::Storage::Stub> stub_;
};

std::vector<std::string> Ids(const std::vector<v1::DeferredMessage>& messages) {
  std::vector<std::string> ids;
  for (const auto& m : messages) ids.push_back(m.message_id());
  return ids;
}

std::set<std::string> AsSet(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  return {ids.begin(), ids.end()};
}

// ---------------------------------------------------------------------------------------
// The event stream, read with a plain Redis connection
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------

class StorageTest : public ServiceTest {
 protected:
  StorageTest() : ServiceTest("storage") {}

  // Starts dims-storage with extra DIMS_* variables and waits until it serves.
  void Start(const std::map<std::string, std::string>& env = {}) {
    ASSERT_NO_FATAL_FAILURE(StartService(env));
    client_ = std::make_unique<StorageClient>(NewChannel(address()));
  }
  StorageClient& client() { return *client_; }

  // Stores and expects OK; returns the response.
  v1::StorageStoreResponse MustStore(const v1::StorageStoreRequest& request) {
    v1::StorageStoreResponse response;
    grpc::Status status = client().Store(request, &response);
    EXPECT_TRUE(status.ok()) << request.headers().call_id() << ": " << Describe(status);
    return response;
  }

  // Stores `count` small messages for `aor`, Call-IDs `prefix`-0 ... ; returns their ids.
  std::vector<std::string> MustStoreMany(const std::string& aor, const std::string& prefix,
                                         int count) {
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i) {
      ids.push_back(MustStore(StoreRequest(aor, prefix + "-" + std::to_string(i))).message_id());
    }
    return ids;
  }

  std::unique_ptr<StorageClient> client_;
};

// ---------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------

// A MESSAGE with what a naive parser or a text column would damage: odd-case and compact
// header names, folded header lines, UTF-8 in a header, and a multipart body with a binary
// part holding every byte value (NUL, CR, LF, CRLF, 0xFF ...).
struct UnusualMessage {
  std::string request;
  std::string body;
  v1::MessageHeaders headers;
};

UnusualMessage MakeUnusualMessage(const std::string& aor) {
  UnusualMessage m;
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  const char tail[] = "\r\n\0\0\r\n--not-the-boundary\r\n\0";
  binary.append(tail, sizeof tail - 1);
  m.body =
      "--b0undary\r\n"
      "Content-Type: text/plain;charset=utf-8\r\n"
      "\r\n"
      "Hej d\xc3\xa5! \xe2\x9c\x93 \xf0\x9f\x93\xa8\r\n"
      "--b0undary\r\n"
      "Content-Type: application/octet-stream\r\n"
      "Content-Transfer-Encoding: binary\r\n"
      "\r\n" +
      binary +
      "\r\n"
      "--b0undary--\r\n";
  m.headers.set_from("\"B\xc3\xb6rje \xe2\x98\x83\" <sip:borje@dims.test>;tag=a48s");
  m.headers.set_to("<" + aor + ">");
  m.headers.set_p_asserted_identity("\"Bob\" <sip:bob@dims.test>, <tel:+4670123456>");
  m.headers.set_subject(
      "Gr\xc3\xbc\xc3\x9f"
      "e \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
  m.headers.set_date("Sat, 13 Nov 2010 23:29:00 GMT");
  m.headers.set_priority("urgent");
  m.headers.set_call_id("a84b4c76e66710@pc33.example.com");
  m.headers.set_cseq(314159);
  m.headers.set_content_type("multipart/mixed;boundary=b0undary");
  m.request = SipRequest(
      {
          "MESSAGE " + aor + " SIP/2.0",
          "v: SIP/2.0/TCP 192.0.2.4:5060;branch=z9hG4bK776sgdkse",  // compact forms
          "mAX-fORWARDS: 70",                                       // odd case
          "fRoM:   " + m.headers.from(),                            // UTF-8, extra spaces
          "t: " + m.headers.to(),
          "i: " + m.headers.call_id(),
          "CSEQ:314159 MESSAGE",
          "P-Asserted-Identity: \"Bob\" <sip:bob@dims.test>,",  // folded
          "  <tel:+4670123456>",
          "Subject: " + m.headers.subject(),
          "X-Folded:  first line",
          "\tsecond line after a tab",
          "   third line after spaces ",
          "Date: " + m.headers.date(),
          "Priority: urgent",
          "X-Empty:",
          "c: " + m.headers.content_type(),
          "l: " + std::to_string(m.body.size()),
      },
      m.body);
  return m;
}

TEST_F(StorageTest, StoredRequestComesBackByteForByteWithItsHeaderColumnsAndAGrowingId) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("alice");
  UnusualMessage m = MakeUnusualMessage(aor);
  ASSERT_NE(m.request.find('\0'), std::string::npos);  // the test's own premise

  v1::StorageStoreRequest request;
  request.mutable_recipient()->set_uri(aor);
  *request.mutable_headers() = m.headers;
  request.set_reason(v1::STORE_REASON_OFFLINE);
  request.set_sip_request(m.request);
  // Microseconds: what a PostgreSQL timestamp keeps.
  auto received = TimeUtil::MicrosecondsToTimestamp(
      TimeUtil::TimestampToMicroseconds(TimeUtil::GetCurrentTime()) - 5'000'123);
  *request.mutable_received_at() = received;
  v1::StorageStoreResponse stored = MustStore(request);
  EXPECT_FALSE(stored.duplicate());
  static const std::regex kId(R"(^[0-9]+@store\.dims\.test$)");
  EXPECT_TRUE(std::regex_match(stored.message_id(), kId)) << stored.message_id();
  EXPECT_EQ(TimeUtil::ToString(stored.received_at()), TimeUtil::ToString(received));

  v1::DeferredMessage got;
  grpc::Status status = client().Get(aor, stored.message_id(), &got);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_EQ(got.content_case(), v1::DeferredMessage::kSipRequest);
  EXPECT_EQ(got.sip_request().size(), m.request.size());
  EXPECT_TRUE(got.sip_request() == m.request) << "stored request differs from what was sent";
  EXPECT_EQ(got.message_id(), stored.message_id());
  EXPECT_EQ(got.recipient().uri(), aor);
  EXPECT_EQ(got.kind(), v1::MESSAGE_KIND_PAGER);
  EXPECT_EQ(TimeUtil::ToString(got.received_at()), TimeUtil::ToString(received));
  EXPECT_TRUE(MessageDifferencer::Equals(got.headers(), m.headers))
      << "sent:\n"
      << m.headers.DebugString() << "got:\n"
      << got.headers().DebugString();
  // DeferredMessage.size_bytes: the size of the body (pager).
  EXPECT_EQ(got.size_bytes(), m.body.size());

  // The "sip:" form of the id names the same message.
  v1::DeferredMessage by_sip_id;
  status = client().Get(aor, "sip:" + stored.message_id(), &by_sip_id);
  EXPECT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(by_sip_id.message_id(), stored.message_id());

  // The basic view leaves the content out.
  v1::DeferredMessage basic;
  status = client().Get(aor, stored.message_id(), &basic, v1::MESSAGE_VIEW_BASIC);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(basic.content_case(), v1::DeferredMessage::CONTENT_NOT_SET);
  EXPECT_TRUE(MessageDifferencer::Equals(basic.headers(), m.headers));

  std::vector<v1::DeferredMessage> fetched;
  status = client().Fetch(aor, &fetched);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_EQ(fetched[0].message_id(), stored.message_id());
  EXPECT_TRUE(fetched[0].sip_request() == m.request) << "fetched request differs";
  EXPECT_TRUE(MessageDifferencer::Equals(fetched[0].headers(), m.headers));

  // Another user's view of that id: not found.
  status = client().Get(Aor("bob"), stored.message_id(), nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(status);

  // The next ids grow.
  std::string previous = stored.message_id();
  for (int i = 0; i < 5; ++i) {
    v1::StorageStoreResponse next = MustStore(StoreRequest(aor, "next-" + std::to_string(i)));
    EXPECT_TRUE(std::regex_match(next.message_id(), kId)) << next.message_id();
    EXPECT_TRUE(IdNumberLess(previous, next.message_id()))
        << previous << " then " << next.message_id();
    previous = next.message_id();
  }
}

TEST_F(StorageTest, MessageIdsCarryTheConfiguredStoreHost) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_STORE_HOST", "mailserver32.example.org"}}));
  v1::StorageStoreResponse stored = MustStore(StoreRequest(Aor("alice"), "host-1"));
  static const std::regex kId(R"(^[0-9]+@mailserver32\.example\.org$)");
  EXPECT_TRUE(std::regex_match(stored.message_id(), kId)) << stored.message_id();
}

// ---------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------

TEST_F(StorageTest, SameRecipientCallIdAndCSeqIsStoredOnce) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string alice = Aor("alice");
  v1::StorageStoreResponse first = MustStore(StoreRequest(alice, "dup-1", 7));
  v1::StorageStoreResponse again = MustStore(StoreRequest(alice, "dup-1", 7));
  EXPECT_FALSE(first.duplicate());
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.message_id(), first.message_id());
  EXPECT_EQ(again.store_version(), first.store_version()) << "a duplicate changes nothing";
  EXPECT_EQ(client().Count(alice), 1);

  // Another CSeq, or another recipient, is another message.
  v1::StorageStoreResponse next_cseq = MustStore(StoreRequest(alice, "dup-1", 8));
  EXPECT_FALSE(next_cseq.duplicate());
  EXPECT_NE(next_cseq.message_id(), first.message_id());
  v1::StorageStoreResponse for_bob = MustStore(StoreRequest(Aor("bob"), "dup-1", 7));
  EXPECT_FALSE(for_bob.duplicate());
  EXPECT_NE(for_bob.message_id(), first.message_id());
  EXPECT_EQ(client().Count(alice), 2);
  EXPECT_EQ(client().Count(Aor("bob")), 1);
}

TEST_F(StorageTest, SixteenConcurrentCopiesOfOneRequestStoreExactlyOneMessage) {
  ASSERT_NO_FATAL_FAILURE(Start());
  constexpr int kThreads = 16;
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    const std::string aor = Aor("race" + std::to_string(round));
    const auto request = StoreRequest(aor, "race-call-" + std::to_string(round), 1);
    std::vector<grpc::Status> statuses(kThreads);
    std::vector<v1::StorageStoreResponse> responses(kThreads);
    // Connections first, so that the requests leave together.
    std::vector<std::unique_ptr<StorageClient>> clients;
    for (int t = 0; t < kThreads; ++t) {
      auto channel = NewChannel(address());
      ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + 5s));
      clients.push_back(std::make_unique<StorageClient>(channel));
    }
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        statuses[t] = clients[t]->Store(request, &responses[t]);
      });
    }
    for (auto& thread : threads) thread.join();
    std::set<std::string> ids;
    int fresh = 0;
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_TRUE(statuses[t].ok())
          << "round " << round << " thread " << t << ": " << Describe(statuses[t]);
      ids.insert(responses[t].message_id());
      if (!responses[t].duplicate()) ++fresh;
    }
    EXPECT_EQ(ids.size(), 1u) << "round " << round << ": different ids for one request";
    EXPECT_EQ(fresh, 1) << "round " << round << ": exactly one answer may say 'not duplicate'";
    EXPECT_EQ(client().Count(aor), 1) << "round " << round;
  }
}

// ---------------------------------------------------------------------------------------
// Arrival order, List paging
// ---------------------------------------------------------------------------------------

TEST_F(StorageTest, FetchListAndSummaryKeepArrivalOrderPerUser) {
  ASSERT_NO_FATAL_FAILURE(Start());
  constexpr int kMessages = 30;
  const std::string alice = Aor("alice"), bob = Aor("bob");
  std::vector<std::string> alice_ids, bob_ids;
  uint64_t last_version = 0;
  for (int i = 0; i < kMessages; ++i) {
    auto a = MustStore(StoreRequest(alice, "order-a-" + std::to_string(i)));
    alice_ids.push_back(a.message_id());
    EXPECT_GT(a.store_version(), last_version) << "store version must grow with every store";
    last_version = a.store_version();
    bob_ids.push_back(MustStore(StoreRequest(bob, "order-b-" + std::to_string(i))).message_id());
  }
  ASSERT_FALSE(HasFailure());

  std::vector<v1::DeferredMessage> fetched;
  grpc::Status status = client().Fetch(alice, &fetched);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(Ids(fetched), alice_ids);
  for (int i = 0; i < static_cast<int>(fetched.size()); ++i) {
    EXPECT_EQ(fetched[i].headers().call_id(), "order-a-" + std::to_string(i));
    EXPECT_EQ(fetched[i].content_case(), v1::DeferredMessage::kSipRequest);
  }
  status = client().Fetch(bob, &fetched);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(Ids(fetched), bob_ids);

  // Fetch of chosen ids: still in arrival order; ids not in this user's store skipped.
  status = client().Fetch(alice, &fetched, {alice_ids[7], bob_ids[5], alice_ids[3]});
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(Ids(fetched), (std::vector<std::string>{alice_ids[3], alice_ids[7]}));

  std::vector<v1::DeferredMessage> listed;
  std::vector<int> pages;
  status = client().ListAll(alice, 4, v1::MESSAGE_VIEW_BASIC, &listed, &pages);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(Ids(listed), alice_ids);
  EXPECT_GE(pages.size(), static_cast<size_t>((kMessages + 3) / 4));
  for (int n : pages) EXPECT_LE(n, 4);
  for (const auto& m : listed) {
    EXPECT_EQ(m.content_case(), v1::DeferredMessage::CONTENT_NOT_SET) << "BASIC view";
  }
  status = client().ListAll(bob, 7, v1::MESSAGE_VIEW_FULL, &listed, nullptr);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(Ids(listed), bob_ids);
  for (const auto& m : listed) EXPECT_EQ(m.content_case(), v1::DeferredMessage::kSipRequest);

  v1::StoreSummary summary;
  status = client().Summary(alice, &summary, 5);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(summary.new_count() + summary.old_count(), static_cast<uint32_t>(kMessages));
  EXPECT_EQ(summary.version(), last_version);
  ASSERT_EQ(summary.entries_size(), 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(summary.entries(i).message_id(), alice_ids[i]);
  EXPECT_TRUE(summary.entries_truncated());
}

TEST_F(StorageTest, FetchSendsManyMessagesPerResponseUpToAboutOneMebibyte) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("fetch-batches");
  // 40 small ones (a database page of 32, then 8), then three of 600 KB (large mode).
  std::vector<std::string> ids = MustStoreMany(aor, "fb", 40);
  for (int i = 0; i < 3; ++i) {
    v1::StorageStoreRequest large = StoreRequest(aor, "fb-large-" + std::to_string(i));
    large.mutable_large()->set_msrp_message_id("msrp-fb-" + std::to_string(i));
    large.mutable_large()->set_content(std::string(600 * 1024, static_cast<char>('a' + i)));
    ids.push_back(MustStore(large).message_id());
  }
  ASSERT_FALSE(HasFailure());
  std::vector<v1::DeferredMessage> fetched;
  int responses = 0;
  grpc::Status status = client().Fetch(aor, &fetched, {}, &responses);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(Ids(fetched), ids);
  ASSERT_EQ(fetched.size(), 43u);
  EXPECT_EQ(fetched[42].large().content(), std::string(600 * 1024, 'c'));
  // The first page in one response; the next 8 with the first large one; then one large one
  // a response, as two would pass 1 MiB.
  EXPECT_EQ(responses, 4);
}

TEST_F(StorageTest, ListPagesNeitherRepeatNorSkipWhenTheStoreChangesBetweenPages) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string alice = Aor("alice");
  std::vector<std::string> ids = MustStoreMany(alice, "keyset", 12);
  ASSERT_FALSE(HasFailure());
  auto list_page = [&](const std::string& token, v1::StorageListResponse* response) {
    v1::StorageListRequest request;
    request.mutable_recipient()->set_uri(alice);
    request.set_page_size(4);
    request.set_page_token(token);
    return client().Call(&v1::Storage::Stub::List, request, response);
  };
  v1::StorageListResponse page;
  grpc::Status status = list_page("", &page);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_EQ(page.messages_size(), 4);
  ASSERT_FALSE(page.next_page_token().empty());
  std::vector<std::string> seen;
  for (const auto& m : page.messages()) seen.push_back(m.message_id());
  EXPECT_EQ(seen, std::vector<std::string>(ids.begin(), ids.begin() + 4));

  // Between pages: one listed and one not yet listed message go, a new one arrives.
  v1::StorageAckResponse acked;
  status = client().Ack(alice, {ids[1], ids[6]}, &acked);
  ASSERT_TRUE(status.ok()) << Describe(status);
  std::string added = MustStore(StoreRequest(alice, "keyset-new")).message_id();

  // A token issued for alice is not valid for bob.
  {
    v1::StorageListRequest request;
    request.mutable_recipient()->set_uri(Aor("bob"));
    request.set_page_token(page.next_page_token());
    v1::StorageListResponse response;
    v1::ErrorDetail detail;
    status = client().Call(&v1::Storage::Stub::List, request, &response, &detail);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
    EXPECT_EQ(detail.reason(), "INVALID_PAGE_TOKEN");
  }

  std::string token = page.next_page_token();
  for (int guard = 0; !token.empty() && guard < 20; ++guard) {
    status = list_page(token, &page);
    ASSERT_TRUE(status.ok()) << Describe(status);
    for (const auto& m : page.messages()) seen.push_back(m.message_id());
    token = page.next_page_token();
  }
  EXPECT_TRUE(token.empty()) << "list did not end";
  std::vector<std::string> expected(ids.begin(), ids.begin() + 4);  // first page as listed
  for (int i = 4; i < 12; ++i) {
    if (i != 6) expected.push_back(ids[i]);
  }
  expected.push_back(added);
  EXPECT_EQ(seen, expected);
}

// ---------------------------------------------------------------------------------------
// Ack and Delete
// ---------------------------------------------------------------------------------------

TEST_F(StorageTest, AckAndDeleteRemoveExactlyWhatTheyNameAndBumpTheStoreVersion) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string alice = Aor("alice"), bob = Aor("bob");
  std::vector<std::string> ids = MustStoreMany(alice, "ad", 6);
  std::string bob_id = MustStore(StoreRequest(bob, "ad-bob")).message_id();
  ASSERT_FALSE(HasFailure());
  v1::StoreSummary summary;
  ASSERT_TRUE(client().Summary(alice, &summary).ok());
  uint64_t version = summary.version();
  EXPECT_EQ(summary.new_count() + summary.old_count(), 6u);

  // Ack: exactly the named ids go; an unknown id and another user's id are "already gone".
  const std::string unknown = "999999999@store.dims.test";
  v1::StorageAckResponse ack;
  grpc::Status status = client().Ack(alice, {ids[0], ids[2], unknown, bob_id}, &ack);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(AsSet(ack.removed()), (std::set<std::string>{ids[0], ids[2]}));
  EXPECT_EQ(AsSet(ack.already_gone()), (std::set<std::string>{unknown, bob_id}));
  EXPECT_GT(ack.store_version(), version);
  version = ack.store_version();
  EXPECT_EQ(client().Count(alice), 4);
  EXPECT_EQ(client().Count(bob), 1) << "Ack for alice must not touch bob's store";
  EXPECT_EQ(client().Get(alice, ids[0], nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(client().Get(alice, ids[1], nullptr).ok());
  ASSERT_TRUE(client().Summary(alice, &summary).ok());
  EXPECT_EQ(summary.version(), version);

  // Acknowledging again is harmless.
  status = client().Ack(alice, {ids[0]}, &ack);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(ack.removed_size(), 0);
  EXPECT_EQ(AsSet(ack.already_gone()), (std::set<std::string>{ids[0]}));
  EXPECT_EQ(client().Count(alice), 4);

  // Ack without ids is malformed.
  status = client().Ack(alice, {}, &ack);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);

  // Malformed deletes change nothing.
  auto delete_request = [&](v1::DeletionActor actor, std::vector<std::string> del_ids, bool all) {
    v1::StorageDeleteRequest request;
    request.mutable_recipient()->set_uri(alice);
    for (const auto& id : del_ids) request.add_message_ids(id);
    request.set_all(all);
    request.set_actor(actor);
    request.set_reason("storage_test");
    return request;
  };
  v1::StorageDeleteResponse deleted;
  v1::ErrorDetail detail;
  status = client().Delete(delete_request(v1::DELETION_ACTOR_USER, {}, false), &deleted, &detail);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_EQ(detail.reason(), "NOTHING_SELECTED");
  status =
      client().Delete(delete_request(v1::DELETION_ACTOR_USER, {ids[1]}, true), &deleted, &detail);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_EQ(detail.reason(), "AMBIGUOUS_SELECTION");
  status =
      client().Delete(delete_request(v1::DELETION_ACTOR_UNSPECIFIED, {ids[1]}, false), &deleted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_EQ(client().Count(alice), 4);
  ASSERT_TRUE(client().Summary(alice, &summary).ok());
  EXPECT_EQ(summary.version(), version) << "a rejected Delete changed the store version";

  // Delete by ids.
  status =
      client().Delete(delete_request(v1::DELETION_ACTOR_USER, {ids[1], ids[0]}, false), &deleted);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(AsSet(deleted.removed()), (std::set<std::string>{ids[1]}));
  EXPECT_EQ(AsSet(deleted.already_gone()), (std::set<std::string>{ids[0]}));
  EXPECT_GT(deleted.store_version(), version);
  version = deleted.store_version();
  EXPECT_EQ(client().Count(alice), 3);
  EXPECT_EQ(client().Get(alice, ids[1], nullptr).error_code(), grpc::StatusCode::NOT_FOUND);

  // Delete all, by a backend.
  status = client().Delete(delete_request(v1::DELETION_ACTOR_BACKEND, {}, true), &deleted);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(AsSet(deleted.removed()), (std::set<std::string>{ids[3], ids[4], ids[5]}));
  EXPECT_GT(deleted.store_version(), version);
  EXPECT_EQ(client().Count(alice), 0);
  ASSERT_TRUE(client().Summary(alice, &summary).ok());
  EXPECT_EQ(summary.version(), deleted.store_version());
  EXPECT_EQ(summary.total_bytes(), 0u);
  EXPECT_FALSE(summary.has_oldest_received_at()) << "unset when the store is empty";
  EXPECT_EQ(client().Count(bob), 1) << "Delete all for alice must not touch bob's store";
  EXPECT_TRUE(client().Get(bob, bob_id, nullptr).ok());

  // The version keeps growing after the store was empty.
  v1::StorageStoreResponse later = MustStore(StoreRequest(alice, "ad-after"));
  EXPECT_GT(later.store_version(), deleted.store_version());
}

// ---------------------------------------------------------------------------------------
// Group commit of Acks
// ---------------------------------------------------------------------------------------

// The metric's sum and count (calls acknowledged, transactions), 0 when not yet exported.
std::pair<double, double> AckBatches(int metrics_port) {
  auto page = HttpGet(metrics_port, "/metrics");
  if (!page) {
    ADD_FAILURE() << "no /metrics on port " << metrics_port;
    return {0, 0};
  }
  return {MetricSum(*page, "dims_storage_ack_batch_size_calls_sum").value_or(0),
          MetricSum(*page, "dims_storage_ack_batch_size_calls_count").value_or(0)};
}

// Holds one user's row of user_stores locked (as a slow transaction would) until released, so
// that the Acks sent meanwhile queue up behind the committer and go into one batch.
class UserRowLock {
 public:
  UserRowLock(const std::string& dsn, const std::string& aor) : connection_(dsn), tx_(connection_) {
    tx_.exec_params("SELECT 1 FROM user_stores WHERE recipient_aor = $1 FOR UPDATE", aor);
  }
  void Release() { tx_.abort(); }
  // True once another session waits for a lock (the committer, on this row).
  static bool SomeoneWaits(const std::string& dsn) {
    pqxx::connection c(dsn);
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0]
               .as<int>() > 0;
  }

 private:
  pqxx::connection connection_;
  pqxx::work tx_;
};

TEST_F(StorageTest, ConcurrentAcksOfManyUsersShareATransactionAndEachGetsItsOwnAnswer) {
  ASSERT_NO_FATAL_FAILURE(Start());
  constexpr int kUsers = 40;
  const std::string blocker = Aor("ack-blocker");
  std::string blocker_id = MustStore(StoreRequest(blocker, "blk")).message_id();
  std::vector<std::vector<std::string>> ids(kUsers);
  std::vector<uint64_t> versions_before(kUsers);
  for (int u = 0; u < kUsers; ++u) {
    for (int i = 0; i < 3; ++i) {
      auto stored =
          MustStore(StoreRequest(Aor("acker" + std::to_string(u)), "ack-" + std::to_string(i)));
      ids[u].push_back(stored.message_id());
      versions_before[u] = stored.store_version();
    }
  }
  ASSERT_FALSE(HasFailure());
  const int metrics_port = stack_.endpoints("storage").metrics_port;
  auto [calls_before, commits_before] = AckBatches(metrics_port);

  // The committer stalls on the blocker's row while every other Ack queues behind it.
  UserRowLock lock(stack_.postgres().dsn(), blocker);
  v1::StorageAckResponse blocker_ack;
  grpc::Status blocker_status;
  std::thread blocked([&] { blocker_status = client().Ack(blocker, {blocker_id}, &blocker_ack); });
  bool stalled = WaitFor([&] { return UserRowLock::SomeoneWaits(stack_.postgres().dsn()); }, 10s);
  if (!stalled) lock.Release();
  if (!stalled) blocked.join();
  ASSERT_TRUE(stalled) << "the first Ack never waited for the locked row";

  // Calls: one per user acking its first two ids and an unknown one; user 0 twice more, both
  // acking its third id; and a malformed Ack, which must fail alone.
  struct Call {
    int user;
    std::vector<std::string> ids;
    v1::StorageAckResponse response;
    grpc::Status status;
  };
  const std::string unknown = "999999998@store.dims.test";
  std::vector<Call> calls;
  for (int u = 0; u < kUsers; ++u) calls.push_back({u, {ids[u][0], ids[u][1], unknown}, {}, {}});
  calls.push_back({0, {ids[0][2]}, {}, {}});
  calls.push_back({0, {ids[0][2]}, {}, {}});
  calls.push_back({1, {"not-a-message-id"}, {}, {}});
  std::vector<std::unique_ptr<StorageClient>> clients;
  for (int i = 0; i < 4; ++i)
    clients.push_back(std::make_unique<StorageClient>(NewChannel(address())));
  std::vector<std::thread> threads;
  for (size_t c = 0; c < calls.size(); ++c) {
    threads.emplace_back([&, c] {
      Call& call = calls[c];
      call.status = clients[c % clients.size()]->Ack(Aor("acker" + std::to_string(call.user)),
                                                     call.ids, &call.response);
    });
  }
  // Every call but the malformed one (refused before it queues) waits behind the blocker.
  const double queued = static_cast<double>(calls.size() - 1);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto page = HttpGet(metrics_port, "/metrics");
        return page && MetricSum(*page, "dims_storage_ack_queued_calls") == queued;
      },
      10s))
      << HttpGet(metrics_port, "/metrics").value_or("no /metrics");
  lock.Release();
  blocked.join();
  for (auto& t : threads) t.join();

  ASSERT_TRUE(blocker_status.ok()) << Describe(blocker_status);
  EXPECT_EQ(AsSet(blocker_ack.removed()), (std::set<std::string>{blocker_id}));
  const Call& malformed = calls.back();
  EXPECT_EQ(malformed.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << Describe(malformed.status);
  for (size_t c = 0; c + 3 < calls.size(); ++c) {
    const Call& call = calls[c];
    ASSERT_TRUE(call.status.ok()) << "user " << call.user << ": " << Describe(call.status);
    EXPECT_EQ(AsSet(call.response.removed()),
              (std::set<std::string>{ids[call.user][0], ids[call.user][1]}))
        << "user " << call.user;
    EXPECT_EQ(AsSet(call.response.already_gone()), (std::set<std::string>{unknown}));
    EXPECT_GT(call.response.store_version(), versions_before[call.user]);
  }
  // The same id acked twice: removed for one call, already gone for the other.
  const Call& twice_a = calls[kUsers];
  const Call& twice_b = calls[kUsers + 1];
  ASSERT_TRUE(twice_a.status.ok() && twice_b.status.ok());
  EXPECT_EQ(twice_a.response.removed_size() + twice_b.response.removed_size(), 1);
  EXPECT_EQ(twice_a.response.already_gone_size() + twice_b.response.already_gone_size(), 1);
  // User 0 changed twice (by its two calls that removed something): two distinct versions, the
  // newer the one its store shows now.
  const Call& remover = twice_a.response.removed_size() == 1 ? twice_a : twice_b;
  EXPECT_NE(remover.response.store_version(), calls[0].response.store_version());
  uint64_t newest_zero =
      std::max(remover.response.store_version(), calls[0].response.store_version());

  for (int u = 0; u < kUsers; ++u) {
    v1::StoreSummary summary;
    ASSERT_TRUE(client().Summary(Aor("acker" + std::to_string(u)), &summary).ok());
    EXPECT_EQ(summary.new_count() + summary.old_count(), u == 0 ? 0u : 1u) << "user " << u;
    EXPECT_EQ(summary.version(), u == 0 ? newest_zero : calls[u].response.store_version());
  }
  EXPECT_EQ(client().Count(blocker), 0);

  // Fewer transactions than calls: the queued Acks were committed together.
  auto [calls_after, commits_after] = AckBatches(metrics_port);
  const double acked = calls_after - calls_before, commits = commits_after - commits_before;
  std::cout << acked << " Acks in " << commits << " transactions\n";
  // The blocker's Ack and all but the malformed one, which never queued.
  EXPECT_EQ(acked, static_cast<double>(calls.size()));
  // Two transactions: the blocker's, then every queued call in one.
  EXPECT_EQ(commits, 2) << "the queued Acks were not committed together";

  // One store_changed per call that removed something, with that call's version and what it
  // left in the store.
  std::map<uint64_t, const v1::StoreChangedEvent*> user0_events;
  std::vector<StreamEntry> entries;
  bool all_there = WaitFor(
      [&] {
        entries = ReadEventStream(stack_.redis().port());
        int found = 0;
        user0_events.clear();
        for (const auto& e : entries) {
          if (!e.decoded || !e.event.has_store_changed()) continue;
          const auto& changed = e.event.store_changed();
          if (changed.cause() != v1::STORE_CHANGE_CAUSE_DELIVERED) continue;
          if (changed.aor().uri() == Aor("acker0"))
            user0_events[changed.store_version()] = &changed;
          for (int u = 1; u < kUsers; ++u) {
            if (changed.aor().uri() == Aor("acker" + std::to_string(u)) &&
                changed.store_version() == calls[u].response.store_version() &&
                changed.remaining_count() == 1 &&
                AsSet(changed.message_ids()) == std::set<std::string>{ids[u][0], ids[u][1]}) {
              ++found;
            }
          }
        }
        return found == kUsers - 1 && user0_events.size() == 2;
      },
      10s);
  ASSERT_TRUE(all_there) << "missing store_changed events (" << entries.size() << " entries)";
  EXPECT_EQ(user0_events.count(calls[0].response.store_version()), 1u);
  EXPECT_EQ(user0_events.count(remover.response.store_version()), 1u);
  EXPECT_EQ(user0_events.rbegin()->second->remaining_count(), 0u);
}

TEST_F(StorageTest, AcksWhileTheDatabaseIsAwayAreUnavailableAndRemoveNothing) {
  ASSERT_NO_FATAL_FAILURE(Start());
  constexpr int kUsers = 8;
  std::vector<std::string> ids(kUsers);
  for (int u = 0; u < kUsers; ++u) {
    ids[u] = MustStore(StoreRequest(Aor("away" + std::to_string(u)), "away")).message_id();
  }
  ASSERT_FALSE(HasFailure());
  stack_.postgres().Stop();
  std::vector<grpc::Status> statuses(kUsers);
  std::vector<std::thread> threads;
  for (int u = 0; u < kUsers; ++u) {
    threads.emplace_back([&, u] {
      StorageClient c(NewChannel(address()));
      v1::StorageAckResponse response;
      statuses[u] = c.Ack(Aor("away" + std::to_string(u)), {ids[u]}, &response);
    });
  }
  for (auto& t : threads) t.join();
  stack_.postgres().Start();
  ASSERT_TRUE(stack_.WaitServing("storage", 30s)) << stack_.process("storage").ReadLog();
  for (int u = 0; u < kUsers; ++u) {
    EXPECT_EQ(statuses[u].error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(statuses[u]);
    EXPECT_TRUE(client().Get(Aor("away" + std::to_string(u)), ids[u], nullptr).ok())
        << "an Ack answered UNAVAILABLE removed " << ids[u];
  }
  // Acked again once the database is back, they go.
  v1::StorageAckResponse ack;
  ASSERT_TRUE(client().Ack(Aor("away0"), {ids[0]}, &ack).ok());
  EXPECT_EQ(AsSet(ack.removed()), (std::set<std::string>{ids[0]}));
}

TEST_F(StorageTest, AcksWithoutBatchingGiveTheSameAnswers) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_STORE_BATCHING", "false"}}));
  const std::string aor = Aor("unbatched");
  auto first = MustStore(StoreRequest(aor, "ub-1"));
  auto second = MustStore(StoreRequest(aor, "ub-2"));
  v1::StorageAckResponse ack;
  ASSERT_TRUE(client().Ack(aor, {first.message_id(), "999999997@store.dims.test"}, &ack).ok());
  EXPECT_EQ(AsSet(ack.removed()), (std::set<std::string>{first.message_id()}));
  EXPECT_EQ(ack.already_gone_size(), 1);
  EXPECT_GT(ack.store_version(), second.store_version());
  EXPECT_EQ(client().Count(aor), 1);
  auto [calls, commits] = AckBatches(stack_.endpoints("storage").metrics_port);
  EXPECT_EQ(calls, commits) << "without batching every Ack is a transaction of its own";
}

// ---------------------------------------------------------------------------------------
// Quotas
// ---------------------------------------------------------------------------------------

class StorageQuotaTest : public StorageTest {
 protected:
  // Limits chosen so that each case exceeds exactly one of them, whether sizes count the
  // body alone (the contract) or the whole request (headers here stay under 300 bytes).
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_MAX_USER_MESSAGES", "3"},
                                   {"DIMS_MAX_USER_BYTES", "2000"},
                                   {"DIMS_MAX_MESSAGE_BYTES", "1000"}}));
    ASSERT_LT(SipMessage(Aor("quota-user"), "quota-call-00", 1, "").size(), 300u);
  }

  // Expects RESOURCE_EXHAUSTED naming `limit`, in the text and in the ErrorDetail.
  void ExpectRejected(const v1::StorageStoreRequest& request, const std::string& limit) {
    const std::string aor = request.recipient().uri();
    v1::StoreSummary before;
    ASSERT_TRUE(client().Summary(aor, &before).ok());
    v1::StorageStoreResponse response;
    v1::ErrorDetail detail;
    bool has_detail = false;
    grpc::Status status =
        client().Call(&v1::Storage::Stub::Store, request, &response, &detail, &has_detail);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Describe(status);
    EXPECT_NE(status.error_message().find(limit), std::string::npos)
        << "message does not name " << limit << ": " << status.error_message();
    EXPECT_TRUE(has_detail) << "no dims-error-bin trailer";
    EXPECT_EQ(detail.reason(), "QUOTA_EXCEEDED");
    EXPECT_EQ(detail.limit(), limit);
    v1::StoreSummary after;
    ASSERT_TRUE(client().Summary(aor, &after).ok());
    EXPECT_EQ(after.new_count() + after.old_count(), before.new_count() + before.old_count())
        << "a rejected store changed the count";
    EXPECT_EQ(after.total_bytes(), before.total_bytes());
    EXPECT_EQ(after.version(), before.version());
  }
};

TEST_F(StorageQuotaTest, FourthMessageForAUserIsRefusedButADuplicateIsStillAnswered) {
  const std::string aor = Aor("full");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(MustStore(StoreRequest(aor, "q-" + std::to_string(i), 1, "tiny")).message_id());
  }
  ASSERT_FALSE(HasFailure());
  ExpectRejected(StoreRequest(aor, "q-3", 1, "tiny"), "USER_MESSAGES");
  EXPECT_EQ(client().Count(aor), 3);

  // A retransmission of a stored message is answered with its id, full store or not.
  v1::StorageStoreResponse dup = MustStore(StoreRequest(aor, "q-1", 1, "tiny"));
  EXPECT_TRUE(dup.duplicate());
  EXPECT_EQ(dup.message_id(), ids[1]);
  EXPECT_EQ(client().Count(aor), 3);

  // Another user is not affected; room again after an Ack.
  MustStore(StoreRequest(Aor("other"), "q-3", 1, "tiny"));
  v1::StorageAckResponse ack;
  ASSERT_TRUE(client().Ack(aor, {ids[0]}, &ack).ok());
  v1::StorageStoreResponse again = MustStore(StoreRequest(aor, "q-3", 1, "tiny"));
  EXPECT_FALSE(again.duplicate());
  EXPECT_EQ(client().Count(aor), 3);
}

TEST_F(StorageQuotaTest, MessageThatWouldOverflowTheUsersBytesIsRefused) {
  const std::string aor = Aor("bytes");
  MustStore(StoreRequest(aor, "qb-0", 1, std::string(700, 'a')));
  MustStore(StoreRequest(aor, "qb-1", 1, std::string(700, 'b')));
  ASSERT_FALSE(HasFailure());
  ExpectRejected(StoreRequest(aor, "qb-2", 1, std::string(700, 'c')), "USER_BYTES");
  EXPECT_EQ(client().Count(aor), 2);
  // A duplicate is still answered.
  EXPECT_TRUE(MustStore(StoreRequest(aor, "qb-1", 1, std::string(700, 'b'))).duplicate());
}

TEST_F(StorageQuotaTest, MessageLargerThanTheMessageLimitIsRefused) {
  const std::string aor = Aor("big");
  ExpectRejected(StoreRequest(aor, "qm-0", 1, std::string(1100, 'x')), "MESSAGE_BYTES");
  EXPECT_EQ(client().Count(aor), 0);
  // A large-mode message is measured by its content.
  v1::StorageStoreRequest large = StoreRequest(aor, "qm-1");
  large.mutable_large()->set_msrp_message_id("msrp-qm-1");
  large.mutable_large()->set_content(std::string(1100, 'y'));
  ExpectRejected(large, "MESSAGE_BYTES");
  // A small one still fits.
  EXPECT_FALSE(MustStore(StoreRequest(aor, "qm-2", 1, std::string(100, 'x'))).duplicate());
  EXPECT_EQ(client().Count(aor), 1);
}

// ---------------------------------------------------------------------------------------
// Large-message sessions
// ---------------------------------------------------------------------------------------

TEST_F(StorageTest, SessionHeadersAttachToALargeMessageAndReplaceOnlyWhatIsGiven) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("large-session");
  v1::StorageStoreRequest request = StoreRequest(aor, "lm-1");
  auto* large = request.mutable_large();
  large->set_msrp_message_id("msrp-lm-1");
  large->set_content(std::string("\x00\x01 large content", 16));
  auto* invite = large->add_invite_headers();
  invite->set_name("Subject");
  invite->set_value("holiday pictures");
  v1::StorageStoreResponse stored = MustStore(request);

  using Fields = std::vector<std::pair<std::string, std::string>>;
  auto add_fields = [](const Fields& fields, auto* list) {
    for (const auto& [name, value] : fields) {
      auto* f = list->Add();
      f->set_name(name);
      f->set_value(value);
    }
  };
  auto attach = [&](const std::string& message_id, const Fields& ok, const Fields& bye,
                    v1::ErrorDetail* detail) {
    v1::StorageAttachSessionHeadersRequest r;
    r.mutable_recipient()->set_uri(aor);
    r.set_message_id(message_id);
    add_fields(ok, r.mutable_ok_headers());
    add_fields(bye, r.mutable_bye_headers());
    v1::StorageAttachSessionHeadersResponse response;
    return client().Call(&v1::Storage::Stub::AttachSessionHeaders, r, &response, detail);
  };
  auto content = [&] {
    v1::DeferredMessage m;
    EXPECT_TRUE(client().Get(aor, stored.message_id(), &m).ok());
    return m.large();
  };

  // The 200 OK's headers first (the BYE has not come yet), then the BYE's.
  ASSERT_TRUE(
      attach(stored.message_id(),
             {{"To", "<sip:" + aor.substr(4) + ">;tag=dims1"}, {"Server", "IM-serv/OMA1.0 DIMS"}},
             {}, nullptr)
          .ok());
  auto after_ok = content();
  ASSERT_EQ(after_ok.ok_headers_size(), 2);
  EXPECT_EQ(after_ok.ok_headers(1).name(), "Server");
  EXPECT_EQ(after_ok.bye_headers_size(), 0);
  ASSERT_TRUE(
      attach(stored.message_id(), {}, {{"Reason", "SIP;cause=200;text=\"done\""}}, nullptr).ok());
  auto after_bye = content();
  EXPECT_EQ(after_bye.ok_headers_size(), 2) << "a BYE-only attach kept the 200 OK headers";
  ASSERT_EQ(after_bye.bye_headers_size(), 1);
  EXPECT_EQ(after_bye.bye_headers(0).value(), "SIP;cause=200;text=\"done\"");
  // The rest of the stored session is untouched, byte for byte.
  EXPECT_EQ(after_bye.content(), std::string("\x00\x01 large content", 16));
  EXPECT_EQ(after_bye.msrp_message_id(), "msrp-lm-1");
  ASSERT_EQ(after_bye.invite_headers_size(), 1);
  EXPECT_EQ(after_bye.invite_headers(0).value(), "holiday pictures");
  // Again: the same result (idempotent).
  ASSERT_TRUE(
      attach(stored.message_id(), {}, {{"Reason", "SIP;cause=200;text=\"done\""}}, nullptr).ok());
  EXPECT_EQ(content().SerializeAsString(), after_bye.SerializeAsString());

  v1::ErrorDetail detail;
  grpc::Status status = attach(stored.message_id(), {}, {}, &detail);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_EQ(detail.reason(), "NOTHING_TO_ATTACH");
  status = attach(stored.message_id(), {{"Bad Name", "x"}}, {}, &detail);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_EQ(detail.reason(), "INVALID_HEADER");
  status = attach(stored.message_id(), {}, {{"Reason", "two\r\nlines"}}, &detail);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_EQ(detail.field(), "bye_headers");
  EXPECT_EQ(content().SerializeAsString(), after_bye.SerializeAsString()) << "a refusal changed it";

  v1::StorageStoreResponse pager = MustStore(StoreRequest(aor, "lm-pager"));
  status = attach(pager.message_id(), {{"Server", "x"}}, {}, &detail);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(status);
  EXPECT_EQ(detail.reason(), "NOT_LARGE_MESSAGE");

  status = attach("99999999999@store.dims.test", {{"Server", "x"}}, {}, &detail);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(status);
  EXPECT_EQ(detail.reason(), "MESSAGE_NOT_FOUND");
}

// ---------------------------------------------------------------------------------------
// Invalid input
// ---------------------------------------------------------------------------------------

TEST_F(StorageTest, MalformedStoresAreRejectedAndStoreNothing) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string alice = Aor("alice");
  struct Case {
    std::string name;
    v1::StorageStoreRequest request;
    std::string reason;
  };
  std::vector<Case> cases;
  {
    auto r = StoreRequest(alice, "bad-1");
    r.mutable_recipient()->set_uri("mailto:x@y");
    cases.push_back({"mailto recipient", r, "INVALID_AOR"});
  }
  {
    auto r = StoreRequest(alice, "bad-2");
    r.clear_recipient();
    cases.push_back({"no recipient", r, "INVALID_AOR"});
  }
  {
    auto r = StoreRequest(alice, "bad-3");
    r.mutable_recipient()->set_uri("sip:");
    cases.push_back({"empty sip uri", r, "INVALID_AOR"});
  }
  {
    auto r = StoreRequest(alice, "");
    cases.push_back({"no call_id", r, "MISSING_CALL_ID"});
  }
  {
    auto r = StoreRequest(alice, "bad-5");
    r.clear_content();
    cases.push_back({"no content", r, "MISSING_CONTENT"});
  }
  {
    auto r = StoreRequest(alice, "bad-6");
    r.mutable_large()->set_content("large content without its MSRP Message-ID");
    cases.push_back({"large without msrp_message_id", r, "MISSING_MSRP_MESSAGE_ID"});
  }
  {
    auto r = StoreRequest(alice, "bad-7");
    r.mutable_retention()->set_seconds(-5);
    cases.push_back({"negative retention", r, "INVALID_RETENTION"});
  }
  for (const auto& c : cases) {
    v1::StorageStoreResponse response;
    v1::ErrorDetail detail;
    grpc::Status status =
        client().Call(&v1::Storage::Stub::Store, c.request, &response, &detail, nullptr);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name << ": " << Describe(status);
    EXPECT_EQ(detail.reason(), c.reason) << c.name;
    EXPECT_TRUE(response.message_id().empty()) << c.name;
  }
  EXPECT_EQ(client().Count(alice), 0) << "a rejected store left something behind";
  v1::StoreSummary summary;
  EXPECT_EQ(client().Summary("mailto:x@y", &summary).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // And the store still works.
  EXPECT_FALSE(MustStore(StoreRequest(alice, "good-1")).duplicate());
  EXPECT_EQ(client().Count(alice), 1);
}

// ---------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------

TEST_F(StorageTest, ExpiredMessagesArePurgedInTheBackgroundAndCounted) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_PURGE_INTERVAL_SECONDS", "1"}}));
  const std::string aor = Aor("expiring");
  auto short_request = StoreRequest(aor, "exp-short");
  short_request.mutable_retention()->set_seconds(1);
  v1::StorageStoreResponse short_lived = MustStore(short_request);
  v1::StorageStoreResponse kept = MustStore(StoreRequest(aor, "exp-default"));
  ASSERT_FALSE(HasFailure());
  EXPECT_NEAR(
      TimeUtil::DurationToMilliseconds(short_lived.expires_at() - short_lived.received_at()), 1000,
      5);
  EXPECT_NEAR(TimeUtil::DurationToSeconds(kept.expires_at() - kept.received_at()), 7 * 86400, 1)
      << "default retention is 7 days";

  bool gone = WaitFor(
      [&] {
        return client().Get(aor, short_lived.message_id(), nullptr).error_code() ==
               grpc::StatusCode::NOT_FOUND;
      },
      10s);
  EXPECT_TRUE(gone) << "a message with 1 s retention still stored after 10 s";
  EXPECT_TRUE(client().Get(aor, kept.message_id(), nullptr).ok());
  EXPECT_EQ(client().Count(aor), 1);

  std::optional<double> purged;
  WaitFor(
      [&] {
        auto page = HttpGet(stack_.endpoints("storage").metrics_port, "/metrics");
        purged = page ? MetricSum(*page, "dims_storage_purged_messages_total") : std::nullopt;
        return purged && *purged >= 1;
      },
      5s);
  ASSERT_TRUE(purged.has_value()) << "no dims_storage_purged_messages_total on /metrics";
  EXPECT_GE(*purged, 1);

  // The expiry is announced, with the expired message's metadata.
  bool announced = WaitFor(
      [&] {
        for (const auto& e : ReadEventStream(stack_.redis().port())) {
          if (!e.decoded || !e.event.has_store_changed()) continue;
          const auto& changed = e.event.store_changed();
          if (changed.aor().uri() != aor) continue;
          if (changed.cause() != v1::STORE_CHANGE_CAUSE_EXPIRED) continue;
          if (AsSet(changed.message_ids()).count(short_lived.message_id()) == 0) continue;
          return changed.remaining_count() == 1 && changed.expired_size() >= 1 &&
                 changed.expired(0).headers().call_id() == "exp-short";
        }
        return false;
      },
      10s);
  EXPECT_TRUE(announced) << "no store_changed (EXPIRED) event naming the expired message";
}

// A migration that changes a column a prepared statement returns (its type or collation) makes
// PostgreSQL refuse that statement on every connection that prepared it ("cached plan must not
// change result type"). Each such connection costs one UNAVAILABLE, which callers retry, and is
// replaced; stores never keep failing.
TEST_F(StorageTest, AColumnChangedUnderPreparedStatementsCostsAtMostOneRetryPerConnection) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (int i = 0; i < 20; ++i) MustStore(StoreRequest(Aor("before" + std::to_string(i)), "b"));
  {
    pqxx::connection c(stack_.postgres().dsn());
    pqxx::work tx(c);
    tx.exec("ALTER TABLE user_stores ALTER COLUMN recipient_aor TYPE text COLLATE \"C\"");
    tx.commit();
  }
  constexpr int kPoolSize = 8;  // the service's default --postgres-pool-size
  int failures = 0, successes_in_a_row = 0, stored = 0;
  for (int i = 0; i < 200 && successes_in_a_row < 20; ++i) {
    v1::StorageStoreResponse response;
    grpc::Status status =
        client().Store(StoreRequest(Aor("after" + std::to_string(i)), "a"), &response);
    if (status.ok()) {
      ++successes_in_a_row;
      ++stored;
      continue;
    }
    successes_in_a_row = 0;
    ++failures;
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(status);
  }
  EXPECT_EQ(successes_in_a_row, 20) << failures << " stores failed";
  EXPECT_LE(failures, kPoolSize);
  int found = 0;
  for (int i = 0; i < 200; ++i) found += client().Count(Aor("after" + std::to_string(i))) > 0;
  EXPECT_EQ(found, stored) << "an answered store is missing, or a refused one was stored";
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

TEST_F(StorageTest, StoreAndAckAppendEventsToTheStream) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string aor = Aor("evented");
  v1::StorageStoreResponse first = MustStore(StoreRequest(aor, "ev-1"));
  v1::StorageStoreResponse dup = MustStore(StoreRequest(aor, "ev-1"));
  EXPECT_TRUE(dup.duplicate());
  v1::StorageStoreResponse second = MustStore(StoreRequest(aor, "ev-2"));
  v1::StorageAckResponse ack;
  ASSERT_TRUE(client().Ack(aor, {first.message_id()}, &ack).ok());
  ASSERT_FALSE(HasFailure());

  std::vector<StreamEntry> entries;
  auto find = [&](const std::string& type, const std::function<bool(const StreamEntry&)>& match) {
    std::vector<const StreamEntry*> found;
    for (const auto& e : entries) {
      auto t = e.fields.find("type");
      auto a = e.fields.find("aor");
      if (t == e.fields.end() || a == e.fields.end()) continue;
      if (t->second == type && a->second == aor && match(e)) found.push_back(&e);
    }
    return found;
  };
  auto stored_event_for = [&](const std::string& id) {
    return [id](const StreamEntry& e) {
      return e.decoded && e.event.has_message_stored() &&
             e.event.message_stored().entry().message_id() == id;
    };
  };
  auto ack_event = [&](const StreamEntry& e) {
    return e.decoded && e.event.has_store_changed() &&
           e.event.store_changed().cause() == v1::STORE_CHANGE_CAUSE_DELIVERED &&
           AsSet(e.event.store_changed().message_ids()).count(first.message_id()) == 1;
  };
  bool all_there = WaitFor(
      [&] {
        entries = ReadEventStream(stack_.redis().port());
        return !find("message_stored", stored_event_for(first.message_id())).empty() &&
               !find("message_stored", stored_event_for(second.message_id())).empty() &&
               !find("store_changed", ack_event).empty();
      },
      10s);
  std::string dump;
  for (const auto& e : entries) {
    dump += e.id + ":";
    for (const auto& [k, v] : e.fields) dump += " " + k + "=" + (k == "event" ? "<bytes>" : v);
    dump += "\n";
  }
  ASSERT_TRUE(all_there) << "stream " << kEventStream << " holds:\n" << dump;

  auto stored = find("message_stored", stored_event_for(first.message_id()));
  const auto& event = stored.front()->event;
  EXPECT_EQ(event.message_stored().aor().uri(), aor);
  EXPECT_EQ(event.message_stored().store_version(), first.store_version());
  EXPECT_EQ(event.message_stored().reason(), v1::STORE_REASON_OFFLINE);
  EXPECT_EQ(event.message_stored().entry().headers().call_id(), "ev-1");
  EXPECT_FALSE(event.event_id().empty());
  // The duplicate store emitted no event of its own (redeliveries keep the event_id).
  for (const auto* e : stored) EXPECT_EQ(e->event.event_id(), event.event_id()) << dump;

  auto changed = find("store_changed", ack_event);
  EXPECT_EQ(changed.front()->event.store_changed().store_version(), ack.store_version());
  EXPECT_EQ(changed.front()->event.store_changed().remaining_count(), 1u);
}

TEST_F(StorageTest, EventsAReleaseBeforeMigration2LeftInTheOldOutboxAreStillPublished) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // What a replica of the previous release writes during a rolling upgrade: one row per event.
  const std::string aor = Aor("upgrading");
  dims::v1::BusEvent event;
  event.set_event_id("legacy-outbox-event");
  event.mutable_store_changed()->mutable_aor()->set_uri(aor);
  {
    pqxx::connection c(stack_.postgres().dsn());
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO event_outbox (recipient_aor, event_type, payload) VALUES ($1, $2, $3)", aor,
        "store_changed", pqxx::binarystring(event.SerializeAsString()));
    tx.commit();
  }
  // A store wakes the relay at once (it would also find the row at its next poll).
  MustStore(StoreRequest(Aor("upgrading-waker"), "wake-1"));
  bool published = WaitFor(
      [&] {
        for (const auto& e : ReadEventStream(stack_.redis().port())) {
          if (e.decoded && e.event.event_id() == "legacy-outbox-event" &&
              e.fields.at("aor") == aor && e.fields.at("type") == "store_changed") {
            return true;
          }
        }
        return false;
      },
      10s);
  EXPECT_TRUE(published) << "the old outbox's row never reached " << kEventStream;
  pqxx::connection c(stack_.postgres().dsn());
  pqxx::nontransaction tx(c);
  EXPECT_TRUE(
      WaitFor([&] { return tx.exec1("SELECT count(*) FROM event_outbox")[0].as<int>() == 0; }, 5s));
}

// ---------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------

TEST_F(StorageTest, SixtyFourWritersStoreTenThousandMessagesNoneLostNoneDoubled) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_MAX_USER_MESSAGES", "100000"}}));
  constexpr int kWriters = 64;
  constexpr int kMessages = 10'000;
  // Fewer users than writers: batches hold several messages of one user, and the two
  // committers contend for the same users' rows.
  constexpr int kUsers = 10;
  constexpr int kChannels = 8;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  std::vector<std::unique_ptr<StorageClient>> clients;
  for (int i = 0; i < kChannels; ++i) {
    // Connected before the load starts: gRPC 1.51 (Debian's) now and then reports a first
    // connect as failed although it is only in progress (its errno is overwritten before it is
    // read; fixed upstream in grpc/grpc#35064), and a channel in that state fails every call at
    // once until its reconnect backoff ends, which would eat the writers' messages.
    auto channel = NewChannel(address());
    ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + 10s))
        << "channel " << i << " did not connect";
    clients.push_back(std::make_unique<StorageClient>(channel));
  }
  std::vector<std::string> ids(kMessages);
  std::vector<uint64_t> versions(kMessages);
  std::vector<grpc::Status> failures(kMessages, grpc::Status::OK);
  std::atomic<int> next{0}, ok{0}, failed{0}, duplicates{0};
  std::vector<std::thread> writers;
  auto started = std::chrono::steady_clock::now();
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      StorageClient& c = *clients[w % kChannels];
      for (int i = next++; i < kMessages && std::chrono::steady_clock::now() < deadline;
           i = next++) {
        auto request = StoreRequest(Aor("load" + std::to_string(i % kUsers)),
                                    "load-" + std::to_string(i), 1, "message " + std::to_string(i));
        v1::StorageStoreResponse response;
        grpc::Status status = c.Store(request, &response, 30s);
        if (status.ok()) {
          ids[i] = response.message_id();
          versions[i] = response.store_version();
          ++ok;
          if (response.duplicate()) ++duplicates;
        } else {
          failures[i] = status;
          ++failed;
        }
      }
    });
  }
  for (auto& writer : writers) writer.join();
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  RecordProperty("stores_per_second", std::to_string(static_cast<int>(ok / seconds)));
  std::cout << "stored " << ok << " messages in " << seconds << " s (" << ok / seconds << "/s)\n";

  ASSERT_LT(seconds, 120) << "did not finish in 120 s: " << ok << " stored";
  EXPECT_EQ(failed.load(), 0);
  for (int i = 0, shown = 0; i < kMessages && shown < 5; ++i) {
    if (!failures[i].ok()) {
      ADD_FAILURE() << "load-" << i << ": " << Describe(failures[i]);
      ++shown;
    }
  }
  EXPECT_EQ(ok.load(), kMessages);
  EXPECT_EQ(duplicates.load(), 0) << "distinct call_ids were reported as duplicates";
  std::set<std::string> distinct(ids.begin(), ids.end());
  distinct.erase("");
  EXPECT_EQ(distinct.size(), static_cast<size_t>(ok.load())) << "message_ids handed out twice";

  int64_t total = 0;
  for (int u = 0; u < kUsers; ++u) {
    int64_t n = client().Count(Aor("load" + std::to_string(u)));
    EXPECT_EQ(n, kMessages / kUsers) << "user load" << u;
    total += n;
  }
  EXPECT_EQ(total, kMessages);
  // Per user, Message-ID numbers grow in the order the stores committed (the store version each
  // answer carried), although the stores came from 64 writers through concurrent batches.
  for (int u = 0; u < kUsers; ++u) {
    std::vector<std::pair<int64_t, uint64_t>> by_number;  // (number, store version)
    for (int i = u; i < kMessages; i += kUsers) {
      if (!ids[i].empty()) by_number.emplace_back(std::stoll(ids[i]), versions[i]);
    }
    std::sort(by_number.begin(), by_number.end());
    for (size_t k = 1; k < by_number.size(); ++k) {
      ASSERT_LT(by_number[k - 1].second, by_number[k].second)
          << "user load" << u << ": message " << by_number[k].first << " has a higher number but "
          << "an earlier store version than " << by_number[k - 1].first;
    }
  }
  // Every id is stored with its own content (spot check of one user in full).
  std::vector<v1::DeferredMessage> fetched;
  ASSERT_TRUE(client().Fetch(Aor("load7"), &fetched).ok());
  ASSERT_EQ(fetched.size(), static_cast<size_t>(kMessages / kUsers));
  for (const auto& m : fetched) {
    int i = std::stoi(m.headers().call_id().substr(5));
    EXPECT_EQ(m.message_id(), ids[i]);
    EXPECT_TRUE(m.sip_request() == SipMessage(Aor("load7"), "load-" + std::to_string(i), 1,
                                              "message " + std::to_string(i)));
  }
}

// ---------------------------------------------------------------------------------------
// Database outage under load
// ---------------------------------------------------------------------------------------

TEST_F(StorageTest, PostgresStoppedUnderLoadGivesUnavailableLosesNothingAndRecovers) {
  ASSERT_NO_FATAL_FAILURE(Start({{"DIMS_MAX_USER_MESSAGES", "100000"}}));
  constexpr int kWriters = 16;
  constexpr int kUsers = 20;
  constexpr int kMaxAttempts = 50'000;
  const pid_t pid = stack_.process("storage").pid();
  const auto hard_stop = std::chrono::steady_clock::now() + 150s;

  struct Answer {
    int index;
    std::string aor;
    std::string message_id;
    grpc::StatusCode code;
    std::string error;
    std::chrono::steady_clock::time_point sent;
  };
  std::mutex mu;
  std::vector<Answer> answers;
  std::atomic<bool> stop{false};
  std::atomic<int> next{0}, ok{0}, unavailable{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      StorageClient c(NewChannel(address()));
      while (!stop && std::chrono::steady_clock::now() < hard_stop) {
        int i = next++;
        if (i >= kMaxAttempts) break;
        std::string aor = Aor("outage" + std::to_string(i % kUsers));
        auto request = StoreRequest(aor, "outage-" + std::to_string(i), 1, "m" + std::to_string(i));
        v1::StorageStoreResponse response;
        auto sent = std::chrono::steady_clock::now();
        grpc::Status status = c.Store(request, &response, 3s);
        {
          std::lock_guard lock(mu);
          answers.push_back(
              {i, aor, response.message_id(), status.error_code(), status.error_message(), sent});
        }
        if (status.ok()) {
          ++ok;
        } else {
          if (status.error_code() == grpc::StatusCode::UNAVAILABLE) ++unavailable;
          std::this_thread::sleep_for(20ms);  // no hot loop while the database is away
        }
      }
    });
  }
  auto stop_writers = [&] {
    stop = true;
    for (auto& writer : writers) {
      if (writer.joinable()) writer.join();
    }
  };

  bool warmed_up = WaitFor([&] { return ok >= 200; }, 30s);
  if (!warmed_up) stop_writers();
  ASSERT_TRUE(warmed_up) << "only " << ok << " stores succeeded before the outage";
  const int ok_before = ok;

  stack_.postgres().Stop();
  bool refused = WaitFor([&] { return unavailable >= 1; }, 20s);
  bool not_serving = WaitFor([&] { return HealthStatus(address()) == "NOT_SERVING"; }, 15s);
  std::this_thread::sleep_for(1s);
  stack_.postgres().Start();
  bool serving = stack_.WaitServing("storage", 30s);
  const auto recovered_at = std::chrono::steady_clock::now();
  auto ok_after = [&] {
    std::lock_guard lock(mu);
    return std::count_if(answers.begin(), answers.end(), [&](const Answer& a) {
      return a.code == grpc::StatusCode::OK && a.sent > recovered_at;
    });
  };
  bool writing_again = serving && WaitFor([&] { return ok_after() >= 100; }, 30s);
  stop_writers();

  EXPECT_TRUE(refused) << "no Store answered UNAVAILABLE while PostgreSQL was down";
  EXPECT_TRUE(not_serving) << "health did not follow the database down";
  ASSERT_TRUE(serving) << "storage did not report SERVING again\n"
                       << stack_.process("storage").ReadLog();
  EXPECT_EQ(stack_.process("storage").pid(), pid);
  EXPECT_TRUE(stack_.process("storage").running()) << "storage was restarted or died";
  EXPECT_TRUE(writing_again) << "only " << ok_after() << " stores succeeded after recovery";
  EXPECT_GT(ok_before, 0);

  // Every answer is one the contract allows; DEADLINE_EXCEEDED counts as "unknown".
  std::map<std::string, std::set<int>> attempted;  // aor -> indexes
  std::set<std::string> ok_ids;
  int unknown = 0;
  for (const auto& a : answers) {
    attempted[a.aor].insert(a.index);
    switch (a.code) {
      case grpc::StatusCode::OK:
        EXPECT_TRUE(ok_ids.insert(a.message_id).second) << "id handed out twice: " << a.message_id;
        break;
      case grpc::StatusCode::UNAVAILABLE:
        break;
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        ++unknown;
        break;
      default:
        ADD_FAILURE() << "outage-" << a.index << ": code " << a.code << ": " << a.error;
    }
  }
  std::cout << answers.size() << " answers: " << ok << " OK (" << ok_before
            << " before the outage), " << unavailable << " UNAVAILABLE, " << unknown
            << " unknown\n";

  // Nothing answered OK is missing; nothing is stored twice or half.
  for (const auto& a : answers) {
    if (a.code != grpc::StatusCode::OK) continue;
    v1::DeferredMessage m;
    grpc::Status status = client().Get(a.aor, a.message_id, &m);
    EXPECT_TRUE(status.ok()) << "outage-" << a.index << " answered OK as " << a.message_id
                             << " is gone: " << Describe(status);
    if (status.ok()) {
      EXPECT_EQ(m.headers().call_id(), "outage-" + std::to_string(a.index));
    }
  }
  for (const auto& [aor, indexes] : attempted) {
    std::vector<v1::DeferredMessage> fetched;
    grpc::Status status = client().Fetch(aor, &fetched);
    ASSERT_TRUE(status.ok()) << aor << ": " << Describe(status);
    std::set<int> seen;
    for (const auto& m : fetched) {
      const std::string& call_id = m.headers().call_id();
      ASSERT_EQ(call_id.rfind("outage-", 0), 0u) << call_id;
      int i = std::stoi(call_id.substr(7));
      EXPECT_TRUE(indexes.count(i)) << aor << " holds " << call_id << ", never sent to it";
      EXPECT_TRUE(seen.insert(i).second) << call_id << " stored twice";
      EXPECT_TRUE(m.sip_request() == SipMessage(aor, call_id, 1, "m" + std::to_string(i)))
          << call_id << " stored incompletely";
    }
  }

  // A new store works, on the same process.
  v1::StorageStoreResponse fresh = MustStore(StoreRequest(Aor("outage-new"), "after-outage"));
  EXPECT_TRUE(client().Get(Aor("outage-new"), fresh.message_id(), nullptr).ok());
}

}  // namespace
}  // namespace dims::testing
