#include "redis_pool.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

namespace dims {
namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

void RedisReplyDeleter::operator()(redisReply* r) const {
  if (r) freeReplyObject(r);
}

void RedisPool::ContextDeleter::operator()(redisContext* c) const {
  if (c) redisFree(c);
}

RedisPool::RedisPool(Options options) : options_(std::move(options)) {
  if (options_.size < 1) options_.size = 1;
}

RedisPool::~RedisPool() = default;

RedisPool::Context RedisPool::Connect() {
  Context c(redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                    ToTimeval(options_.connect_timeout)));
  if (!c) throw RedisError("redis: out of memory");
  if (c->err) {
    throw RedisError("redis " + options_.host + ":" + std::to_string(options_.port) + ": " +
                     c->errstr);
  }
  redisSetTimeout(c.get(), ToTimeval(options_.command_timeout));
  return c;
}

RedisPool::Context RedisPool::Borrow() {
  std::unique_lock lock(mu_);
  available_.wait(lock, [&] { return !idle_.empty() || open_ < options_.size; });
  if (!idle_.empty()) {
    Context c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  ++open_;
  lock.unlock();
  try {
    return Connect();
  } catch (...) {
    std::lock_guard relock(mu_);
    --open_;
    available_.notify_one();
    throw;
  }
}

void RedisPool::Return(Context context) {
  std::lock_guard lock(mu_);
  if (context && context->err == 0) {
    idle_.push_back(std::move(context));
  } else {
    --open_;  // broken: dropped, the next borrower reconnects
  }
  available_.notify_one();
}

RedisReply RedisPool::Command(const std::vector<std::string>& args) {
  Context c = Borrow();
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  void* raw = redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
  RedisReply reply(static_cast<redisReply*>(raw));
  if (!reply) {
    std::string why = c->errstr;
    c.reset();
    Return(nullptr);
    throw RedisError("redis command failed: " + why);
  }
  Return(std::move(c));
  return reply;
}

std::vector<RedisReply> RedisPool::Pipeline(const std::vector<std::vector<std::string>>& commands) {
  Context c = Borrow();
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
  }
  std::vector<RedisReply> replies;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c.get(), &raw) != REDIS_OK) {
      std::string why = c->errstr;
      c.reset();
      Return(nullptr);
      throw RedisError("redis pipeline failed: " + why);
    }
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  Return(std::move(c));
  return replies;
}

bool RedisPool::Ping() {
  try {
    auto reply = Command({"PING"});
    return reply->type == REDIS_REPLY_STATUS && std::string(reply->str, reply->len) == "PONG";
  } catch (const RedisError&) {
    return false;
  }
}

}  // namespace dims
