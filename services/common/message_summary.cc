#include "message_summary.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

namespace dims {
namespace {

constexpr std::string_view kCrlf = "\r\n";

// The value with every run of CR and LF characters replaced by one space, so that a value
// can never end its line early or start a line of its own, and without the spaces and tabs
// around it (the colon's own space is written separately).
std::string OneLine(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool in_break = false;
  for (char c : value) {
    if (c == '\r' || c == '\n') {
      if (!in_break) out.push_back(' ');
      in_break = true;
    } else {
      out.push_back(c);
      in_break = false;
    }
  }
  const size_t first = out.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return out.substr(first, out.find_last_not_of(" \t") - first + 1);
}

// RFC 3261 SIP-date (RFC 1123 form, always GMT): "Sat, 21 Nov 2026 10:00:00 GMT".
std::string SipDate(const google::protobuf::Timestamp& at) {
  using namespace std::chrono;
  static constexpr const char* kWeekdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const sys_seconds instant{seconds{at.seconds()}};
  const sys_days day = floor<days>(instant);
  const year_month_day date{day};
  const hh_mm_ss time{instant - day};
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                kWeekdays[weekday{day}.c_encoding()], static_cast<unsigned>(date.day()),
                kMonths[static_cast<unsigned>(date.month()) - 1], static_cast<int>(date.year()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return text;
}

void AppendLine(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append(kCrlf);
}

bool HasMessages(const dims::v1::KindCounts& c) {
  return c.new_count() != 0 || c.old_count() != 0 || c.urgent_new_count() != 0 ||
         c.urgent_old_count() != 0;
}

// msg-summary-line: "class: new/old" plus " (urgent-new/urgent-old)" when either is not 0.
void AppendCounts(std::string& out, std::string_view context_class, const dims::v1::KindCounts& c) {
  std::string counts = std::to_string(c.new_count()) + "/" + std::to_string(c.old_count());
  if (c.urgent_new_count() != 0 || c.urgent_old_count() != 0) {
    counts += " (" + std::to_string(c.urgent_new_count()) + "/" +
              std::to_string(c.urgent_old_count()) + ")";
  }
  AppendLine(out, context_class, counts);
}

// One opt-msg-headers block: an empty line, then the seven header fields of seed 004
// 11.3.2.8 that have a value. Nothing at all when none has one (the grammar wants at least
// one header field after the empty line).
void AppendEntry(std::string& out, const dims::v1::MessageSummaryEntry& entry) {
  const dims::v1::MessageHeaders& h = entry.headers();
  std::string date = OneLine(h.date());
  if (date.empty() && entry.has_received_at()) date = SipDate(entry.received_at());
  const std::pair<std::string_view, std::string_view> fields[] = {
      {"To", h.to()},
      {"From", h.from()},
      {"Date", date},
      {"Subject", h.subject()},
      {"Priority", h.priority()},
      {"Message-ID", entry.message_id()},
      {"P-Asserted-Identity", h.p_asserted_identity()},
  };
  std::string block;
  for (const auto& [name, value] : fields) {
    const std::string line = OneLine(value);
    if (!line.empty()) AppendLine(block, name, line);  // never an empty header field
  }
  if (block.empty()) return;
  out.append(kCrlf).append(block);
}

}  // namespace

std::string RenderMessageSummary(const dims::v1::StoreSummary& summary) {
  const bool waiting = summary.new_count() != 0 || summary.pager().new_count() != 0 ||
                       summary.large().new_count() != 0;
  std::string out;
  AppendLine(out, "Messages-Waiting", waiting ? "yes" : "no");
  const std::string account = OneLine(summary.aor().uri());
  if (!account.empty()) AppendLine(out, "Message-Account", account);
  const bool pager = HasMessages(summary.pager());
  const bool large = HasMessages(summary.large());
  // An empty store still gets a message-context line: "text-message: 0/0".
  if (pager || !large) AppendCounts(out, "text-message", summary.pager());
  if (large) AppendCounts(out, "multimedia-message", summary.large());
  for (const dims::v1::MessageSummaryEntry& entry : summary.entries()) AppendEntry(out, entry);
  return out;
}

}  // namespace dims
