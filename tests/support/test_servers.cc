#include "test_servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace dims::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "dims-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
  // Servers that run as another user (postgres) must be able to reach their folder.
  fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

namespace {

bool CanBind(int type, int port) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

std::set<int>& HandedOut() {
  static std::set<int> ports;
  return ports;
}

std::string PostgresBinDir() {
  if (const char* env = std::getenv("DIMS_PG_BINDIR")) return env;
  std::string best;
  int best_version = 0;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql")) {
    int v = std::atoi(entry.path().filename().c_str());
    if (v > best_version && fs::exists(entry.path() / "bin" / "postgres")) {
      best_version = v;
      best = (entry.path() / "bin").string();
    }
  }
  if (best.empty())
    throw std::runtime_error("no PostgreSQL server found under /usr/lib/postgresql");
  return best;
}

bool RunningAsRoot() { return geteuid() == 0; }

void ChownToUser(const fs::path& path, const std::string& user) {
  passwd* pw = getpwnam(user.c_str());
  if (!pw) throw std::runtime_error("no system user " + user);
  if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    throw std::runtime_error("chown " + path.string() + " failed");
  }
}

int RunToCompletion(Process::Options options) {
  Process p(std::move(options));
  auto status = p.Wait(120s);
  if (!status) throw std::runtime_error("timed out: " + p.ReadLog());
  return WIFEXITED(*status) ? WEXITSTATUS(*status) : 128;
}

// Claims `port` for this test process among all test processes of the machine: a port is
// free when bindable *and* not claimed by another test process that has not bound it yet (a
// service it is still starting). The claim is an flock on PortClaimFile(port), held until this
// process exits (the files stay, empty: at most one per port of the range).
bool ClaimPort(int port) {
  std::string path = PortClaimFile(port);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return true;  // no claims possible here: fall back to bindability alone
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return false;
  }
  return true;  // fd stays open: the claim lasts as long as this process
}

}  // namespace

fs::path PortClaimFile(int port) {
  static const fs::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    fs::path d = fs::path(tmp && *tmp ? tmp : "/tmp") / "dims-test-ports";
    mkdir(d.c_str(), 01777);
    chmod(d.c_str(), 01777);  // test processes of other users claim here too
    return d;
  }();
  return dir / std::to_string(port);
}

int FreePort() {
  // Random ports below Linux's ephemeral range (32768-60999), so that outgoing connections
  // never take them; claimed across the test processes running side by side (ctest -j).
  thread_local std::mt19937 random(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  std::uniform_int_distribution<int> range(20000, 32000);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = range(random);
    if (HandedOut().count(port)) continue;
    if (CanBind(SOCK_STREAM, port) && CanBind(SOCK_DGRAM, port) && ClaimPort(port)) {
      HandedOut().insert(port);
      return port;
    }
  }
  throw std::runtime_error("no free port");
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(50ms);
  }
}

Process::Process(Options options) : options_(std::move(options)) {
  std::optional<passwd> user;
  if (options_.run_as_user && RunningAsRoot()) {
    passwd* pw = getpwnam(options_.run_as_user->c_str());
    if (!pw) throw std::runtime_error("no system user " + *options_.run_as_user);
    user = *pw;
  }
  std::vector<std::string> argv_storage{options_.program};
  argv_storage.insert(argv_storage.end(), options_.args.begin(), options_.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The child's environment is built here, before fork: in the child of a threaded process only
  // async-signal-safe calls are allowed (setenv allocates, and another thread may have held the
  // allocator's lock at the fork: the child would hang before exec, silently).
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [k, v] : options_.env) env[k] = v;
  if (user) env["HOME"] = user->pw_dir;
  std::vector<std::string> env_storage;
  for (const auto& [k, v] : env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = open(options_.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (user) {
      if (setgroups(0, nullptr) != 0 || setgid(user->pw_gid) != 0 || setuid(user->pw_uid) != 0) {
        _exit(126);
      }
    }
    if (!options_.working_dir.empty() && chdir(options_.working_dir.c_str()) != 0) _exit(124);
    // A test that crashes must not leave servers behind (set after setuid, which clears it).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(125);  // the test died before we got here
    execve(options_.program.c_str(), argv.data(), envp.data());
    _exit(127);
  }
}

Process::~Process() {
  if (running()) {
    kill(pid_, SIGKILL);
    Wait(10s);
  }
}

bool Process::running() {
  if (status_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    return false;
  }
  return r == 0;
}

void Process::Signal(int signal) {
  if (running()) kill(pid_, signal);
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  WaitFor([&] { return !running(); }, timeout);
  return status_;
}

std::vector<std::string> SippClientArgs(int sip_port, const std::string& scenario_file,
                                        const std::string& transport, long calls, int limit) {
  return {"127.0.0.1:" + std::to_string(sip_port),
          "-sf",
          scenario_file,
          "-t",
          transport,
          "-i",
          "127.0.0.1",
          "-p",
          std::to_string(FreePort()),
          "-m",
          std::to_string(calls),
          "-l",
          std::to_string(limit),
          "-nostdin"};
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Process::ReadLog() const { return ReadFile(options_.log); }

std::string Process::LogTail(int lines) const {
  std::string log = ReadLog();
  size_t from = log.size();
  for (int n = 0; n < lines && from != 0 && from != std::string::npos; ++n) {
    from = log.rfind('\n', from - 1);
  }
  return log.substr(from == std::string::npos ? 0 : from);
}

RedisServer::RedisServer(const fs::path& dir) : port_(FreePort()) {
  fs::path redis_dir = dir / ("redis-" + std::to_string(port_));
  fs::create_directories(redis_dir);
  process_ = std::make_unique<Process>(Process::Options{
      .program = "/usr/bin/redis-server",
      .args = {"--port", std::to_string(port_), "--bind", "127.0.0.1", "--dir", redis_dir.string(),
               "--save", "", "--appendonly", "no", "--daemonize", "no"},
      .log = redis_dir / "redis.log",
  });
  bool up = WaitFor(
      [&] {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(port_));
        bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        close(fd);
        return ok;
      },
      10s);
  if (!up) throw std::runtime_error("redis did not start: " + process_->ReadLog());
}

RedisServer::~RedisServer() {
  process_->Signal(SIGTERM);
  process_->Wait(5s);
}

PostgresServer::PostgresServer(const fs::path& dir, int port)
    : dir_(dir / "postgres"), port_(port ? port : FreePort()) {
  fs::create_directories(dir_);
  std::optional<std::string> user;
  if (RunningAsRoot()) {
    user = "postgres";
    ChownToUser(dir_, *user);
  }
  int rc = RunToCompletion({
      .program = PostgresBinDir() + "/initdb",
      .args = {"-D", (dir_ / "data").string(), "-U", "dims", "--auth=trust", "--no-sync", "-E",
               "UTF8", "--locale=C"},
      .log = dir_ / "initdb.log",
      .run_as_user = user,
  });
  if (rc != 0) throw std::runtime_error("initdb failed: " + ReadFile(dir_ / "initdb.log"));
}

PostgresServer::~PostgresServer() { Stop(); }

std::string PostgresServer::dsn() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) +
         " dbname=dims user=dims connect_timeout=2";
}

void PostgresServer::Start() {
  if (process_) return;
  std::optional<std::string> user;
  if (RunningAsRoot()) user = "postgres";
  process_ = std::make_unique<Process>(Process::Options{
      .program = PostgresBinDir() + "/postgres",
      .args = {"-D", (dir_ / "data").string(), "-p", std::to_string(port_), "-k", dir_.string(),
               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "synchronous_commit=on"},
      .log = dir_ / "postgres.log",
      .run_as_user = user,
  });
  std::string admin = "host=127.0.0.1 port=" + std::to_string(port_) +
                      " dbname=postgres user=dims connect_timeout=2";
  bool up = WaitFor(
      [&] {
        try {
          pqxx::connection c(admin);
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      30s);
  if (!up) throw std::runtime_error("postgres did not start: " + process_->ReadLog());
  if (!database_created_) {
    pqxx::connection c(admin);
    pqxx::nontransaction tx(c);
    if (tx.exec("SELECT 1 FROM pg_database WHERE datname = 'dims'").empty()) {
      tx.exec("CREATE DATABASE dims");
    }
    database_created_ = true;
  }
}

void PostgresServer::Stop() {
  if (!process_) return;
  process_->Signal(SIGINT);  // fast shutdown
  process_->Wait(15s);
  process_.reset();
}

std::string BinaryPath(const std::string& name) {
  const char* dir = std::getenv("DIMS_BINARY_DIR");
#ifdef DIMS_BINARY_DIR_DEFAULT
  if (!dir) dir = DIMS_BINARY_DIR_DEFAULT;
#endif
  if (!dir) throw std::runtime_error("DIMS_BINARY_DIR is not set");
  for (const auto& sub : {"services/" + name.substr(5), std::string("services/common")}) {
    fs::path p = fs::path(dir) / sub / name;
    if (fs::exists(p)) return p.string();
  }
  throw std::runtime_error("binary not built: " + name);
}

std::optional<std::string> HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return std::nullopt;
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return std::nullopt;
  }
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) response.append(buf, static_cast<size_t>(n));
  close(fd);
  auto header_end = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || header_end == std::string::npos) return std::nullopt;
  if (response.substr(9, 3) != "200") return std::nullopt;
  return response.substr(header_end + 4);
}

std::optional<double> MetricSum(const std::string& page, const std::string& name,
                                const std::map<std::string, std::string>& labels) {
  std::istringstream in(page);
  std::string line;
  std::optional<double> sum;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    bool matches = true;
    for (const auto& [key, value] : labels) {
      matches = matches && line.find(key + "=\"" + value + "\"") != std::string::npos;
    }
    if (!matches) continue;
    // The value follows the name or the closing brace of the labels (a timestamp may follow).
    std::istringstream fields(next == '{' ? line.substr(line.rfind('}') + 1)
                                          : line.substr(name.size()));
    double value = 0;
    if (!(fields >> value)) continue;
    sum = sum.value_or(0) + value;
  }
  return sum;
}

bool IsValidPrometheusText(const std::string& text, std::string* error) {
  static const std::regex kHelp(R"(^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
  static const std::regex kType(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kSample(
      R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? )re"
      // Prometheus parses values with Go's ParseFloat: NaN and Inf in any case.
      R"re(([Nn][Aa][Nn]|[+-]?[Ii][Nn][Ff]|[+-]?[0-9.]+([eE][+-]?[0-9]+)?)( -?[0-9]+)?$)re");
  std::istringstream in(text);
  std::string line;
  int number = 0;
  int samples = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    bool ok = line.rfind("# HELP ", 0) == 0   ? std::regex_match(line, kHelp)
              : line.rfind("# TYPE ", 0) == 0 ? std::regex_match(line, kType)
              : line.rfind("#", 0) == 0       ? true
                                              : std::regex_match(line, kSample);
    if (!ok) {
      if (error) *error = "line " + std::to_string(number) + ": " + line;
      return false;
    }
    if (line[0] != '#') ++samples;
  }
  if (samples == 0) {
    if (error) *error = "no samples";
    return false;
  }
  return true;
}

}  // namespace dims::testing
