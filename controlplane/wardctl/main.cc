// wardctl: the operator's command-line client. Until wardgate-cp exists it talks to a
// dataplane's internal API directly: wardctl --dataplane SOCKET status [--json].
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <fstream>
#include <map>
#include <sstream>

#include "controlplane/wardctl/segmentation.h"
#include "dataplane.grpc.pb.h"
#include "rules/files.h"
#include "rules/ruleset.h"
#include "rules/matcher.h"

namespace {

namespace pb = ::wardgate::dataplane::v1;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // the dataplane answered with an error or not at all
constexpr int kExitUsage = 2;

void Usage(FILE* to) {
  std::fprintf(to,
               "usage: wardctl --dataplane SOCKET status [--json]\n"
               "       wardctl --dataplane SOCKET events [--count N]\n"
               "       wardctl --dataplane SOCKET rules load FILE [--version LABEL] [--lenient]\n"
               "       wardctl --dataplane SOCKET quarantine DEVICE [--level isolate|contain] [--reason TEXT]\n"
               "                                  [--ttl DURATION] [--actor NAME] [--json]\n"
               "       wardctl --dataplane SOCKET release DEVICE [--reason TEXT] [--json]\n"
               "       wardctl --dataplane SOCKET quarantines|devices [--json]\n"
               "       wardctl --dataplane SOCKET device set MAC [--name N] [--class C] [--criticality C] [--zone Z]\n"
               "       wardctl rules check [--lenient] [--var NAME=VALUE]... [--overrides FILE]...\n"
               "                           [--threshold-file FILE] [--cache-dir DIR] FILE...\n"
               "\n"
               "  --dataplane SOCKET  unix socket of a wardgate-dp control API\n"
               "  status              version, uptime, generation, ports, workers and counters\n"
               "  events              stream events as EVE JSON lines (Ctrl-C to stop)\n"
               "  --json              print the status as JSON instead of tables\n"
               "  --timeout SECONDS   give up on the dataplane after this long (default 5)\n"
               "  rules check         parse and compile rule files; errors as file:line: sid N: ...\n"
               "  --overrides FILE    local overrides (YAML) applied on top of the rule files\n"
               "  --threshold-file F  Suricata threshold.config to check with the rules\n"
               "  --cache-dir DIR     reuse/store compiled databases there (default: none)\n"
               "  rules load          replace the dataplane's running rule set (hot reload)\n"
               "  quarantine DEVICE   cut a device off (DEVICE: MAC, IP or inventory id 'id:N'); returns\n"
               "                      when every worker enforces it. --level: isolate (remediation only)\n"
               "                      or contain (established flows and allowed peers); default: the\n"
               "                      device's (life-critical: contain). --ttl: 90s, 15m, 2h, 1d\n"
               "  release DEVICE      end a quarantine\n"
               "  quarantines         the quarantines in force\n"
               "  devices             the device inventory (learned and configured)\n"
               "  device set MAC      add or replace a device's static record (name, class, criticality:\n"
               "                      life-critical|clinical|general, zone); new flows resolve zones with it\n");
}

// `wardctl rules check`: what a rule author runs before pushing. Exit 1 on any error.
struct RulesCheckOptions {
  std::vector<std::string> files;
  bool lenient = false;
  std::map<std::string, std::string> vars;
  std::vector<std::string> overrides;
  std::string threshold_file;
  std::string cache_dir;
};

int RulesCheck(const RulesCheckOptions& o) {
  namespace r = wardgate::rules;
  r::RuleSetSources src;
  src.files = o.files;
  src.options.lenient = o.lenient;
  src.options.variables = o.vars;
  src.override_files = o.overrides;
  src.threshold_file = o.threshold_file;
  src.cache_dir = o.cache_dir;
  const r::LoadedRuleSet loaded = r::LoadRuleSet(src);
  const auto& set = loaded.set;
  const auto& files = o.files;
  for (const auto& e : loaded.errors) std::printf("%s\n", e.c_str());
  for (const auto& w : loaded.warnings) std::printf("warning: %s\n", w.c_str());
  if (!loaded.cache_error.empty()) std::printf("warning: cache %s: %s\n", o.cache_dir.c_str(), loaded.cache_error.c_str());
  std::string compile_error;
  std::shared_ptr<const r::CompiledRules> compiled = loaded.compiled;
  // Compile what parsed even when other rules failed, so the author sees every error
  // (pcre patterns PCRE2 refuses are found only here) in one run.
  if (!compiled && !set.rules.empty()) {
    compiled = r::CompiledRules::Compile(set, &compile_error);
    if (std::find(loaded.errors.begin(), loaded.errors.end(), compile_error) != loaded.errors.end()) {
      compile_error.clear();  // printed already
    }
  }
  if (!compile_error.empty()) std::printf("%s\n", compile_error.c_str());
  const bool lenient = o.lenient;

  std::map<std::string, int> by_action, keywords;
  for (const auto& rule : set.rules) {
    ++by_action[r::ActionName(rule.header.action)];
    std::map<std::string, bool> used;
    for (const auto& d : rule.detects) {
      switch (d.kind) {
        case r::Detect::Kind::kContent: {
          used["content"] = true;
          const auto& c = d.content;
          if (c.nocase) used["nocase"] = true;
          if (c.offset) used["offset"] = true;
          if (c.depth) used["depth"] = true;
          if (c.distance) used["distance"] = true;
          if (c.within) used["within"] = true;
          if (c.startswith) used["startswith"] = true;
          if (c.endswith) used["endswith"] = true;
          if (c.fast_pattern) used["fast_pattern"] = true;
          break;
        }
        case r::Detect::Kind::kPcre: used["pcre"] = true; break;
        case r::Detect::Kind::kIsDataAt: used["isdataat"] = true; break;
        case r::Detect::Kind::kByteTest: used["byte_test"] = true; break;
        case r::Detect::Kind::kByteJump: used["byte_jump"] = true; break;
        case r::Detect::Kind::kByteExtract: used["byte_extract"] = true; break;
      }
    }
    if (rule.flow) used["flow"] = true;
    if (rule.dsize) used["dsize"] = true;
    if (rule.itype) used["itype"] = true;
    if (rule.icode) used["icode"] = true;
    if (rule.icmp_id) used["icmp_id"] = true;
    if (rule.icmp_seq) used["icmp_seq"] = true;
    if (rule.ttl) used["ttl"] = true;
    if (rule.bsize) used["bsize"] = true;
    if (rule.tcp_flags) used["flags"] = true;
    if (rule.ip_proto) used["ip_proto"] = true;
    if (rule.sameip) used["sameip"] = true;
    if (!rule.flowbits.empty() || rule.noalert) used["flowbits"] = true;
    if (rule.threshold) used["threshold"] = true;
    if (rule.detection_filter) used["detection_filter"] = true;
    if (!rule.classtype.empty()) used["classtype"] = true;
    if (!rule.references.empty()) used["reference"] = true;
    if (!rule.metadata.empty()) used["metadata"] = true;
    for (const auto& [k, _] : used) ++keywords[k];
  }
  std::printf("\n%zu rule(s) loaded of %d read from %zu file(s); %zu error(s)\n", set.rules.size(), set.rules_seen,
              files.size(), loaded.errors.size() + (compile_error.empty() ? 0 : 1));
  std::printf("disabled: %zu (commented out in the files or by overrides)\n", set.disabled.size());
  if (!o.overrides.empty()) {
    std::printf("overrides: %zu entr%s; enabled %zu, disabled %zu, action changed %zu\n", loaded.overrides.entries.size(),
                loaded.overrides.entries.size() == 1 ? "y" : "ies", loaded.overrides.enabled, loaded.overrides.disabled,
                loaded.overrides.action_changed);
  }
  std::printf("by action:");
  for (const auto& [a, n] : by_action) std::printf("  %s %d", a.c_str(), n);
  std::printf("\nkeywords (rules using them):");
  for (const auto& [k, n] : keywords) std::printf("  %s %d", k.c_str(), n);
  std::printf("\n");
  if (!set.skipped_by_keyword.empty()) {
    std::printf("skipped (lenient), by unsupported keyword:");
    for (const auto& [k, n] : set.skipped_by_keyword) std::printf("  %s %d", k.c_str(), n);
    std::printf("\n");
  }
  if (compiled) {
    const auto& st = compiled->stats();
    std::printf("compiled: %zu prefilter pattern(s) (%zu of them pcre); without one: %zu rule(s) found by address, "
                "%zu by port, %zu checked on every packet; %zu database(s) of %zu bytes, %.1f ms\n",
                st.prefilter_patterns, st.pcre_prefilters, st.address_indexed, st.port_indexed, st.always_candidates,
                st.databases, st.database_bytes, st.compile_ms);
    if (!o.cache_dir.empty()) {
      std::printf("cache: %zu of %zu database(s) loaded from %s, %llu stored\n", st.databases_from_cache, st.databases,
                  o.cache_dir.c_str(), static_cast<unsigned long long>(loaded.cache.stores));
    }
  }
  // Errors of the overrides or threshold file fail in every mode; rule errors are
  // reported but tolerated with --lenient.
  const bool other_errors = loaded.errors.size() > set.errors.size();
  const bool failed = !compile_error.empty() || other_errors || (!set.errors.empty() && !lenient) || !compiled;
  return failed ? kExitFailure : kExitOk;
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
  std::string socket, command, version;
  std::vector<std::string> words;  // positional arguments after the command
  std::map<std::string, std::string> vars;
  bool json = false;
  bool lenient = false;
  RulesCheckOptions check;
  wardctl::SegmentationArgs seg;
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
      else if (arg == "--version") version = value();
      else if (arg == "--lenient") lenient = true;
      else if (arg == "--level") seg.level = value();
      else if (arg == "--reason") seg.reason = value();
      else if (arg == "--ttl") seg.ttl = value();
      else if (arg == "--actor") seg.actor = value();
      else if (arg == "--name") seg.name = value();
      else if (arg == "--class") seg.device_class = value();
      else if (arg == "--criticality") seg.criticality = value();
      else if (arg == "--zone") seg.zone = value();
      else if (arg == "--overrides") check.overrides.push_back(value());
      else if (arg == "--threshold-file") check.threshold_file = value();
      else if (arg == "--cache-dir") check.cache_dir = value();
      else if (arg == "--var") {
        const auto v = value();
        const auto eq = v.find('=');
        if (eq == std::string::npos) throw std::invalid_argument("--var");
        vars[v.substr(0, eq)] = v.substr(eq + 1);
      }
      else if (arg == "-h" || arg == "--help") { Usage(stdout); return kExitOk; }
      else if (command.empty() && arg[0] != '-') command = arg;
      else if (!command.empty() && arg[0] != '-') words.push_back(arg);
      else {
        std::fprintf(stderr, "wardctl: unknown argument '%s'\n", arg.c_str());
        Usage(stderr);
        return kExitUsage;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "wardctl: %s needs a %s\n", arg.c_str(), arg == "--var" ? "NAME=VALUE" : "number");
      return kExitUsage;
    }
  }
  if (command == "rules" && !words.empty() && words[0] == "check") {
    if (words.size() < 2) {
      Usage(stderr);
      return kExitUsage;
    }
    check.files.assign(words.begin() + 1, words.end());
    check.lenient = lenient;
    check.vars = vars;
    return RulesCheck(check);
  }
  const bool rules_load = command == "rules" && words.size() == 2 && words[0] == "load";
  const bool seg_one = (command == "quarantine" || command == "release") && words.size() == 1;
  const bool seg_list = (command == "quarantines" || command == "devices") && words.empty();
  const bool device_set = command == "device" && words.size() == 2 && words[0] == "set";
  if (socket.empty() ||
      (command != "status" && command != "events" && !rules_load && !seg_one && !seg_list && !device_set)) {
    Usage(stderr);
    return kExitUsage;
  }

  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  auto stub = pb::Dataplane::NewStub(channel);

  if (seg_one || seg_list || device_set) {
    seg.socket = socket;
    seg.command = device_set ? "device-set" : command;
    if (seg_one) seg.device = words[0];
    if (device_set) seg.device = words[1];
    seg.json = json;
    seg.timeout_s = std::max(timeout_s, 10);
    return wardctl::RunSegmentation(*stub, seg);
  }

  if (rules_load) {
    std::ifstream in(words[1], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "wardctl: cannot read %s\n", words[1].c_str());
      return kExitFailure;
    }
    std::stringstream text;
    text << in.rdbuf();
    pb::LoadRulesRequest req;
    req.set_source(text.str());
    req.set_version(version.empty() ? words[1] : version);
    req.set_source_name(words[1]);
    req.set_lenient(lenient);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(std::max(timeout_s, 60)));
    pb::LoadRulesResponse resp;
    const auto rc = stub->LoadRules(&ctx, req, &resp);
    if (!rc.ok()) {
      std::fprintf(stderr, "wardctl: dataplane at %s: %s\n", socket.c_str(), rc.error_message().c_str());
      return kExitFailure;
    }
    for (const auto& e : resp.errors()) std::printf("%s\n", e.c_str());
    if (!resp.accepted()) {
      std::printf("refused: %d error(s); the running rule set stays\n", resp.errors_size());
      return kExitFailure;
    }
    std::printf("loaded %u rule(s) as '%s': generation %llu, compiled in %.1f ms\n", resp.rules_loaded(),
                req.version().c_str(), static_cast<unsigned long long>(resp.generation_id()), resp.compile_ms());
    return kExitOk;
  }

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
      wardctl::PrintJson(status);
    } else {
      PrintTables(status);
      if (!status.rules_version().empty() || status.rules_loaded()) {
        std::printf("\nRULES  %s: %u rule(s), %llu alert(s), %llu event(s) lost\n", status.rules_version().c_str(),
                    status.rules_loaded(), static_cast<unsigned long long>(status.alerts()),
                    static_cast<unsigned long long>(status.events_lost()));
      }
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
