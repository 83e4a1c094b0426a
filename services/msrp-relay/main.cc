// dims-msrp-relay: the MSRP (RFC 4975) endpoint that carries push and large-message sessions.
#include <memory>
#include <vector>

#include "event_loop.h"
#include "log.h"
#include "msrp_listener.h"
#include "relay_metrics.h"
#include "relay_service.h"
#include "service_host.h"
#include "session_registry.h"

int main(int argc, char** argv) {
  namespace validate = dims::validate;
  auto host = dims::ServiceHost::Create(
      {.name = "msrp-relay",
       .description = "MSRP sessions for pushing deferred messages and large messages",
       .default_grpc_port = 50055,
       .default_metrics_port = 9105,
       .options =
           {dims::PeerOption("storage", "storage (inbound large messages)", 50053),
            {"msrp-listen", "127.0.0.1:2855",
             "MSRP TCP address for clients that connect to the relay (host:port; port 0 picks "
             "a free port)",
             validate::HostPortValueAllowZero()},
            {"msrp-advertised-host", "127.0.0.1", "host of the relay's MSRP URIs and SDP c= line",
             validate::NonEmpty()},
            dims::AdvertisedAddressOption("Relay"),
            {"io-threads", "2", "MSRP event loop threads", validate::IntInRange(1, 64)},
            {"max-sessions", "10000", "MSRP sessions this instance holds at most",
             validate::IntInRange(1, 1000000)},
            {"connect-timeout-ms", "30000",
             "how long a session may wait for ConnectSession and its connection",
             validate::IntInRange(100, 600000)},
            {"transaction-timeout-ms", "30000",
             "how long a SEND waits for its response (then FAILED, 408)",
             validate::IntInRange(10, 600000)},
            {"idle-timeout-ms", "120000",
             "a connected session without a Push stream this long is closed",
             validate::IntInRange(1000, 3600000)},
            {"chunk-bytes", "65536", "largest SEND chunk body",
             validate::IntInRange(1024, 1 << 20)},
            {"push-result-linger-ms", "10",
             "how long a push result waits for others to go back to delivery with it (0: each "
             "at once)",
             validate::IntInRange(0, 1000)},
            {"push-encapsulation", "message/sip",
             "Content-Type of the part that carries a pager-mode message",
             validate::OneOf({"message/sip", "message/sipfrag"})}}},
      argc, argv);
  const auto& config = host->config();
  auto storage = host->ConnectPeer("storage", "storage");  // large message mode (later)

  dims::relay::RelayMetrics metrics(host->metrics());
  dims::relay::SessionOptions session_options{
      .transaction_timeout = std::chrono::milliseconds(config.GetInt("transaction-timeout-ms")),
      .idle_timeout = std::chrono::milliseconds(config.GetInt("idle-timeout-ms")),
      .chunk_bytes = static_cast<size_t>(config.GetInt("chunk-bytes")),
      .result_linger = std::chrono::milliseconds(config.GetInt("push-result-linger-ms"))};
  // The client's requests are small (bodiless SENDs, REPORTs); SENDs with content get 403.
  session_options.limits.max_body_bytes = 64 * 1024;

  std::vector<std::unique_ptr<dims::relay::EventLoop>> loops;
  std::vector<dims::relay::EventLoop*> loop_pointers;
  for (long i = 0; i < config.GetInt("io-threads"); ++i) {
    loops.push_back(std::make_unique<dims::relay::EventLoop>("msrp-io-" + std::to_string(i)));
    loop_pointers.push_back(loops.back().get());
  }
  dims::relay::SessionRegistry registry(loop_pointers,
                                        static_cast<size_t>(config.GetInt("max-sessions")));
  auto connect_timeout = std::chrono::milliseconds(config.GetInt("connect-timeout-ms"));
  dims::relay::MsrpListener listener(loop_pointers.front(), registry, session_options, metrics,
                                     connect_timeout);
  auto msrp_listen = config.GetHostPort("msrp-listen");
  std::string error;
  if (!listener.Listen(msrp_listen.host, static_cast<uint16_t>(msrp_listen.port), &error)) {
    dims::log::Error("cannot listen for MSRP", {{"error", error}});
    return 1;
  }
  dims::log::Info("MSRP listening",
                  {{"address", dims::HostPort{msrp_listen.host, listener.port()}.ToString()}});

  dims::relay::RelayService relay(
      registry, session_options, metrics,
      {.instance_id = host->instance_id(),
       .relay_address = host->advertised_address(),  // handed out with each session
       .advertised_host = config.Get("msrp-advertised-host"),
       .msrp_port = listener.port(),
       .connect_timeout = connect_timeout,
       .pager_part = *dims::relay::ParsePagerPartType(config.Get("push-encapsulation"))});
  host->AddService(&relay, dims::v1::Relay::service_full_name());
  host->OnDrain([&] {
    listener.Stop();
    relay.Drain();
  });
  host->OnStop([&] {
    for (auto& loop : loops) loop->Stop();
  });
  return host->Run();
}
