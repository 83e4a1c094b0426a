#include "log.h"

#include <sys/time.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace dims::log {
namespace {

struct LoggerState {
  std::mutex mu;
  std::string service = "dims";
  Format format = Format::kText;
};

LoggerState& State() {
  static LoggerState state;
  return state;
}
std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void AppendTextValue(std::string& out, std::string_view s) {
  bool plain = !s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) plain = false;
  }
  if (plain) {
    out += s;
  } else {
    AppendJsonString(out, s);  // JSON quoting keeps the text form unambiguous
  }
}

std::string NowTimestamp() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm utc{};
  gmtime_r(&tv.tv_sec, &utc);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%03ldZ", static_cast<long>(tv.tv_usec / 1000));
  return buf;
}

}  // namespace

std::optional<Level> ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return std::nullopt;
}

void Init(std::string_view service, Level level, Format format) {
  auto& s = State();
  std::lock_guard lock(s.mu);
  s.service = std::string(service);
  s.format = format;
  g_min_level = static_cast<int>(level);
}

bool Enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(); }

std::string Render(Format format, std::string_view timestamp, Level level, std::string_view service,
                   std::string_view message, Fields fields) {
  std::string out;
  out.reserve(128);
  if (format == Format::kJson) {
    out += "{\"ts\":";
    AppendJsonString(out, timestamp);
    out += ",\"level\":";
    AppendJsonString(out, LevelName(level));
    out += ",\"service\":";
    AppendJsonString(out, service);
    out += ",\"msg\":";
    AppendJsonString(out, message);
    for (const auto& f : fields) {
      out += ',';
      AppendJsonString(out, f.key);
      out += ':';
      if (f.quoted) {
        AppendJsonString(out, f.value);
      } else {
        out += f.value;
      }
    }
    out += '}';
  } else {
    out += timestamp;
    out += ' ';
    out += LevelName(level);
    out += ' ';
    out += service;
    out += ": ";
    out += message;
    for (const auto& f : fields) {
      out += ' ';
      out += f.key;
      out += '=';
      AppendTextValue(out, f.value);
    }
  }
  return out;
}

void Write(Level level, std::string_view message, Fields fields) {
  if (!Enabled(level)) return;
  auto& s = State();
  std::string line;
  {
    std::lock_guard lock(s.mu);
    line = Render(s.format, NowTimestamp(), level, s.service, message, fields);
  }
  line += '\n';
  // One fwrite per line keeps lines whole when several threads log at once.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace dims::log
