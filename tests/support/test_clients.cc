#include "test_clients.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

namespace dims::testing {
namespace {

struct RedisFree {
  void operator()(redisContext* c) const { redisFree(c); }
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisConnection = std::unique_ptr<redisContext, RedisFree>;
using Reply = std::unique_ptr<redisReply, RedisFree>;

// A connection to the test's Redis; null, with a test failure, when there is none.
RedisConnection ConnectRedis(int redis_port) {
  timeval timeout{2, 0};
  RedisConnection c(redisConnectWithTimeout("127.0.0.1", redis_port, timeout));
  if (c == nullptr || c->err) {
    ADD_FAILURE() << "redis connect: " << (c ? c->errstr : "out of memory");
    return nullptr;
  }
  return c;
}

// One command with binary-safe arguments; null, with a test failure, when it was not answered.
Reply RedisCommand(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  Reply reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lengths.data())));
  if (reply == nullptr) ADD_FAILURE() << args[0] << ": " << c->errstr;
  return reply;
}

}  // namespace

std::string CodeName(grpc::StatusCode code) {
  static const std::map<grpc::StatusCode, std::string> names = {
      {grpc::StatusCode::OK, "OK"},
      {grpc::StatusCode::CANCELLED, "CANCELLED"},
      {grpc::StatusCode::UNKNOWN, "UNKNOWN"},
      {grpc::StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT"},
      {grpc::StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
      {grpc::StatusCode::NOT_FOUND, "NOT_FOUND"},
      {grpc::StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS"},
      {grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
      {grpc::StatusCode::FAILED_PRECONDITION, "FAILED_PRECONDITION"},
      {grpc::StatusCode::ABORTED, "ABORTED"},
      {grpc::StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE"},
      {grpc::StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED"},
      {grpc::StatusCode::INTERNAL, "INTERNAL"},
      {grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE"},
      {grpc::StatusCode::DATA_LOSS, "DATA_LOSS"},
      {grpc::StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED"},
  };
  auto it = names.find(code);
  return it == names.end() ? std::to_string(static_cast<int>(code)) : it->second;
}

std::string Describe(const grpc::Status& status) {
  return CodeName(status.error_code()) + ": " + status.error_message();
}

dims::v1::StoreSummary StoreSummaryOf(dims::v1::Storage::Stub& storage, const std::string& aor) {
  dims::v1::StorageGetSummaryRequest request;
  request.mutable_recipient()->set_uri(aor);
  dims::v1::StorageGetSummaryResponse response;
  grpc::Status status = CallWithDeadline(storage, &dims::v1::Storage::Stub::GetSummary, request,
                                         &response, nullptr, nullptr, std::chrono::seconds(5));
  EXPECT_TRUE(status.ok()) << Describe(status);
  return response.summary();
}

std::vector<StreamEntry> ReadEventStream(int redis_port) {
  std::vector<StreamEntry> entries;
  auto c = ConnectRedis(redis_port);
  if (!c) return entries;
  auto reply = RedisCommand(c.get(), {"XRANGE", "dims:events", "-", "+"});
  if (!reply || reply->type != REDIS_REPLY_ARRAY) return entries;
  for (size_t i = 0; i < reply->elements; ++i) {
    const redisReply* entry = reply->element[i];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
    StreamEntry e;
    e.id.assign(entry->element[0]->str, entry->element[0]->len);
    const redisReply* fields = entry->element[1];
    for (size_t f = 0; f + 1 < fields->elements; f += 2) {
      e.fields[std::string(fields->element[f]->str, fields->element[f]->len)] =
          std::string(fields->element[f + 1]->str, fields->element[f + 1]->len);
    }
    auto event = e.fields.find("event");
    if (event != e.fields.end()) e.decoded = e.event.ParseFromString(event->second);
    entries.push_back(std::move(e));
  }
  return entries;
}

std::optional<std::string> RedisGet(int redis_port, const std::string& key) {
  auto c = ConnectRedis(redis_port);
  if (!c) return std::nullopt;
  auto reply = RedisCommand(c.get(), {"GET", key});
  if (!reply || reply->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string(reply->str, reply->len);
}

std::vector<std::string> RedisHashValues(int redis_port, const std::string& key) {
  std::vector<std::string> values;
  auto c = ConnectRedis(redis_port);
  if (!c) return values;
  auto reply = RedisCommand(c.get(), {"HVALS", key});
  if (!reply || reply->type != REDIS_REPLY_ARRAY) return values;
  for (size_t i = 0; i < reply->elements; ++i) {
    values.emplace_back(reply->element[i]->str, reply->element[i]->len);
  }
  return values;
}

size_t TakeEventsAndDie(int redis_port, const std::string& group, const std::string& consumer) {
  auto c = ConnectRedis(redis_port);
  if (!c) return 0;
  auto reply = RedisCommand(c.get(), {"XREADGROUP", "GROUP", group, consumer, "COUNT", "1000",
                                      "STREAMS", "dims:events", ">"});
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return 0;
  const redisReply* stream = reply->element[0];
  return stream->elements == 2 ? stream->element[1]->elements : 0;
}

}  // namespace dims::testing
