#include "message_summary.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>

namespace dims {
namespace {

using dims::v1::KindCounts;
using dims::v1::MessageSummaryEntry;
using dims::v1::StoreSummary;

struct Counts {
  uint32_t new_count = 0;
  uint32_t old_count = 0;
  uint32_t urgent_new = 0;
  uint32_t urgent_old = 0;
};

void SetCounts(KindCounts* c, const Counts& counts) {
  c->set_new_count(counts.new_count);
  c->set_old_count(counts.old_count);
  c->set_urgent_new_count(counts.urgent_new);
  c->set_urgent_old_count(counts.urgent_old);
}

// Alice's store with these counts, and the totals over both kinds as storage fills them.
StoreSummary Alice(const Counts& pager = {}, const Counts& large = {}) {
  StoreSummary s;
  s.mutable_aor()->set_uri("sip:alice@dims.test");
  SetCounts(s.mutable_pager(), pager);
  SetCounts(s.mutable_large(), large);
  s.set_new_count(pager.new_count + large.new_count);
  s.set_old_count(pager.old_count + large.old_count);
  return s;
}

// A body for Alice: the status line, her account line, then `rest`.
std::string Body(const char* waiting, const std::string& rest) {
  return std::string("Messages-Waiting: ") + waiting +
         "\r\nMessage-Account: sip:alice@dims.test\r\n" + rest;
}

// The header field values of one listed message, as received.
struct Fields {
  const char* to = "";
  const char* from = "";
  const char* date = "";
  const char* subject = "";
  const char* priority = "";
  const char* p_asserted_identity = "";
};

MessageSummaryEntry Entry(const std::string& message_id, dims::v1::MessageKind kind,
                          int64_t received_at, const Fields& f) {
  MessageSummaryEntry e;
  e.set_message_id(message_id);
  e.set_kind(kind);
  e.mutable_headers()->set_to(f.to);
  e.mutable_headers()->set_from(f.from);
  e.mutable_headers()->set_date(f.date);
  e.mutable_headers()->set_subject(f.subject);
  e.mutable_headers()->set_priority(f.priority);
  e.mutable_headers()->set_p_asserted_identity(f.p_asserted_identity);
  e.mutable_received_at()->set_seconds(received_at);
  e.set_is_new(true);
  return e;
}

// A pager MESSAGE from Bob, received 2026-11-21 09:58:12 UTC.
MessageSummaryEntry FromBob(const std::string& message_id) {
  return Entry(message_id, dims::v1::MESSAGE_KIND_PAGER, 1795255092,
               {.to = "<sip:alice@dims.test>",
                .from = "\"Bob\" <sip:bob@dims.test>;tag=49583",
                .date = "Sat, 21 Nov 2026 09:58:12 GMT",
                .subject = "lunch tomorrow?",
                .priority = "normal",
                .p_asserted_identity = "<sip:bob@dims.test>"});
}

// The example of docs/notifications.md: Alice has read Bob's pager message, and has not yet
// seen Carol's urgent pager message nor Dave's large message (whose INVITE had no Date).
StoreSummary DocsExample() {
  StoreSummary s = Alice({.new_count = 1, .old_count = 1, .urgent_new = 1}, {.new_count = 1});
  MessageSummaryEntry* bob = s.add_entries();
  *bob = FromBob("13684434988@store.dims.test");
  bob->set_is_new(false);
  *s.add_entries() = Entry("13684434989@store.dims.test", dims::v1::MESSAGE_KIND_PAGER, 1795255200,
                           {.to = "<sip:alice@dims.test>",
                            .from = "\"Carol\" <sip:carol@dims.test>;tag=a73kszlfl",
                            .date = "Sat, 21 Nov 2026 10:00:00 GMT",
                            .subject = "call me, urgent",
                            .priority = "urgent",
                            .p_asserted_identity = "\"Carol\" <sip:carol@dims.test>"});
  *s.add_entries() = Entry("13684434990@store.dims.test", dims::v1::MESSAGE_KIND_LARGE,
                           1795255530,  // 2026-11-21 10:05:30 UTC
                           {.to = "<sip:alice@dims.test>",
                            .from = "<sip:dave@dims.test>;tag=77d1",
                            .p_asserted_identity = "<sip:dave@dims.test>"});
  return s;
}

TEST(MessageSummary, ContentTypeIsRfc3842) {
  EXPECT_STREQ(kMessageSummaryContentType, "application/simple-message-summary");
}

struct CountsCase {
  const char* name;
  Counts pager;
  Counts large;
  const char* waiting;
  const char* lines;  // the message-context lines expected
};

// Names each case in test output.
void PrintTo(const CountsCase& c, std::ostream* os) { *os << c.name; }

class MessageSummaryCounts : public ::testing::TestWithParam<CountsCase> {};

TEST_P(MessageSummaryCounts, OneLinePerKindPresent) {
  const CountsCase& c = GetParam();
  EXPECT_EQ(RenderMessageSummary(Alice(c.pager, c.large)), Body(c.waiting, c.lines));
}

INSTANTIATE_TEST_SUITE_P(
    Stores, MessageSummaryCounts,
    ::testing::Values(
        // An empty store still gives a valid body.
        CountsCase{"empty", {}, {}, "no", "text-message: 0/0\r\n"},
        CountsCase{"one new pager", {.new_count = 1}, {}, "yes", "text-message: 1/0\r\n"},
        CountsCase{
            "new and old with urgent", {2, 3, 1, 1}, {}, "yes", "text-message: 2/3 (1/1)\r\n"},
        CountsCase{"one urgent count set", {0, 4, 0, 2}, {}, "no", "text-message: 0/4 (0/2)\r\n"},
        CountsCase{"both kinds",
                   {3, 1},
                   {0, 2, 0, 1},
                   "yes",
                   "text-message: 3/1\r\nmultimedia-message: 0/2 (0/1)\r\n"},
        CountsCase{"only large", {}, {.new_count = 1}, "yes", "multimedia-message: 1/0\r\n"},
        // Old messages wait, but none is new.
        CountsCase{"only old",
                   {.old_count = 2},
                   {.old_count = 1},
                   "no",
                   "text-message: 0/2\r\nmultimedia-message: 0/1\r\n"}));

TEST(MessageSummary, OneNewPagerMessage) {
  StoreSummary s = Alice({.new_count = 1});
  *s.add_entries() = FromBob("13684434988@store.dims.test");
  EXPECT_EQ(RenderMessageSummary(s), Body("yes",
                                          "text-message: 1/0\r\n"
                                          "\r\n"
                                          "To: <sip:alice@dims.test>\r\n"
                                          "From: \"Bob\" <sip:bob@dims.test>;tag=49583\r\n"
                                          "Date: Sat, 21 Nov 2026 09:58:12 GMT\r\n"
                                          "Subject: lunch tomorrow?\r\n"
                                          "Priority: normal\r\n"
                                          "Message-ID: 13684434988@store.dims.test\r\n"
                                          "P-Asserted-Identity: <sip:bob@dims.test>\r\n"));
}

TEST(MessageSummary, DateFallsBackToReceivedAt) {
  struct Case {
    int64_t seconds;
    const char* date;
  };
  const Case cases[] = {
      {1795255530, "Sat, 21 Nov 2026 10:05:30 GMT"},
      {951868799, "Tue, 29 Feb 2000 23:59:59 GMT"},  // leap day
      {0, "Thu, 01 Jan 1970 00:00:00 GMT"},          // set, though zero
      {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},         // before the epoch
  };
  for (const Case& c : cases) {
    StoreSummary s = Alice({.new_count = 1});
    MessageSummaryEntry* e = s.add_entries();
    e->set_message_id("1@store.dims.test");
    e->mutable_received_at()->set_seconds(c.seconds);
    e->mutable_received_at()->set_nanos(999999999);  // never rounds up
    EXPECT_EQ(RenderMessageSummary(s),
              Body("yes", "text-message: 1/0\r\n\r\nDate: " + std::string(c.date) +
                              "\r\nMessage-ID: 1@store.dims.test\r\n"))
        << c.seconds;
  }
}

TEST(MessageSummary, SendersDateIsKeptAsReceived) {
  StoreSummary s = Alice({.new_count = 1});
  MessageSummaryEntry* e = s.add_entries();
  e->set_message_id("1@store.dims.test");
  e->mutable_headers()->set_date("Sun, 22 Nov 2026 01:00:00 +0100");  // not a SIP-date
  e->mutable_received_at()->set_seconds(1795255530);
  EXPECT_NE(RenderMessageSummary(s).find("\r\nDate: Sun, 22 Nov 2026 01:00:00 +0100\r\n"),
            std::string::npos);
}

TEST(MessageSummary, EmptyHeadersAreLeftOut) {
  StoreSummary s = Alice({.new_count = 2});
  MessageSummaryEntry* bare = s.add_entries();  // no headers, no received_at: the id alone
  bare->set_message_id("7@store.dims.test");
  MessageSummaryEntry* blank = s.add_entries();  // nothing to show: no block at all
  blank->mutable_headers()->set_subject("  ");
  MessageSummaryEntry* blank_date = s.add_entries();  // a blank Date falls back too
  blank_date->mutable_headers()->set_date(" \r\n");
  blank_date->mutable_received_at()->set_seconds(1795255530);
  MessageSummaryEntry* some = s.add_entries();
  some->set_message_id("8@store.dims.test");
  some->mutable_headers()->set_from("<sip:bob@dims.test>");
  some->mutable_headers()->set_priority("urgent");
  EXPECT_EQ(RenderMessageSummary(s), Body("yes",
                                          "text-message: 2/0\r\n"
                                          "\r\n"
                                          "Message-ID: 7@store.dims.test\r\n"
                                          "\r\n"
                                          "Date: Sat, 21 Nov 2026 10:05:30 GMT\r\n"
                                          "\r\n"
                                          "From: <sip:bob@dims.test>\r\n"
                                          "Priority: urgent\r\n"
                                          "Message-ID: 8@store.dims.test\r\n"));
}

TEST(MessageSummary, CrAndLfInValuesCannotBreakTheBody) {
  StoreSummary s = Alice({.new_count = 1});
  MessageSummaryEntry* e = s.add_entries();
  e->set_message_id("9@store.dims.test\n");  // the trailing space it becomes is trimmed
  e->mutable_headers()->set_subject("hi\r\nMessages-Waiting: no\r\n\r\nTo: x");
  e->mutable_headers()->set_from("a\rb\nc\n\rd");
  e->mutable_headers()->set_to("\r\n");  // nothing but a line break: left out
  EXPECT_EQ(RenderMessageSummary(s), Body("yes",
                                          "text-message: 1/0\r\n"
                                          "\r\n"
                                          "From: a b c d\r\n"
                                          "Subject: hi Messages-Waiting: no To: x\r\n"
                                          "Message-ID: 9@store.dims.test\r\n"));
}

TEST(MessageSummary, TruncatedEntriesKeepTheFullCounts) {
  StoreSummary s = Alice({.new_count = 250});
  *s.add_entries() = FromBob("1@store.dims.test");
  s.set_entries_truncated(true);
  const std::string body = RenderMessageSummary(s);
  EXPECT_NE(body.find("\r\ntext-message: 250/0\r\n\r\nTo: "), std::string::npos) << body;
  EXPECT_EQ(body.find("truncat"), std::string::npos) << body;
}

// docs/notifications.md shows this body; keep the two identical.
TEST(MessageSummary, DocsExampleByteForByte) {
  EXPECT_EQ(RenderMessageSummary(DocsExample()),
            "Messages-Waiting: yes\r\n"
            "Message-Account: sip:alice@dims.test\r\n"
            "text-message: 1/1 (1/0)\r\n"
            "multimedia-message: 1/0\r\n"
            "\r\n"
            "To: <sip:alice@dims.test>\r\n"
            "From: \"Bob\" <sip:bob@dims.test>;tag=49583\r\n"
            "Date: Sat, 21 Nov 2026 09:58:12 GMT\r\n"
            "Subject: lunch tomorrow?\r\n"
            "Priority: normal\r\n"
            "Message-ID: 13684434988@store.dims.test\r\n"
            "P-Asserted-Identity: <sip:bob@dims.test>\r\n"
            "\r\n"
            "To: <sip:alice@dims.test>\r\n"
            "From: \"Carol\" <sip:carol@dims.test>;tag=a73kszlfl\r\n"
            "Date: Sat, 21 Nov 2026 10:00:00 GMT\r\n"
            "Subject: call me, urgent\r\n"
            "Priority: urgent\r\n"
            "Message-ID: 13684434989@store.dims.test\r\n"
            "P-Asserted-Identity: \"Carol\" <sip:carol@dims.test>\r\n"
            "\r\n"
            "To: <sip:alice@dims.test>\r\n"
            "From: <sip:dave@dims.test>;tag=77d1\r\n"
            "Date: Sat, 21 Nov 2026 10:05:30 GMT\r\n"
            "Message-ID: 13684434990@store.dims.test\r\n"
            "P-Asserted-Identity: <sip:dave@dims.test>\r\n");
}

}  // namespace
}  // namespace dims
