// The Sofia-SIP user agent of the edge: owns the su_root loop on its own thread (every nua
// call happens there) and the UDP and TCP listeners. Until the SIP features land (issues #4,
// #5) every request the application must answer gets 501 Not Implemented; the stack itself
// answers OPTIONS.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace dims::edge {

class SipStack {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 5060;
    std::string server_header;  // release version token (Server header of every answer)
  };

  explicit SipStack(Options options);
  ~SipStack();
  SipStack(const SipStack&) = delete;
  SipStack& operator=(const SipStack&) = delete;

  // Starts the loop thread and returns once the listeners are bound; false (with *error) when
  // they could not be.
  bool Start(std::string* error);
  // Shuts the stack down (bounded by a few seconds) and joins the loop thread.
  void Stop();
  bool running() const { return running_; }

  // Called on the loop thread only; public for the C callbacks.
  struct Loop;

 private:
  void Run();

  Options options_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable started_cv_;
  bool started_ = false;
  std::string start_error_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_requested_{false};
};

}  // namespace dims::edge
