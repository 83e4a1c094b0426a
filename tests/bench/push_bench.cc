// push_bench: deferred messages handed over when their users come back, all at once, for
// Kamailio's msilo module and for DIMS, in the same run on the same machine. The figure is
// the rate at which messages are delivered AND confirmed by the client AND removed from the
// store.
//
//   push_bench [--users N] [--messages N] [--store-rate R] [--timeout S] [--only msilo|dims]
//
// Each side first stores --messages (default 100) MESSAGEs for each of --users (default 100)
// users who never registered: sipp over UDP with tests/sip/load_message.xml at --store-rate
// per second (default 1000), push-0 ... push-N-1 in turn, as message_bench does. Then every
// user comes back at once (one thread a user) and the clock runs until the last message is
// delivered and until the store is empty, at most --timeout seconds (default 120).
//   msilo: Kamailio with tests/bench/msilo/kamailio_dump.cfg on a PostgreSQL of its own. One
//     SofiaAgent REGISTERs every user with a Contact at a UDP receiver of this file
//     (MessageSink), which answers every MESSAGE 200 and counts distinct bodies, repeated
//     transactions (retransmissions) and bodies received again in a new transaction
//     (duplicates). The store is the silo table.
//   DIMS: the five services (DimsStack). One SofiaAgent holds the users' AORs, REGISTERs each
//     with +g.oma.sip-im and PUBLISHes settings with offline delivery active; it answers the
//     push INVITE 200 with the SDP answer of one MsrpTestPeer (a=setup:passive, a path per
//     user), which answers every SEND 200. Delivered: complete messages the peer confirmed;
//     duplicates: a Message-ID completed twice; the store is deferred_messages.
// Prints both sides and the ratio of their delivered-and-removed rates. Exits 1 when a side
// did not finish within the timeout or a process died.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "bench_support.h"
#include "dims_stack.h"
#include "msrp_test_peer.h"
#include "push_client.h"
#include "sofia_agent.h"
#include "test_servers.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kDomain[] = "dims.test";
constexpr char kSettings[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<poc-settings xmlns=\"urn:oma:params:xml:ns:poc:poc-settings\" "
    "xmlns:im=\"urn:oma:xml:im:service-settings\">\n"
    "  <entity id=\"bench\"><im:deferred-settings><im:offline-delivery active=\"true\"/>"
    "</im:deferred-settings></entity>\n"
    "</poc-settings>\n";

struct Flags {
  int users = 100;
  int messages = 100;  // per user
  int store_rate = 1000;
  double timeout_s = 120;
  bool msilo = true;
  bool dims = true;
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  // --only takes a word; the rest are numbers.
  std::vector<char*> numeric = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--only") != 0) {
      numeric.push_back(argv[i]);
      continue;
    }
    if (i + 1 >= argc) return false;
    std::string only = argv[++i];
    if (only != "msilo" && only != "dims") return false;
    flags->msilo = only == "msilo";
    flags->dims = only == "dims";
  }
  return ParseNumberFlags(
      static_cast<int>(numeric.size()), numeric.data(),
      {{"--users",
        [&](double v) { return (flags->users = static_cast<int>(v)) >= 1 && v <= 1000; }},
       {"--messages",
        [&](double v) { return (flags->messages = static_cast<int>(v)) >= 1 && v <= 10'000; }},
       {"--store-rate",
        [&](double v) { return (flags->store_rate = static_cast<int>(v)) >= 1 && v <= 10'000; }},
       {"--timeout", [&](double v) { return (flags->timeout_s = v) > 0 && v <= 600; }}});
}

std::string User(int n) { return "push-" + std::to_string(n); }
std::string Aor(int n) { return "sip:" + User(n) + "@" + kDomain; }

// A SIP UDP endpoint standing for msilo's users: answers every request 200 and counts the
// MESSAGEs: distinct bodies, repeated transactions (same top Via branch: a retransmission),
// and bodies seen before in another transaction (a duplicate).
class MessageSink {
 public:
  MessageSink() : fd_(socket(AF_INET, SOCK_DGRAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int buffer = 8 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("MessageSink: cannot bind 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~MessageSink() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

  int port() const { return port_; }
  long distinct() const { return distinct_; }
  long retransmissions() const { return retransmissions_; }
  long duplicates() const { return duplicates_; }

 private:
  void Run() {
    char buf[65536];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      std::string reply = Handle(std::string(buf, static_cast<size_t>(n)));
      if (!reply.empty()) {
        sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }

  // The 200 to a request; empty for a response.
  std::string Handle(const std::string& text) {
    if (text.starts_with("SIP/2.0")) return "";
    size_t headers_end = text.find("\r\n\r\n");
    if (headers_end == std::string::npos) return "";
    std::string method = text.substr(0, text.find(' '));
    std::string copied;  // Via, From, To, Call-ID, CSeq, in order
    std::string branch;
    bool to_tagged = false;
    for (size_t line = text.find("\r\n") + 2; line < headers_end;) {
      size_t end = text.find("\r\n", line);
      std::string field = text.substr(line, end - line);
      std::string name = field.substr(0, field.find(':'));
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      if (name == "via" || name == "v") {
        if (branch.empty()) {
          size_t b = field.find("branch=");
          if (b != std::string::npos) branch = field.substr(b, field.find(';', b) - b);
        }
        copied += field + "\r\n";
      } else if (name == "to" || name == "t") {
        to_tagged = field.find(";tag=") != std::string::npos;
        copied += field + (to_tagged ? "" : ";tag=sink") + "\r\n";
      } else if (name == "from" || name == "f" || name == "call-id" || name == "i" ||
                 name == "cseq") {
        copied += field + "\r\n";
      }
      line = end + 2;
    }
    if (method == "MESSAGE") {
      std::string body = text.substr(headers_end + 4);
      if (!transactions_.insert(branch).second) {
        retransmissions_++;
      } else if (!bodies_.insert(body).second) {
        duplicates_++;
      } else {
        distinct_++;
      }
    }
    return "SIP/2.0 200 OK\r\n" + copied + "Content-Length: 0\r\n\r\n";
  }

  int fd_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::unordered_set<std::string> transactions_;  // loop thread only
  std::unordered_set<std::string> bodies_;
  std::atomic<long> distinct_{0};
  std::atomic<long> retransmissions_{0};
  std::atomic<long> duplicates_{0};
};

// What one side measured.
struct Outcome {
  std::string system;
  long stored = 0;                    // rows in the store before the users came back
  int registered = 0;                 // users whose REGISTER (and, for DIMS, PUBLISH) got 200
  long delivered = 0;                 // distinct messages the users received (DIMS: and confirmed)
  std::optional<double> delivered_s;  // from the first REGISTER to the last delivery
  std::optional<double> empty_s;      // ... to the store being empty
  long left = 0;                      // rows still stored at the end
  long retransmissions = -1;          // -1: not measured
  long duplicates = 0;
  std::string notes;
  double removed_per_second(long total) const {
    return empty_s && *empty_s > 0 ? static_cast<double>(total) / *empty_s : 0;
  }
};

// Stores users x messages MESSAGEs through the SIP server at `sip_port`; false (with sipp's
// errors on stderr) when not every one got its 202.
bool StoreMessages(const fs::path& dir, int sip_port, const Flags& flags, const char* system) {
  fs::create_directories(dir);
  fs::copy_file(fs::path(DIMS_SIP_SCENARIOS) / "load_message.xml", dir / "scenario.xml");
  {
    std::ofstream users(dir / "users.csv");
    users << "SEQUENTIAL\n";
    for (int n = 0; n < flags.users; ++n) users << User(n) << "\n";
  }
  long total = static_cast<long>(flags.users) * flags.messages;
  SippLoadResult load =
      RunSippLoad({.sip_port = sip_port,
                   .dir = dir,
                   .calls = total,
                   .rate = flags.store_rate,
                   .extra_args = {"-inf", (dir / "users.csv").string(), "-cid_str",
                                  std::string(system) + "-%u-%p@%s"}});
  std::printf("%s: stored %ld of %ld MESSAGEs in %.1f s (202s, sipp exit %d)\n", system,
              load.answered, total, load.seconds, load.sipp_status);
  std::fflush(stdout);
  if (load.answered == total) return true;
  std::fprintf(stderr, "%s: first errors:\n%s\n", system, load.first_errors.c_str());
  return false;
}

// Polls until `delivered()` reaches `total` and `stored()` is 0, or the timeout; fills the
// outcome's times from `start`.
void Measure(Clock::time_point start, long total, const Flags& flags,
             const std::function<long()>& delivered, const std::function<long()>& stored,
             const std::function<bool()>& running, Outcome* out) {
  auto deadline = start + std::chrono::duration<double>(flags.timeout_s);
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  auto last_poll = Clock::time_point{};
  while (Clock::now() < deadline && (!out->delivered_s || !out->empty_s)) {
    if (!out->delivered_s && delivered() >= total) out->delivered_s = seconds();
    // The store is polled every 50 ms: a query costs the system measured a little. Once every
    // message is delivered only the removals are left, and the poll every 5 ms measures their
    // end to 5 ms instead of 50 (a bias against the faster side otherwise).
    auto poll_every = out->delivered_s ? 5ms : 50ms;
    if (!out->empty_s && Clock::now() - last_poll >= poll_every) {
      last_poll = Clock::now();
      if (stored() == 0) out->empty_s = seconds();
    }
    if (!running()) {
      out->notes += " a process died;";
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  out->delivered = delivered();
  out->left = stored();
  if (!out->delivered_s || !out->empty_s) {
    char why[160];
    std::snprintf(why, sizeof why, " gave up after %.0f s: %ld of %ld delivered, %ld still stored;",
                  flags.timeout_s, out->delivered, total, out->left);
    out->notes += why;
  }
}

// Runs `per_user(n)` for every user at once, one thread each; returns how many returned true.
int AllAtOnce(int users, const std::function<bool(int)>& per_user) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  threads.reserve(users);
  for (int n = 0; n < users; ++n) {
    threads.emplace_back([&, n] {
      if (per_user(n)) ok++;
    });
  }
  for (auto& t : threads) t.join();
  return ok;
}

Outcome RunMsilo(const fs::path& dir, const Flags& flags) {
  Outcome out{.system = "msilo"};
  long total = static_cast<long>(flags.users) * flags.messages;
  MsiloServer msilo(dir / "msilo", DIMS_MSILO_DUMP_CONFIG);
  if (!StoreMessages(dir / "msilo-store", msilo.sip_port(), flags, "msilo")) {
    out.notes = " not every MESSAGE was stored;";
  }
  out.stored = msilo.SiloRows();
  MessageSink sink;
  SofiaAgent agent({.next_hop = "127.0.0.1:" + std::to_string(msilo.sip_port())});
  auto start = Clock::now();
  out.registered = AllAtOnce(flags.users, [&](int n) {
    std::string contact = "<sip:" + User(n) + "@127.0.0.1:" + std::to_string(sink.port()) + ">";
    return agent.Register({.aor = Aor(n), .contact = contact, .expires = 600}).status == 200;
  });
  Measure(
      start, total, flags, [&] { return sink.distinct(); }, [&] { return msilo.SiloRows(); },
      [&] { return msilo.Running(); }, &out);
  out.retransmissions = sink.retransmissions();
  out.duplicates = sink.duplicates();
  if (!out.empty_s) std::fprintf(stderr, "kamailio's log:\n%s\n", msilo.LogTail(40).c_str());
  return out;
}

Outcome RunDims(const Flags& flags) {
  Outcome out{.system = "DIMS"};
  long total = static_cast<long>(flags.users) * flags.messages;
  DimsStack stack;
  StartDimsForBench(stack);
  auto running = [&] { return ServicesRunning(stack, stack.service_names()); };
  const std::string dsn = stack.postgres().dsn();
  TableRows rows(dsn, "deferred_messages");
  auto stored = [&] { return rows.Count(); };
  if (!StoreMessages(stack.dir().path() / "dims-store", stack.sip_port(), flags, "DIMS")) {
    out.notes = " not every MESSAGE was stored;";
  }
  out.stored = stored();

  MsrpTestPeer peer;
  SofiaAgent agent({.next_hop = "127.0.0.1:" + std::to_string(stack.sip_port())});
  agent.OnRequest([&](const IncomingSipRequest& in) -> SofiaAgent::Answer {
    if (in.method == "MESSAGE") return {.status = 200, .phrase = "OK"};  // a notification
    if (in.method != "INVITE") return {};
    try {
      return AcceptPushInvite(agent, peer, in);
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "DIMS: push INVITE without an MSRP offer: %s\n", e.what());
      return {.status = 488, .phrase = "Not Acceptable Here"};
    }
  });
  auto start = Clock::now();
  out.registered = AllAtOnce(flags.users, [&](int n) {
    auto reg = agent.Register({.aor = Aor(n), .contact_params = ";+g.oma.sip-im", .expires = 600});
    if (reg.status != 200) return false;
    auto pub = agent.Publish({.aor = Aor(n),
                              .content_type = "application/poc-settings+xml",
                              .body = kSettings,
                              .expires = 600});
    return pub.status == 200;
  });
  Measure(
      start, total, flags, [&] { return peer.total_messages(); }, stored, running, &out);
  out.duplicates = peer.duplicate_messages();
  // Each transaction once: the agent's stack absorbs SIP retransmissions. More INVITEs than
  // users are DIMS's retries of a push.
  std::printf("DIMS: %zu push INVITEs for %d users, %zu BYEs; %zu MSRP sessions\n",
              agent.received("INVITE").size(), flags.users, agent.received("BYE").size(),
              peer.sessions().size());
  auto violations = peer.violations();
  if (!violations.empty()) {
    out.notes += " " + std::to_string(violations.size()) + " MSRP violations;";
    for (size_t i = 0; i < std::min<size_t>(5, violations.size()); ++i) {
      std::fprintf(stderr, "DIMS: MSRP violation: %s\n", violations[i].c_str());
    }
  }
  return out;
}

void Print(const Outcome& o, long total) {
  auto secs = [](const std::optional<double>& s) {
    char text[32];
    if (!s) return std::string("-");
    std::snprintf(text, sizeof text, "%.2f", *s);
    return std::string(text);
  };
  std::printf("%-6s | %6ld | %5d | %9ld | %11s | %13s | %13.0f | %7s | %5ld | %4ld%s\n",
              o.system.c_str(), o.stored, o.registered, o.delivered, secs(o.delivered_s).c_str(),
              secs(o.empty_s).c_str(), o.removed_per_second(total),
              o.retransmissions < 0 ? "n/a" : std::to_string(o.retransmissions).c_str(),
              o.duplicates, o.left, o.notes.c_str());
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::cerr << "usage: push_bench [--users N (default 100)] [--messages N per user (default "
                 "100)] [--store-rate R (per second, default 1000)] [--timeout S (default "
                 "120)] [--only msilo|dims]\n";
    return 2;
  }
  PrintCommand(argc, argv);
  PrintMachine();
  long total = static_cast<long>(flags.users) * flags.messages;
  std::printf("%d users x %d deferred messages = %ld; every user back at once\n", flags.users,
              flags.messages, total);
  std::fflush(stdout);

  TempDir dir;
  std::vector<Outcome> outcomes;
  if (flags.msilo) outcomes.push_back(RunMsilo(dir.path(), flags));
  if (flags.dims) outcomes.push_back(RunDims(flags));

  std::printf("\n%-6s | %6s | %5s | %9s | %11s | %13s | %13s | %7s | %5s | %4s\n", "system",
              "stored", "users", "delivered", "delivered s", "store empty s", "delivered+rm/s",
              "retrans", "dupl", "left");
  std::printf("%s\n", std::string(104, '-').c_str());
  bool finished = true;
  for (const Outcome& o : outcomes) {
    Print(o, total);
    finished = finished && o.delivered_s && o.empty_s && o.notes.empty();
  }
  if (outcomes.size() == 2 && outcomes[0].removed_per_second(total) > 0 &&
      outcomes[1].removed_per_second(total) > 0) {
    std::printf("\ndelivered and removed, DIMS/msilo: %.2f\n",
                outcomes[1].removed_per_second(total) / outcomes[0].removed_per_second(total));
  }
  std::printf(
      "\nusers: REGISTER (DIMS: and PUBLISH) answered 200. delivered s / store empty s: from "
      "the first REGISTER to the last message received (DIMS: confirmed with MSRP 200) / to "
      "the store's last row gone (msilo: silo; DIMS: deferred_messages; polled every 50 ms, every "
      "5 ms once all are delivered). "
      "delivered+rm/s: messages over 'store empty s'. retrans: MESSAGEs received again in the "
      "same transaction (msilo over UDP; DIMS: n/a, its messages go over MSRP/TCP). dupl: a "
      "message received again in a new transaction (msilo: same body; DIMS: same MSRP "
      "Message-ID). left: rows still stored at the end.\n");
  return finished ? 0 : 1;
}

}  // namespace
}  // namespace dims::testing

int main(int argc, char** argv) {
  return dims::testing::RunBenchmark("push_bench", dims::testing::Main, argc, argv);
}
