#include "msrp_test_peer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <stdexcept>

namespace dims::testing {
namespace {

// A start line longer than this, or a message this long without its end-line, is taken as a
// stream that lost its framing.
constexpr size_t kMaxStartLine = 1024;
constexpr size_t kMaxUnframedBytes = 16u << 20;
constexpr char kEndLineDashes[] = "-------";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// For violation lines: the text with control characters shown, cut at 80.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
    }
  }
  return out;
}

// RFC 4975 ident: alphanum 3*31ident-char.
bool IsTransactionId(std::string_view id) {
  if (id.size() < 4 || id.size() > 32 || !std::isalnum(static_cast<unsigned char>(id[0]))) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr(".-+%=", c) != nullptr;
  });
}

std::string NewIdent(size_t length) {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof kAlphabet - 2);
  std::string out;
  for (size_t i = 0; i < length; ++i) out += kAlphabet[pick(random)];
  return out;
}

struct MsrpUri {
  std::string host;
  int port = 0;
  std::string session_id;
  std::string transport;
};

// "msrp://[user@]host:port[/session-id];transport[;...]"; nothing when it is not one.
std::optional<MsrpUri> ParseMsrpUri(std::string_view uri) {
  constexpr std::string_view kScheme = "msrp://";
  if (!StartsWithIgnoreCase(uri, kScheme)) return std::nullopt;
  std::string_view rest = uri.substr(kScheme.size());
  size_t semi = rest.find(';');
  if (semi == std::string_view::npos) return std::nullopt;
  size_t slash = rest.substr(0, semi).find('/');
  std::string_view authority = rest.substr(0, std::min(slash, semi));
  MsrpUri out;
  if (slash != std::string_view::npos) {
    out.session_id = std::string(rest.substr(slash + 1, semi - slash - 1));
  }
  std::string_view params = rest.substr(semi + 1);
  out.transport = std::string(params.substr(0, params.find(';')));
  if (size_t at = authority.find('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  out.host = std::string(authority.substr(0, colon));
  std::string port(authority.substr(colon + 1));
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), IsDigit)) {
    return std::nullopt;
  }
  out.port = std::stoi(port);
  return out;
}

std::vector<std::string> SplitPath(std::string_view value) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < value.size()) {
    size_t b = value.find_first_not_of(" \t", i);
    if (b == std::string_view::npos) break;
    size_t e = value.find_first_of(" \t", b);
    out.emplace_back(value.substr(b, e == std::string_view::npos ? e : e - b));
    i = e == std::string_view::npos ? value.size() : e;
  }
  return out;
}

std::optional<uint64_t> ParseCount(std::string_view s) {
  if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), IsDigit)) {
    return std::nullopt;
  }
  return std::stoull(std::string(s));
}

// "start-end/total", end and total a number or "*".
std::optional<MsrpByteRange> ParseByteRange(std::string_view v) {
  size_t dash = v.find('-');
  size_t slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return std::nullopt;
  }
  MsrpByteRange r;
  auto start = ParseCount(v.substr(0, dash));
  if (!start || *start == 0) return std::nullopt;
  r.start = *start;
  std::string_view end = v.substr(dash + 1, slash - dash - 1);
  std::string_view total = v.substr(slash + 1);
  if (end != "*") {
    if (!(r.end = ParseCount(end))) return std::nullopt;
  }
  if (total != "*") {
    if (!(r.total = ParseCount(total))) return std::nullopt;
  }
  return r;
}

const char* Comment(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 408:
      return "Request Timeout";
    case 413:
      return "Message Too Large";
    case 415:
      return "Unsupported Media Type";
    case 481:
      return "Session Does Not Exist";
    case 501:
      return "Not Implemented";
    case 506:
      return "Wrong Connection";
    default:
      return "Failure";
  }
}

// The bytes of a message still being chunked in (RFC 4975 7.3.1).
struct Partial {
  std::string data;
  std::map<uint64_t, uint64_t> ranges;  // received byte ranges, 1-based and inclusive, merged
  std::optional<uint64_t> total;
  bool final_seen = false;
  std::string content_type;
  int chunks = 0;

  void Add(uint64_t start, const std::string& bytes) {
    if (bytes.empty()) return;
    uint64_t end = start + bytes.size() - 1;
    if (data.size() < end) data.resize(end);
    data.replace(start - 1, bytes.size(), bytes);
    auto it = ranges.upper_bound(start);
    if (it != ranges.begin() && std::prev(it)->second + 1 >= start) {
      --it;
      start = it->first;
      end = std::max(end, it->second);
      it = ranges.erase(it);
    }
    while (it != ranges.end() && it->first <= end + 1) {
      end = std::max(end, it->second);
      it = ranges.erase(it);
    }
    ranges[start] = end;
  }

  bool complete() const {
    if (!final_seen || !total) return false;
    if (*total == 0) return true;
    return ranges.size() == 1 && ranges.begin()->first == 1 && ranges.begin()->second == *total;
  }
};

}  // namespace

std::string FieldOf(const HeaderFields& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return "";
}

// Everything the loop thread alone touches; the records shared with the test are the
// owner's, under its mutex.
struct MsrpTestPeer::Loop {
  static constexpr uint64_t kListenId = ~uint64_t{0};
  static constexpr uint64_t kWakeId = kListenId - 1;

  struct Connection {
    uint64_t id = 0;
    int fd = -1;
    std::string in;
    size_t pos = 0;   // where the next message starts in `in`
    size_t scan = 0;  // where the search for its end-line resumes
    std::string out;
    bool writable_wanted = false;
    std::string session;  // of its first request (or of Connect)
  };

  MsrpTestPeer* owner = nullptr;
  int epoll_fd = -1;
  int listen_fd = -1;
  int wake_fd = -1;
  bool stopping = false;
  std::map<uint64_t, Connection> connections;
  uint64_t next_id = 1;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> timers;
  std::map<std::pair<std::string, std::string>, Partial> partials;  // (session, Message-ID)

  std::mutex tasks_mu;
  std::vector<std::function<void()>> tasks;

  ~Loop() {
    for (auto& [id, c] : connections) close(c.fd);
    for (int fd : {listen_fd, wake_fd, epoll_fd}) {
      if (fd >= 0) close(fd);
    }
  }

  void Post(std::function<void()> task) {
    {
      std::lock_guard lock(tasks_mu);
      tasks.push_back(std::move(task));
    }
    uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }

  void Watch(int fd, uint64_t id, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  }

  Connection& Add(int fd, const std::string& session) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    uint64_t id = next_id++;
    Connection& c = connections[id];
    c.id = id;
    c.fd = fd;
    Watch(fd, id, EPOLLIN | EPOLLRDHUP);
    if (!session.empty()) Bind(c, session);
    return c;
  }

  void Bind(Connection& c, const std::string& session) {
    c.session = session;
    std::lock_guard lock(owner->mu_);
    owner->SessionLocked(session).open_connections++;
  }

  void Violation(const Connection& c, const std::string& what) {
    std::lock_guard lock(owner->mu_);
    owner->violations_.push_back("connection " + std::to_string(c.id) +
                                 (c.session.empty() ? "" : " (session " + c.session + ")") + ": " +
                                 what);
  }

  void Close(uint64_t id) {
    auto it = connections.find(id);
    if (it == connections.end()) return;
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, it->second.fd, nullptr);
    close(it->second.fd);
    if (!it->second.session.empty()) {
      std::lock_guard lock(owner->mu_);
      Session& s = owner->SessionLocked(it->second.session);
      s.open_connections--;
      s.disconnects++;
    }
    connections.erase(it);
  }

  void Write(uint64_t id, const std::string& text) {
    auto it = connections.find(id);
    if (it == connections.end()) return;  // closed meanwhile
    Connection& c = it->second;
    c.out += text;
    Flush(c);
  }

  void Flush(Connection& c) {
    size_t sent = 0;
    while (sent < c.out.size()) {
      ssize_t n = send(c.fd, c.out.data() + sent, c.out.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;  // EAGAIN: the rest when writable; an error shows as a close on read
      }
    }
    c.out.erase(0, sent);
    bool want = !c.out.empty();
    if (want != c.writable_wanted) {
      c.writable_wanted = want;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u);
      ev.data.u64 = c.id;
      epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
    }
  }

  void Accept() {
    for (;;) {
      int fd = accept(listen_fd, nullptr, nullptr);
      if (fd < 0) return;
      Add(fd, "");
    }
  }

  void Read(uint64_t id) {
    char buf[65536];
    for (;;) {
      auto it = connections.find(id);
      if (it == connections.end()) return;
      Connection& c = it->second;
      ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        if (!ParseAll(c)) return;  // closed
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (c.pos < c.in.size()) {
        Violation(c, "connection closed inside a message: \"" +
                         Printable(std::string_view(c.in).substr(c.pos)) + "\"");
      }
      Close(id);
      return;
    }
  }

  // False when the connection was closed.
  bool ParseAll(Connection& c) {
    uint64_t id = c.id;
    for (;;) {
      int r = ParseOne(c);
      if (r < 0) return false;
      if (r == 0) break;
    }
    auto it = connections.find(id);
    if (it == connections.end()) return false;
    if (c.pos > 0 && c.pos * 2 >= c.in.size()) {
      c.in.erase(0, c.pos);
      c.scan = c.scan > c.pos ? c.scan - c.pos : 0;
      c.pos = 0;
    }
    return true;
  }

  // 1: a message was taken; 0: more bytes are needed; -1: the connection was closed.
  int ParseOne(Connection& c) {
    const std::string& in = c.in;
    size_t p = c.pos;
    if (p >= in.size()) return 0;
    size_t eol = in.find("\r\n", p);
    if (eol == std::string::npos) {
      if (in.size() - p > kMaxStartLine) return Fatal(c, "start line without its end");
      return 0;
    }
    std::string_view start(in.data() + p, eol - p);
    // "MSRP <transaction-id> <METHOD>" or "MSRP <transaction-id> <status>[ <comment>]"
    if (!start.starts_with("MSRP ")) {
      return Fatal(c, "start line not \"MSRP ...\": \"" + Printable(start) + "\"");
    }
    std::string_view rest = start.substr(5);
    size_t sp = rest.find(' ');
    std::string tid(rest.substr(0, sp));
    std::string_view what = sp == std::string_view::npos ? "" : rest.substr(sp + 1);
    bool is_status = what.size() >= 3 && std::all_of(what.begin(), what.begin() + 3, IsDigit) &&
                     (what.size() == 3 || what[3] == ' ');
    bool is_method = !what.empty() && std::all_of(what.begin(), what.end(), IsUpper);
    if (!IsTransactionId(tid) || (!is_status && !is_method)) {
      return Fatal(c, "malformed start line: \"" + Printable(start) + "\"");
    }

    // The end-line: CRLF "-------" transaction-id flag CRLF.
    std::string marker = "\r\n" + std::string(kEndLineDashes) + tid;
    size_t from = std::max(eol, c.scan);
    size_t end = std::string::npos;
    char flag = 0;
    for (;;) {
      size_t q = in.find(marker, from);
      if (q == std::string::npos) {
        c.scan = std::max(eol, in.size() >= marker.size() ? in.size() - marker.size() + 1 : 0);
        if (in.size() - p > kMaxUnframedBytes) {
          return Fatal(c, "no end-line for transaction " + tid + " within " +
                              std::to_string(kMaxUnframedBytes) + " bytes");
        }
        return ForeignEndLine(c, eol, tid) ? -1 : 0;
      }
      size_t flag_at = q + marker.size();
      if (in.size() < flag_at + 3) {
        c.scan = q;
        return 0;
      }
      char f = in[flag_at];
      if ((f == '$' || f == '+' || f == '#') && in.compare(flag_at + 1, 2, "\r\n") == 0) {
        end = q;
        flag = f;
        c.pos = flag_at + 3;
        c.scan = 0;
        break;
      }
      from = q + 1;  // the same characters inside a body are data
    }

    // Header fields up to the blank line (a body follows) or up to the end-line.
    size_t blank = in.find("\r\n\r\n", eol);
    bool has_body = blank != std::string::npos && blank < end;
    size_t headers_end = has_body ? blank + 2 : end + 2;
    HeaderFields headers;
    for (size_t line = eol + 2; line < headers_end;) {
      size_t next = in.find("\r\n", line);
      std::string_view text(in.data() + line, next - line);
      size_t colon = text.find(':');
      if (colon == std::string_view::npos || colon == 0 ||
          text.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
        Violation(c,
                  "malformed header line in transaction " + tid + ": \"" + Printable(text) + "\"");
      } else {
        headers.emplace_back(std::string(text.substr(0, colon)), Trim(text.substr(colon + 1)));
      }
      line = next + 2;
    }
    std::string body;
    if (has_body) {
      size_t body_start = blank + 4;
      if (body_start > end) {
        Violation(c, "transaction " + tid + ": no CRLF between the blank line and the end-line");
      } else {
        body.assign(in, body_start, end - body_start);
      }
    }
    if (is_status) {
      OnResponse(c, tid, what, std::move(headers));
    } else {
      return OnRequest(c, tid, std::string(what), std::move(headers), has_body, std::move(body),
                       flag);
    }
    return 1;
  }

  int Fatal(Connection& c, const std::string& what) {
    Violation(c, what + "; connection closed");
    Close(c.id);
    return -1;
  }

  // An end-line among the header lines that is not the transaction's own: the sender lost
  // track of its transaction id, and the stream its framing. True when it closed.
  bool ForeignEndLine(Connection& c, size_t eol, const std::string& tid) {
    const std::string& in = c.in;
    for (size_t line = eol + 2; line < in.size();) {
      size_t next = in.find("\r\n", line);
      if (next == std::string::npos || next == line) return false;  // incomplete, or the body
      std::string_view text(in.data() + line, next - line);
      if (text.starts_with(kEndLineDashes)) {
        Fatal(c, "end-line \"" + Printable(text) + "\" does not match transaction id " + tid);
        return true;
      }
      line = next + 2;
    }
    return false;
  }

  // The session the peer's own URI names in a To-Path; records a violation when it names
  // another endpoint.
  std::string OwnSession(Connection& c, const std::string& tid, const std::string& to_path) {
    std::vector<std::string> uris = SplitPath(to_path);
    if (uris.empty()) {
      Violation(c, "transaction " + tid + ": no To-Path");
      return c.session;
    }
    auto uri = ParseMsrpUri(uris.back());
    if (!uri || uri->host != "127.0.0.1" || uri->port != owner->port_ ||
        !EqualsIgnoreCase(uri->transport, "tcp") || uri->session_id.empty()) {
      Violation(c, "transaction " + tid + ": To-Path " + to_path + " does not name this peer (" +
                       owner->Uri("<session>") + ")");
      return uri && !uri->session_id.empty() ? uri->session_id : c.session;
    }
    return uri->session_id;
  }

  void CheckPathOrder(Connection& c, const std::string& tid, const HeaderFields& headers) {
    if (headers.size() < 2 || !EqualsIgnoreCase(headers[0].first, "To-Path") ||
        !EqualsIgnoreCase(headers[1].first, "From-Path")) {
      Violation(c, "transaction " + tid + ": To-Path and From-Path are not the first two fields");
    }
  }

  void OnResponse(Connection& c, const std::string& tid, std::string_view what,
                  HeaderFields headers) {
    CheckPathOrder(c, tid, headers);
    MsrpReceivedResponse r;
    r.transaction_id = tid;
    r.status = std::stoi(std::string(what.substr(0, 3)));
    r.comment = what.size() > 4 ? std::string(what.substr(4)) : "";
    r.headers = std::move(headers);
    std::string session = OwnSession(c, tid, FieldOf(r.headers, "To-Path"));
    std::lock_guard lock(owner->mu_);
    auto pending = owner->connect_results_.find(tid);
    if (pending != owner->connect_results_.end()) {
      pending->second = r.status;
    } else {
      owner->violations_.push_back("connection " + std::to_string(c.id) + ": response " + tid +
                                   " to no request of this peer");
    }
    owner->SessionLocked(session).responses.push_back(std::move(r));
  }

  int OnRequest(Connection& c, const std::string& tid, std::string method, HeaderFields headers,
                bool has_body, std::string body, char flag) {
    CheckPathOrder(c, tid, headers);
    MsrpReceivedRequest r;
    r.method = std::move(method);
    r.transaction_id = tid;
    r.headers = std::move(headers);
    r.content_type = FieldOf(r.headers, "Content-Type");
    r.body = std::move(body);
    r.continuation = flag;
    std::string to_path = FieldOf(r.headers, "To-Path");
    std::vector<std::string> from_path = SplitPath(FieldOf(r.headers, "From-Path"));
    std::string session = OwnSession(c, tid, to_path);
    if (c.session.empty() && !session.empty()) Bind(c, session);
    if (from_path.empty()) Violation(c, "transaction " + tid + ": no From-Path");
    if (std::string range = FieldOf(r.headers, "Byte-Range"); !range.empty()) {
      if (auto parsed = ParseByteRange(range)) {
        r.byte_range = *parsed;
      } else {
        Violation(c, "transaction " + tid + ": malformed Byte-Range \"" + range + "\"");
      }
    }
    if (has_body && r.content_type.empty()) {
      Violation(c, "transaction " + tid + ": a body without Content-Type");
    }
    std::string message_id = FieldOf(r.headers, "Message-ID");
    if ((r.method == "SEND" || r.method == "REPORT") && message_id.empty()) {
      Violation(c, "transaction " + tid + ": " + r.method + " without Message-ID");
    }
    if (r.method == "REPORT" && FieldOf(r.headers, "Status").empty()) {
      Violation(c, "transaction " + tid + ": REPORT without Status");
    }
    CheckRange(c, r);

    // What to answer. REPORTs get no answer (RFC 4975 7.1.2); Failure-Report "no" asks for
    // none, "partial" for failures only.
    std::string failure_report = FieldOf(r.headers, "Failure-Report");
    bool binding_send = r.method == "SEND" && !has_body;
    int status = r.method == "SEND" ? 200 : 501;
    bool hold = false;
    bool close_now = false;
    std::chrono::milliseconds delay{0};
    if (r.method == "SEND" && !binding_send) {
      std::lock_guard lock(owner->mu_);
      Session& s = owner->SessionLocked(session);
      int n = ++s.sends;
      const Behaviour& b = s.behaviour;
      if (auto it = b.status_for_send.find(n); it != b.status_for_send.end()) status = it->second;
      hold = b.hold_responses;
      close_now =
          b.close_after_messages && static_cast<int>(s.messages.size()) >= *b.close_after_messages;
      delay = b.delay;
    }
    bool answer = r.method != "REPORT" && !hold && !close_now &&
                  !EqualsIgnoreCase(failure_report, "no") &&
                  !(EqualsIgnoreCase(failure_report, "partial") && status == 200);
    if (answer) r.answered = status;

    bool completes = false;
    if (r.method == "SEND" && !binding_send && !close_now && (status == 200 || hold)) {
      completes = Reassemble(session, message_id, r);
    }
    bool report = completes && answer && status == 200 &&
                  EqualsIgnoreCase(FieldOf(r.headers, "Success-Report"), "yes");

    std::string reply;
    if (answer && !from_path.empty()) {
      // RFC 4975 7.2: To-Path the previous hop (the first From-Path URI), From-Path this peer.
      reply = "MSRP " + tid + " " + std::to_string(status) + " " + Comment(status) +
              "\r\nTo-Path: " + from_path.front() + "\r\nFrom-Path: " + owner->Uri(session) +
              "\r\n" + kEndLineDashes + tid + "$\r\n";
    }
    if (report && !from_path.empty()) {
      // RFC 4975 7.1.2: a REPORT goes back along the whole From-Path of the SEND.
      std::string rtid = NewIdent(16);
      uint64_t total = r.byte_range.total.value_or(r.byte_range.start - 1 + r.body.size());
      reply += "MSRP " + rtid + " REPORT\r\nTo-Path: " + FieldOf(r.headers, "From-Path") +
               "\r\nFrom-Path: " + owner->Uri(session) + "\r\nMessage-ID: " + message_id +
               "\r\nByte-Range: 1-" + std::to_string(total) + "/" + std::to_string(total) +
               "\r\nStatus: 000 200 OK\r\n" + kEndLineDashes + rtid + "$\r\n";
    }
    {
      std::lock_guard lock(owner->mu_);
      owner->SessionLocked(session).requests.push_back(std::move(r));
    }
    if (close_now) {
      Close(c.id);
      return -1;
    }
    if (!reply.empty()) {
      if (delay.count() > 0) {
        uint64_t id = c.id;
        timers.emplace(std::chrono::steady_clock::now() + delay,
                       [this, id, reply] { Write(id, reply); });
      } else {
        Write(c.id, reply);
      }
    }
    return connections.count(c.id) ? 1 : -1;
  }

  void CheckRange(Connection& c, const MsrpReceivedRequest& r) {
    const MsrpByteRange& br = r.byte_range;
    uint64_t size = r.body.size();
    if (br.end && *br.end + 1 < br.start) {
      Violation(c, "transaction " + r.transaction_id + ": Byte-Range ends before it starts");
    } else if (br.end && size > *br.end + 1 - br.start) {
      Violation(c, "transaction " + r.transaction_id + ": body longer than its Byte-Range");
    } else if (br.end && r.continuation == '$' && size != *br.end + 1 - br.start) {
      Violation(c, "transaction " + r.transaction_id + ": final chunk does not fill its range");
    }
    if (br.total && br.start - 1 + size > *br.total) {
      Violation(c, "transaction " + r.transaction_id + ": body beyond the Byte-Range total");
    }
  }

  // Adds a chunk; true when it completed its message (recorded in the session then).
  bool Reassemble(const std::string& session, const std::string& message_id,
                  const MsrpReceivedRequest& r) {
    auto key = std::make_pair(session, message_id);
    if (r.continuation == '#') {  // the sender gave the message up (RFC 4975 7.1.1)
      partials.erase(key);
      return false;
    }
    Partial& p = partials[key];
    if (p.chunks++ == 0) p.content_type = r.content_type;
    p.Add(r.byte_range.start, r.body);
    if (r.byte_range.total) p.total = r.byte_range.total;
    if (r.continuation == '$') {
      p.final_seen = true;
      if (!p.total) p.total = r.byte_range.start - 1 + r.body.size();
    }
    if (!p.complete()) return false;
    p.data.resize(*p.total);
    std::lock_guard lock(owner->mu_);
    Session& s = owner->SessionLocked(session);
    if (auto it = s.message_index.find(message_id); it != s.message_index.end()) {
      s.messages[it->second].times_completed++;
      owner->duplicate_messages_++;
    } else {
      s.message_index[message_id] = s.messages.size();
      s.messages.push_back({.message_id = message_id,
                            .content_type = p.content_type,
                            .body = std::move(p.data),
                            .chunks = p.chunks});
      owner->total_messages_++;
    }
    partials.erase(key);
    return true;
  }

  void RunTasks() {
    uint64_t count;
    (void)!read(wake_fd, &count, sizeof count);
    std::vector<std::function<void()>> now;
    {
      std::lock_guard lock(tasks_mu);
      now.swap(tasks);
    }
    for (auto& task : now) task();
  }

  void Run() {
    epoll_event events[64];
    while (!stopping) {
      int timeout = -1;
      if (!timers.empty()) {
        auto wait = timers.begin()->first - std::chrono::steady_clock::now();
        timeout = static_cast<int>(
            std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
      }
      int n = epoll_wait(epoll_fd, events, 64, timeout);
      for (int i = 0; i < n; ++i) {
        uint64_t id = events[i].data.u64;
        if (id == kWakeId) {
          RunTasks();
        } else if (id == kListenId) {
          Accept();
        } else {
          if (events[i].events & EPOLLOUT) {
            if (auto it = connections.find(id); it != connections.end()) Flush(it->second);
          }
          if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) Read(id);
        }
      }
      auto now = std::chrono::steady_clock::now();
      while (!timers.empty() && timers.begin()->first <= now) {
        auto task = std::move(timers.begin()->second);
        timers.erase(timers.begin());
        task();
      }
      owner->changed_.notify_all();
    }
  }
};

MsrpTestPeer::MsrpTestPeer() : loop_(std::make_unique<Loop>()) {
  loop_->owner = this;
  loop_->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  loop_->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  loop_->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (loop_->epoll_fd < 0 || loop_->wake_fd < 0 || loop_->listen_fd < 0 ||
      bind(loop_->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(loop_->listen_fd, 1024) != 0 ||
      getsockname(loop_->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(std::string("MsrpTestPeer: cannot listen on 127.0.0.1: ") +
                             std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
  loop_->Watch(loop_->listen_fd, Loop::kListenId, EPOLLIN);
  loop_->Watch(loop_->wake_fd, Loop::kWakeId, EPOLLIN);
  thread_ = std::thread([this] { loop_->Run(); });
}

MsrpTestPeer::~MsrpTestPeer() { Stop(); }

void MsrpTestPeer::Stop() {
  if (!thread_.joinable()) return;
  Post([this] {
    std::vector<uint64_t> ids;
    for (const auto& [id, c] : loop_->connections) ids.push_back(id);
    for (uint64_t id : ids) loop_->Close(id);
    loop_->stopping = true;
  });
  thread_.join();
}

void MsrpTestPeer::Post(std::function<void()> task) { loop_->Post(std::move(task)); }

std::string MsrpTestPeer::Uri(const std::string& session_id) const {
  return "msrp://127.0.0.1:" + std::to_string(port_) + "/" + session_id + ";tcp";
}

std::string MsrpTestPeer::AnswerSdp(const std::string& offer, const std::string& session_id,
                                    const std::string& setup) const {
  bool msrp_media = false;
  bool path = false;
  size_t i = 0;
  while (i < offer.size()) {
    size_t e = offer.find('\n', i);
    std::string line = offer.substr(i, e == std::string::npos ? e : e - i);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.starts_with("m=message ") && line.find(" TCP/MSRP ") != std::string::npos) {
      msrp_media = true;
    }
    if (line.starts_with("a=path:")) path = true;
    i = e == std::string::npos ? offer.size() : e + 1;
  }
  if (!msrp_media || !path) {
    throw std::invalid_argument(std::string("AnswerSdp: not an MSRP offer (") +
                                (!msrp_media ? "no m=message ... TCP/MSRP line" : "no a=path") +
                                "): " + offer);
  }
  std::string port = std::to_string(port_);
  return "v=0\r\n"
         "o=- " +
         port + " 1 IN IP4 127.0.0.1\r\n" +
         "s=-\r\n"
         "c=IN IP4 127.0.0.1\r\n"
         "t=0 0\r\n"
         "m=message " +
         port + " TCP/MSRP *\r\n" +
         "a=recvonly\r\n"
         "a=accept-types:multipart/mixed message/sip message/sipfrag message/msrp "
         "text/plain\r\n"
         "a=path:" +
         Uri(session_id) + "\r\n" + "a=setup:" + setup + "\r\n";
}

void MsrpTestPeer::SetBehaviour(const std::string& session_id, Behaviour behaviour) {
  std::lock_guard lock(mu_);
  SessionLocked(session_id).behaviour = std::move(behaviour);
}

int MsrpTestPeer::Connect(const std::string& session_id, const std::string& remote_uri,
                          std::chrono::milliseconds timeout) {
  auto remote = ParseMsrpUri(remote_uri);
  if (!remote || !EqualsIgnoreCase(remote->transport, "tcp")) return -1;
  std::string tid = NewIdent(16);
  {
    std::lock_guard lock(mu_);
    connect_results_[tid] = 0;
  }
  Post([this, session_id, remote_uri, remote = *remote, tid] {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(remote.port));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    // A blocking connect on loopback is answered at once, refused or accepted.
    if (fd < 0 || inet_pton(AF_INET, remote.host.c_str(), &addr.sin_addr) != 1 ||
        connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      if (fd >= 0) close(fd);
      std::lock_guard lock(mu_);
      connect_results_[tid] = -1;
      return;
    }
    Loop::Connection& c = loop_->Add(fd, session_id);
    // RFC 4975 5.4: the active side binds the connection with a SEND without a body.
    loop_->Write(c.id, "MSRP " + tid + " SEND\r\nTo-Path: " + remote_uri +
                           "\r\nFrom-Path: " + Uri(session_id) + "\r\nMessage-ID: " + NewIdent(24) +
                           "\r\nByte-Range: 1-0/0\r\n" + kEndLineDashes + tid + "$\r\n");
  });
  int status = 0;
  Wait(
      [&] {
        status = connect_results_[tid];
        return status != 0;
      },
      timeout);
  return status;
}

void MsrpTestPeer::Disconnect(const std::string& session_id) {
  Post([this, session_id] {
    std::vector<uint64_t> ids;
    for (const auto& [id, c] : loop_->connections) {
      if (c.session == session_id) ids.push_back(id);
    }
    for (uint64_t id : ids) loop_->Close(id);
  });
}

MsrpTestPeer::Session& MsrpTestPeer::SessionLocked(const std::string& session_id) {
  auto [it, added] = sessions_.try_emplace(session_id);
  if (added) session_order_.push_back(session_id);
  return it->second;
}

const MsrpTestPeer::Session* MsrpTestPeer::FindLocked(const std::string& session_id) const {
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? nullptr : &it->second;
}

std::vector<MsrpReceivedRequest> MsrpTestPeer::requests(const std::string& session_id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? std::vector<MsrpReceivedRequest>{} : it->second.requests;
}

std::vector<MsrpReceivedResponse> MsrpTestPeer::responses(const std::string& session_id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? std::vector<MsrpReceivedResponse>{} : it->second.responses;
}

std::vector<MsrpReceivedMessage> MsrpTestPeer::messages(const std::string& session_id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? std::vector<MsrpReceivedMessage>{} : it->second.messages;
}

std::vector<std::string> MsrpTestPeer::sessions() const {
  std::lock_guard lock(mu_);
  return session_order_;
}

bool MsrpTestPeer::connected(const std::string& session_id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(session_id);
  return it != sessions_.end() && it->second.open_connections > 0;
}

int MsrpTestPeer::disconnects(const std::string& session_id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? 0 : it->second.disconnects;
}

long MsrpTestPeer::total_messages() const {
  std::lock_guard lock(mu_);
  return total_messages_;
}

long MsrpTestPeer::duplicate_messages() const {
  std::lock_guard lock(mu_);
  return duplicate_messages_;
}

std::vector<std::string> MsrpTestPeer::violations() const {
  std::lock_guard lock(mu_);
  return violations_;
}

bool MsrpTestPeer::Wait(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, timeout, condition);
}

bool MsrpTestPeer::WaitForMessages(const std::string& session_id, size_t n,
                                   std::chrono::milliseconds timeout) {
  return Wait(
      [&] {
        const Session* s = FindLocked(session_id);
        return s && s->messages.size() >= n;
      },
      timeout);
}

bool MsrpTestPeer::WaitForRequests(const std::string& session_id, size_t n,
                                   std::chrono::milliseconds timeout) {
  return Wait(
      [&] {
        const Session* s = FindLocked(session_id);
        return s && s->requests.size() >= n;
      },
      timeout);
}

bool MsrpTestPeer::WaitForTotalMessages(long n, std::chrono::milliseconds timeout) {
  return Wait([&] { return total_messages_ >= n; }, timeout);
}

bool MsrpTestPeer::WaitForDisconnects(const std::string& session_id, int n,
                                      std::chrono::milliseconds timeout) {
  return Wait(
      [&] {
        const Session* s = FindLocked(session_id);
        return s && s->disconnects >= n;
      },
      timeout);
}

std::optional<std::vector<MimePart>> ParseMultipartMixed(const std::string& content_type,
                                                         const std::string& body,
                                                         std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<std::vector<MimePart>> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (!StartsWithIgnoreCase(Trim(content_type), "multipart/mixed")) {
    return fail("not multipart/mixed: " + content_type);
  }
  // boundary=value or boundary="value" (RFC 2046 5.1.1)
  std::string boundary;
  for (size_t i = content_type.find(';'); i != std::string::npos;
       i = content_type.find(';', i + 1)) {
    std::string param = Trim(std::string_view(content_type).substr(i + 1));
    if (!StartsWithIgnoreCase(param, "boundary=")) continue;
    boundary = param.substr(9);
    if (size_t semi = boundary.find(';'); semi != std::string::npos && boundary[0] != '"') {
      boundary = Trim(boundary.substr(0, semi));
    }
    if (!boundary.empty() && boundary[0] == '"') {
      size_t close = boundary.find('"', 1);
      if (close == std::string::npos) return fail("unterminated quoted boundary");
      boundary = boundary.substr(1, close - 1);
    }
  }
  if (boundary.empty()) return fail("no boundary parameter in " + content_type);

  // The delimiter is CRLF "--" boundary; the first may open the body without its CRLF.
  std::string delimiter = "\r\n--" + boundary;
  size_t at;
  if (body.starts_with(delimiter.substr(2))) {
    at = delimiter.size() - 2;
  } else if (size_t first = body.find(delimiter); first != std::string::npos) {
    at = first + delimiter.size();
  } else {
    return fail("no delimiter --" + boundary);
  }
  std::vector<MimePart> parts;
  for (;;) {
    if (body.compare(at, 2, "--") == 0) return parts;  // the close delimiter
    size_t line_end = body.find("\r\n", at);           // transport padding, then CRLF
    if (line_end == std::string::npos) return fail("delimiter line without CRLF");
    size_t part_start = line_end + 2;
    size_t next = body.find(delimiter, part_start);
    if (next == std::string::npos) return fail("no close delimiter --" + boundary + "--");
    std::string_view part(body.data() + part_start, next - part_start);
    MimePart out;
    size_t headers_end = part.starts_with("\r\n") ? 0 : part.find("\r\n\r\n");
    if (headers_end == std::string_view::npos) {
      return fail("part " + std::to_string(parts.size() + 1) + " without a blank line");
    }
    for (size_t line = 0; line < headers_end;) {
      size_t e = part.find("\r\n", line);
      if (e > headers_end) e = headers_end;
      std::string_view text = part.substr(line, e - line);
      if ((text.starts_with(' ') || text.starts_with('\t')) && !out.headers.empty()) {
        out.headers.back().second += " " + Trim(text);  // a folded line
      } else if (size_t colon = text.find(':'); colon != std::string_view::npos) {
        out.headers.emplace_back(Trim(text.substr(0, colon)), Trim(text.substr(colon + 1)));
      } else {
        return fail("malformed header line in part " + std::to_string(parts.size() + 1) + ": " +
                    std::string(text));
      }
      line = e + 2;
    }
    size_t content = headers_end == 0 ? 2 : headers_end + 4;
    out.body = std::string(part.substr(content));
    parts.push_back(std::move(out));
    at = next + delimiter.size();
  }
}

}  // namespace dims::testing
