// DeferredStore on PostgreSQL (schema: migrations/). Batches go in as arrays (unnest), so one
// statement stores a whole group commit; every change of a user's store locks that user's
// row in user_stores, which orders concurrent changes per user and nothing else.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "deferred_store.h"
#include "postgres_pool.h"

namespace dims::storage {

// A user's row of user_stores, as a change of the store holds it locked.
struct UserStoreRow {
  int64_t messages = 0, bytes = 0, version = 0, notified_version = 0;
};

class PostgresDeferredStore : public DeferredStore {
 public:
  PostgresDeferredStore(PostgresPool& pool, std::string store_host, StoreLimits limits,
                        EventFactory& events);

  std::vector<StoreOutcome> StoreBatch(const std::vector<NewMessage>& batch) override;
  StoreSummary Summary(const std::string& recipient, int max_entries) override;
  std::vector<StoredMessage> List(const std::string& recipient, int64_t after_number, int limit,
                                  int kind, bool with_content,
                                  const std::vector<std::string>& only_ids) override;
  std::optional<StoredMessage> Get(const std::string& recipient, const std::string& message_id,
                                   bool with_content) override;
  std::vector<RemovalResult> RemoveBatch(const std::vector<Removal>& batch) override;
  PurgeResult Purge(Clock::time_point cutoff, RemovalCause cause, const std::string& only_recipient,
                    uint32_t max_messages, bool dry_run) override;
  uint32_t MarkNotified(const std::string& recipient, int64_t through_version) override;
  RewriteResult RewriteLargeContent(
      const std::string& recipient, const std::string& message_id,
      const std::function<std::string(const std::string&)>& rewrite) override;

 private:
  std::vector<StoreOutcome> Write(pqxx::work& tx, const std::vector<NewMessage>& batch,
                                  const std::vector<size_t>& accepted,
                                  const std::vector<int64_t>& versions,
                                  const std::vector<int64_t>& numbers);
  std::optional<std::vector<StoreOutcome>> TryStoreFast(pqxx::connection& c,
                                                        const std::vector<NewMessage>& batch);
  std::vector<StoreOutcome> StoreCarefully(pqxx::connection& c,
                                           const std::vector<NewMessage>& batch);
  template <typename Fn>
  auto Run(Fn&& fn) -> decltype(fn(std::declval<pqxx::connection&>()));

  PostgresPool& pool_;
  std::string store_host_;
  StoreLimits limits_;
  EventFactory& events_;
};

}  // namespace dims::storage
