#include "postgres_deferred_store.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "outbox_row.h"
#include "pg_array.h"

namespace dims::storage {
namespace {

int64_t ToMicros(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

Clock::time_point FromMicros(int64_t us) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(us)));
}

constexpr const char* kMicros = "(extract(epoch FROM %s) * 1000000)::bigint";

std::string MicrosOf(const std::string& column) {
  char buf[128];
  std::snprintf(buf, sizeof buf, kMicros, column.c_str());
  return buf;
}

// Columns of a message row, in the order ReadMessage expects.
std::string MessageColumns(bool with_content) {
  return "message_id, number, recipient_aor, kind, " + MicrosOf("received_at") + ", " +
         MicrosOf("expires_at") +
         ", stored_version, call_id, cseq, msrp_message_id, from_header, to_header, "
         "p_asserted_identity, subject, date_header, priority, content_type, size_bytes, " +
         (with_content ? "content" : "NULL::bytea");
}

StoredMessage ReadMessage(const pqxx::row& row, int64_t notified_version) {
  StoredMessage m;
  m.message_id = row[0].as<std::string>();
  m.number = row[1].as<int64_t>();
  m.recipient = row[2].as<std::string>();
  m.kind = static_cast<MessageKind>(row[3].as<int>());
  m.received_at = FromMicros(row[4].as<int64_t>());
  m.expires_at = FromMicros(row[5].as<int64_t>());
  m.is_new = row[6].as<int64_t>() > notified_version;
  m.headers.call_id = row[7].as<std::string>();
  m.headers.cseq = row[8].as<int64_t>();
  m.msrp_message_id = row[9].as<std::string>();
  m.headers.from = row[10].as<std::string>();
  m.headers.to = row[11].as<std::string>();
  m.headers.p_asserted_identity = row[12].as<std::string>();
  m.headers.subject = row[13].as<std::string>();
  m.headers.date = row[14].as<std::string>();
  m.headers.priority = row[15].as<std::string>();
  m.headers.content_type = row[16].as<std::string>();
  m.size_bytes = row[17].as<int64_t>();
  if (!row[18].is_null()) m.content = pqxx::binarystring(row[18]).str();
  return m;
}

using DedupeKey = std::tuple<std::string, std::string, int64_t, std::string>;

DedupeKey KeyOf(const NewMessage& m) {
  return {m.recipient, m.headers.call_id, m.headers.cseq, m.msrp_message_id};
}

using UserRow = UserStoreRow;

// Every batched statement on user_stores (a set of users given as an array) goes through its
// primary key as an ON CONFLICT arbiter: the planner has no choice to make, so no plan (however
// stale its statistics) scans the table.
// Rows are taken in a fixed order, so that two transactions touching the same users never
// deadlock.

// User counters as the four array parameters of the statements below.
struct CounterColumns {
  PgArray users{PgArray::Element::kText}, messages{PgArray::Element::kInt8},
      bytes{PgArray::Element::kInt8}, versions{PgArray::Element::kInt8};
};

CounterColumns CountersOf(const std::map<std::string, UserRow>& rows) {
  CounterColumns columns;
  for (const auto& [user, row] : rows) {
    columns.users.Add(std::string_view(user));
    columns.messages.Add(row.messages);
    columns.bytes.Add(row.bytes);
    columns.versions.Add(row.version);
  }
  return columns;
}

// Locks the users' rows (creating them first) and returns their counters.
constexpr const char* kLockUsers =
    "INSERT INTO user_stores AS u (recipient_aor) SELECT unnest($1::text[]) AS r ORDER BY r "
    "ON CONFLICT (recipient_aor) DO UPDATE SET version = u.version "
    "RETURNING recipient_aor, message_count, total_bytes, version, notified_version";

// Runs a statement that locks the rows of `users` (given as its one array parameter) and returns
// (user, message_count, total_bytes, version, notified_version) of each row locked.
std::map<std::string, UserRow> LockRows(pqxx::work& tx, const std::string& name, const char* sql,
                                        const std::set<std::string>& users) {
  tx.conn().prepare(name, sql);
  std::map<std::string, UserRow> rows;
  PgArray names(PgArray::Element::kText);
  for (const auto& user : users) names.Add(std::string_view(user));
  for (const auto& r : tx.exec_prepared(name, names.Param())) {
    rows[r[0].as<std::string>()] = {r[1].as<int64_t>(), r[2].as<int64_t>(), r[3].as<int64_t>(),
                                    r[4].as<int64_t>()};
  }
  return rows;
}

std::map<std::string, UserRow> LockUsers(pqxx::work& tx, const std::set<std::string>& users) {
  return LockRows(tx, "lock_users", kLockUsers, users);
}

// Locks one user's row and returns its counters; nothing when the user never stored anything.
// (An equality on the primary key: every plan of it is an index lookup.)
std::optional<UserRow> LockUser(pqxx::work& tx, const std::string& user) {
  tx.conn().prepare("lock_user",
                    "SELECT message_count, total_bytes, version, notified_version FROM user_stores "
                    "WHERE recipient_aor = $1 FOR UPDATE");
  auto r = tx.exec_prepared("lock_user", user);
  if (r.empty()) return std::nullopt;
  return UserRow{r[0][0].as<int64_t>(), r[0][1].as<int64_t>(), r[0][2].as<int64_t>(),
                 r[0][3].as<int64_t>()};
}

// The values of a bigint[] column.
std::vector<int64_t> Int8sOf(const pqxx::field& f) {
  std::vector<int64_t> out;
  auto parser = f.as_array();
  for (auto step = parser.get_next(); step.first != pqxx::array_parser::done;
       step = parser.get_next()) {
    if (step.first == pqxx::array_parser::string_value) out.push_back(std::stoll(step.second));
  }
  return out;
}

// A user's row after AddToUsers: the counters before the addition, and the numbers drawn for
// the added messages, in ascending order.
struct UserAdded {
  UserRow before;
  std::vector<int64_t> numbers;
};

// Adds to the users' counters (creating their rows), and returns the counters before the
// addition and the users' message numbers: a store locks (unless the careful path did already),
// counts and numbers in one statement. The numbers are drawn once the user's row is locked
// (RETURNING runs on the locked row), so a later store for the same user draws its numbers only
// after this transaction ended: per user, numbers grow in arrival order.
constexpr const char* kAddToUsers =
    "INSERT INTO user_stores AS u (recipient_aor, message_count, total_bytes, version) "
    "SELECT unnest($1::text[]), unnest($2::bigint[]), unnest($3::bigint[]), unnest($4::bigint[]) "
    "ORDER BY 1 "
    "ON CONFLICT (recipient_aor) DO UPDATE SET message_count = u.message_count + "
    "EXCLUDED.message_count, total_bytes = u.total_bytes + EXCLUDED.total_bytes, "
    "version = u.version + EXCLUDED.version "
    "RETURNING recipient_aor, message_count, total_bytes, version, notified_version, "
    "ARRAY(SELECT nextval('deferred_message_number') FROM generate_series(1, "
    "($2::bigint[])[array_position($1::text[], u.recipient_aor)]))";

std::map<std::string, UserAdded> AddToUsers(pqxx::work& tx,
                                            const std::map<std::string, UserRow>& added) {
  tx.conn().prepare("add_to_users", kAddToUsers);
  auto columns = CountersOf(added);
  std::map<std::string, UserAdded> rows;
  for (const auto& r :
       tx.exec_prepared("add_to_users", columns.users.Param(), columns.messages.Param(),
                        columns.bytes.Param(), columns.versions.Param())) {
    auto user = r[0].as<std::string>();
    const UserRow& add = added.at(user);
    UserAdded& row = rows[user];
    row.before = {r[1].as<int64_t>() - add.messages, r[2].as<int64_t>() - add.bytes,
                  r[3].as<int64_t>() - add.version, r[4].as<int64_t>()};
    row.numbers = Int8sOf(r[5]);
    std::sort(row.numbers.begin(), row.numbers.end());
    if (row.numbers.size() != static_cast<size_t>(add.messages)) {
      throw std::runtime_error("add_to_users drew " + std::to_string(row.numbers.size()) +
                               " numbers for " + std::to_string(add.messages) + " messages");
    }
  }
  return rows;
}

// The drawn numbers handed to the messages of `batch` at `indices` (in arrival order), each the
// next of its user's; indexed like `batch`.
std::vector<int64_t> AssignNumbers(const std::vector<NewMessage>& batch,
                                   const std::vector<size_t>& indices,
                                   const std::map<std::string, UserAdded>& users) {
  std::vector<int64_t> numbers(batch.size());
  std::map<std::string, size_t> taken;
  for (size_t i : indices) {
    const auto& user = batch[i].recipient;
    numbers[i] = users.at(user).numbers.at(taken[user]++);
  }
  return numbers;
}

// Counts one more message, `m`, into a user's counters.
void CountOne(UserRow& row, const NewMessage& m) {
  row.messages += 1;
  row.bytes += m.size_bytes;
  row.version += 1;
}

// What the messages of `batch` at `indices` add to their users' counters.
std::map<std::string, UserRow> Additions(const std::vector<NewMessage>& batch,
                                         const std::vector<size_t>& indices) {
  std::map<std::string, UserRow> added;
  for (size_t i : indices) CountOne(added[batch[i].recipient], batch[i]);
  return added;
}

// Writes the counters of users whose rows this transaction locked.
constexpr const char* kSaveUsers =
    "INSERT INTO user_stores AS u (recipient_aor, message_count, total_bytes, version) "
    "SELECT unnest($1::text[]), unnest($2::bigint[]), unnest($3::bigint[]), unnest($4::bigint[]) "
    "ORDER BY 1 "
    "ON CONFLICT (recipient_aor) DO UPDATE SET message_count = EXCLUDED.message_count, "
    "total_bytes = EXCLUDED.total_bytes, version = EXCLUDED.version";

void SaveUsers(pqxx::work& tx, const std::map<std::string, UserRow>& rows) {
  tx.conn().prepare("save_users", kSaveUsers);
  auto columns = CountersOf(rows);
  tx.exec_prepared("save_users", columns.users.Param(), columns.messages.Param(),
                   columns.bytes.Param(), columns.versions.Param());
}

// Writes the events of a transaction (an outbox row built with AppendOutboxEvent), if any.
void InsertOutboxRow(pqxx::work& tx, const std::string& events) {
  if (events.empty()) return;
  tx.exec_params("INSERT INTO event_outbox_rows (events) VALUES ($1)", pqxx::binarystring(events));
}

}  // namespace

PostgresDeferredStore::PostgresDeferredStore(PostgresPool& pool, std::string store_host,
                                             StoreLimits limits, EventFactory& events)
    : pool_(pool), store_host_(std::move(store_host)), limits_(limits), events_(events) {}

template <typename Fn>
auto PostgresDeferredStore::Run(Fn&& fn) -> decltype(fn(std::declval<pqxx::connection&>())) {
  try {
    return pool_.WithConnection(std::forward<Fn>(fn));
  } catch (const pqxx::broken_connection& e) {
    throw StoreUnavailable(std::string("database unreachable: ") + e.what());
  } catch (const pqxx::in_doubt_error& e) {
    throw StoreUnavailable(std::string("commit outcome unknown, retry: ") + e.what());
  } catch (const pqxx::sql_error& e) {
    if (PostgresPool::IsConnectionLost(e)) {
      throw StoreUnavailable(std::string("database went away: ") + e.what());
    }
    if (PostgresPool::IsStaleStatement(e)) {
      throw StoreUnavailable(std::string("schema changed under a prepared statement, retry: ") +
                             e.what());
    }
    throw;
  }
}

std::vector<StoreOutcome> PostgresDeferredStore::StoreBatch(const std::vector<NewMessage>& batch) {
  return Run([&](pqxx::connection& c) {
    if (auto outcomes = TryStoreFast(c, batch)) return *outcomes;
    return StoreCarefully(c, batch);
  });
}

namespace {

// The whole write of a batch in one statement: the messages, and their events as one outbox row.
// No ON CONFLICT: its speculative insertion probed both unique indexes and logged one more WAL
// record per row, a seventh of what PostgreSQL spent on a store. A duplicate is rare (a retry
// after a lost answer) and fails the statement instead (a unique_violation; the batch rolls
// back and takes the careful path, which looks it up first).
constexpr const char* kStoreAll =
    "WITH ins AS ("
    " INSERT INTO deferred_messages (recipient_aor, number, message_id, kind, received_at,"
    "  expires_at, stored_version, call_id, cseq, msrp_message_id, from_header, to_header,"
    "  p_asserted_identity, subject, date_header, priority, content_type, size_bytes, content)"
    // Set-returning functions in the select list run in lockstep (one row per array index)
    // and stream their rows; unnest in FROM would first copy the whole batch into a tuplestore.
    " SELECT unnest($1::text[]), unnest($2::bigint[]), unnest($3::text[]), unnest($4::smallint[]),"
    "  unnest($5::timestamptz[]), unnest($6::timestamptz[]), unnest($7::bigint[]),"
    "  unnest($8::text[]), unnest($9::bigint[]), unnest($10::text[]), unnest($11::text[]),"
    "  unnest($12::text[]), unnest($13::text[]), unnest($14::text[]), unnest($15::text[]),"
    "  unnest($16::text[]), unnest($17::text[]), unnest($18::bigint[]), unnest($19::bytea[])"
    ")"
    "INSERT INTO event_outbox_rows (events) VALUES ($20::bytea)";

}  // namespace

// Writes the messages of `batch` chosen by `accepted` (at `versions` and `numbers`, indexed like
// `batch`; the user counters are the caller's) with one statement: rows and outbox events.
// Returns their outcomes in `accepted` order; a message stored before fails it with
// pqxx::unique_violation.
std::vector<StoreOutcome> PostgresDeferredStore::Write(pqxx::work& tx,
                                                       const std::vector<NewMessage>& batch,
                                                       const std::vector<size_t>& accepted,
                                                       const std::vector<int64_t>& versions,
                                                       const std::vector<int64_t>& numbers) {
  using E = PgArray::Element;
  PgArray r(E::kText), number(E::kInt8), id(E::kText), kind(E::kInt2), received(E::kTimestamptz),
      expires(E::kTimestamptz), version(E::kInt8), call(E::kText), cseq(E::kInt8), msrp(E::kText),
      from(E::kText), to(E::kText), pai(E::kText), subject(E::kText), date(E::kText),
      prio(E::kText), ctype(E::kText), size(E::kInt8), content(E::kBytea);
  std::string events;  // one outbox row
  std::vector<StoreOutcome> outcomes;
  for (size_t k = 0; k < accepted.size(); ++k) {
    const auto& m = batch[accepted[k]];
    int64_t v = versions[accepted[k]];
    int64_t n = numbers[accepted[k]];
    std::string message_id = FormatMessageId(n, store_host_);
    r.Add(m.recipient);
    number.Add(n);
    id.Add(message_id);
    kind.Add(static_cast<int64_t>(m.kind));
    received.Add(PgArray::Timestamp(ToMicros(m.received_at)));
    expires.Add(PgArray::Timestamp(ToMicros(m.expires_at)));
    version.Add(v);
    call.Add(m.headers.call_id);
    cseq.Add(m.headers.cseq);
    msrp.Add(m.msrp_message_id);
    from.Add(m.headers.from);
    to.Add(m.headers.to);
    pai.Add(m.headers.p_asserted_identity);
    subject.Add(m.headers.subject);
    date.Add(m.headers.date);
    prio.Add(m.headers.priority);
    ctype.Add(m.headers.content_type);
    size.Add(m.size_bytes);
    content.Add(m.content);
    StoredMessage stored{message_id,    n,
                         m.recipient,   m.kind,
                         m.headers,     m.msrp_message_id,
                         m.received_at, m.expires_at,
                         m.size_bytes,  true,
                         std::nullopt};
    AppendOutboxEvent(events, m.recipient, "message_stored",
                      events_.MessageStored(stored, v, m.reason));
    outcomes.push_back(
        {StoreOutcome::Result::kStored, message_id, m.received_at, m.expires_at, v, ""});
  }
  tx.conn().prepare("store_all", kStoreAll);
  tx.exec_prepared("store_all", r.Param(), number.Param(), id.Param(), kind.Param(),
                   received.Param(), expires.Param(), version.Param(), call.Param(), cseq.Param(),
                   msrp.Param(), from.Param(), to.Param(), pai.Param(), subject.Param(),
                   date.Param(), prio.Param(), ctype.Param(), size.Param(), content.Param(),
                   pqxx::binarystring(events));
  return outcomes;
}

// The common case: no message of the batch is a duplicate or over a limit, so nothing needs
// looking up first, and the users' counters are locked and counted up in one statement. Anything
// else (a stored duplicate shows up as a unique_violation) rolls back and takes the careful path.
std::optional<std::vector<StoreOutcome>> PostgresDeferredStore::TryStoreFast(
    pqxx::connection& c, const std::vector<NewMessage>& batch) {
  std::set<DedupeKey> keys;
  for (const auto& m : batch) {
    if (!keys.insert(KeyOf(m)).second) return std::nullopt;
  }
  std::vector<size_t> all(batch.size());
  std::iota(all.begin(), all.end(), size_t{0});
  pqxx::work tx(c);
  auto rows = AddToUsers(tx, Additions(batch, all));
  std::vector<int64_t> versions(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& m = batch[i];
    UserRow& row = rows.at(m.recipient).before;
    if (ExceededLimit(limits_, {row.messages, row.bytes}, m.size_bytes)) return std::nullopt;
    CountOne(row, m);
    versions[i] = row.version;
  }
  auto numbers = AssignNumbers(batch, all, rows);
  std::vector<StoreOutcome> outcomes;
  try {
    outcomes = Write(tx, batch, all, versions, numbers);
  } catch (const pqxx::unique_violation&) {
    return std::nullopt;  // a duplicate: tx rolls back
  }
  tx.commit();
  return outcomes;
}

// Looks up what is stored under the batch's dedupe keys first, then decides each message:
// duplicate (the stored id), over a limit, or stored.
std::vector<StoreOutcome> PostgresDeferredStore::StoreCarefully(
    pqxx::connection& c, const std::vector<NewMessage>& batch) {
  std::vector<StoreOutcome> outcomes(batch.size());
  pqxx::work tx(c);

  std::set<std::string> users;
  for (const auto& m : batch) users.insert(m.recipient);
  auto rows = LockUsers(tx, users);

  PgArray k_user(PgArray::Element::kText), k_call(PgArray::Element::kText),
      k_cseq(PgArray::Element::kInt8), k_msrp(PgArray::Element::kText);
  for (const auto& m : batch) {
    k_user.Add(m.recipient);
    k_call.Add(m.headers.call_id);
    k_cseq.Add(m.headers.cseq);
    k_msrp.Add(m.msrp_message_id);
  }
  std::map<DedupeKey, StoreOutcome> known;
  for (const auto& r : tx.exec_params(
           "SELECT d.recipient_aor, d.call_id, d.cseq, d.msrp_message_id, d.message_id, " +
               MicrosOf("d.received_at") + ", " + MicrosOf("d.expires_at") +
               " FROM deferred_messages d JOIN unnest($1::text[], $2::text[], $3::bigint[], "
               "$4::text[]) AS k(r, c, s, m) ON d.recipient_aor = k.r AND d.call_id = k.c "
               "AND d.cseq = k.s AND d.msrp_message_id = k.m",
           k_user.Param(), k_call.Param(), k_cseq.Param(), k_msrp.Param())) {
    StoreOutcome o;
    o.result = StoreOutcome::Result::kDuplicate;
    o.message_id = r[4].as<std::string>();
    o.received_at = FromMicros(r[5].as<int64_t>());
    o.expires_at = FromMicros(r[6].as<int64_t>());
    known[{r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<int64_t>(),
           r[3].as<std::string>()}] = o;
  }

  std::vector<size_t> accepted;
  std::map<DedupeKey, size_t> first_in_batch;
  std::vector<int64_t> versions(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& m = batch[i];
    auto key = KeyOf(m);
    UserRow& row = rows[m.recipient];
    if (auto it = known.find(key); it != known.end()) {
      outcomes[i] = it->second;
      outcomes[i].store_version = row.version;
      continue;
    }
    if (first_in_batch.count(key)) continue;  // filled in after the write
    if (auto limit = ExceededLimit(limits_, {row.messages, row.bytes}, m.size_bytes)) {
      outcomes[i].result = StoreOutcome::Result::kOverLimit;
      outcomes[i].limit = *limit;
      continue;
    }
    first_in_batch[key] = i;
    CountOne(row, m);
    versions[i] = row.version;
    accepted.push_back(i);
  }

  if (!accepted.empty()) {
    auto numbered = AddToUsers(tx, Additions(batch, accepted));
    // The users' rows are locked and their keys looked up: nobody can have stored them since,
    // so no unique_violation can come from here.
    auto written = Write(tx, batch, accepted, versions, AssignNumbers(batch, accepted, numbered));
    for (size_t k = 0; k < accepted.size(); ++k) outcomes[accepted[k]] = written[k];
  }
  tx.commit();

  // Later copies of a message stored by this very batch answer like a retry would.
  for (size_t i = 0; i < batch.size(); ++i) {
    auto it = first_in_batch.find(KeyOf(batch[i]));
    if (it != first_in_batch.end() && it->second != i) {
      outcomes[i] = outcomes[it->second];
      outcomes[i].result = StoreOutcome::Result::kDuplicate;
    }
  }
  return outcomes;
}

StoreSummary PostgresDeferredStore::Summary(const std::string& recipient, int max_entries) {
  return Run([&](pqxx::connection& c) {
    StoreSummary summary;
    pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only> tx(
        c);
    int64_t notified = 0;
    auto user = tx.exec_params(
        "SELECT version, notified_version FROM user_stores WHERE recipient_aor = $1", recipient);
    if (user.empty()) return summary;
    summary.version = user[0][0].as<int64_t>();
    notified = user[0][1].as<int64_t>();
    for (const auto& r : tx.exec_params(
             "SELECT kind, stored_version > $2, lower(priority) IN ('urgent', 'emergency'), "
             " count(*), sum(size_bytes), " +
                 MicrosOf("min(received_at)") + ", " + MicrosOf("max(received_at)") +
                 " FROM deferred_messages WHERE recipient_aor = $1 GROUP BY 1, 2, 3",
             recipient, notified)) {
      KindCounts& k = r[0].as<int>() == 2 ? summary.large : summary.pager;
      bool is_new = r[1].as<bool>();
      bool urgent = r[2].as<bool>();
      auto n = r[3].as<uint32_t>();
      (is_new ? k.new_count : k.old_count) += n;
      if (urgent) (is_new ? k.urgent_new : k.urgent_old) += n;
      k.bytes += r[4].as<int64_t>();
      auto oldest = FromMicros(r[5].as<int64_t>());
      auto newest = FromMicros(r[6].as<int64_t>());
      if (!summary.oldest || oldest < *summary.oldest) summary.oldest = oldest;
      if (!summary.newest || newest > *summary.newest) summary.newest = newest;
    }
    if (max_entries > 0) {
      for (const auto& r : tx.exec_params("SELECT " + MessageColumns(false) +
                                              " FROM deferred_messages WHERE recipient_aor = $1 "
                                              "ORDER BY number LIMIT $2",
                                          recipient, max_entries)) {
        summary.entries.push_back(ReadMessage(r, notified));
      }
    }
    return summary;
  });
}

std::vector<StoredMessage> PostgresDeferredStore::List(const std::string& recipient,
                                                       int64_t after_number, int limit, int kind,
                                                       bool with_content,
                                                       const std::vector<std::string>& only_ids) {
  return Run([&](pqxx::connection& c) {
    pqxx::transaction<pqxx::isolation_level::read_committed, pqxx::readwrite_policy::read_only> tx(
        c);
    // Prepared, since Fetch reads every page through here: planning took about half of the
    // statement's time in PostgreSQL (0.08 of 0.18 ms for a page of 32). The plan walks one
    // user's primary key (recipient_aor, number) in order; a generic plan made while the table
    // was tiny could scan it instead, until the next ANALYZE, which the table's growth triggers.
    tx.conn().prepare("notified_version",
                      "SELECT notified_version FROM user_stores WHERE recipient_aor = $1");
    auto user = tx.exec_prepared("notified_version", recipient);
    int64_t notified = user.empty() ? 0 : user[0][0].as<int64_t>();
    std::string name = std::string("list_") + (with_content ? "c" : "m") + (kind ? "k" : "") +
                       (only_ids.empty() ? "" : "i");
    tx.conn().prepare(name, "SELECT " + MessageColumns(with_content) +
                                " FROM deferred_messages WHERE recipient_aor = $1 AND number > $2" +
                                (kind ? " AND kind = $4::int" : " AND $4::int = $4::int") +
                                (only_ids.empty() ? " AND cardinality($5::text[]) = 0"
                                                  : " AND message_id = ANY($5::text[])") +
                                " ORDER BY number LIMIT $3");
    std::vector<StoredMessage> out;
    for (const auto& r : tx.exec_prepared(name, recipient, after_number, limit, kind,
                                          PgArray::Texts(only_ids).Param())) {
      out.push_back(ReadMessage(r, notified));
    }
    return out;
  });
}

std::optional<StoredMessage> PostgresDeferredStore::Get(const std::string& recipient,
                                                        const std::string& message_id,
                                                        bool with_content) {
  return Run([&](pqxx::connection& c) -> std::optional<StoredMessage> {
    pqxx::transaction<pqxx::isolation_level::read_committed, pqxx::readwrite_policy::read_only> tx(
        c);
    auto r = tx.exec_params(
        "SELECT " + MessageColumns(with_content) +
            ", COALESCE((SELECT notified_version FROM user_stores WHERE recipient_aor = $1), 0) "
            "FROM deferred_messages WHERE recipient_aor = $1 AND message_id = $2",
        recipient, message_id);
    if (r.empty()) return std::nullopt;
    return ReadMessage(r[0], r[0][19].as<int64_t>());
  });
}

namespace {

// Locks the rows of the users named and returns their counters; users without a row are left
// out, and none is made for them. The rows are locked in the order the other batched statements
// take them (ORDER BY the user, in the database's collation, which need not be byte order), so
// that a batch of removals never deadlocks with a group commit of stores or with a purge. Both
// subqueries stay what they are (ORDER BY and FOR UPDATE keep the planner from merging them
// into a join): every plan is a loop of primary-key lookups in that order, whatever the
// statistics say.
constexpr const char* kLockExistingUsers =
    "SELECT k.r, u.message_count, u.total_bytes, u.version, u.notified_version "
    "FROM (SELECT r FROM unnest($1::text[]) AS r ORDER BY r) k CROSS JOIN LATERAL ("
    " SELECT message_count, total_bytes, version, notified_version FROM user_stores"
    " WHERE recipient_aor = k.r FOR UPDATE) u";

std::map<std::string, UserRow> LockExistingUsers(pqxx::work& tx,
                                                 const std::set<std::string>& users) {
  return LockRows(tx, "lock_existing_users", kLockExistingUsers, users);
}

// The messages a batch of removals selects: (user, number, message id) triples, the number read
// from the id (`<number>@<host>`, FormatMessageId) so that each is one primary-key lookup, the id
// compared as well; and the users whose messages all go. Only users that have a store (`rows`).
struct Selection {
  PgArray users{PgArray::Element::kText}, numbers{PgArray::Element::kInt8},
      ids{PgArray::Element::kText}, all_of{PgArray::Element::kText};
};

Selection Select(const std::vector<Removal>& batch, const std::map<std::string, UserRow>& rows) {
  Selection s;
  std::set<std::pair<std::string, std::string>> pairs;
  std::set<std::string> all_of;
  for (const auto& removal : batch) {
    if (!rows.count(removal.recipient)) continue;
    if (removal.all) all_of.insert(removal.recipient);
    for (const auto& id : removal.ids) pairs.emplace(removal.recipient, id);
  }
  for (const auto& [user, id] : pairs) {
    int64_t number = 0;
    auto [end, error] = std::from_chars(id.data(), id.data() + id.size(), number);
    if (error != std::errc() || end == id.data() || *end != '@') continue;  // matches nothing
    s.users.Add(std::string_view(user));
    s.numbers.Add(number);
    s.ids.Add(std::string_view(id));
  }
  for (const auto& user : all_of) s.all_of.Add(std::string_view(user));
  return s;
}

// Deletes the selected messages in one statement. Not prepared: the custom plan of each call
// sees the arrays' sizes and loops over them with primary-key lookups (a generic plan has to
// guess them).
std::string DeleteSelected() {
  return "DELETE FROM deferred_messages d USING unnest($1::text[], $2::bigint[], $3::text[]) "
         "AS k(k_user, k_number, k_id) WHERE d.recipient_aor = k.k_user AND d.number = k.k_number "
         "AND d.message_id = k.k_id RETURNING " +
         MessageColumns(false);
}

std::string DeleteAllOf() {
  return "DELETE FROM deferred_messages WHERE recipient_aor = ANY($1::text[]) RETURNING " +
         MessageColumns(false);
}

}  // namespace

std::vector<RemovalResult> PostgresDeferredStore::RemoveBatch(const std::vector<Removal>& batch) {
  return Run([&](pqxx::connection& c) {
    std::vector<RemovalResult> results(batch.size());
    pqxx::work tx(c);
    std::set<std::string> users;
    for (const auto& removal : batch) users.insert(removal.recipient);
    auto rows = LockExistingUsers(tx, users);
    auto selection = Select(batch, rows);
    // What the statement removed, per user and message id; each goes to the first removal (in
    // batch order) that selects it, as if the removals had run one after the other.
    std::map<std::string, std::map<std::string, StoredMessage>> deleted;
    auto take = [&](const pqxx::result& removed_rows) {
      for (const auto& r : removed_rows) {
        auto user = r[2].as<std::string>();
        auto m = ReadMessage(r, rows.at(user).notified_version);
        deleted[user].emplace(m.message_id, std::move(m));
      }
    };
    if (selection.ids.size() > 0) {
      take(tx.exec_params(DeleteSelected(), selection.users.Param(), selection.numbers.Param(),
                          selection.ids.Param()));
    }
    if (selection.all_of.size() > 0) take(tx.exec_params(DeleteAllOf(), selection.all_of.Param()));
    std::map<std::string, UserRow> changed;
    std::string events;  // one outbox row
    for (size_t i = 0; i < batch.size(); ++i) {
      const Removal& removal = batch[i];
      RemovalResult& result = results[i];
      auto row_it = rows.find(removal.recipient);
      if (row_it == rows.end()) {  // never stored anything: nothing to remove
        result.already_gone = removal.ids;
        continue;
      }
      UserRow& row = row_it->second;
      auto& left = deleted[removal.recipient];
      std::vector<StoredMessage> removed;
      std::set<std::string> seen;  // an id given twice in one call counts once
      for (const auto& id : removal.ids) {
        if (!seen.insert(id).second) continue;
        auto it = left.find(id);
        if (it == left.end()) {
          result.already_gone.push_back(id);
          continue;
        }
        removed.push_back(std::move(it->second));
        left.erase(it);
      }
      if (removal.all) {
        for (auto& [id, m] : left) removed.push_back(std::move(m));
        left.clear();
        std::sort(removed.begin(), removed.end(),
                  [](const auto& a, const auto& b) { return a.number < b.number; });
      }
      for (const auto& m : removed) {
        result.removed.push_back(m.message_id);
        row.messages -= 1;
        row.bytes -= m.size_bytes;
      }
      if (!removed.empty()) {
        row.version += 1;
        changed[removal.recipient] = row;
        AppendOutboxEvent(events, removal.recipient, "store_changed",
                          events_.StoreChanged(removal.recipient, removal.cause, removed,
                                               row.version, row.messages));
      }
      result.store_version = row.version;
    }
    if (!changed.empty()) {
      SaveUsers(tx, changed);
      InsertOutboxRow(tx, events);
    }
    tx.commit();
    return results;
  });
}

PurgeResult PostgresDeferredStore::Purge(Clock::time_point cutoff, RemovalCause cause,
                                         const std::string& only_recipient, uint32_t max_messages,
                                         bool dry_run) {
  return Run([&](pqxx::connection& c) {
    PurgeResult result;
    pqxx::work tx(c);
    const char* column = cause == RemovalCause::kPurged ? "received_at" : "expires_at";
    std::string where =
        std::string(" WHERE ") + column +
        " < 'epoch'::timestamptz + $1 * interval '1 microsecond'" +
        (only_recipient.empty() ? " AND $2::text = $2::text" : " AND recipient_aor = $2");
    auto candidates =
        tx.exec_params("SELECT recipient_aor, number FROM deferred_messages" + where +
                           " ORDER BY " + column + " LIMIT $3",
                       ToMicros(cutoff), only_recipient, static_cast<int64_t>(max_messages) + 1);
    result.more_remaining = candidates.size() > max_messages;
    std::map<std::string, std::vector<int64_t>> by_user;
    for (size_t i = 0; i < candidates.size() && i < max_messages; ++i) {
      by_user[candidates[i][0].as<std::string>()].push_back(candidates[i][1].as<int64_t>());
    }
    if (by_user.empty()) return result;
    std::set<std::string> users;
    for (const auto& [user, numbers] : by_user) users.insert(user);
    auto rows = LockUsers(tx, users);
    std::string events;  // one outbox row
    for (const auto& [user, numbers] : by_user) {
      UserRow& row = rows[user];
      std::string sql = std::string(dry_run ? "SELECT " : "DELETE FROM deferred_messages ") +
                        (dry_run ? MessageColumns(false) + " FROM deferred_messages" : "") +
                        " WHERE recipient_aor = $1 AND number = ANY($2::bigint[])" +
                        (dry_run ? "" : " RETURNING " + MessageColumns(false));
      auto removed_rows = tx.exec_params(sql, user, PgArray::Int8s(numbers).Param());
      if (removed_rows.empty()) continue;
      std::vector<StoredMessage> removed;
      for (const auto& r : removed_rows) {
        removed.push_back(ReadMessage(r, row.notified_version));
        result.messages += 1;
        result.bytes += static_cast<uint64_t>(removed.back().size_bytes);
        row.messages -= 1;
        row.bytes -= removed.back().size_bytes;
      }
      result.users += 1;
      row.version += 1;
      AppendOutboxEvent(events, user, "store_changed",
                        events_.StoreChanged(user, cause, removed, row.version, row.messages));
    }
    if (!dry_run) {
      SaveUsers(tx, rows);
      InsertOutboxRow(tx, events);
      tx.commit();
    }
    return result;
  });
}

uint32_t PostgresDeferredStore::MarkNotified(const std::string& recipient,
                                             int64_t through_version) {
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto before = LockUser(tx, recipient);
    if (!before) return uint32_t{0};
    int64_t old_mark = before->notified_version;
    int64_t new_mark = std::max(old_mark, std::min(through_version, before->version));
    if (new_mark == old_mark) return uint32_t{0};
    auto marked = tx.exec_params(
        "SELECT count(*) FROM deferred_messages WHERE recipient_aor = $1 AND stored_version > $2 "
        "AND stored_version <= $3",
        recipient, old_mark, new_mark);
    tx.exec_params("UPDATE user_stores SET notified_version = $2 WHERE recipient_aor = $1",
                   recipient, new_mark);
    tx.commit();
    return marked[0][0].as<uint32_t>();
  });
}

DeferredStore::RewriteResult PostgresDeferredStore::RewriteLargeContent(
    const std::string& recipient, const std::string& message_id,
    const std::function<std::string(const std::string&)>& rewrite) {
  return Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "SELECT kind, content FROM deferred_messages WHERE recipient_aor = $1 AND message_id = $2 "
        "FOR UPDATE",
        recipient, message_id);
    if (r.empty()) return RewriteResult::kNotFound;
    if (r[0][0].as<int>() != static_cast<int>(MessageKind::kLarge)) {
      return RewriteResult::kNotLarge;
    }
    std::string content = rewrite(pqxx::binarystring(r[0][1]).str());
    tx.exec_params(
        "UPDATE deferred_messages SET content = $3 "
        "WHERE recipient_aor = $1 AND message_id = $2",
        recipient, message_id, pqxx::binarystring(content));
    tx.commit();
    return RewriteResult::kRewritten;
  });
}

}  // namespace dims::storage
