// storage_bench: Store and Ack throughput and latency through gRPC against a real local
// PostgreSQL, with group commit (DIMS_STORE_BATCHING=true) and without it (one transaction per
// call), measured side by side in the same run.
//
//   storage_bench [--seconds N] [--max-messages N] [--rounds N] [--concurrency N]...
//
// Starts a private Redis and PostgreSQL (tests/support) and two dims-storage instances on
// the same database, one batched and one not, then for concurrency 1, 16 and 64 keeps that
// many Store calls in flight for --seconds (default 5) or --max-messages (default 200000),
// whichever ends first, per cell and side, alternating the two sides in --rounds slices
// (default 5). Every cell uses users and Call-IDs of its own. It also prints the CPU each
// stored message cost the client, the storage instance and PostgreSQL. Then, with the highest
// concurrency, callers acknowledge stored messages 1-2 ids a call on each side in turn. The
// instances inherit the environment, so DIMS_* variables set in the shell (for example
// DIMS_POSTGRES_POOL_SIZE) apply to both. Exits 1 when a Store failed or a cell stored
// nothing, so that the ctest smoke run notices a broken service.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench_support.h"
#include "dims/v1/storage.grpc.pb.h"
#include "dims_stack.h"
#include "test_servers.h"

namespace dims::testing {
namespace {
using namespace std::chrono_literals;
namespace v1 = ::dims::v1;
using Clock = std::chrono::steady_clock;

constexpr int kUsersPerCell = 10'000;
constexpr int kCallsPerConnection = 16;

struct Flags {
  double seconds = 5;
  long max_messages = 200'000;
  std::vector<int> concurrency;  // empty: 1, 16 and 64
  int rounds = 5;                // each cell's time split into this many alternating slices
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  bool ok = ParseNumberFlags(
      argc, argv,
      {{"--seconds", [&](double v) { return (flags->seconds = v) > 0; }},
       {"--max-messages",
        [&](double v) { return (flags->max_messages = static_cast<long>(v)) > 0; }},
       {"--rounds", [&](double v) { return (flags->rounds = static_cast<int>(v)) >= 1; }},
       {"--concurrency", [&](double v) {
          flags->concurrency.push_back(static_cast<int>(v));
          return v >= 1 && v <= 1024;
        }}});
  if (flags->concurrency.empty()) flags->concurrency = {1, 16, 64};
  return ok;
}

// CPU time (user + system) of a process, and with `children` also of its live child processes
// and of the children it already reaped, from /proc.
double CpuSeconds(pid_t pid, bool children) {
  static const double kTick = static_cast<double>(sysconf(_SC_CLK_TCK));
  auto read = [](pid_t p, pid_t* parent, double* own, double* reaped) {
    std::ifstream in("/proc/" + std::to_string(p) + "/stat");
    std::string text;
    std::getline(in, text);
    auto close = text.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) return false;
    std::istringstream fields(text.substr(close + 2));
    std::vector<std::string> f;
    for (std::string field; fields >> field;) f.push_back(field);
    if (f.size() < 15) return false;  // f[0] is field 3 (state)
    *parent = static_cast<pid_t>(std::stol(f[1]));
    *own = std::stod(f[11]) + std::stod(f[12]);
    *reaped = std::stod(f[13]) + std::stod(f[14]);
    return true;
  };
  pid_t parent = 0;
  double own = 0, reaped = 0;
  if (!read(pid, &parent, &own, &reaped)) return 0;
  double ticks = own + (children ? reaped : 0);
  if (children) {
    if (DIR* proc = opendir("/proc")) {
      while (dirent* entry = readdir(proc)) {
        char* end = nullptr;
        long child = std::strtol(entry->d_name, &end, 10);
        double child_own = 0, child_reaped = 0;
        if (*end == '\0' && child > 0 &&
            read(static_cast<pid_t>(child), &parent, &child_own, &child_reaped) && parent == pid) {
          ticks += child_own;
        }
      }
      closedir(proc);
    }
  }
  return ticks / kTick;
}

double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The machine's CPU time so far from /proc/stat, in clock ticks: idle (with I/O wait), total.
std::pair<double, double> MachineTicks() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  stat >> cpu;
  double idle = 0, total = 0, v = 0;
  for (int field = 0; field < 8 && stat >> v; ++field) {  // user .. steal
    total += v;
    if (field == 3 || field == 4) idle += v;  // idle, iowait
  }
  return {idle, total};
}

// CPU spent per stored message during a cell: by this load generator (the gRPC client), by
// the storage instance, and by PostgreSQL. Unlike the rate, this hardly moves when something
// else on the machine competes for the cores. Also how much of the machine stayed idle: a side
// that leaves cores idle is bound by waiting, not by CPU.
struct CpuShare {
  double client_us = 0, storage_us = 0, postgres_us = 0;
  double idle_ticks = 0, total_ticks = 0;
  double idle_percent() const { return total_ticks > 0 ? 100 * idle_ticks / total_ticks : 0; }
};

CpuShare& operator+=(CpuShare& a, const CpuShare& b) {
  a.client_us += b.client_us;
  a.storage_us += b.storage_us;
  a.postgres_us += b.postgres_us;
  a.idle_ticks += b.idle_ticks;
  a.total_ticks += b.total_ticks;
  return a;
}

class CpuMeter {
 public:
  CpuMeter(pid_t storage, pid_t postgres)
      : storage_pid_(storage),
        postgres_pid_(postgres),
        storage_(CpuSeconds(storage, false)),
        postgres_(CpuSeconds(postgres, true)),
        machine_(MachineTicks()),
        client_(OwnCpuSeconds()) {}  // last: the /proc scans above are not the client's load

  // CPU seconds spent since the meter was made (and the machine's ticks).
  CpuShare Spent() const {
    auto [idle, total] = MachineTicks();
    return {OwnCpuSeconds() - client_, CpuSeconds(storage_pid_, false) - storage_,
            CpuSeconds(postgres_pid_, true) - postgres_, idle - machine_.first,
            total - machine_.second};
  }

 private:
  pid_t storage_pid_, postgres_pid_;
  double storage_, postgres_;
  std::pair<double, double> machine_;
  double client_;
};

// A dims-storage instance of its own, on the shared Redis and PostgreSQL.
class StorageInstance {
 public:
  StorageInstance(const TempDir& dir, const RedisServer& redis, const PostgresServer& postgres,
                  const std::string& name, bool batching)
      : name_(name), grpc_port_(FreePort()), metrics_port_(FreePort()) {
    process_ = std::make_unique<Process>(Process::Options{
        .program = BinaryPath("dims-storage"),
        .args = {},
        .env =
            {
                {"DIMS_GRPC_LISTEN", address()},
                {"DIMS_METRICS_LISTEN", "127.0.0.1:" + std::to_string(metrics_port_)},
                {"DIMS_LOG_FORMAT", "text"},
                {"DIMS_LOG_LEVEL", "info"},
                {"DIMS_REDIS_ADDR", redis.address()},
                {"DIMS_POSTGRES_DSN", postgres.dsn()},
                {"DIMS_STORE_BATCHING", batching ? "true" : "false"},
                {"DIMS_MAX_USER_MESSAGES", "100000"},
            },
        .log = dir.path() / (name + ".log"),
    });
  }

  ~StorageInstance() {
    process_->Signal(SIGTERM);
    process_->Wait(10s);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }

  // Calls and transactions committed so far by one group commit ("store_batch_size_messages",
  // "ack_batch_size_calls"), from the instance's own metrics.
  std::pair<double, double> Committed(
      const std::string& histogram = "store_batch_size_messages") const {
    auto page = HttpGet(metrics_port_, "/metrics");
    if (!page) return {0, 0};
    return {MetricSum(*page, "dims_storage_" + histogram + "_sum").value_or(0),
            MetricSum(*page, "dims_storage_" + histogram + "_count").value_or(0)};
  }
  const std::string& name() const { return name_; }
  Process& process() { return *process_; }

  bool WaitServing(std::chrono::milliseconds timeout) {
    return WaitFor([&] { return !process_->running() || HealthStatus(address()) == "SERVING"; },
                   timeout) &&
           process_->running();
  }

 private:
  std::string name_;
  int grpc_port_;
  int metrics_port_;
  std::unique_ptr<Process> process_;
};

std::string Body(long i) {
  std::string body = "Deferred message " + std::to_string(i) + ": ";
  while (body.size() < 300) body += "lorem ipsum dolor sit amet ";
  return body;
}

// Message i of a bench user.
v1::StorageStoreRequest StoreRequest(const std::string& aor, const std::string& call_id, long i) {
  std::string body = Body(i);
  v1::StorageStoreRequest request;
  request.mutable_recipient()->set_uri(aor);
  auto* h = request.mutable_headers();
  h->set_from("\"Sender\" <sip:sender@dims.test>;tag=b3nch");
  h->set_to("<" + aor + ">");
  h->set_p_asserted_identity("<sip:sender@dims.test>");
  h->set_subject("bench");
  h->set_call_id(call_id);
  h->set_cseq(1);
  h->set_content_type("text/plain;charset=UTF-8");
  request.set_reason(v1::STORE_REASON_OFFLINE);
  request.set_sip_request("MESSAGE " + aor +
                          " SIP/2.0\r\n"
                          "Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-" +
                          std::to_string(i) +
                          "\r\n"
                          "Max-Forwards: 70\r\n"
                          "From: " +
                          h->from() + "\r\nTo: " + h->to() +
                          "\r\n"
                          "P-Asserted-Identity: " +
                          h->p_asserted_identity() +
                          "\r\n"
                          "Call-ID: " +
                          call_id +
                          "\r\n"
                          "CSeq: 1 MESSAGE\r\n"
                          "Subject: bench\r\n"
                          "Content-Type: " +
                          h->content_type() + "\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body);
  return request;
}

// Message i of a cell, for one of the cell's users.
v1::StorageStoreRequest StoreRequest(const std::string& cell, long i) {
  return StoreRequest("sip:bench-" + cell + "-" + std::to_string(i % kUsersPerCell) + "@dims.test",
                      "bench-" + cell + "-" + std::to_string(i) + "@192.0.2.10", i);
}

// The user u of an Ack phase.
std::string AckUser(const std::string& tag, size_t u) {
  return "sip:bench-" + tag + "-u" + std::to_string(u) + "@dims.test";
}

struct CellResult {
  long ok = 0;
  long errors = 0;
  std::string first_error;
  double seconds = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double per_commit = 0;  // messages per transaction (batched instance)
  CpuShare cpu;           // per message, in microseconds
  std::vector<double> latencies_ms;
  double per_second() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

// One side of a cell, summed over its rounds.
class CellTotal {
 public:
  void Add(CellResult round, const CpuShare& cpu_seconds) {
    total_.ok += round.ok;
    total_.errors += round.errors;
    if (total_.first_error.empty()) total_.first_error = round.first_error;
    total_.seconds += round.seconds;
    total_.latencies_ms.insert(total_.latencies_ms.end(), round.latencies_ms.begin(),
                               round.latencies_ms.end());
    cpu_seconds_ += cpu_seconds;
  }
  void AddCommits(double messages, double commits) {
    committed_ += messages;
    commits_ += commits;
  }
  CellResult Result() const {
    CellResult r = total_;
    std::sort(r.latencies_ms.begin(), r.latencies_ms.end());
    r.p50_ms = Percentile(r.latencies_ms, 0.50);
    r.p99_ms = Percentile(r.latencies_ms, 0.99);
    r.per_commit = commits_ > 0 ? committed_ / commits_ : 0;
    if (r.ok > 0) {
      double n = static_cast<double>(r.ok) / 1e6;
      r.cpu = {cpu_seconds_.client_us / n, cpu_seconds_.storage_us / n,
               cpu_seconds_.postgres_us / n, cpu_seconds_.idle_ticks, cpu_seconds_.total_ticks};
    }
    return r;
  }

 private:
  CellResult total_;
  CpuShare cpu_seconds_;  // seconds, summed
  double committed_ = 0, commits_ = 0;
};

// Keeps `concurrency` Store calls in flight (gRPC's callback API: each answer starts the next
// call) until `seconds` pass or `max_messages` were sent. A real caller sits on another machine;
// an asynchronous client keeps the load generator's own CPU share small on this one.
class Cell : public std::enable_shared_from_this<Cell> {
 public:
  Cell(std::vector<v1::Storage::Stub*> stubs, std::string cell, const Flags& flags)
      : stubs_(std::move(stubs)), cell_(std::move(cell)), flags_(flags) {}

  void Start(int concurrency) {
    in_flight_ = concurrency;
    start_ = Clock::now();
    end_ = start_ + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(flags_.seconds));
    for (int slot = 0; slot < concurrency; ++slot) Next(slot);
  }

  CellResult Wait() {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return in_flight_ == 0; });
    result_.seconds = std::chrono::duration<double>(finished_ - start_).count();
    result_.latencies_ms = std::move(latencies_);
    return result_;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    v1::StorageStoreRequest request;
    v1::StorageStoreResponse response;
    Clock::time_point sent;
  };

  // Starts the next call of `slot`, or retires the slot when the cell is over.
  void Next(int slot) {
    long i = next_++;
    if (i >= flags_.max_messages || Clock::now() >= end_) {
      std::lock_guard lock(mu_);
      finished_ = std::max(finished_, Clock::now());
      if (--in_flight_ == 0) done_.notify_all();
      return;
    }
    auto* call = new Call;
    call->request = StoreRequest(cell_, i);
    call->context.set_deadline(std::chrono::system_clock::now() + 10s);
    call->sent = Clock::now();
    // The callback holds the cell (not the channel: that outlives every cell), and frees the
    // call before it starts the next one.
    stubs_[static_cast<size_t>(slot) % stubs_.size()]->async()->Store(
        &call->context, &call->request, &call->response,
        [self = shared_from_this(), call, slot](grpc::Status status) {
          self->Record(*call, status);
          delete call;
          self->Next(slot);
        });
  }

  void Record(const Call& call, const grpc::Status& status) {
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - call.sent).count();
    std::lock_guard lock(mu_);
    if (status.ok() && !call.response.duplicate()) {
      ++result_.ok;
      latencies_.push_back(ms);
      return;
    }
    ++result_.errors;
    if (result_.first_error.empty()) {
      result_.first_error = status.ok() ? "fresh message answered as duplicate"
                                        : "code " + std::to_string(status.error_code()) + ": " +
                                              status.error_message();
    }
  }

  const std::vector<v1::Storage::Stub*> stubs_;
  const std::string cell_;
  const Flags flags_;
  std::atomic<long> next_{0};
  Clock::time_point start_, end_;
  std::mutex mu_;
  std::condition_variable done_;
  int in_flight_ = 0;
  Clock::time_point finished_{};
  CellResult result_;
  std::vector<double> latencies_;
};

// Connections to one instance, made once and kept for the whole run (a call may still be
// unwinding in gRPC when its cell's results are read).
class Client {
 public:
  explicit Client(const std::string& address) {
    for (int i = 0; i < kConnections; ++i) {
      auto channel = NewChannel(address);
      channel->WaitForConnected(std::chrono::system_clock::now() + 5s);
      stubs_.push_back(v1::Storage::NewStub(channel));
    }
  }

  CellResult Run(const std::string& cell, int concurrency, const Flags& flags) {
    std::vector<v1::Storage::Stub*> stubs;
    for (size_t i = 0; i < stubs_.size() && static_cast<int>(i) * kCallsPerConnection <
                                                std::max(concurrency, kCallsPerConnection);
         ++i) {
      stubs.push_back(stubs_[i].get());
    }
    auto run = std::make_shared<Cell>(std::move(stubs), cell, flags);
    run->Start(concurrency);
    return run->Wait();
  }

 private:
  static constexpr int kConnections = 8;
  std::vector<std::unique_ptr<v1::Storage::Stub>> stubs_;
};

// The Ack phase: `concurrency` callers acknowledge stored messages 1 or 2 ids a call (as delivery
// does after each chunk of a push), each caller its own users, until `seconds` pass or the
// messages run out. Blocking calls: an Ack waits for its answer before the next of its user.
struct AckPhase {
  long calls = 0, errors = 0;
  std::string first_error;
  double seconds = 0, p50_ms = 0, p99_ms = 0, per_commit = 0;
  CpuShare cpu;  // per call, in microseconds
  double per_second() const { return seconds > 0 ? static_cast<double>(calls) / seconds : 0; }
};

// Stores `messages` messages for `users` users through `address` (any instance: they share the
// database) and returns their ids per user; empty when a store failed.
std::vector<std::vector<std::string>> SeedForAcks(const std::string& address,
                                                  const std::string& tag, int users,
                                                  long messages) {
  std::vector<std::vector<std::string>> ids(static_cast<size_t>(users));
  std::atomic<long> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> writers;
  auto channel = NewChannel(address);
  for (int w = 0; w < 32; ++w) {
    writers.emplace_back([&, w] {
      auto stub = v1::Storage::NewStub(channel);
      // Writer w stores for users w, w + 32, ...: each user's ids come out in arrival order.
      for (int u = w; u < users && !failed; u += 32) {
        for (long i = u; i < messages && !failed; i += users) {
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + 10s);
          auto request = StoreRequest(AckUser(tag, static_cast<size_t>(u)),
                                      "bench-" + tag + "-" + std::to_string(i) + "@192.0.2.10", i);
          v1::StorageStoreResponse response;
          if (!stub->Store(&context, request, &response).ok()) failed = true;
          ids[static_cast<size_t>(u)].push_back(response.message_id());
        }
      }
    });
  }
  for (auto& writer : writers) writer.join();
  if (failed) ids.clear();
  return ids;
}

AckPhase RunAcks(const std::string& address, const std::string& tag,
                 const std::vector<std::vector<std::string>>& ids, int concurrency,
                 double seconds) {
  AckPhase result;
  std::mutex mu;
  std::vector<double> latencies;
  auto channel = NewChannel(address);
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> callers;
  for (int c = 0; c < concurrency; ++c) {
    callers.emplace_back([&, c] {
      auto stub = v1::Storage::NewStub(channel);
      for (size_t u = static_cast<size_t>(c); u < ids.size();
           u += static_cast<size_t>(concurrency)) {
        const auto& mine = ids[u];
        // Alternately 1 and 2 ids a call.
        for (size_t k = 0, take = 1; k < mine.size() && Clock::now() < end; k += take) {
          take = std::min(mine.size() - k, 1 + (k / 3 + u) % 2);
          v1::StorageAckRequest request;
          request.mutable_recipient()->set_uri(AckUser(tag, u));
          for (size_t j = k; j < k + take; ++j) request.add_message_ids(mine[j]);
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + 10s);
          v1::StorageAckResponse response;
          auto sent = Clock::now();
          grpc::Status status = stub->Ack(&context, request, &response);
          double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
          std::lock_guard lock(mu);
          if (status.ok() && response.removed_size() == static_cast<int>(take)) {
            ++result.calls;
            latencies.push_back(ms);
          } else if (++result.errors == 1) {
            result.first_error = status.ok() ? "an id was not removed"
                                             : "code " + std::to_string(status.error_code()) +
                                                   ": " + status.error_message();
          }
        }
      }
    });
  }
  for (auto& caller : callers) caller.join();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies.begin(), latencies.end());
  result.p50_ms = Percentile(latencies, 0.50);
  result.p99_ms = Percentile(latencies, 0.99);
  return result;
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::cerr << "usage: storage_bench [--seconds N (default 5)] [--max-messages N (default "
                 "200000)] [--rounds N (default 5)] [--concurrency N (repeatable; default 1, 16 "
                 "and 64)]\n";
    return 2;
  }
  PrintMachine();
  std::printf(
      "per cell and side: %g s or %ld stores, in %d alternating rounds; %d users, ~%zu-byte "
      "requests\n",
      flags.seconds, flags.max_messages, flags.rounds, kUsersPerCell,
      StoreRequest("x", 0).sip_request().size());
  std::fflush(stdout);

  TempDir dir;
  RedisServer redis(dir.path());
  PostgresServer postgres(dir.path());
  postgres.Start();
  std::printf("PostgreSQL with fsync=on, synchronous_commit=on; data in a temporary folder\n");

  // One after the other, so that the second finds the schema in place.
  std::vector<std::unique_ptr<StorageInstance>> instances;
  for (bool batching : {true, false}) {
    instances.push_back(std::make_unique<StorageInstance>(
        dir, redis, postgres, batching ? "storage-batched" : "storage-unbatched", batching));
    if (!instances.back()->WaitServing(60s)) {
      std::cerr << instances.back()->name() << " did not become SERVING:\n"
                << instances.back()->process().ReadLog();
      return 1;
    }
  }
  StorageInstance& batched = *instances[0];
  StorageInstance& unbatched = *instances[1];

  std::map<const StorageInstance*, Client> clients;
  for (auto* instance : {&batched, &unbatched}) clients.try_emplace(instance, instance->address());

  // Warm-up (connections, caches), not measured.
  Flags warm_up{.seconds = 1, .max_messages = 100};
  for (auto* instance : {&batched, &unbatched}) {
    CellResult r = clients.at(instance).Run("warmup-" + instance->name(), 4, warm_up);
    if (r.ok == 0 || r.errors > 0) {
      std::cerr << instance->name() << ": warm-up failed (" << r.ok << " ok, " << r.errors
                << " errors): " << r.first_error << "\n"
                << instance->process().ReadLog();
      return 1;
    }
  }

  std::printf("\n%11s | %18s | %7s | %7s | %10s | %20s | %7s | %7s | %23s\n", "concurrency",
              "batched stores/s", "p50 ms", "p99 ms", "per commit", "unbatched stores/s", "p50 ms",
              "p99 ms", "ratio batched/unbatched");
  std::printf("%s\n", std::string(152, '-').c_str());
  std::fflush(stdout);
  bool failed = false;
  std::vector<std::tuple<int, CpuShare, CpuShare>> cpu_rows;
  // Each cell alternates batched and unbatched in short rounds, so that whatever else the
  // machine does at the time weighs on both sides alike.
  Flags round = flags;
  round.seconds = flags.seconds / flags.rounds;
  round.max_messages = std::max(1L, flags.max_messages / flags.rounds);
  for (int concurrency : flags.concurrency) {
    std::string c = std::to_string(concurrency);
    CellTotal batched_total, unbatched_total;
    for (int r = 0; r < flags.rounds; ++r) {
      std::string tag = c + "r" + std::to_string(r);
      auto [messages_before, commits_before] = batched.Committed();
      CpuMeter batched_cpu(batched.process().pid(), postgres.pid());
      CellResult br = clients.at(&batched).Run("b" + tag, concurrency, round);
      batched_total.Add(std::move(br), batched_cpu.Spent());
      auto [messages_after, commits_after] = batched.Committed();
      batched_total.AddCommits(messages_after - messages_before, commits_after - commits_before);
      CpuMeter unbatched_cpu(unbatched.process().pid(), postgres.pid());
      CellResult ur = clients.at(&unbatched).Run("u" + tag, concurrency, round);
      unbatched_total.Add(std::move(ur), unbatched_cpu.Spent());
    }
    CellResult b = batched_total.Result();
    CellResult u = unbatched_total.Result();
    cpu_rows.push_back({concurrency, b.cpu, u.cpu});
    double ratio = u.per_second() > 0 ? b.per_second() / u.per_second() : 0;
    std::printf("%11d | %18.0f | %7.2f | %7.2f | %10.1f | %20.0f | %7.2f | %7.2f | %23.2f\n",
                concurrency, b.per_second(), b.p50_ms, b.p99_ms, b.per_commit, u.per_second(),
                u.p50_ms, u.p99_ms, ratio);
    std::fflush(stdout);
    for (const auto& [mode, r] : {std::pair{"batched", &b}, std::pair{"unbatched", &u}}) {
      if (r->errors > 0 || r->ok == 0) {
        failed = true;
        std::fprintf(stderr, "  concurrency %d %s: %ld ok, %ld failed; first failure: %s\n",
                     concurrency, mode, r->ok, r->errors, r->first_error.c_str());
      }
    }
  }
  std::printf(
      "\nCPU microseconds per stored message (client = this load generator), and the share of "
      "the machine's CPU left idle\n");
  std::printf("%11s | %28s | %6s | %28s | %6s\n", "concurrency", "batched client/storage/pg",
              "idle", "unbatched client/storage/pg", "idle");
  for (const auto& [concurrency, b, u] : cpu_rows) {
    std::printf("%11d | %8.0f %8.0f %8.0f   | %5.0f%% | %8.0f %8.0f %8.0f   | %5.0f%%\n",
                concurrency, b.client_us, b.storage_us, b.postgres_us, b.idle_percent(),
                u.client_us, u.storage_us, u.postgres_us, u.idle_percent());
  }

  // Acks: each side gets messages of its own users (stored through the batched instance, which
  // is faster and writes the same rows), then acknowledges them.
  const int ack_concurrency = *std::max_element(flags.concurrency.begin(), flags.concurrency.end());
  const long ack_messages =
      std::min(flags.max_messages, static_cast<long>(flags.seconds * 8000) + 1000);
  std::printf("\nAck: %d callers acking 1-2 ids a call, up to %ld messages or %g s per side\n",
              ack_concurrency, ack_messages, flags.seconds);
  std::printf("%18s | %7s | %7s | %10s | %20s | %7s | %7s | %23s\n", "batched acks/s", "p50 ms",
              "p99 ms", "per commit", "unbatched acks/s", "p50 ms", "p99 ms",
              "ratio batched/unbatched");
  std::map<const StorageInstance*, AckPhase> acks;
  for (auto* instance : {&batched, &unbatched}) {
    std::string tag = "ack-" + instance->name();
    auto ids = SeedForAcks(batched.address(), tag, ack_concurrency * 4, ack_messages);
    if (ids.empty()) {
      failed = true;
      std::fprintf(stderr, "  storing the messages to acknowledge failed\n");
      continue;
    }
    auto [calls_before, commits_before] = instance->Committed("ack_batch_size_calls");
    CpuMeter cpu(instance->process().pid(), postgres.pid());
    AckPhase r = RunAcks(instance->address(), tag, ids, ack_concurrency, flags.seconds);
    CpuShare spent = cpu.Spent();
    if (r.calls > 0) {
      double n = static_cast<double>(r.calls) / 1e6;
      r.cpu = {spent.client_us / n, spent.storage_us / n, spent.postgres_us / n, spent.idle_ticks,
               spent.total_ticks};
    }
    auto [calls_after, commits_after] = instance->Committed("ack_batch_size_calls");
    r.per_commit = commits_after > commits_before
                       ? (calls_after - calls_before) / (commits_after - commits_before)
                       : 0;
    if (r.errors > 0 || r.calls == 0) {
      failed = true;
      std::fprintf(stderr, "  ack %s: %ld ok, %ld failed; first failure: %s\n",
                   instance->name().c_str(), r.calls, r.errors, r.first_error.c_str());
    }
    acks[instance] = r;
  }
  {
    const AckPhase& b = acks[&batched];
    const AckPhase& u = acks[&unbatched];
    std::printf("%18.0f | %7.2f | %7.2f | %10.1f | %20.0f | %7.2f | %7.2f | %23.2f\n",
                b.per_second(), b.p50_ms, b.p99_ms, b.per_commit, u.per_second(), u.p50_ms,
                u.p99_ms, u.per_second() > 0 ? b.per_second() / u.per_second() : 0);
    std::printf(
        "CPU microseconds per Ack, client/storage/pg: batched %.0f / %.0f / %.0f (%.0f%% "
        "idle), unbatched %.0f / %.0f / %.0f (%.0f%% idle)\n",
        b.cpu.client_us, b.cpu.storage_us, b.cpu.postgres_us, b.cpu.idle_percent(), u.cpu.client_us,
        u.cpu.storage_us, u.cpu.postgres_us, u.cpu.idle_percent());
  }
  for (auto& instance : instances) {
    if (!instance->process().running()) {
      failed = true;
      std::cerr << instance->name() << " died:\n" << instance->process().ReadLog();
    }
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace dims::testing

int main(int argc, char** argv) {
  return dims::testing::RunBenchmark("storage_bench", dims::testing::Main, argc, argv);
}
