// A small pool of blocking hiredis connections. Callers borrow a connection per command;
// a connection that failed is dropped and the next borrower connects anew, so the pool
// recovers by itself when Redis comes back. Blocking: call it from worker threads, never from
// the Sofia-SIP loop or a gRPC reactor callback.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

struct redisContext;
struct redisReply;

namespace dims {

class RedisError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RedisReplyDeleter {
  void operator()(redisReply* r) const;
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

class RedisPool {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 6379;
    int size = 4;
    std::chrono::milliseconds connect_timeout{500};
    std::chrono::milliseconds command_timeout{2000};
  };

  explicit RedisPool(Options options);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  // Runs one command given as separate, binary-safe arguments. Throws RedisError when no
  // connection can be made or the connection fails; a Redis error reply is returned as a
  // reply of type REDIS_REPLY_ERROR for the caller to judge.
  RedisReply Command(const std::vector<std::string>& args);

  // Sends several commands in one round trip (pipelining) and returns their replies in order.
  // Throws RedisError like Command; an error reply of one command is returned, not thrown.
  std::vector<RedisReply> Pipeline(const std::vector<std::vector<std::string>>& commands);

  // True when PING answers PONG.
  bool Ping();

  const Options& options() const { return options_; }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using Context = std::unique_ptr<redisContext, ContextDeleter>;

  Context Borrow();
  void Return(Context context);
  Context Connect();

  Options options_;
  std::mutex mu_;
  std::condition_variable available_;
  std::vector<Context> idle_;
  int open_ = 0;  // connections in use or idle
};

}  // namespace dims
