// Flow table and TCP reassembly costs per packet: insert, lookup hit (one at a time and
// two-pass with prefetch over bursts of 32), the eviction path of a full table, the
// Expire() sweep, and in-order reassembly per segment.
//
//   build/bench/flow_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// 100k flows in tables of 128k and 256k capacity (3 cache lines per flow: the working
// set, ~19 MiB + index, is far beyond L2, so these are cache-miss-bound figures).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "dataplane/flow/flow_table.h"
#include "dataplane/stream/tcp_stream.h"

namespace wardgate::flow {
namespace {

constexpr uint32_t kFlows = 100'000;
constexpr uint64_t kNs = 1'000'000'000ull;

parse::PacketView View(uint32_t n, bool reverse, uint8_t proto) {
  parse::PacketView pv;
  pv.l3 = parse::L3::kIpv4;
  pv.frame_len = 128;
  pv.ip_proto = proto;
  // Clients 10.x.y.z with spread-out ports, servers in 172.16/16 on a few services.
  uint8_t c[4] = {10, uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)};
  uint8_t s[4] = {172, 16, uint8_t(n % 7), uint8_t(1 + n % 13)};
  const uint16_t cp = uint16_t(32768 + (n * 7919u) % 28000), sp = uint16_t(n % 3 == 0 ? 104 : 2575);
  std::memcpy(reverse ? pv.dst_addr.data() : pv.src_addr.data(), c, 4);
  std::memcpy(reverse ? pv.src_addr.data() : pv.dst_addr.data(), s, 4);
  pv.src_port = reverse ? sp : cp;
  pv.dst_port = reverse ? cp : sp;
  pv.tcp_flags = parse::kTcpAck;
  return pv;
}

std::vector<parse::PacketView> Views(uint32_t n, uint32_t base = 0) {
  std::vector<parse::PacketView> v;
  v.reserve(n);
  for (uint32_t i = 0; i < n; ++i) v.push_back(View(base + i, false, parse::kProtoUdp));
  return v;
}

FlowTableConfig Cfg(uint32_t capacity) {
  FlowTableConfig c;
  c.capacity = capacity;
  c.hash_seed = 0x5eed;
  return c;
}

void BM_FlowInsert(benchmark::State& st) {
  FlowTable t(Cfg(uint32_t(st.range(0))));
  const auto views = Views(kFlows);
  size_t i = 0;
  for (auto _ : st) {
    if (i == views.size()) {
      st.PauseTiming();
      t.Clear();
      i = 0;
      st.ResumeTiming();
    }
    benchmark::DoNotOptimize(t.LookupOrCreate(views[i++], 1));
  }
  st.counters["sizeof_Flow"] = sizeof(Flow);
  st.counters["table_MiB"] = double(t.MemoryBytes()) / (1 << 20);
}
BENCHMARK(BM_FlowInsert)->Arg(131072)->Arg(262144);

// Lookup hits in random order, both directions, 100k flows resident.
void BM_FlowLookupHit(benchmark::State& st) {
  FlowTable t(Cfg(uint32_t(st.range(0))));
  for (const auto& v : Views(kFlows)) t.LookupOrCreate(v, 1);
  std::vector<parse::PacketView> order;
  for (uint32_t i = 0; i < kFlows; ++i) order.push_back(View(i, i & 1, parse::kProtoUdp));
  std::shuffle(order.begin(), order.end(), std::mt19937(1));
  size_t i = 0;
  uint64_t now = 2;
  for (auto _ : st) {
    benchmark::DoNotOptimize(t.LookupOrCreate(order[i], now));
    if (++i == order.size()) i = 0, ++now;
  }
  if (t.counters().created != kFlows) st.SkipWithError("lookups created flows");
}
BENCHMARK(BM_FlowLookupHit)->Arg(131072)->Arg(262144);

// The same, VPP-style over bursts of 32: keys, hashes and bucket prefetches first;
// items_per_second is lookups.
void BM_FlowLookupHitBurst32(benchmark::State& st) {
  FlowTable t(Cfg(uint32_t(st.range(0))));
  for (const auto& v : Views(kFlows)) t.LookupOrCreate(v, 1);
  std::vector<parse::PacketView> order;
  for (uint32_t i = 0; i < kFlows; ++i) order.push_back(View(i, i & 1, parse::kProtoUdp));
  std::shuffle(order.begin(), order.end(), std::mt19937(1));
  const bool three_pass = st.range(1) == 3;
  constexpr size_t kBurst = 32;
  FlowKey keys[kBurst];
  bool first[kBurst];
  uint64_t hash[kBurst];
  size_t i = 0;
  for (auto _ : st) {
    const parse::PacketView* b = &order[i];
    for (size_t k = 0; k < kBurst; ++k) {
      MakeFlowKey(b[k], keys[k], first[k]);
      hash[k] = t.Hash(keys[k]);
      t.Prefetch(hash[k]);
    }
    if (three_pass) {
      for (size_t k = 0; k < kBurst; ++k) t.PrefetchFlow(hash[k]);
    }
    for (size_t k = 0; k < kBurst; ++k) {
      benchmark::DoNotOptimize(t.LookupOrCreate(b[k], keys[k], first[k], hash[k], 2));
    }
    i += kBurst;
    if (i + kBurst > order.size()) i = 0;
  }
  st.SetItemsProcessed(int64_t(st.iterations() * kBurst));
  if (t.counters().created != kFlows) st.SkipWithError("lookups created flows");
}
// Args: capacity, passes (2: keys+hash+bucket prefetch, lookup; 3: + flow prefetch).
BENCHMARK(BM_FlowLookupHitBurst32)->Args({131072, 2})->Args({131072, 3})->Args({262144, 2})->Args({262144, 3});

// A full table: every new flow evicts one (clock-hand sample of 8, least valuable).
void BM_FlowEvict(benchmark::State& st) {
  const uint32_t cap = uint32_t(st.range(0));
  FlowTable t(Cfg(cap));
  uint32_t n = 0;
  for (; n < cap; ++n) t.LookupOrCreate(View(n, false, parse::kProtoUdp), n);
  parse::PacketView v = View(0, false, parse::kProtoUdp);
  for (auto _ : st) {
    ++n;  // a new client address and port per iteration
    v.src_addr[1] = uint8_t(n >> 16);
    v.src_addr[2] = uint8_t(n >> 8);
    v.src_addr[3] = uint8_t(n);
    v.src_addr[0] = uint8_t(11 + (n >> 24));
    benchmark::DoNotOptimize(t.LookupOrCreate(v, n));
  }
  if (t.counters().evictions < uint64_t(st.iterations())) st.SkipWithError("did not evict");
  st.counters["evictions_bucket_full"] = double(t.counters().evictions_bucket_full);
  st.counters["displacements"] = double(t.counters().index_displacements);
}
BENCHMARK(BM_FlowEvict)->Arg(131072)->Arg(262144);

// Expire() per slot examined, nothing due (the common case between bursts).
void BM_FlowExpireSweep(benchmark::State& st) {
  FlowTable t(Cfg(uint32_t(st.range(0))));
  for (const auto& v : Views(kFlows)) t.LookupOrCreate(v, 1);
  constexpr uint32_t kBudget = 64;
  for (auto _ : st) benchmark::DoNotOptimize(t.Expire(2 * kNs, kBudget));
  st.SetItemsProcessed(int64_t(st.iterations() * kBudget));
}
BENCHMARK(BM_FlowExpireSweep)->Arg(131072);

// In-order reassembly, one stream, W = 512: ns per segment (copy window + payload into
// the scratch, keep the new window).
void BM_ReassembleInOrder(benchmark::State& st) {
  stream::StreamConfig sc;
  sc.window_bytes = uint32_t(st.range(1));
  sc.depth = 0;
  sc.window_pool = 4;
  sc.segment_pool = 64;
  stream::Reassembler r(sc);
  stream::TcpStream s;
  const size_t len = size_t(st.range(0));
  std::vector<uint8_t> payload(len);
  std::iota(payload.begin(), payload.end(), uint8_t(0));
  uint32_t seq = 0xfff00000u;  // wraps during the run
  s.Feed(r, seq - 1, {}, parse::kTcpSyn);
  for (auto _ : st) {
    auto res = s.Feed(r, seq, payload, parse::kTcpAck);
    benchmark::DoNotOptimize(res.data.data());
    seq += uint32_t(len);
  }
  st.SetBytesProcessed(int64_t(st.iterations() * len));
  if (r.counters().bytes_delivered != st.iterations() * len) st.SkipWithError("not all delivered");
}
BENCHMARK(BM_ReassembleInOrder)->Args({1460, 512})->Args({1460, 0})->Args({200, 512});

// Out of order by one: every other segment is held, then delivered with the next.
void BM_ReassembleSwappedPairs(benchmark::State& st) {
  stream::StreamConfig sc;
  sc.depth = 0;
  sc.window_pool = 4;
  sc.segment_pool = 64;
  stream::Reassembler r(sc);
  stream::TcpStream s;
  constexpr size_t kLen = 1460;
  std::vector<uint8_t> payload(kLen, 'x');
  uint32_t seq = 1;
  s.Feed(r, 0, {}, parse::kTcpSyn);
  for (auto _ : st) {
    benchmark::DoNotOptimize(s.Feed(r, seq + kLen, payload, parse::kTcpAck).cls);
    benchmark::DoNotOptimize(s.Feed(r, seq, payload, parse::kTcpAck).data.data());
    seq += 2 * kLen;
  }
  st.SetItemsProcessed(int64_t(st.iterations() * 2));
}
BENCHMARK(BM_ReassembleSwappedPairs);

}  // namespace
}  // namespace wardgate::flow

BENCHMARK_MAIN();
