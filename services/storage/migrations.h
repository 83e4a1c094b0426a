// Versioned schema migrations of the deferred store, applied in order, each once, under a
// PostgreSQL advisory lock so that several storage replicas starting together apply them once.
#pragma once

#include <functional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace dims::storage {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// The migrations compiled into this binary (from services/storage/migrations/*.sql).
const std::vector<Migration>& EmbeddedMigrations();

class Migrator {
 public:
  // `on_applied` hears of each migration once it committed (the service logs it).
  explicit Migrator(const std::vector<Migration>& migrations,
                    std::function<void(const Migration&)> on_applied = nullptr)
      : migrations_(migrations), on_applied_(std::move(on_applied)) {}

  // Applies every migration not yet recorded in schema_migrations, each in its own
  // transaction. Returns how many were applied. Throws on a database error (nothing of a
  // failed migration stays applied).
  int Apply(pqxx::connection& connection);

  // The highest version recorded, 0 when none.
  static int CurrentVersion(pqxx::connection& connection);

 private:
  const std::vector<Migration>& migrations_;
  std::function<void(const Migration&)> on_applied_;
};

}  // namespace dims::storage
