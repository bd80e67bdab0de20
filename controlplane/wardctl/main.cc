// wardctl: the operator's command-line client. Until wardgate-cp exists it talks to a
// dataplane's internal API directly: wardctl --dataplane SOCKET status [--json].
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "dataplane.grpc.pb.h"

namespace {

namespace pb = ::wardgate::dataplane::v1;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // the dataplane answered with an error or not at all
constexpr int kExitUsage = 2;

void Usage(FILE* to) {
  std::fprintf(to,
               "usage: wardctl --dataplane SOCKET status [--json]\n"
               "       wardctl --dataplane SOCKET events [--count N]\n"
               "\n"
               "  --dataplane SOCKET  unix socket of a wardgate-dp control API\n"
               "  status              version, uptime, generation, ports, workers and counters\n"
               "  events              stream events as EVE JSON lines (Ctrl-C to stop)\n"
               "  --json              print the status as JSON instead of tables\n"
               "  --timeout SECONDS   give up on the dataplane after this long (default 5)\n");
}

std::string Human(uint64_t v) {
  char buf[32];
  if (v >= 10'000'000'000ull) std::snprintf(buf, sizeof buf, "%.1fG", double(v) / 1e9);
  else if (v >= 10'000'000ull) std::snprintf(buf, sizeof buf, "%.1fM", double(v) / 1e6);
  else if (v >= 100'000ull) std::snprintf(buf, sizeof buf, "%.1fk", double(v) / 1e3);
  else std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v));
  return buf;
}

std::string RoleName(pb::PortRole r) {
  switch (r) {
    case pb::PORT_ROLE_DEVICE: return "device";
    case pb::PORT_ROLE_NETWORK: return "network";
    default: return "?";
  }
}

void PrintTables(const pb::GetStatusResponse& s) {
  std::printf("wardgate-dp %s  boot %s  up %.1fs  generation %llu\n\n", s.version().c_str(),
              s.boot_id().c_str(), double(s.uptime_ms()) / 1000.0,
              static_cast<unsigned long long>(s.generation_id()));
  std::printf("%-4s %-18s %-8s %-10s %-5s %-7s %10s %10s %10s %10s %8s %8s %8s\n", "PORT", "NAME", "ROLE",
              "PAIR", "LINK", "QUEUES", "RX_PKTS", "RX_BYTES", "TX_PKTS", "TX_BYTES", "MISSED", "NOMBUF",
              "TX_FULL");
  for (const auto& p : s.ports()) {
    const auto& c = p.counters();
    std::printf("%-4u %-18s %-8s %-10s %-5s %-7u %10s %10s %10s %10s %8s %8s %8s\n", p.port_id(),
                p.name().c_str(), RoleName(p.role()).c_str(), p.pair().c_str(), p.link_up() ? "up" : "down",
                p.queues(), Human(c.rx_packets()).c_str(), Human(c.rx_bytes()).c_str(),
                Human(c.tx_packets()).c_str(), Human(c.tx_bytes()).c_str(), Human(c.rx_missed()).c_str(),
                Human(c.rx_nombuf()).c_str(), Human(c.tx_full()).c_str());
  }
  std::printf("\n%-6s %-5s %-16s %10s %10s %10s %10s %10s %9s\n", "WORKER", "LCORE", "RX_QUEUES", "RX_PKTS",
              "TX_PKTS", "BUSY", "IDLE", "SLEEPS", "MALFORMED");
  for (const auto& w : s.workers()) {
    std::string queues;
    for (const auto& q : w.rx_queues()) queues += (queues.empty() ? "" : ",") + q;
    std::printf("%-6u %-5u %-16s %10s %10s %10s %10s %10s %9s\n", w.worker_id(), w.lcore(), queues.c_str(),
                Human(w.rx_packets()).c_str(), Human(w.tx_packets()).c_str(), Human(w.busy_polls()).c_str(),
                Human(w.idle_polls()).c_str(), Human(w.sleeps()).c_str(), Human(w.malformed()).c_str());
  }
  auto reasons = [](const char* title, const auto& list) {
    bool any = false;
    for (const auto& r : list) {
      if (r.count() == 0) continue;
      if (!any) std::printf("\n%s\n", title);
      any = true;
      std::printf("  %-28s %12llu\n", r.reason().c_str(), static_cast<unsigned long long>(r.count()));
    }
  };
  reasons("MALFORMED (forwarded, by reason)", s.malformed());
  reasons("DROPS (by reason)", s.drops());
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket, command;
  bool json = false;
  int timeout_s = 5;
  long count = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "wardctl: %s needs a value\n", arg.c_str());
        std::exit(kExitUsage);
      }
      return argv[++i];
    };
    try {
      if (arg == "--dataplane") socket = value();
      else if (arg == "--json") json = true;
      else if (arg == "--timeout") timeout_s = std::stoi(value());
      else if (arg == "--count") count = std::stol(value());
      else if (arg == "-h" || arg == "--help") { Usage(stdout); return kExitOk; }
      else if (command.empty() && arg[0] != '-') command = arg;
      else {
        std::fprintf(stderr, "wardctl: unknown argument '%s'\n", arg.c_str());
        Usage(stderr);
        return kExitUsage;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "wardctl: %s needs a number\n", arg.c_str());
      return kExitUsage;
    }
  }
  if (socket.empty() || (command != "status" && command != "events")) {
    Usage(stderr);
    return kExitUsage;
  }

  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  auto stub = pb::Dataplane::NewStub(channel);

  if (command == "status") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
    pb::GetStatusResponse status;
    const auto rc = stub->GetStatus(&ctx, pb::GetStatusRequest(), &status);
    if (!rc.ok()) {
      std::fprintf(stderr, "wardctl: dataplane at %s: %s\n", socket.c_str(), rc.error_message().c_str());
      return kExitFailure;
    }
    if (json) {
      std::string out;
      google::protobuf::util::JsonPrintOptions opts;
      opts.always_print_primitive_fields = true;
      opts.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(status, &out, opts);
      std::cout << out << std::endl;
    } else {
      PrintTables(status);
    }
    return kExitOk;
  }

  grpc::ClientContext ctx;
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s))) {
    std::fprintf(stderr, "wardctl: dataplane at %s: not reachable\n", socket.c_str());
    return kExitFailure;
  }
  auto reader = stub->WatchEvents(&ctx, pb::WatchEventsRequest());
  pb::Event e;
  long seen = 0;
  while ((count < 0 || seen < count) && reader->Read(&e)) {
    std::cout << e.eve_json() << std::endl;
    ++seen;
  }
  if (count >= 0 && seen >= count) ctx.TryCancel();
  const auto rc = reader->Finish();
  if (!rc.ok() && rc.error_code() != grpc::StatusCode::CANCELLED) {
    std::fprintf(stderr, "wardctl: event stream: %s\n", rc.error_message().c_str());
    return kExitFailure;
  }
  return kExitOk;
}
