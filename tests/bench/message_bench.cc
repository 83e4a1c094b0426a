// message_bench: pager-mode MESSAGEs to offline users per second, end to end (sipp -> SIP
// server -> durable store -> 202 Accepted), for DIMS and for Kamailio's msilo module on
// PostgreSQL, in the same run on the same machine.
//
//   message_bench [--seconds N] [--max-messages N] [--rate R]...
//
// Starts Kamailio with tests/bench/msilo/kamailio.cfg (8 UDP children; m_store, then 202 once
// the insert committed) on a PostgreSQL of its own holding the silo table from Kamailio's SQL,
// and the whole DIMS set (DimsStack) on another; both servers are tests/support's, with fsync
// and synchronous_commit on, so that every 202 of either system is durable. Then, for each
// rate (default 1000, 2000, 3000, 3500, 4000, 5000, 6000 and 7000 per second), one msilo step
// and one DIMS step, each one sipp over UDP sending min(rate * --seconds, --max-messages)
// MESSAGEs of tests/sip/load_message.xml (defaults 5 s and 40000) to 1,000 recipients who
// never registered. A system's sustained rate is the best 202s per second of a step in which
// every message got its 202 without a single retransmission; DIMS runs one more step at 80% of
// its own. After every step the rows the step added to the store are counted (silo for msilo,
// deferred_messages for DIMS): every 202 must have its row, and only a message sipp gave up
// waiting for may have one without a 202. Exits 1 when a system answered no MESSAGE with 202
// ("DIMS: no 202"), a count does not match, or a server died.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "dims_stack.h"
#include "test_servers.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kRecvTimeoutMs = 5000;  // sipp gives a message up after this
constexpr int kRecipients = 1000;     // offline-0 ... offline-999
constexpr double kTargetP99Ms = 20;   // DIMS at 80% of its sustained rate

struct Flags {
  double seconds = 5;
  long max_messages = 40'000;
  std::vector<int> rates;  // empty: 1000 to 7000, finer where DIMS tops out
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  bool ok = ParseNumberFlags(
      argc, argv,
      {{"--seconds", [&](double v) { return (flags->seconds = v) > 0 && v <= 600; }},
       {"--max-messages",
        [&](double v) {
          return (flags->max_messages = static_cast<long>(v)) > 0 && v <= 1'000'000;
        }},
       {"--rate", [&](double v) {
          flags->rates.push_back(static_cast<int>(v));
          return v >= 1 && v <= 100'000;
        }}});
  if (flags->rates.empty()) flags->rates = {1000, 2000, 3000, 3500, 4000, 5000, 6000, 7000};
  return ok;
}

// A SIP server under test: where it listens, and how many messages its store holds.
class System {
 public:
  virtual ~System() = default;
  virtual const char* name() const = 0;
  virtual int sip_port() const = 0;
  virtual long StoredRows() = 0;
  // False, with the dead process's log on stderr, when a process of the system died.
  virtual bool Running() = 0;

  // The count once in-flight stores have landed: the same twice, half a second apart.
  long SettledRows() {
    long rows = StoredRows();
    for (int i = 0; i < 20; ++i) {
      std::this_thread::sleep_for(500ms);
      long again = StoredRows();
      if (again == rows) break;
      rows = again;
    }
    return rows;
  }
};

// Kamailio with msilo (tests/bench/msilo/kamailio.cfg: m_store, then 202) as the baseline.
class Msilo : public System {
 public:
  explicit Msilo(const fs::path& dir) : server_(dir, DIMS_MSILO_CONFIG) {}

  const char* name() const override { return "msilo"; }
  int sip_port() const override { return server_.sip_port(); }
  long StoredRows() override { return server_.SiloRows(); }
  bool Running() override { return server_.Running(); }

 private:
  MsiloServer server_;
};

// The whole DIMS set, logging at info (debug would cost more than the work measured), without
// per-user quotas in the way of a long ladder (the bench's 1,000 recipients).
class Dims : public System {
 public:
  Dims() { StartDimsForBench(stack_); }

  const char* name() const override { return "DIMS"; }
  int sip_port() const override { return stack_.sip_port(); }
  long StoredRows() override { return stored_rows_.Count(); }
  bool Running() override { return ServicesRunning(stack_, stack_.service_names()); }

 private:
  DimsStack stack_;
  TableRows stored_rows_{stack_.postgres().dsn(), "deferred_messages"};
};

struct Step {
  SippLoadResult load;
  long stored = 0;  // rows the step added to the store
  // Every 202 has its row, and nothing else has one but messages sipp gave up waiting for
  // (stored, answered too late); a message refused with another answer has none.
  bool durable() const {
    return stored >= load.answered && stored <= load.answered + load.timeouts;
  }
  // Every message answered 202 at the first attempt.
  bool clean() const {
    return load.sent > 0 && load.answered == load.sent && load.retransmissions == 0;
  }
};

class Bench {
 public:
  explicit Bench(const fs::path& dir) : dir_(dir) {
    std::ofstream recipients(dir_ / "recipients.csv");
    recipients << "SEQUENTIAL\n";
    for (int n = 0; n < kRecipients; ++n) recipients << "offline-" << n << "\n";
  }

  Step Run(System& system, int rate, long messages) {
    std::string cell =
        std::string(system.name()) + "-" + std::to_string(rate) + "-" + std::to_string(++cells_);
    fs::path dir = dir_ / ("cell-" + cell);
    fs::create_directories(dir);
    fs::copy_file(fs::path(DIMS_SIP_SCENARIOS) / "load_message.xml", dir / "scenario.xml");
    Step step;
    long before = system.StoredRows();
    step.load =
        RunSippLoad({.sip_port = system.sip_port(),
                     .dir = dir,
                     .calls = messages,
                     .rate = rate,
                     .recv_timeout_ms = kRecvTimeoutMs,
                     // Call-IDs of the cell's own: no message of the run is a duplicate of another.
                     .extra_args = {"-inf", (dir_ / "recipients.csv").string(), "-cid_str",
                                    cell + "-%u-%p@%s"}});
    step.stored = system.SettledRows() - before;
    return step;
  }

 private:
  fs::path dir_;
  int cells_ = 0;
};

// What one system did over the whole run.
struct Tally {
  long sent = 0;
  long answered = 0;
  long unanswered = 0;   // sipp gave up waiting
  double sustained = 0;  // 202s per second of its best clean step
  bool all_durable = true;
  void Add(const Step& step) {
    sent += step.load.sent;
    answered += step.load.answered;
    unanswered += step.load.timeouts;
    all_durable = all_durable && step.durable();
  }
};

void PrintStep(const char* system, int rate, const Step& s) {
  std::printf("%-6s | %9d | %6ld | %6ld | %6ld | %7ld | %7.0f | %7s | %7s | %7ld%s\n", system, rate,
              s.load.sent, s.load.answered, s.load.failed, s.load.retransmissions,
              s.load.per_second(), FormatMs(s.load.p50_ms, s.load.tick_ms).c_str(),
              FormatMs(s.load.p99_ms, s.load.tick_ms).c_str(), s.stored,
              !s.durable() ? "  COUNT MISMATCH" : (s.clean() ? "" : "  (not clean)"));
  if (!s.load.first_errors.empty()) {
    std::fprintf(stderr, "  %s at %d/s: %ld of %ld failed (sipp exit %d); first errors:\n%s",
                 system, rate, s.load.failed, s.load.sent, s.load.sipp_status,
                 s.load.first_errors.c_str());
  }
  std::fflush(stdout);
  std::fflush(stderr);
}

// The warm-up: 200 messages at 200/s, not measured (connections, Kamailio's children and
// their database sessions). False when the system answered none with 202.
bool WarmUp(Bench& bench, System& system, Tally& tally) {
  Step s = bench.Run(system, 200, 200);
  tally.Add(s);
  if (s.load.answered > 0) return true;
  std::printf("%s: no 202 (%ld MESSAGEs sent, none accepted; sipp exit %d)\n", system.name(),
              s.load.sent, s.load.sipp_status);
  std::fprintf(stderr, "%s: first errors:\n%s\n", system.name(), s.load.first_errors.c_str());
  std::fflush(stdout);
  return false;
}

std::string Rate(double per_second) {
  if (per_second <= 0) return "none";
  char text[32];
  std::snprintf(text, sizeof text, "%.0f/s", per_second);
  return text;
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::cerr << "usage: message_bench [--seconds N (default 5)] [--max-messages N (default "
                 "40000)] [--rate R (per second; repeatable; default 1000, 2000, 3000, 3500, "
                 "4000, 5000, 6000 and 7000)]\n";
    return 2;
  }
  PrintCommand(argc, argv);
  PrintMachine();
  std::printf(
      "per step: %g s or %ld MESSAGEs, whichever is fewer; sipp over UDP, %d offline "
      "recipients; msilo step then DIMS step at each rate\n",
      flags.seconds, flags.max_messages, kRecipients);
  std::fflush(stdout);

  TempDir dir;
  Msilo msilo(dir.path());
  Dims dims;
  Bench bench(dir.path());
  std::vector<System*> systems = {&msilo, &dims};
  std::map<System*, Tally> tallies;
  std::map<System*, bool> accepting;
  for (System* system : systems) accepting[system] = WarmUp(bench, *system, tallies[system]);
  if (!accepting[&msilo] && !accepting[&dims]) return 1;

  std::printf("\n%-6s | %9s | %6s | %6s | %6s | %7s | %7s | %7s | %7s | %7s\n", "system",
              "offered/s", "sent", "202s", "failed", "retrans", "202s/s", "p50 ms", "p99 ms",
              "stored");
  std::printf("%s\n", std::string(92, '-').c_str());
  std::fflush(stdout);
  auto messages_at = [&](int rate) {
    return std::min<long>(flags.max_messages, std::max<long>(1, std::lround(rate * flags.seconds)));
  };
  std::map<int, std::map<System*, Step>> ladder;
  bool failed = false;
  for (int rate : flags.rates) {
    for (System* system : systems) {
      if (!accepting[system]) continue;
      Step s = bench.Run(*system, rate, messages_at(rate));
      PrintStep(system->name(), rate, s);
      ladder[rate][system] = s;
      Tally& tally = tallies[system];
      tally.Add(s);
      if (s.clean()) tally.sustained = std::max(tally.sustained, s.load.per_second());
      if (s.load.answered == 0) failed = true;
      if (!system->Running()) return 1;
    }
  }

  std::optional<Step> at80;
  int rate80 = static_cast<int>(std::lround(0.8 * tallies[&dims].sustained));
  if (rate80 >= 1) {
    at80 = bench.Run(dims, rate80, messages_at(rate80));
    PrintStep("DIMS", rate80, *at80);
    tallies[&dims].Add(*at80);
    if (!dims.Running()) return 1;
  }

  std::printf("\nside by side (202s per second; * every message 202 without a retransmission)\n");
  std::printf("%9s | %-24s | %-24s\n", "offered/s", "msilo  202s/s  p50/p99 ms",
              "DIMS  202s/s  p50/p99 ms");
  for (const auto& [rate, steps] : ladder) {
    std::printf("%9d", rate);
    for (System* system : systems) {
      auto it = steps.find(system);
      if (it == steps.end()) {
        std::printf(" | %-24s", "no 202");
        continue;
      }
      const Step& s = it->second;
      char cell[64];
      std::snprintf(cell, sizeof cell, "%6.0f%s  %s/%s", s.load.per_second(), s.clean() ? "*" : " ",
                    FormatMs(s.load.p50_ms, s.load.tick_ms).c_str(),
                    FormatMs(s.load.p99_ms, s.load.tick_ms).c_str());
      std::printf(" | %-24s", cell);
    }
    std::printf("\n");
  }

  double msilo_rate = tallies[&msilo].sustained;
  double dims_rate = tallies[&dims].sustained;
  std::printf("\nsustained: msilo %s, DIMS %s", Rate(msilo_rate).c_str(), Rate(dims_rate).c_str());
  if (msilo_rate > 0 && dims_rate > 0) std::printf("; DIMS/msilo %.2f", dims_rate / msilo_rate);
  std::printf("\n");
  if (!accepting[&dims]) std::printf("DIMS: no 202\n");
  if (at80) {
    std::printf(
        "DIMS at 80%% of its sustained rate (%d/s): %.0f 202s/s, p50 %s ms, p99 %s ms "
        "(target p99 < %.0f ms: %s)\n",
        rate80, at80->load.per_second(), FormatMs(at80->load.p50_ms, at80->load.tick_ms).c_str(),
        FormatMs(at80->load.p99_ms, at80->load.tick_ms).c_str(), kTargetP99Ms,
        at80->clean() && at80->load.p99_ms < kTargetP99Ms ? "met" : "MISSED");
  }

  std::printf("\ndurability (whole run, warm-up included):\n");
  for (System* system : systems) {
    long rows = system->SettledRows();
    const Tally& tally = tallies[system];
    bool matches =
        tally.all_durable && rows >= tally.answered && rows <= tally.answered + tally.unanswered;
    std::printf(
        "  %-5s %ld rows stored, %ld 202s received (%ld MESSAGEs sent, %ld given up "
        "unanswered): %s\n",
        system->name(), rows, tally.answered, tally.sent, tally.unanswered,
        !matches                 ? "MISMATCH"
        : rows == tally.answered ? "every 202 stored, nothing else"
                                 : "every 202 stored, and some messages sipp gave up on");
    if (!matches) failed = true;
  }
  std::printf(
      "\n202s/s: 202s per second, first MESSAGE sent to last 202 received; retrans: MESSAGEs "
      "sipp sent again (no answer within 500 ms).\n"
      "p50/p99 ms: sipp's response time, MESSAGE sent to 202 received (sipp -trace_rtt), in "
      "steps of sipp's clock (\"<N\": under one step of N ms).\n"
      "stored: rows the step added (msilo: silo; DIMS: deferred_messages); every 202 must have "
      "one, and only a message sipp gave up waiting for may have one without a 202.\n");
  if (!accepting[&msilo] || !accepting[&dims]) return 1;
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace dims::testing

int main(int argc, char** argv) {
  return dims::testing::RunBenchmark("message_bench", dims::testing::Main, argc, argv);
}
