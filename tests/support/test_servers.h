// The one way tests start real servers: Redis, PostgreSQL and DIMS service binaries, each in a
// temporary folder, on free loopback ports, stopped by PID when the test ends.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dims::testing {

// A temporary folder removed (with everything in it) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A loopback port that is free for both TCP and UDP right now, and claimed against the other
// test processes of the machine until this one exits.
int FreePort();
// The file whose flock claims `port` (FreePort holds it).
std::filesystem::path PortClaimFile(int port);

// Polls `condition` every 50 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A child process; killed (SIGKILL) and reaped on destruction if still running.
class Process {
 public:
  struct Options {
    std::string program;
    std::vector<std::string> args;
    std::map<std::string, std::string> env;  // added to the inherited environment
    std::filesystem::path log;               // stdout and stderr go here
    std::optional<std::string> run_as_user;  // switch to this user when running as root
    std::filesystem::path working_dir;       // empty: the test's own
  };

  explicit Process(Options options);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int signal);
  // Waits for the process to end; returns its wait status, or nothing on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string ReadLog() const;
  // The last `lines` lines of the log, for failure messages.
  std::string LogTail(int lines) const;

 private:
  Options options_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

class RedisServer {
 public:
  explicit RedisServer(const std::filesystem::path& dir);
  ~RedisServer();
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  std::unique_ptr<Process> process_;
};

// A private PostgreSQL cluster (initdb on construction). When the tests run as root, the
// cluster runs as the "postgres" system user, because PostgreSQL refuses to run as root.
class PostgresServer {
 public:
  explicit PostgresServer(const std::filesystem::path& dir, int port = 0);
  ~PostgresServer();

  // Starts the server and creates the "dims" database on first start.
  void Start();
  void Stop();
  bool running() const { return process_ != nullptr; }
  int port() const { return port_; }
  std::string dsn() const;
  // The postmaster's PID (its backends are its children); -1 when stopped.
  pid_t pid() const { return process_ ? process_->pid() : -1; }

 private:
  std::filesystem::path dir_;
  int port_;
  bool database_created_ = false;
  std::unique_ptr<Process> process_;
};

// sipp's arguments as a client on loopback, from a free local port: `calls` calls of
// `scenario_file` to 127.0.0.1:`sip_port` over `transport` (sipp's -t: "u1", "t1"), at most
// `limit` at once. Callers append the rest (rate, timeouts, traces).
std::vector<std::string> SippClientArgs(int sip_port, const std::string& scenario_file,
                                        const std::string& transport, long calls, int limit);

// The whole content of a file; empty when it cannot be read.
std::string ReadFile(const std::filesystem::path& path);

// Where the build put a binary (set by CMake for the test executables).
std::string BinaryPath(const std::string& name);

// Minimal HTTP/1.0 GET over loopback; returns the body, or nothing when the status is not 200.
std::optional<std::string> HttpGet(int port, const std::string& path);

// Checks Prometheus text exposition format 0.0.4; on failure says which line and why.
bool IsValidPrometheusText(const std::string& text, std::string* error);

// Sum of every sample of a metric on a Prometheus text page whose labels include all of
// `labels` (e.g. {{"result", "sent"}}; none: any labels); nullopt when the page has none.
std::optional<double> MetricSum(const std::string& page, const std::string& name,
                                const std::map<std::string, std::string>& labels = {});

}  // namespace dims::testing
