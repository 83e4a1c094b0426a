// dims-storage: the deferred message store on PostgreSQL.
//   dims-storage            serve the Storage gRPC API
//   dims-storage migrate    apply the schema migrations and exit
#include <atomic>
#include <iostream>

#include "dims/v1/storage.grpc.pb.h"
#include "log.h"
#include "migrations.h"
#include "postgres_pool.h"
#include "service_host.h"

int main(int argc, char** argv) {
  namespace validate = dims::validate;
  auto host = dims::ServiceHost::Create(
      {.name = "storage",
       .description = "deferred message store on PostgreSQL (subcommand: migrate)",
       .default_grpc_port = 50053,
       .default_metrics_port = 9103,
       .options =
           {
               {"postgres-dsn", "host=127.0.0.1 port=5432 dbname=dims user=dims",
                "libpq connection string of the store", validate::NonEmpty()},
               {"postgres-pool-size", "8", "PostgreSQL connections kept open",
                validate::IntInRange(1, 256)},
               {"store-host", "store.dims.test", "host part of the Message-IDs this store assigns",
                validate::DomainName()},
               dims::RedisOption("event bus"),
           }},
      argc, argv);
  const auto& config = host->config();
  dims::PostgresPool postgres(config.Get("postgres-dsn"),
                              static_cast<int>(config.GetInt("postgres-pool-size")));
  dims::storage::Migrator migrator(dims::storage::EmbeddedMigrations());

  if (!config.positional().empty()) {
    if (config.positional() != std::vector<std::string>{"migrate"}) {
      std::cerr << "dims-storage: unknown command '" << config.positional().front()
                << "' (the only command is: migrate)\n";
      return 2;
    }
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
  auto redis = host->ConnectRedis(2, /*required=*/false);  // events wait while it is away

  dims::v1::Storage::CallbackService storage;  // every RPC: UNIMPLEMENTED until issue #3 lands
  host->AddService(&storage, dims::v1::Storage::service_full_name());
  return host->Run();
}
