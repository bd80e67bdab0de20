// Segmentation costs that are not per established packet (pipeline_bench
// --segmentation measures those):
//  1. the policy's build time and a new flow's decision (zone resolution of both ends
//     plus classification) with 100, 1k and 10k policy rules;
//  2. a quarantine set lookup (the gate of every packet while quarantines exist);
//  3. the time from a Quarantine() call to its return (every worker enforcing it, the
//     snapshot written), p50/p99, while a worker thread processes bursts flat out.
// Run:  build/bench/segmentation_bench [--calls 400] [--snapshot-dir DIR]
// Prints one JSON line per measurement.
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/control/controller.h"
#include "dataplane/events/eve_sink.h"
#include "dataplane/generation/generation.h"
#include "dataplane/segment/segmentation.h"
#include "dataplane/worker/worker.h"
#include "dataplane/device/device_table.h"

namespace {

using namespace wardgate;
using Clock = std::chrono::steady_clock;

double Ns(Clock::duration d) { return std::chrono::duration<double, std::nano>(d).count(); }

config::Prefix Host4(uint32_t a) {
  config::Prefix p;
  p.addr[0] = uint8_t(a >> 24);
  p.addr[1] = uint8_t(a >> 16);
  p.addr[2] = uint8_t(a >> 8);
  p.addr[3] = uint8_t(a);
  p.len = 32;
  return p;
}

// A ward: 4 device zones by class, 4 hospital zones by /24, `n` policy rules between
// hosts (distinct, never shadowing one another), then the rule the traffic uses.
config::SegmentationConfig Ward(uint32_t n) {
  config::SegmentationConfig s;
  const char* classes[] = {"infusion-pump", "patient-monitor", "imaging", "lab"};
  for (int i = 0; i < 4; ++i) {
    config::ZoneConfig z;
    z.name = std::string("dev-") + classes[i];
    z.classes = {classes[i]};
    z.default_action = config::PolicyAction::kDeny;
    s.zones.push_back(z);
    config::ZoneConfig h;
    h.name = "net-" + std::to_string(i);
    config::Prefix p = Host4((10u << 24) | (uint32_t(100 + i) << 16));
    p.len = 16;
    h.cidrs = {p};
    s.zones.push_back(h);
  }
  std::mt19937 rng(5);
  for (uint32_t i = 0; i < n; ++i) {
    config::PolicyRuleConfig r;
    r.from_zone = s.zones[2 * (i % 4)].name;
    r.to_cidrs = {Host4((10u << 24) | (200u << 16) | (i & 0xffff))};
    r.proto = 6;
    r.ports = {{uint16_t(1000 + rng() % 60000), uint16_t(1000 + rng() % 60000)}};
    if (r.ports[0].lo > r.ports[0].hi) std::swap(r.ports[0].lo, r.ports[0].hi);
    r.action = (i % 3) ? config::PolicyAction::kAllow : config::PolicyAction::kDeny;
    r.where = "policy[" + std::to_string(i) + "]";
    s.policy.push_back(r);
  }
  config::PolicyRuleConfig allow;
  allow.from_zone = "dev-infusion-pump";
  allow.to_zone = "net-0";
  allow.proto = 6;
  allow.ports = {{2575, 2575}};
  allow.action = config::PolicyAction::kAllow;
  allow.where = "policy[" + std::to_string(n) + "]";
  s.policy.push_back(allow);
  for (int d = 0; d < 64; ++d) {
    config::DeviceConfig dev;
    char mac[32];
    std::snprintf(mac, sizeof(mac), "02:77:00:00:01:%02x", d);
    dev.mac = mac;
    dev.device_class = classes[d % 4];
    s.devices.push_back(dev);
  }
  return s;
}

void DecideBench() {
  // 100 twice: the first pass warms the process up (page faults, frequency).
  for (uint32_t n : {100u, 100u, 1000u, 10000u}) {
    const auto cfg = Ward(n);
    std::string error;
    const auto t0 = Clock::now();
    auto seg = segment::Segmentation::Build(cfg, {"ward"}, &error);
    const double build_ms = Ns(Clock::now() - t0) / 1e6;
    if (!seg) {
      std::fprintf(stderr, "build: %s\n", error.c_str());
      std::exit(1);
    }
    // New flows from the 64 devices to hospital hosts, each end resolved afresh.
    std::vector<std::array<uint8_t, 16>> dst(1024);
    std::mt19937 rng(1);
    for (auto& a : dst) a = {10, uint8_t(100 + rng() % 4), uint8_t(rng()), uint8_t(rng())};
    uint8_t macs[64][6];
    for (int d = 0; d < 64; ++d) {
      const uint8_t m[6] = {2, 0x77, 0, 0, 1, uint8_t(d)};
      std::memcpy(macs[d], m, 6);
    }
    const uint8_t net_mac[6] = {2, 0x77, 0, 0, 2, 1};
    std::array<uint8_t, 16> src{10, 77, 0, 11};
    uint64_t allowed = 0;
    constexpr int kIter = 200000;
    const auto t1 = Clock::now();
    for (int i = 0; i < kIter; ++i) {
      const segment::End client{macs[i & 63], src.data(), false, 0, 0};
      const segment::End server{net_mac, dst[i & 1023].data(), false, 0, segment::kNoPair};
      const auto d = seg->Decide(client, server, 6, uint16_t(40000 + (i & 1023)), (i & 4) ? 2575 : uint16_t(i));
      allowed += d.action == policy::Action::kAllow;
    }
    const double per = Ns(Clock::now() - t1) / kIter;
    std::printf("{\"bench\":\"policy_first_packet\",\"rules\":%u,\"classifier_rules\":%u,\"build_ms\":%.1f,"
                "\"decide_ns\":%.1f,\"allowed_share\":%.2f,\"contexts_ipv4\":%u}\n",
                n + 1, seg->classifier_stats().rules, build_ms, per, double(allowed) / kIter,
                seg->classifier_stats().contexts_ipv4);
  }
}

void QuarantineSetBench() {
  for (uint32_t n : {1u, 64u, 4096u}) {
    segment::QuarantineSet set;
    for (uint32_t i = 0; i < n; ++i) {
      const segment::Mac m = {2, 0x77, 0, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)};
      set.AddMac(m, {config::QuarantineLevel::kIsolate, 0});
    }
    std::vector<std::array<uint8_t, 6>> probes(4096);
    for (uint32_t i = 0; i < probes.size(); ++i) probes[i] = {2, 0x78, 0, 0, uint8_t(i >> 8), uint8_t(i)};
    constexpr int kIter = 2000000;
    uint64_t hits = 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < kIter; ++i) {
      // The gate's work for a frame of a device not quarantined: source and destination MAC.
      hits += set.FindMac(probes[i & 4095].data()) != nullptr;
      hits += set.FindMac(probes[(i + 7) & 4095].data()) != nullptr;
    }
    std::printf("{\"bench\":\"quarantine_gate_lookup\",\"quarantined\":%u,\"ns_per_frame\":%.1f,\"hits\":%llu}\n", n,
                Ns(Clock::now() - t0) / kIter, static_cast<unsigned long long>(hits));
  }
}

// Per-packet cost of segmentation on established flows: the same bursts of UDP
// packets of 4096 established flows through ProcessBurst (no rules loaded, so the
// difference is not drowned by inspection), alternately without segmentation and with
// a 10k-rule policy, 64 quarantined devices (none of these) and device learning.
void EstablishedBench() {
  rte_mempool* pool = rte_pktmbuf_pool_create("est_pool", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  auto cfg = Ward(10000);
  config::ZoneConfig devices;  // the flows' clients: 10.1/16, allowed udp/2575 to net-0
  devices.name = "bench-devices";
  config::Prefix p = Host4(10u << 24 | 1u << 16);
  p.len = 16;
  devices.cidrs = {p};
  devices.default_action = config::PolicyAction::kDeny;
  cfg.zones.push_back(devices);
  config::PolicyRuleConfig allow;
  allow.from_zone = "bench-devices";
  allow.to_zone = "net-0";
  allow.proto = 17;
  allow.ports = {{2575, 2575}};
  allow.where = "bench";
  cfg.policy.push_back(allow);
  std::string error;
  std::shared_ptr<const segment::Segmentation> seg = segment::Segmentation::Build(cfg, {"ward"}, &error);
  if (!seg) {
    std::fprintf(stderr, "build: %s\n", error.c_str());
    std::exit(1);
  }
  generation::Generation plain, segmented;
  for (auto* g : {&plain, &segmented}) {
    g->peer[0] = 1;
    g->peer[1] = 0;
    g->toward_devices[1] = true;
  }
  segmented.toward_devices[0] = true;  // frames come from the device side
  segmented.toward_devices[1] = false;
  segmented.segmentation = seg;
  auto q = std::make_shared<segment::QuarantineSet>();
  for (int d = 0; d < 64; ++d) q->AddMac({2, 0x78, 0, 0, 0, uint8_t(d)}, {config::QuarantineLevel::kIsolate, 0});
  segmented.quarantines = q;

  constexpr uint32_t kFlows = 4096;
  std::vector<rte_mbuf*> mbufs;
  for (uint32_t i = 0; i < kFlows; ++i) {
    uint8_t f[60] = {2, 0x77, 0, 0, 2, 1, 2, 0x79, 0, 0, uint8_t(i >> 8), uint8_t(i), 0x08, 0x00, 0x45, 0, 0, 46, 0, 0,
                     0, 0, 64, 17, 0, 0, 10, 1, uint8_t(i >> 8), uint8_t(i), 10, 100, 0, 5, 0x9c, 0x40, 0x0a, 0x0f, 0,
                     26};
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    std::memcpy(rte_pktmbuf_append(m, sizeof(f)), f, sizeof(f));
    mbufs.push_back(m);
  }
  events::EventRing<events::AlertRecord> ring(1024);
  inspect::Inspector insp(0, &ring, true);
  stream::Reassembler streams(stream::StreamConfig{});
  flow::FlowTableConfig fc;
  fc.capacity = kFlows * 2;
  flow::FlowTable flows(fc, &streams);
  device::DeviceTable table(4096);
  worker::WorkerCounters counters;
  worker::BurstVerdict verdict;
  uint64_t now = 1'000'000'000;
  auto run = [&](const generation::Generation& gen, bool learn, int bursts) {
    worker::Stages stages;
    stages.inspector = &insp;
    stages.flows = &flows;
    stages.streams = &streams;
    if (learn) stages.devices = &table;
    rte_mbuf* burst[32];
    size_t next = 0;
    const auto t0 = Clock::now();
    for (int b = 0; b < bursts; ++b) {
      for (int k = 0; k < 32; ++k) burst[k] = mbufs[(next += 97) % kFlows];  // flows in a scattered order
      stages.burst_ts_ns = (now += 1000);
      worker::ProcessBurst(gen, counters, 0, burst, 32, verdict, &stages);
      verdict.n_forward = verdict.n_drop = verdict.n_reply = 0;
    }
    while (ring.Peek()) ring.Release();
    return Ns(Clock::now() - t0) / (bursts * 32.0);
  };
  run(segmented, true, kFlows / 32 * 4);  // the flows are created (and decided) with segmentation
  const uint64_t denied = counters.drops[size_t(worker::DropReason::kPolicy)].Load();
  // The stages one at a time: policy only (no quarantine in force), + the quarantine
  // gate (64 in force), + device learning. Medians of 20 interleaved rounds.
  generation::Generation policy_only = segmented;
  policy_only.quarantines = nullptr;
  std::vector<double> a, pol, g, b;
  for (int round = 0; round < 20; ++round) {
    a.push_back(run(plain, false, 3000));
    pol.push_back(run(policy_only, false, 3000));
    g.push_back(run(segmented, false, 3000));
    b.push_back(run(segmented, true, 3000));
  }
  auto median = [](std::vector<double>& v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double ma = median(a), mp = median(pol), mg = median(g), mb = median(b);
  std::printf("{\"bench\":\"established_per_packet\",\"flows\":%u,\"policy_rules\":%zu,\"quarantined\":64,"
              "\"without_ns\":%.1f,\"policy_ns\":%.1f,\"quarantine_gate_ns\":%.1f,\"device_learning_ns\":%.1f,"
              "\"with_all_ns\":%.1f,\"policy_drops\":%llu}\n",
              kFlows, cfg.policy.size(), ma, mp - ma, mg - mp, mb - mg, mb, static_cast<unsigned long long>(denied));
  for (auto* m : mbufs) rte_pktmbuf_free(m);
  rte_mempool_free(pool);
}

// Quarantine()/Release() calls while one worker thread processes bursts without pause.
void CallLatencyBench(int calls, const std::string& snapshot_dir) {
  rte_mempool* pool = rte_pktmbuf_pool_create("sb_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  generation::GenerationStore store(1);
  auto cfg = Ward(1000);
  cfg.quarantine.snapshot = snapshot_dir + "/state.json";
  std::string error;
  std::shared_ptr<const segment::Segmentation> seg = segment::Segmentation::Build(cfg, {"ward"}, &error);
  auto gen = std::make_unique<generation::Generation>();
  gen->peer[0] = 1;
  gen->peer[1] = 0;
  gen->toward_devices[1] = true;
  gen->segmentation = seg;
  store.Publish(std::move(gen));
  events::EventRing<events::AlertRecord> ring(4096);
  events::EveSink sink("", false, false);
  control::Controller controller(store, {&ring}, sink, config::RulesConfig{}, 1);
  controller.SetSegmentation(cfg, {}, "bench");

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> packets{0};
  std::thread worker([&] {
    // Its own core, as a worker lcore has (a thread started after EAL init inherits the
    // main lcore's affinity, and two threads time-sharing one core measure the
    // scheduler's slice, not the publication).
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(1, &cpus);
    pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
    store.ReaderOnline(0);
    inspect::Inspector inspector(0, &ring, true);
    stream::Reassembler streams(stream::StreamConfig{});
    flow::FlowTableConfig fc;
    fc.capacity = 4096;
    flow::FlowTable flows(fc, &streams);
    worker::Stages stages;
    stages.inspector = &inspector;
    stages.flows = &flows;
    stages.streams = &streams;
    worker::WorkerCounters counters;
    worker::BurstVerdict verdict;
    rte_mbuf* burst[32];
    // UDP from the 64 devices to a hospital host (policy: denied, so every packet
    // goes through the policy stage and the gate).
    std::vector<rte_mbuf*> mbufs;
    for (int i = 0; i < 256; ++i) {
      uint8_t f[60] = {2, 0x77, 0, 0, 2, 1, 2, 0x77, 0, 0, 1, uint8_t(i & 63), 0x08, 0x00, 0x45, 0, 0, 46, 0, 0, 0, 0,
                       64, 17, 0, 0, 10, 77, 0, 11, 10, 100, 0, uint8_t(i), 0x9c, 0x40, 0x13, 0x88, 0, 26};
      rte_mbuf* m = rte_pktmbuf_alloc(pool);
      std::memcpy(rte_pktmbuf_append(m, sizeof(f)), f, sizeof(f));
      mbufs.push_back(m);
    }
    uint64_t now = 1;
    size_t next = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 32; ++k) burst[k] = mbufs[next++ & 255];
      stages.burst_ts_ns = ++now;
      worker::ProcessBurst(*store.Current(), counters, 1, burst, 32, verdict, &stages);
      verdict.n_forward = verdict.n_drop = verdict.n_reply = 0;  // reused, not sent
      store.Quiescent(0);
      packets.fetch_add(32, std::memory_order_relaxed);
      while (ring.Peek()) ring.Release();
    }
    store.ReaderOffline(0);
    for (auto* m : mbufs) rte_pktmbuf_free(m);
  });

  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Enforcement alone: publishing a generation and waiting for the worker to leave the
  // old one (what a quarantine costs before its snapshot is written).
  std::vector<double> publish_us;
  for (int i = 0; i < calls; ++i) {
    auto next = generation::Generation::SameTopology(*store.Current());
    const auto t0 = Clock::now();
    store.Publish(std::move(next));
    publish_us.push_back(Ns(Clock::now() - t0) / 1000);
  }
  std::vector<double> quarantine_us, release_us;
  const auto t_start = Clock::now();
  const uint64_t p0 = packets.load();
  for (int i = 0; i < calls; ++i) {
    char mac[32];
    std::snprintf(mac, sizeof(mac), "02:77:00:00:01:%02x", i & 63);
    auto t0 = Clock::now();
    const auto q = controller.Quarantine({mac, "isolate", "bench", "", "bench"});
    quarantine_us.push_back(Ns(Clock::now() - t0) / 1000);
    t0 = Clock::now();
    const auto r = controller.Release(mac, "", "bench");
    release_us.push_back(Ns(Clock::now() - t0) / 1000);
    if (q.error != control::QuarantineOutcome::Error::kNone || r.error != control::QuarantineOutcome::Error::kNone) {
      std::fprintf(stderr, "call failed: %s %s\n", q.message.c_str(), r.message.c_str());
      std::exit(1);
    }
  }
  const double secs = Ns(Clock::now() - t_start) / 1e9;
  const double mpps = (packets.load() - p0) / secs / 1e6;
  stop = true;
  worker.join();
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(p * v.size()))];
  };
  std::printf("{\"bench\":\"quarantine_call\",\"calls\":%d,\"snapshot_dir\":\"%s\",\"quarantine_p50_us\":%.0f,"
              "\"quarantine_p99_us\":%.0f,\"release_p50_us\":%.0f,\"release_p99_us\":%.0f,"
              "\"enforce_p50_us\":%.1f,\"enforce_p99_us\":%.1f,\"worker_mpps_meanwhile\":%.2f}\n",
              calls, snapshot_dir.c_str(), pct(quarantine_us, 0.5), pct(quarantine_us, 0.99), pct(release_us, 0.5),
              pct(release_us, 0.99), pct(publish_us, 0.5), pct(publish_us, 0.99), mpps);
  rte_mempool_free(pool);
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 400;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--calls" && i + 1 < argc) calls = std::stoi(argv[++i]);
    else if (a == "--snapshot-dir" && i + 1 < argc) dir = argv[++i];
  }
  const std::string prefix = "wg-segbench-" + std::to_string(getpid());
  const char* eal_argv[] = {"segmentation_bench", "-l", "0", "--no-huge", "-m", "512", "--no-shconf", "--no-pci",
                            "--file-prefix", prefix.c_str(), "--log-level", "lib.eal:error"};
  if (rte_eal_init(int(std::size(eal_argv)), const_cast<char**>(eal_argv)) < 0) return 1;
  bool own_dir = dir.empty();
  if (own_dir) {
    char tmpl[] = "/var/tmp/wg-segbench.XXXXXX";  // on disk: the snapshot's fsync is part of the call
    dir = mkdtemp(tmpl);
  }
  DecideBench();
  QuarantineSetBench();
  EstablishedBench();
  CallLatencyBench(calls, dir);
  // The same with the snapshot on tmpfs: the call without the disk's fsync.
  char shm[] = "/dev/shm/wg-segbench.XXXXXX";
  if (mkdtemp(shm)) {
    CallLatencyBench(calls, shm);
    std::filesystem::remove_all(shm);
  }
  if (own_dir) std::filesystem::remove_all(dir);
  rte_eal_cleanup();
  return 0;
}
