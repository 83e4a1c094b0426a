// dims-sip-edge: the only SIP speaker of DIMS (Sofia-SIP), and the EdgeControl gRPC API through
// which other services send requests towards clients.
#include <algorithm>
#include <iostream>
#include <set>
#include <string>

#include "edge_control_service.h"
#include "log.h"
#include "message_handler.h"
#include "publish_handler.h"
#include "redis_key_gauge.h"
#include "register_handler.h"
#include "service_host.h"
#include "sip_stack.h"
#include "version.h"
#include "worker_pool.h"

int main(int argc, char** argv) {
  namespace validate = dims::validate;
  auto
      host =
          dims::ServiceHost::Create(
              {.name = "sip-edge",
               .description = "SIP edge (Sofia-SIP) and the EdgeControl gRPC API",
               .default_grpc_port = 50051,
               .default_metrics_port = 9101,
               .options =
                   {
                       {"sip-listen", "127.0.0.1:5060", "SIP address, UDP and TCP (host:port)",
                        validate::HostPortValue()},
                       {"domains", "dims.test", "SIP domains DIMS serves (comma-separated)",
                        validate::DomainList()},
                       dims::RedisOption("registrations and subscriptions"),
                       dims::PeerOption("settings", "settings", 50052),
                       dims::PeerOption("storage", "storage", 50053),
                       dims::PeerOption("delivery", "delivery", 50054),
                       dims::AdvertisedAddressOption("EdgeControl"),
                       {"registrar-mode", "true",
                        "accept REGISTER from clients directly (false: only third-party REGISTER "
                        "from "
                        "the core)",
                        validate::OneOf({"true", "false"})},
                       {"trusted-core-addresses", "",
                        "IP addresses of the SIP/IP core whose REGISTERs are third-party "
                        "registrations "
                        "(comma-separated)",
                        nullptr},
                       {"register-min-expires-seconds", "60",
                        "shortest registration interval accepted (423 below it)",
                        validate::IntInRange(1, 86400)},
                       {"register-max-expires-seconds", "3600",
                        "longest registration interval granted (longer ones are lowered)",
                        validate::IntInRange(1, 7 * 86400)},
                       {"register-default-expires-seconds", "3600",
                        "interval granted to a Contact without expires",
                        validate::IntInRange(1, 86400)},
                       {"subscribe-min-expires-seconds", "60",
                        "shortest message-summary subscription accepted (423 below it)",
                        validate::IntInRange(1, 86400)},
                       {"subscribe-max-expires-seconds", "3600",
                        "longest message-summary subscription granted (longer ones are lowered)",
                        validate::IntInRange(1, 86400)},
                       {"push-session-expires-seconds", "1800",
                        "session interval of a push INVITE (RFC 4028; DIMS refreshes)",
                        validate::IntInRange(90, 86400)},
                       {"message-forward-timeout-ms", "3000",
                        "how long a MESSAGE forwarded to a registered client may wait for its "
                        "answer "
                        "before it is stored instead",
                        validate::IntInRange(100, 4000)},
                       {"barred-message-status", "403",
                        "answer to a MESSAGE whose recipient bars pager-mode IM (480 hides the "
                        "setting)",
                        validate::OneOf({"403", "480"})},
                   }},
              argc, argv);
  const auto& config = host->config();

  auto sip_listen = config.GetHostPort("sip-listen");
  // PUBLISH takes the settings packages, SUBSCRIBE message-summary; the stack answers 489 to
  // anything else.
  const std::string allowed_events = "poc-settings, im-settings";
  dims::edge::SipMetrics sip_metrics(host->metrics());
  dims::edge::SipStack sip({.host = sip_listen.host,
                            .port = sip_listen.port,
                            .server_header = dims::ReleaseToken(),
                            .allowed_events = allowed_events + ", message-summary",
                            .metrics = &sip_metrics});
  auto domains = config.GetList("domains");
  auto settings = host->ConnectPeer("settings", "settings");
  dims::edge::PublishHandler publish(
      sip, settings, std::set<std::string>(domains.begin(), domains.end()), allowed_events);
  sip.OnPublish([&publish](const dims::edge::IncomingPublish& p) { publish.Handle(p); });

  auto redis = host->ConnectRedis(8);
  // Blocking Redis work of the SIP handlers (registrations, MESSAGE recipients' lookups).
  dims::WorkerPool redis_workers("edge-redis", 4, 10000);
  std::string advertised = host->advertised_address();
  auto trusted = config.GetList("trusted-core-addresses");
  dims::edge::RegisterHandler registrar(
      sip, *redis, redis_workers,
      {.domains = std::set<std::string>(domains.begin(), domains.end()),
       .limits = {.min_expires = static_cast<int>(config.GetInt("register-min-expires-seconds")),
                  .max_expires = static_cast<int>(config.GetInt("register-max-expires-seconds")),
                  .default_expires =
                      static_cast<int>(config.GetInt("register-default-expires-seconds"))},
       .edge_instance_id = host->instance_id(),
       .edge_address = advertised,
       .producer = "sip-edge/" + host->instance_id(),
       .trusted_core = std::set<std::string>(trusted.begin(), trusted.end()),
       .registrar_mode = config.Get("registrar-mode") == "true"});
  sip.OnRegister([&registrar](const dims::edge::IncomingRegister& r) { registrar.Handle(r); });
  auto storage = host->ConnectPeer("storage", "storage");
  dims::edge::MessageHandler messages(
      sip, *redis, redis_workers, settings, storage,
      {.domains = std::set<std::string>(domains.begin(), domains.end()),
       .policy = {.barred_status = static_cast<int>(config.GetInt("barred-message-status")),
                  .edge_instance_id = host->instance_id()},
       .forward_timeout = std::chrono::milliseconds(config.GetInt("message-forward-timeout-ms"))},
      host->metrics());
  sip.OnMessage([&messages](const dims::edge::IncomingMessage& m) { messages.Handle(m); });
  dims::edge::SubscriptionLimits subscription_limits{
      .min_expires = static_cast<int>(config.GetInt("subscribe-min-expires-seconds")),
      .max_expires = static_cast<int>(config.GetInt("subscribe-max-expires-seconds"))};
  if (subscription_limits.min_expires > subscription_limits.max_expires) {
    std::cerr << "dims-sip-edge: configuration error: expected subscribe-min-expires-seconds <= "
                 "subscribe-max-expires-seconds\n";
    return 2;
  }
  // RFC 3842's default interval, within the limits granted.
  subscription_limits.default_expires =
      std::clamp(subscription_limits.default_expires, subscription_limits.min_expires,
                 subscription_limits.max_expires);
  dims::edge::SummarySubscriptions subscriptions(
      sip, *redis, redis_workers, storage,
      {.domains = std::set<std::string>(domains.begin(), domains.end()),
       .limits = subscription_limits,
       .edge_instance_id = host->instance_id(),
       .edge_address = advertised});
  sip.OnSubscribe(
      [&subscriptions](const dims::edge::IncomingSubscribe& s) { subscriptions.Handle(s); });
  sip.OnSubscriptionChange(
      [&subscriptions](const dims::edge::SubscriptionChange& c) { subscriptions.OnChange(c); });
  dims::RedisKeyGauge registrations(
      *redis, "dims:reg:*",
      host->metrics()
          .GaugeFamily("registrations",
                       "Users with at least one live binding (counted every 15 s).")
          .Add({}),
      std::chrono::seconds(15));
  // Authentication (digest, trusted identities from the core) is a later issue.
  if (config.Get("registrar-mode") == "true") {
    dims::log::Warn("registrar mode trusts its network: REGISTER is not authenticated");
  }
  std::string error;
  if (!sip.Start(&error)) {
    dims::log::Error("cannot start SIP", {{"error", error}});
    return 1;
  }
  dims::log::Info("SIP listening", {{"address", sip_listen.ToString()}, {"transports", "udp,tcp"}});

  host->AddDependency("sip", [&] { return sip.running(); });
  auto delivery = host->ConnectPeer("delivery", "delivery");

  dims::edge::EdgeControlService edge_control(
      sip, subscriptions,
      {.default_from = "<sip:dims@" + domains.front() + ">",
       .push_contact = "<sip:dims@" + sip_listen.ToString() + ">;+g.oma.sip-im;automata",
       .push_session_expires = static_cast<int>(config.GetInt("push-session-expires-seconds"))});
  host->AddService(&edge_control, dims::v1::EdgeControl::service_full_name());
  host->OnDrain([&] { sip.Stop(); });
  host->OnStop([&] {
    redis_workers.Stop();
    registrations.Stop();
  });
  return host->Run();
}
