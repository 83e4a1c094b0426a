// A pool of libpqxx connections. Connections are opened lazily and a connection that broke is
// discarded, so the pool recovers by itself when PostgreSQL comes back. Blocking: use it from
// worker threads only.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace dims {

class PostgresPool {
 public:
  PostgresPool(std::string dsn, int size);
  ~PostgresPool();
  PostgresPool(const PostgresPool&) = delete;
  PostgresPool& operator=(const PostgresPool&) = delete;

  // Runs fn with a connection held for its duration. Exceptions from fn propagate; when the
  // connection is broken afterwards it is not returned to the pool. Throws
  // pqxx::broken_connection when no connection can be made.
  template <typename Fn>
  auto WithConnection(Fn&& fn) -> decltype(fn(std::declval<pqxx::connection&>())) {
    Lease lease(*this);
    try {
      return fn(lease.connection());
    } catch (const pqxx::broken_connection&) {
      lease.Discard();
      throw;
    } catch (const pqxx::sql_error& e) {
      if (IsConnectionLost(e) || IsStaleStatement(e)) lease.Discard();
      throw;
    }
  }

  // True for errors that mean the server or the connection went away (SQLSTATE classes 08
  // and 57P: connection exception, operator intervention such as a shutdown).
  static bool IsConnectionLost(const pqxx::sql_error& e);
  // True when a statement this connection prepared no longer fits the schema (SQLSTATE 0A000,
  // "cached plan must not change result type": a migration changed a column it returns; the
  // message is matched too, so a server whose messages are translated keeps the connection).
  // The connection is dropped, so that the next use prepares its statements afresh.
  static bool IsStaleStatement(const pqxx::sql_error& e);

  // True when "SELECT 1" succeeds.
  bool Ping();

 private:
  class Lease {
   public:
    explicit Lease(PostgresPool& pool);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    pqxx::connection& connection() { return *connection_; }
    void Discard() { connection_.reset(); }

   private:
    PostgresPool& pool_;
    std::unique_ptr<pqxx::connection> connection_;
  };

  std::unique_ptr<pqxx::connection> Borrow();
  void Return(std::unique_ptr<pqxx::connection> connection);

  std::string dsn_;
  int size_;
  std::mutex mu_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;
};

}  // namespace dims
