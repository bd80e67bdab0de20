// The full worker pipeline on one core, in memory (no PMD): parse, flow lookup over
// 100k concurrent TCP flows, stream reassembly, signature inspection, verdicts and
// counters, on a medical traffic mix with IMIX-like sizes (ACKs, HL7 messages, DICOM
// segments). Rule sets: a generated set of 100 rules, and optionally ET Open's
// loadable rules. Run:
//   build/bench/pipeline_bench [--flows 100000] [--seconds 5] [--rules FILE...]
//                              [--segmentation N]
// --segmentation N: zones, a policy of N rules (the flows' allow rule last), 64
// quarantined devices (none of the flows': every packet passes the gate's lookups)
// and device learning, as a deployed ward runs; compare with a run without it.
// Prints one JSON line per rule set: Mpps, Gbit/s, ns per packet, reload time.
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/flow/flow_table.h"
#include "dataplane/generation/generation.h"
#include "dataplane/inspect/inspector.h"
#include "dataplane/inspect/rules_loader.h"
#include "dataplane/segment/segmentation.h"
#include "dataplane/stream/tcp_stream.h"
#include "dataplane/worker/worker.h"

namespace {

using namespace wardgate;
using Clock = std::chrono::steady_clock;

void Put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, uint16_t(v >> 16));
  Put16(p + 2, uint16_t(v));
}

// One TCP/IPv4 frame from client `flow` (10.1.x.y:port -> 10.77.0.21:2575/104).
std::vector<uint8_t> TcpFrame(uint32_t flow, bool to_server, uint8_t flags, uint32_t seq, uint32_t ack,
                              const std::string& payload) {
  std::vector<uint8_t> f(54 + payload.size());
  uint8_t* p = f.data();
  const uint8_t mac_a[6] = {2, 0x77, 0, 0, 0, 0x11}, mac_b[6] = {2, 0x77, 0, 0, 0, 0x21};
  std::memcpy(p, to_server ? mac_b : mac_a, 6);
  std::memcpy(p + 6, to_server ? mac_a : mac_b, 6);
  Put16(p + 12, 0x0800);
  uint8_t* ip = p + 14;
  ip[0] = 0x45;
  Put16(ip + 2, uint16_t(40 + payload.size()));
  ip[8] = 64;
  ip[9] = 6;
  const uint8_t client[4] = {10, 1, uint8_t(flow >> 8), uint8_t(flow)};
  const uint8_t server[4] = {10, 77, 0, 21};
  std::memcpy(ip + 12, to_server ? client : server, 4);
  std::memcpy(ip + 16, to_server ? server : client, 4);
  const uint16_t cport = uint16_t(1024 + (flow >> 16)), sport = (flow % 3 == 0) ? 104 : 2575;
  uint8_t* t = ip + 20;
  Put16(t, to_server ? cport : sport);
  Put16(t + 2, to_server ? sport : cport);
  Put32(t + 4, seq);
  Put32(t + 8, ack);
  t[12] = 0x50;
  t[13] = flags;
  Put16(t + 14, 65535);
  std::memcpy(t + 20, payload.data(), payload.size());
  return f;
}

std::string Hl7(uint32_t i) {
  std::string m = "\x0bMSH|^~\\&|PUMP|ICU|EHR|HOSP|20261130120000||ORU^R01|MSG" + std::to_string(i) +
                  "|P|2.5\rPID|1||4711^^^HOSP^MR||DOE^JANE||19700101|F\rOBR|1||ORD1|INFUSION\r";
  while (m.size() < 530) m += "OBX|1|NM|RATE^Infusion rate||12.5|mL/h|||||F\r";
  return m + "\x1c\r";
}

std::string Dicom(uint32_t i) {
  std::string d = "\x04";  // P-DATA-TF
  d += std::string(5, '\0');
  std::mt19937 rng(i);
  while (d.size() < 1460) d.push_back(char(rng() & 0xff));
  return d;
}

// 100 rules of the clinical kind: literals that do not occur in normal traffic,
// some with offsets, pcre and flow options, so prefilter hits stay rare.
std::string HundredRules() {
  std::ostringstream r;
  for (int i = 0; i < 100; ++i) {
    const std::string lit = "WG-SIG-" + std::to_string(1000 + i);
    r << "alert tcp any any -> any ";
    if (i % 3 == 0) r << "2575 ";
    else if (i % 3 == 1) r << "104 ";
    else r << "any ";
    r << "(msg:\"bench " << i << "\"; ";
    if (i % 4 == 0) r << "flow:established,to_server; ";
    r << "content:\"" << lit << "\"; ";
    if (i % 5 == 0) r << "nocase; ";
    if (i % 7 == 0) r << "content:\"|0d|OBX\"; distance:0; ";
    if (i % 10 == 0) r << "pcre:\"/" << lit << "[0-9]{2}/\"; ";
    r << "classtype:policy-violation; sid:" << 5000000 + i << "; rev:1;)\n";
  }
  return r.str();
}

long PeakRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// The ward of --segmentation: clients 10.1/16 in a default-deny device zone, the
// servers' zone, n - 1 host rules elsewhere, then the rule the flows match.
config::SegmentationConfig BenchWard(uint32_t n) {
  config::SegmentationConfig s;
  config::ZoneConfig dev, srv;
  dev.name = "devices";
  dev.default_action = config::PolicyAction::kDeny;
  config::Prefix p;
  p.addr = {10, 1};
  p.len = 16;
  dev.cidrs = {p};
  srv.name = "clinical";
  p.addr = {10, 77, 0, 21};
  p.len = 32;
  srv.cidrs = {p};
  s.zones = {dev, srv};
  for (uint32_t i = 0; i + 1 < n; ++i) {
    config::PolicyRuleConfig r;
    r.from_zone = "devices";
    config::Prefix h;
    h.addr = {10, 200, uint8_t(i >> 8), uint8_t(i)};
    h.len = 32;
    r.to_cidrs = {h};
    r.proto = 6;
    r.ports = {{uint16_t(1000 + i % 50000), uint16_t(1000 + i % 50000)}};
    r.action = (i % 2) ? config::PolicyAction::kAllow : config::PolicyAction::kDeny;
    s.policy.push_back(r);
  }
  config::PolicyRuleConfig allow;
  allow.from_zone = "devices";
  allow.to_zone = "clinical";
  allow.proto = 6;
  allow.ports = {{104, 104}, {2575, 2575}};
  s.policy.push_back(allow);
  return s;
}

struct Packet {
  rte_mbuf* m;
  uint32_t flow;
  bool to_server;
  uint32_t len;  // payload length (advances seq)
};

}  // namespace

int main(int argc, char** argv) {
  uint32_t nflows = 100000;
  double seconds = 5;
  bool hugepages = false;
  std::vector<std::string> rule_files;
  uint32_t seg_rules = 0;  // 0: no segmentation
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--flows" && i + 1 < argc) nflows = uint32_t(std::stoul(argv[++i]));
    else if (a == "--seconds" && i + 1 < argc) seconds = std::stod(argv[++i]);
    else if (a == "--hugepages") hugepages = true;
    else if (a == "--segmentation" && i + 1 < argc) seg_rules = uint32_t(std::stoul(argv[++i]));
    else if (a == "--rules") {
      while (i + 1 < argc && argv[i + 1][0] != '-') rule_files.push_back(argv[++i]);
    }
  }
  const std::string prefix = "wg-pipebench-" + std::to_string(getpid());
  // --hugepages: mbufs in 2 MiB pages as the deployed dataplane has them (needs
  // deploy/hugepages.sh); by default ordinary memory, so the bench runs anywhere.
  std::vector<const char*> eal_argv = {"pipeline_bench", "-l", "0", "--no-pci", "--file-prefix", prefix.c_str(),
                                       "--log-level", "lib.eal:error"};
  if (hugepages) {
    eal_argv.insert(eal_argv.end(), {"--in-memory", "-m", "256"});
  } else {
    eal_argv.insert(eal_argv.end(), {"--no-huge", "-m", "1024", "--no-shconf"});
  }
  if (rte_eal_init(int(eal_argv.size()), const_cast<char**>(eal_argv.data())) < 0) return 1;
  rte_mempool* pool = rte_pktmbuf_pool_create("pb_pool", 16383, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);

  config::Config cfg = config::OfflineDefaults();
  cfg.flows.capacity = nflows * 2;
  cfg.stream.window_pool = nflows * 2 + 1024;

  struct Set {
    std::string name;
    std::string text;
  };
  std::vector<Set> sets = {{"100 clinical-style rules", HundredRules()}};
  if (!rule_files.empty()) {
    std::string all;
    for (const auto& f : rule_files) {
      std::ifstream in(f);
      std::stringstream ss;
      ss << in.rdbuf();
      all += ss.str() + "\n";
    }
    sets.push_back({"ET Open (loadable rules)", all});
  }

  for (const auto& set : sets) {
    config::RulesConfig rc;
    rc.lenient = true;
    rc.cache_dir.clear();  // measure the compile itself (bench/RESULTS.md has the cached figure)
    const long rss0 = PeakRssKb();
    const auto t0 = Clock::now();
    auto loaded = inspect::LoadRuleText(set.text, "bench", rc);
    const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!loaded.compiled) {
      std::fprintf(stderr, "%s: %s\n", set.name.c_str(), loaded.errors.empty() ? "?" : loaded.errors[0].c_str());
      return 1;
    }
    generation::GenerationStore store(1);
    auto gen = std::make_unique<generation::Generation>();
    gen->peer[0] = 1;
    gen->peer[1] = 0;
    gen->max_frame_len = 9022;
    if (seg_rules) {
      std::string error;
      gen->segmentation = segment::Segmentation::Build(BenchWard(seg_rules), {}, &error);
      if (!gen->segmentation) {
        std::fprintf(stderr, "segmentation: %s\n", error.c_str());
        return 1;
      }
      auto q = std::make_shared<segment::QuarantineSet>();
      for (int d = 0; d < 64; ++d) q->AddMac({2, 0x78, 0, 0, 0, uint8_t(d)}, {config::QuarantineLevel::kIsolate, 0});
      gen->quarantines = q;
      gen->toward_devices[0] = true;  // the clients' side
    }
    const auto t1 = Clock::now();
    inspect::AttachRules(*gen, loaded, set.name, 1);
    store.Publish(std::move(gen));
    const double publish_ms = std::chrono::duration<double, std::milli>(Clock::now() - t1).count();
    store.ReaderOnline(0);

    stream::Reassembler streams(stream::StreamConfig{});
    auto table_cfg = flow::FlowTableConfig{};
    table_cfg.capacity = cfg.flows.capacity;
    auto flows = std::make_unique<flow::FlowTable>(table_cfg, &streams);
    events::EventRing<events::AlertRecord> ring(4096);
    inspect::Inspector inspector(0, &ring, true);
    worker::Stages stages;
    stages.inspector = &inspector;
    stages.flows = flows.get();
    stages.streams = &streams;
    device::DeviceTable devices(4096);
    if (seg_rules) stages.devices = &devices;
    auto counters = std::make_unique<worker::WorkerCounters>();
    worker::BurstVerdict verdict;
    uint64_t now = 1'000'000'000ull;

    // Handshakes for every flow (server ISN 0, client ISN 0).
    auto run_one = [&](const std::vector<uint8_t>& f, uint16_t port) {
      rte_mbuf* m = rte_pktmbuf_alloc(pool);
      std::memcpy(rte_pktmbuf_append(m, uint16_t(f.size())), f.data(), f.size());
      stages.burst_ts_ns = now;
      worker::ProcessBurst(*store.Current(), *counters, port, &m, 1, verdict, &stages);
      worker::DiscardBurst(verdict);
    };
    for (uint32_t fl = 0; fl < nflows; ++fl) {
      run_one(TcpFrame(fl, true, 0x02, 0, 0, ""), 0);
      run_one(TcpFrame(fl, false, 0x12, 0, 1, ""), 1);
      run_one(TcpFrame(fl, true, 0x10, 1, 1, ""), 0);
    }
    const long rss_flows = PeakRssKb();

    // The mix: per 10 packets, 6 ACKs (54 B), 3 HL7 messages (~590 B), 1 DICOM (1514 B).
    constexpr uint32_t kTemplates = 8192;
    std::vector<Packet> pkts;
    std::vector<uint32_t> next_seq(nflows * 2, 1);
    std::mt19937 rng(7);
    for (uint32_t i = 0; i < kTemplates; ++i) {
      const uint32_t fl = rng() % nflows;
      const uint32_t kind = i % 10;
      std::string payload;
      bool to_server = true;
      if (kind < 6) to_server = (i & 1);
      else if (kind < 9) payload = Hl7(i);
      else payload = Dicom(i);
      const auto f = TcpFrame(fl, to_server, payload.empty() ? 0x10 : 0x18, 1, 1, payload);
      rte_mbuf* m = rte_pktmbuf_alloc(pool);
      std::memcpy(rte_pktmbuf_append(m, uint16_t(f.size())), f.data(), f.size());
      pkts.push_back({m, fl, to_server, uint32_t(payload.size())});
    }
    // Process bursts of 32, rewriting each packet's seq to continue its flow's stream.
    uint64_t packets = 0, bytes = 0;
    size_t next = 0;
    rte_mbuf* burst[32];
    const auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(seconds);
    while (Clock::now() < deadline) {
      for (int rep = 0; rep < 64; ++rep) {
        for (int k = 0; k < 32; ++k) {
          Packet& p = pkts[next];
          next = (next + 1) % pkts.size();
          uint32_t& seq = next_seq[p.flow * 2 + (p.to_server ? 0 : 1)];
          Put32(rte_pktmbuf_mtod(p.m, uint8_t*) + 14 + 20 + 4, seq);
          seq += p.len;
          burst[k] = p.m;
          bytes += p.m->pkt_len;
        }
        now += 2000;
        stages.burst_ts_ns = now;
        worker::ProcessBurst(*store.Current(), *counters, 0, burst, 32, verdict, &stages);
        verdict.n_forward = verdict.n_drop = 0;  // mbufs are reused, not sent
        verdict.n_reply = 0;
        store.Quiescent(0);
        packets += 32;
      }
      while (ring.Peek()) ring.Release();
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    store.ReaderOffline(0);
    worker::FlowHousekeeping(stages, *counters, now, 0);
    std::printf(
        "{\"rules\":\"%s\",\"rules_loaded\":%d,\"flows\":%u,\"flows_in_table\":%u,\"packets\":%llu,"
        "\"mpps\":%.2f,\"gbit_per_s\":%.2f,\"ns_per_packet\":%.1f,\"avg_frame_bytes\":%.0f,"
        "\"load_compile_ms\":%.1f,\"publish_ms\":%.2f,\"db_bytes\":%zu,\"rss_peak_mb_rules\":%.1f,"
        "\"rss_peak_mb_with_flows\":%.1f,\"stream_bytes\":%llu,\"alerts\":%llu,\"evictions\":%llu,\"mbufs_in_hugepages\":%s,"
        "\"segmentation_rules\":%u,\"policy_drops\":%llu}\n",
        set.name.c_str(), loaded.rules_loaded, nflows, flows->size(), static_cast<unsigned long long>(packets),
        packets / elapsed / 1e6, bytes * 8 / elapsed / 1e9, elapsed * 1e9 / packets, double(bytes) / packets,
        load_ms, publish_ms, loaded.compiled->stats().database_bytes, (PeakRssKb() - rss0) / 1024.0,
        rss_flows / 1024.0, static_cast<unsigned long long>(counters->stream_bytes.Load()),
        static_cast<unsigned long long>(ring.pushed()), static_cast<unsigned long long>(counters->flow_evictions.Load()),
        hugepages ? "true" : "false", seg_rules,
        static_cast<unsigned long long>(counters->drops[size_t(worker::DropReason::kPolicy)].Load()));
    for (auto& p : pkts) rte_pktmbuf_free(p.m);
  }
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return 0;
}
