// What the benchmarks share: numeric flags, percentiles, the machine line, sipp as a load
// client, and a main that reports an exception instead of aborting.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "dims_stack.h"
#include "test_servers.h"

namespace dims::testing {

// Takes the value of a flag; false when the value is out of range.
using NumberFlag = std::function<bool(double)>;

// Parses argv against `flags` (keyed by name, "--seconds"); false on an unknown flag, a
// missing or non-numeric value, or a value its handler refused.
bool ParseNumberFlags(int argc, char** argv, const std::map<std::string, NumberFlag>& flags);

// The nearest-rank percentile `p` (0..1) of ascending `sorted`; 0 when it is empty.
double Percentile(const std::vector<double>& sorted, double p);

// Prints the cores the figures were measured on.
void PrintMachine();
// Prints the command line the figures come from.
void PrintCommand(int argc, char** argv);

// Starts every service of `stack` for a benchmark: logging at info (debug would cost more than
// the work measured), without per-user quotas in the way of its load. Throws, with the log's
// tail, when one does not become SERVING within a minute.
void StartDimsForBench(DimsStack& stack);
// False, with the log's tail of each on stderr, when one of `services` has died.
bool ServicesRunning(DimsStack& stack, const std::vector<std::string>& services);

// One load cell driven by sipp as a client over loopback: `calls` calls of the scenario
// `dir`/scenario.xml at `rate` per second, with sipp running in `dir` (its statistics, error
// file and response-time trace land there). The scenario must time its transaction with
// response-time timer 1 (start_rtd="1" on the request, rtd="1" on the answers that count).
struct SippLoad {
  int sip_port = 0;
  std::filesystem::path dir;
  std::string transport = "u1";  // sipp's -t
  long calls = 0;
  int rate = 0;
  int recv_timeout_ms = 5000;           // sipp gives a call up after this without an answer
  std::vector<std::string> extra_args;  // appended to sipp's ("-inf", "users.csv", ...)
};

struct SippLoadResult {
  long sent = 0;             // calls sipp started
  long answered = 0;         // ... that succeeded
  long failed = 0;           // ... that did not (another answer, or none)
  long timeouts = 0;         // ... of those, no answer at all
  long retransmissions = 0;  // requests sipp sent again for want of an answer (UDP)
  double seconds = 0;        // first request sent to last timed answer received
  double p50_ms = 0;         // sipp's response times, in ticks of its clock
  double p99_ms = 0;
  // The step of sipp's clock, the smallest between two answers' times in the trace: 4 ms on a
  // kernel whose coarse clock ticks at 250 Hz. A response time of 0 means less than one step.
  double tick_ms = 1;
  int sipp_status = 0;  // sipp's exit code; -1 when it had to be killed
  // When a call failed: sipp's first errors; when none succeeded, its log's tail too.
  std::string first_errors;
  double per_second() const { return seconds > 0 ? static_cast<double>(answered) / seconds : 0; }
};

// Runs the cell to its end (bounded: the calls at the rate, plus sipp's timeouts).
SippLoadResult RunSippLoad(const SippLoad& load);

// Milliseconds for a table, or "<N" when the measurement cannot tell apart values under
// `resolution_ms` (sipp's tick_ms; 1 for a histogram whose first bucket ends at 1 ms).
std::string FormatMs(double ms, double resolution_ms);

// Counts the rows of a table in the database at `dsn` over one connection kept open: a
// connection per count (a new server process each time) would cost the machine under
// measurement more than the query.
class TableRows {
 public:
  TableRows(std::string dsn, std::string table);
  ~TableRows();
  long Count();

 private:
  std::string dsn_;
  std::string table_;
  std::unique_ptr<pqxx::connection> connection_;  // opened on first use
};

// Kamailio with msilo as a benchmark's baseline: a PostgreSQL of its own in `dir` with the
// silo table from Kamailio's SQL (kamailio-postgres-modules), and Kamailio in the foreground
// with `config` (tests/bench/msilo/*.cfg: DBURL, and SELF its own SIP URI, defined on the
// command line), listening on 127.0.0.1 over UDP, with 1 GB of shared memory. Throws when either
// does not start; stops Kamailio by its PID (SIGTERM, which stops its children) on destruction.
class MsiloServer {
 public:
  MsiloServer(const std::filesystem::path& dir, const std::string& config);
  ~MsiloServer();
  MsiloServer(const MsiloServer&) = delete;
  MsiloServer& operator=(const MsiloServer&) = delete;

  int sip_port() const { return sip_port_; }
  const std::string& dsn() const { return dsn_; }
  long SiloRows();
  // False, with the log's tail on stderr, when Kamailio died.
  bool Running();
  std::string LogTail(int lines) const { return kamailio_->LogTail(lines); }

 private:
  void CreateDatabase();
  void Stop();

  PostgresServer postgres_;
  int sip_port_;
  std::string dsn_;
  std::unique_ptr<Process> kamailio_;
  std::unique_ptr<TableRows> silo_rows_;
};

// Runs `bench_main`; an exception ends the benchmark with its message and exit code 1.
int RunBenchmark(const char* name, int (*bench_main)(int, char**), int argc, char** argv);

}  // namespace dims::testing
