// dims-storage: the deferred message store on PostgreSQL.
//   dims-storage            serve the Storage gRPC API
//   dims-storage migrate    apply the schema migrations and exit
#include <atomic>
#include <iostream>

#include "ack_batcher.h"
#include "bus_events.h"
#include "event_relay.h"
#include "log.h"
#include "migrations.h"
#include "postgres_deferred_store.h"
#include "postgres_pool.h"
#include "retention_sweeper.h"
#include "service_host.h"
#include "storage_service.h"
#include "store_batcher.h"
#include "worker_pool.h"

namespace {

int Migrate(dims::PostgresPool& postgres, dims::storage::Migrator& migrator) {
  try {
    int applied = postgres.WithConnection([&](pqxx::connection& c) { return migrator.Apply(c); });
    int version = postgres.WithConnection(
        [](pqxx::connection& c) { return dims::storage::Migrator::CurrentVersion(c); });
    dims::log::Info("schema up to date", {{"applied", applied}, {"version", version}});
    return 0;
  } catch (const std::exception& e) {
    dims::log::Error("migration failed", {{"error", e.what()}});
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  namespace validate = dims::validate;
  auto
      host =
          dims::ServiceHost::Create(
              {.name = "storage",
               .description = "deferred message store on PostgreSQL (subcommand: migrate)",
               .default_grpc_port = 50053,
               .default_metrics_port = 9103,
               .options =
                   {
                       {"postgres-dsn", "host=127.0.0.1 port=5432 dbname=dims user=dims",
                        "libpq connection string of the store", validate::NonEmpty()},
                       {"postgres-pool-size", "8", "PostgreSQL connections kept open",
                        validate::IntInRange(2, 256)},
                       {"store-host", "store.dims.test",
                        "host part of the Message-IDs this store assigns", validate::DomainName()},
                       {"max-message-bytes", "1048576",
                        "largest message stored (body or MSRP content)",
                        validate::IntInRange(1, 1L << 30)},
                       {"max-user-messages", "1000", "most messages kept for one user",
                        validate::IntInRange(1, 10000000)},
                       {"max-user-bytes", "52428800", "most bytes kept for one user",
                        validate::IntInRange(1, 1L << 40)},
                       {"retention-seconds", "604800",
                        "how long a message is kept (default 7 days)",
                        validate::IntInRange(1, 10L * 365 * 24 * 3600)},
                       {"max-retention-seconds", "2592000",
                        "longest retention a caller may ask for (default 30 "
                        "days)",
                        validate::IntInRange(1, 10L * 365 * 24 * 3600)},
                       {"purge-interval-seconds", "60", "how often expired messages are removed",
                        validate::IntInRange(1, 86400)},
                       {"store-batching", "true",
                        "group commit: concurrent stores share a transaction, and so do "
                        "concurrent acks (false: one each)",
                        validate::OneOf({"true", "false"})},
                       {"store-batch-max", "256", "most messages in one group commit",
                        validate::IntInRange(1, 10000)},
                       {"store-committers",
                        "2", "group commits in flight at once (each holds a connection)",
                        validate::IntInRange(1, 64)},
                       {"ack-batch-max", "256", "most Ack calls in one group commit",
                        validate::IntInRange(1, 10000)},
                       {"ack-committers",
                        "1", "Ack group commits in flight at once (each holds a connection)",
                        validate::IntInRange(1, 64)},
                       dims::RedisOption("event bus"),
                   }},
              argc, argv);
  const auto& config = host->config();
  int pool_size = static_cast<int>(config.GetInt("postgres-pool-size"));
  dims::PostgresPool postgres(config.Get("postgres-dsn"), pool_size);
  dims::storage::Migrator migrator(
      dims::storage::EmbeddedMigrations(), [](const dims::storage::Migration& m) {
        dims::log::Info("migration applied", {{"version", m.version}, {"name", m.name}});
      });

  if (!config.positional().empty()) {
    if (config.positional() != std::vector<std::string>{"migrate"}) {
      std::cerr << "dims-storage: unknown command '" << config.positional().front()
                << "' (the only command is: migrate)\n";
      return 2;
    }
    return Migrate(postgres, migrator);
  }

  // The store serves only once its schema is current; a database that comes up later is
  // migrated then, without a restart.
  std::atomic<bool> migrated{false};
  host->AddDependency("postgres", [&] {
    if (!migrated) {
      postgres.WithConnection([&](pqxx::connection& c) { migrator.Apply(c); });
      migrated = true;
    }
    return postgres.Ping();
  });
  auto redis = host->ConnectRedis(2, /*required=*/false);  // events wait in the outbox

  dims::storage::StoreLimits limits{.max_message_bytes = config.GetInt("max-message-bytes"),
                                    .max_user_messages = config.GetInt("max-user-messages"),
                                    .max_user_bytes = config.GetInt("max-user-bytes")};
  dims::storage::RetentionPolicy retention{
      .default_retention = std::chrono::seconds(config.GetInt("retention-seconds")),
      .max_retention = std::chrono::seconds(config.GetInt("max-retention-seconds"))};
  dims::storage::BusEvents events("storage/" + host->instance_id());
  dims::storage::PostgresDeferredStore store(postgres, config.Get("store-host"), limits, events);

  // Connections: the committers and the readers share the pool; the relay and the sweeper
  // borrow one when they run.
  bool batching = config.Get("store-batching") == "true";
  int committers =
      batching ? static_cast<int>(config.GetInt("store-committers")) : std::max(1, pool_size - 2);
  int ack_committers = batching ? static_cast<int>(config.GetInt("ack-committers")) : 0;
  if (committers + ack_committers > pool_size - 1) {
    std::cerr << "dims-storage: --store-committers and --ack-committers together must leave a "
                 "connection for readers (at most "
              << pool_size - 1 << " with --postgres-pool-size " << pool_size << ")\n";
    return 2;
  }
  int reader_threads = std::max(1, pool_size - committers - ack_committers);
  // Without batching every Ack is a transaction of its own, with as many in flight as readers
  // (what acks had before they were batched).
  if (!batching) ack_committers = reader_threads;
  dims::storage::StoreBatcher batcher(
      store,
      {.committers = committers,
       .max_batch = batching ? static_cast<size_t>(config.GetInt("store-batch-max")) : 1},
      host->metrics());
  dims::storage::AckBatcher acks(
      store,
      {.committers = ack_committers,
       .max_batch = batching ? static_cast<size_t>(config.GetInt("ack-batch-max")) : 1},
      host->metrics());
  dims::WorkerPool readers("storage-readers", reader_threads, 10000);
  dims::storage::EventRelay relay(postgres, redis, host->metrics());
  batcher.OnCommit([&relay] { relay.Wake(); });
  acks.OnCommit([&relay] { relay.Wake(); });
  dims::storage::RetentionSweeper sweeper(
      store, std::chrono::seconds(config.GetInt("purge-interval-seconds")), host->metrics());

  dims::storage::StorageService storage(store, batcher, acks, readers, limits, retention);
  storage.OnPurged([&sweeper](const dims::storage::PurgeResult& r) { sweeper.Record(r); });
  host->AddService(&storage, dims::v1::Storage::service_full_name());
  dims::log::Info("store configured", {{"batching", batching},
                                       {"committers", committers},
                                       {"ack_committers", ack_committers},
                                       {"store_host", config.Get("store-host")}});
  host->OnStop([&] {
    batcher.Stop();
    acks.Stop();
    readers.Stop();
    sweeper.Stop();
    relay.Stop();
  });
  return host->Run();
}
