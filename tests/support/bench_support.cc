#include "bench_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "grpc_process.h"
#include "test_servers.h"

namespace dims::testing {
namespace fs = std::filesystem;

bool ParseNumberFlags(int argc, char** argv, const std::map<std::string, NumberFlag>& flags) {
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    std::string value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    }
    auto flag = flags.find(name);
    if (flag == flags.end() || value.empty()) return false;
    char* end = nullptr;
    double number = std::strtod(value.c_str(), &end);
    if (*end != '\0' || !flag->second(number)) return false;
  }
  return true;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

void PrintMachine() {
  std::printf("nproc: %ld (hardware threads: %u)\n", sysconf(_SC_NPROCESSORS_ONLN),
              std::thread::hardware_concurrency());
}

void PrintCommand(int argc, char** argv) {
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  std::printf("command: %s\n", command.c_str());
}

void StartDimsForBench(DimsStack& stack) {
  using namespace std::chrono_literals;
  for (const auto& service : stack.service_names()) {
    stack.StartService(service, {{"DIMS_LOG_LEVEL", "info"},
                                 {"DIMS_MAX_USER_MESSAGES", "10000000"},
                                 {"DIMS_MAX_USER_BYTES", "1099511627776"}});
  }
  for (const auto& service : stack.service_names()) {
    if (!stack.WaitServing(service, 60s)) {
      throw std::runtime_error(service + " did not become SERVING:\n" +
                               stack.process(service).LogTail(40));
    }
  }
}

bool ServicesRunning(DimsStack& stack, const std::vector<std::string>& services) {
  bool running = true;
  for (const auto& service : services) {
    if (!stack.process(service).running()) {
      std::cerr << service << " died:\n" << stack.process(service).LogTail(40) << "\n";
      running = false;
    }
  }
  return running;
}

namespace {

// The last line of sipp's statistics file, by column name.
std::map<std::string, std::string> LastStatistics(const fs::path& file) {
  std::ifstream in(file);
  std::string header;
  std::string last;
  std::getline(in, header);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) last = line;
  }
  std::map<std::string, std::string> out;
  std::istringstream names(header);
  std::istringstream values(last);
  for (std::string name, value;
       std::getline(names, name, ';') && std::getline(values, value, ';');) {
    out[name] = value;
  }
  return out;
}

long Count(const std::map<std::string, std::string>& stats, const std::string& name) {
  auto it = stats.find(name);
  return it == stats.end() ? 0 : std::strtol(it->second.c_str(), nullptr, 10);
}

// sipp's trace: one "date_ms;response_time_ms;rtd_no" line per timed transaction.
void ReadResponseTimes(const fs::path& file, SippLoadResult* r) {
  std::ifstream in(file);
  std::vector<double> times;
  std::vector<double> answers;
  double first_sent = INFINITY;
  for (std::string line; std::getline(in, line);) {
    char* end = nullptr;
    double at = std::strtod(line.c_str(), &end);
    if (end == line.c_str() || *end != ';') continue;  // the header
    double took = std::strtod(end + 1, nullptr);
    times.push_back(took);
    answers.push_back(at);
    first_sent = std::min(first_sent, at - took);
  }
  if (times.empty()) return;
  std::sort(times.begin(), times.end());
  std::sort(answers.begin(), answers.end());
  r->p50_ms = Percentile(times, 0.50);
  r->p99_ms = Percentile(times, 0.99);
  r->seconds = (answers.back() - first_sent) / 1000;
  double tick = INFINITY;
  for (size_t i = 1; i < answers.size(); ++i) {
    // To a tenth of a millisecond: a coarse clock's steps read 3.999, 4.000 or 4.001 ms.
    double step = std::round((answers[i] - answers[i - 1]) * 10) / 10;
    if (step > 0) tick = std::min(tick, step);
  }
  if (std::isfinite(tick)) r->tick_ms = tick;
}

}  // namespace

SippLoadResult RunSippLoad(const SippLoad& load) {
  double expected_seconds = static_cast<double>(load.calls) / load.rate;
  int timeout_seconds = static_cast<int>(expected_seconds) + load.recv_timeout_ms / 1000 + 20;
  auto args = SippClientArgs(load.sip_port, "scenario.xml", load.transport, load.calls,
                             std::max(load.rate, 100));
  args.insert(
      args.end(),
      {"-r", std::to_string(load.rate), "-recv_timeout", std::to_string(load.recv_timeout_ms),
       "-timeout", std::to_string(timeout_seconds), "-trace_stat", "-stf", "stats.csv", "-fd", "1",
       // Every response time as it comes: sipp writes (and flushes) the trace only
       // when -rtt_freq of them are buffered, and drops the rest when it exits; one
       // line at a time costs no more, it flushes each line anyway.
       "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", "errors.log"});
  args.insert(args.end(), load.extra_args.begin(), load.extra_args.end());
  // sipp writes its response-time trace next to the scenario file it was given: run it in
  // the cell's folder.
  Process sipp({.program = "/usr/bin/sipp",
                .args = std::move(args),
                .log = load.dir / "sipp.log",
                .working_dir = load.dir});
  auto status = sipp.Wait(std::chrono::seconds(timeout_seconds + 40));
  SippLoadResult r;
  if (!status) {
    sipp.Signal(SIGKILL);
    r.sipp_status = -1;
  } else {
    r.sipp_status = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
  }

  auto stats = LastStatistics(load.dir / "stats.csv");
  r.sent = Count(stats, "TotalCallCreated");
  r.answered = Count(stats, "SuccessfulCall(C)");
  r.retransmissions = Count(stats, "Retransmissions(C)");
  // Calls still open when sipp stopped count as failed by timeout too.
  long still_open = std::max(0L, r.sent - r.answered - Count(stats, "FailedCall(C)"));
  r.failed = r.sent - r.answered;
  r.timeouts =
      Count(stats, "FailedMaxUDPRetrans(C)") + Count(stats, "FailedTimeoutOnRecv(C)") + still_open;
  ReadResponseTimes(load.dir / ("scenario_" + std::to_string(sipp.pid()) + "_rtt.csv"), &r);
  if (r.failed > 0 || r.answered == 0) {
    std::istringstream errors(ReadFile(load.dir / "errors.log"));
    int lines = 0;
    for (std::string line; lines < 8 && std::getline(errors, line); ++lines) {
      // sipp ends some entries without a newline: a "line" can hold hundreds of them.
      if (line.size() > 400) line = line.substr(0, 400) + " ...";
      r.first_errors += "    " + line + "\n";
    }
    if (r.answered == 0) r.first_errors += sipp.LogTail(20);
  }
  return r;
}

std::string FormatMs(double ms, double resolution_ms) {
  char text[32];
  if (ms < resolution_ms) {
    std::snprintf(text, sizeof text, "<%g", resolution_ms);
  } else {
    std::snprintf(text, sizeof text, "%.2f", ms);
  }
  return text;
}

TableRows::TableRows(std::string dsn, std::string table)
    : dsn_(std::move(dsn)), table_(std::move(table)) {}

TableRows::~TableRows() = default;

long TableRows::Count() {
  if (!connection_) connection_ = std::make_unique<pqxx::connection>(dsn_);
  pqxx::nontransaction tx(*connection_);
  return tx.exec("SELECT count(*) FROM " + table_)[0][0].as<long>();
}

namespace {
constexpr char kKamailio[] = "/usr/sbin/kamailio";
constexpr char kKamailioSql[] = "/usr/share/kamailio/postgres";  // kamailio-postgres-modules
}  // namespace

MsiloServer::MsiloServer(const fs::path& dir, const std::string& config)
    : postgres_(dir), sip_port_(FreePort()) {
  postgres_.Start();
  dsn_ = "host=127.0.0.1 port=" + std::to_string(postgres_.port()) +
         " dbname=msilo user=dims connect_timeout=2";
  CreateDatabase();
  fs::path home = dir / "kamailio";
  fs::create_directories(home / "run");
  std::string db_url = "postgres://dims@127.0.0.1:" + std::to_string(postgres_.port()) + "/msilo";
  kamailio_ = std::make_unique<Process>(Process::Options{
      .program = kKamailio,
      .args = {"-f", config, "-DD", "-E", "-l", "udp:127.0.0.1:" + std::to_string(sip_port_), "-P",
               (home / "kamailio.pid").string(), "-Y", (home / "run").string(), "-w", home.string(),
               // A transaction stays in shared memory 5 s after its answer (tm's wait timer),
               // some 13 KB: the default 64 MB refuses load beyond 1,000 per second.
               "-m", "1024", "-A", "DBURL=\"" + db_url + "\"",
               // Its own address, for a configuration that sends requests back to itself.
               "-A", "SELF=\"sip:127.0.0.1:" + std::to_string(sip_port_) + "\""},
      .log = home / "kamailio.log",
  });
  // The pid file comes after the configuration was read and before the modules start (msilo
  // checks its table then); the caller's first requests wait for the rest.
  if (!WaitFor([&] { return fs::exists(home / "kamailio.pid") || !kamailio_->running(); },
               std::chrono::seconds(30)) ||
      !kamailio_->running()) {
    std::string log = kamailio_->LogTail(30);
    Stop();
    throw std::runtime_error("kamailio did not start:\n" + log);
  }
}

MsiloServer::~MsiloServer() { Stop(); }

long MsiloServer::SiloRows() {
  if (!silo_rows_) silo_rows_ = std::make_unique<TableRows>(dsn_, "silo");
  return silo_rows_->Count();
}

bool MsiloServer::Running() {
  if (kamailio_->running()) return true;
  std::cerr << "kamailio died:\n" << kamailio_->LogTail(40) << "\n";
  return false;
}

// The msilo database, with the tables and the version rows Kamailio's own SQL creates (msilo
// refuses to start without the silo version row).
void MsiloServer::CreateDatabase() {
  std::string admin = "host=127.0.0.1 port=" + std::to_string(postgres_.port()) +
                      " dbname=postgres user=dims connect_timeout=2";
  {
    pqxx::connection c(admin);
    pqxx::nontransaction tx(c);
    tx.exec("CREATE DATABASE msilo");
  }
  pqxx::connection c(dsn_);
  pqxx::work tx(c);
  for (const char* file : {"standard-create.sql", "msilo-create.sql"}) {
    std::string sql = ReadFile(fs::path(kKamailioSql) / file);
    if (sql.empty()) {
      throw std::runtime_error(std::string(kKamailioSql) + "/" + file +
                               " is missing: install kamailio-postgres-modules "
                               "(deploy/install-deps.sh)");
    }
    tx.exec(sql);
  }
  tx.commit();
}

// Kamailio's main process stops its children on SIGTERM; a SIGKILL would leave them.
void MsiloServer::Stop() {
  if (!kamailio_) return;
  kamailio_->Signal(SIGTERM);
  kamailio_->Wait(std::chrono::seconds(15));
}

int RunBenchmark(const char* name, int (*bench_main)(int, char**), int argc, char** argv) {
  ApplyGrpcProcessSettings();  // the load generator pays what the services pay per call, no more
  try {
    return bench_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace dims::testing
