#include "migrations.h"

namespace dims::storage {
namespace {

// Advisory lock key shared by every storage replica: "DIMS" in ASCII.
constexpr long long kMigrationLockKey = 0x44494d53;

}  // namespace

int Migrator::CurrentVersion(pqxx::connection& connection) {
  pqxx::nontransaction tx(connection);
  auto exists = tx.exec1("SELECT to_regclass('schema_migrations') IS NOT NULL")[0].as<bool>();
  if (!exists) return 0;
  return tx.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0].as<int>();
}

int Migrator::Apply(pqxx::connection& connection) {
  {
    pqxx::nontransaction tx(connection);
    tx.exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
  }
  int applied = 0;
  try {
    {
      pqxx::work tx(connection);
      tx.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version integer PRIMARY KEY,"
          " name text NOT NULL,"
          " applied_at timestamptz NOT NULL DEFAULT now())");
      tx.commit();
    }
    for (const auto& m : migrations_) {
      pqxx::work tx(connection);
      auto done = tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
      if (!done.empty()) continue;
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                     m.name);
      tx.commit();
      ++applied;
      if (on_applied_) on_applied_(m);
    }
  } catch (...) {
    try {
      pqxx::nontransaction tx(connection);
      tx.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
    } catch (...) {
      // The connection is gone, and the session lock with it.
    }
    throw;
  }
  pqxx::nontransaction tx(connection);
  tx.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
  return applied;
}

}  // namespace dims::storage
