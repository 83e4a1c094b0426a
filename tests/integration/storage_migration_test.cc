// The storage schema's migrations against a real PostgreSQL: a database left at an older
// version is brought forward with what it held.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "migrations.h"
#include "outbox_row.h"
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

TEST(StorageMigrationTest, EventsWaitingInThePerEventOutboxMoveToPerTransactionRowsInOrder) {
  TempDir dir;
  PostgresServer postgres(dir.path());
  postgres.Start();
  pqxx::connection c(postgres.dsn());

  auto first = UpTo(1);
  ASSERT_EQ(Migrator(first).Apply(c), 1);
  std::string binary("\x08\x00\xff\x01payload", 11);
  {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO event_outbox (recipient_aor, event_type, payload) VALUES "
        "($1, 'message_stored', $2), ($3, 'store_changed', $4)",
        "sip:alice@dims.test", pqxx::binarystring(binary), "sip:bob@dims.test",
        pqxx::binarystring(std::string("second")));
    tx.commit();
  }

  int applied = Migrator(storage::EmbeddedMigrations()).Apply(c);
  EXPECT_EQ(applied, static_cast<int>(storage::EmbeddedMigrations().size()) - 1);
  EXPECT_EQ(Migrator::CurrentVersion(c), storage::EmbeddedMigrations().back().version);

  pqxx::work tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM event_outbox")[0].as<int>(), 0);
  auto rows = tx.exec("SELECT events FROM event_outbox_rows ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  auto alice = storage::ReadOutboxRow(pqxx::binarystring(rows[0][0]).str());
  auto bob = storage::ReadOutboxRow(pqxx::binarystring(rows[1][0]).str());
  ASSERT_TRUE(alice.has_value());
  ASSERT_TRUE(bob.has_value());
  ASSERT_EQ(alice->size(), 1u);
  ASSERT_EQ(bob->size(), 1u);
  EXPECT_EQ((*alice)[0].aor, "sip:alice@dims.test");
  EXPECT_EQ((*alice)[0].type, "message_stored");
  EXPECT_EQ((*alice)[0].event, binary);
  EXPECT_EQ((*bob)[0].aor, "sip:bob@dims.test");
  EXPECT_EQ((*bob)[0].type, "store_changed");
  EXPECT_EQ((*bob)[0].event, "second");

  // Applying again changes nothing.
  tx.commit();
  EXPECT_EQ(Migrator(storage::EmbeddedMigrations()).Apply(c), 0);
}

}  // namespace
}  // namespace dims::testing
