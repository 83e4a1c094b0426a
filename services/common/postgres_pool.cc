#include "postgres_pool.h"

#include <cstdlib>
#include <string_view>

namespace dims {

PostgresPool::PostgresPool(std::string dsn, int size) : dsn_(std::move(dsn)), size_(size) {
  if (size_ < 1) size_ = 1;
  // A database that does not answer must not hold a caller (or a health probe, or a stop)
  // for libpq's default of forever; a connect_timeout in the DSN takes precedence.
  setenv("PGCONNECT_TIMEOUT", "3", /*overwrite=*/0);
}

PostgresPool::~PostgresPool() = default;

std::unique_ptr<pqxx::connection> PostgresPool::Borrow() {
  std::unique_lock lock(mu_);
  available_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  ++open_;
  lock.unlock();
  try {
    return std::make_unique<pqxx::connection>(dsn_);
  } catch (...) {
    std::lock_guard relock(mu_);
    --open_;
    available_.notify_one();
    throw;
  }
}

void PostgresPool::Return(std::unique_ptr<pqxx::connection> connection) {
  std::lock_guard lock(mu_);
  if (connection && connection->is_open()) {
    idle_.push_back(std::move(connection));
  } else {
    --open_;
  }
  available_.notify_one();
}

PostgresPool::Lease::Lease(PostgresPool& pool) : pool_(pool), connection_(pool.Borrow()) {}

PostgresPool::Lease::~Lease() { pool_.Return(std::move(connection_)); }

bool PostgresPool::IsConnectionLost(const pqxx::sql_error& e) {
  const std::string& state = e.sqlstate();
  return state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0;
}

bool PostgresPool::IsStaleStatement(const pqxx::sql_error& e) {
  // 0A000 is "feature not supported" in general (Citus uses it for queries it cannot
  // distribute, where a new connection would not help): the message narrows it down.
  return e.sqlstate() == "0A000" &&
         std::string_view(e.what()).find("cached plan must not change result type") !=
             std::string_view::npos;
}

bool PostgresPool::Ping() {
  try {
    return WithConnection([](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return tx.exec1("SELECT 1")[0].as<int>() == 1;
    });
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace dims
