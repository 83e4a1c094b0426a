// The storage schema's migrations against a real PostgreSQL: a database left at an older
// version is brought forward and keeps what it held.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "migrations.h"
#include "test_servers.h"

namespace dims::testing {
namespace {

using storage::Migration;
using storage::Migrator;

std::vector<Migration> UpTo(int version) {
  std::vector<Migration> some;
  for (const auto& m : storage::EmbeddedMigrations()) {
    if (m.version <= version) some.push_back(m);
  }
  return some;
}

TEST(StorageMigrationTest, ADatabaseAtVersion1IsBroughtForwardAndItsWaitingEventsStayForTheRelay) {
  TempDir dir;
  PostgresServer postgres(dir.path());
  postgres.Start();
  pqxx::connection c(postgres.dsn());

  auto first = UpTo(1);
  ASSERT_EQ(Migrator(first).Apply(c), 1);
  {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO event_outbox (recipient_aor, event_type, payload) VALUES "
        "($1, 'message_stored', $2), ($3, 'store_changed', $4)",
        "sip:alice@dims.test", pqxx::binarystring(std::string("\x08\x00\xff", 3)),
        "sip:bob@dims.test", pqxx::binarystring(std::string("second")));
    tx.commit();
  }

  std::vector<int> applied;
  Migrator all(storage::EmbeddedMigrations(),
               [&](const Migration& m) { applied.push_back(m.version); });
  EXPECT_EQ(all.Apply(c), static_cast<int>(storage::EmbeddedMigrations().size()) - 1);
  ASSERT_FALSE(applied.empty());
  EXPECT_EQ(applied.front(), 2);
  EXPECT_EQ(Migrator::CurrentVersion(c), storage::EmbeddedMigrations().back().version);

  // A replica of the previous release may still be writing into the old outbox: the rows stay
  // where they are (the relay drains them, see storage_test), and the new table starts empty.
  pqxx::work tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM event_outbox")[0].as<int>(), 2);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM event_outbox_rows")[0].as<int>(), 0);

  // Large values are compressed with lz4 where the server has it ('l'), else as before ('').
  bool has_lz4 = tx.exec1(
                       "SELECT 'lz4' = ANY (enumvals) FROM pg_settings "
                       "WHERE name = 'default_toast_compression'")[0]
                     .as<bool>();
  for (const auto& [table, column] :
       {std::pair{"deferred_messages", "content"}, std::pair{"event_outbox_rows", "events"}}) {
    EXPECT_EQ(tx.exec_params1("SELECT attcompression::text FROM pg_attribute "
                              "WHERE attrelid = $1::regclass AND attname = $2",
                              table, column)[0]
                  .as<std::string>(),
              has_lz4 ? "l" : "")
        << table << "." << column;
  }
  tx.commit();

  // Applying again changes nothing.
  EXPECT_EQ(Migrator(storage::EmbeddedMigrations()).Apply(c), 0);
}

}  // namespace
}  // namespace dims::testing
