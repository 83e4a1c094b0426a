// One push of a user's deferred messages (DESIGN flow 5; seeds 001, 002, 004): a session at
// msrp-relay, the INVITE through the edge holding the client, the client's SDP answer back to
// the relay, then the user's messages streamed from storage through the relay (one MSRP SEND
// each), every message the client confirmed acknowledged to storage, and BYE. Nothing is held
// back in memory: storage's stream is read only as fast as the relay takes messages, and the
// relay takes the next one only when the client has answered enough of the previous ones.
//
// A message leaves the store only after the client's MSRP 200 for it. Whatever fails (INVITE
// refused, MSRP connection lost, a SEND timed out, a peer service gone), the messages not
// confirmed stay stored for the next attempt; with one SEND in flight (the default window) at
// most that one can reach the client twice, with the same MSRP Message-ID.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dims/v1/edge_control.grpc.pb.h"
#include "dims/v1/relay.grpc.pb.h"
#include "dims/v1/storage.grpc.pb.h"
#include "grpc_client.h"
#include "metrics.h"

namespace dims::delivery {

struct PushOptions {
  std::chrono::milliseconds relay_timeout{5000};    // OpenSession, ConnectSession, CloseSession
  std::chrono::milliseconds invite_timeout{40000};  // the INVITE until its final answer
  std::chrono::milliseconds bye_timeout{10000};     // EndSession
  std::chrono::seconds max_duration{600};           // the whole transfer
  uint32_t window = 1;                              // SENDs awaiting their answer at once
  // How long confirmed messages wait for others to join their Ack (each Ack is a database
  // transaction and a store_changed event, evaluated for a subscriber): up to this much more time
  // until they leave the store, and as many more messages sent again if delivery dies meanwhile.
  std::chrono::milliseconds ack_linger{20};
  std::chrono::milliseconds keep_alive_every{10000};
  std::string session_label = "all deferred messages sent";
};

// Where the push goes.
struct PushTarget {
  std::string aor;
  dims::v1::Binding client;  // the IM client's registered contact and the edge holding it
  std::string run_id;
  uint32_t backlog = 0;  // messages stored when the push was decided (for the metric)
};

// What became of a push.
struct PushReport {
  enum class Stage { kOpen, kInvite, kConnect, kTransfer, kDone };
  Stage stage = Stage::kDone;  // where it failed, kDone when nothing failed
  grpc::Status status;         // the failure that decided it
  dims::v1::ErrorDetail detail;
  dims::v1::SipOutcome sip;  // the INVITE's final answer (or the failure's)
  uint32_t msrp_status = 0;  // the MSRP status that decided a failed message, if any
  uint32_t sent = 0;         // messages handed to the relay
  uint32_t delivered = 0;    // confirmed by the client and acknowledged to storage
  uint32_t rejected = 0;     // refused by the client with an MSRP error status
  // Confirmed by the client, but their Ack failed (storage away): still stored, to be removed
  // before anything is sent again (Acknowledge), or the client would get them twice.
  std::vector<std::string> unacknowledged;
  bool stopped = false;  // keep_alive said stop (the lease was lost)

  bool ok() const { return stage == Stage::kDone && status.ok() && delivered == sent; }
};

class Pusher {
 public:
  Pusher(std::shared_ptr<grpc::Channel> relay, std::shared_ptr<grpc::Channel> storage,
         StubsByAddress<dims::v1::EdgeControl>& edges, MetricsRegistry& metrics,
         PushOptions options);

  // Runs one push on the calling thread (it blocks for the push's length). `keep_alive` is
  // called every keep_alive_every from another thread while the push runs; when it returns
  // false the push stops at once (the caller's lease is gone) and the report says `stopped`.
  PushReport Push(const PushTarget& target, const std::function<bool()>& keep_alive);

  // Removes from the store messages an earlier push had confirmed but could not acknowledge
  // (PushReport::unacknowledged), with the retries of a push's Acks. `message_ids` keeps those
  // still stored when it fails.
  grpc::Status Acknowledge(const PushTarget& target, std::vector<std::string>& message_ids);

 private:
  struct Run;
  bool OpenRelaySession(Run& run);
  bool Invite(Run& run);
  bool ConnectRelaySession(Run& run);
  void Transfer(Run& run);
  void Finish(Run& run);

  std::unique_ptr<dims::v1::Relay::Stub> relay_;
  StubsByAddress<dims::v1::Relay> relays_;
  std::unique_ptr<dims::v1::Storage::Stub> storage_;
  StubsByAddress<dims::v1::EdgeControl>& edges_;
  PushOptions options_;
  prometheus::Family<prometheus::Counter>& sessions_;
  // Per outcome, resolved once: counted for every message.
  prometheus::Counter& messages_sent_;
  prometheus::Counter& messages_delivered_;
  prometheus::Counter& messages_rejected_;
  prometheus::Counter& messages_failed_;
  prometheus::Counter& bytes_;
  prometheus::Histogram& duration_;
  prometheus::Histogram& backlog_;
};

}  // namespace dims::delivery
