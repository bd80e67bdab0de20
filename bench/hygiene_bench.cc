// Stack hygiene costs per packet: FragmentGuard::Check on a stream of non-overlapping
// fragment trains (the normal case), and BadTcpOptions on parsed TCP frames.
//
//   build/bench/hygiene_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Fragment trains are 3 fragments (1480 + 1480 + 40 bytes, UDP), 16k distinct trains;
// Arg is how many trains are open at once (interleaved round-robin): 1 is one datagram
// after another, 1024 and 3072 keep that many trains live in the default 4096-train table
// (3072 trains = ~400 KiB of table, beyond L2 on most cores). Every train completes, so the
// stream repeats without overlaps; a run with any kOverlap/kUntracked is reported as an error.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/hygiene/fragment_guard.h"
#include "dataplane/hygiene/tcp_options.h"
#include "dataplane/parse/packet.h"

namespace wardgate::hygiene {
namespace {

constexpr uint32_t kTrains = 16384;

parse::PacketView Fragment(uint32_t train, int part) {
  static constexpr uint16_t kOffset[3] = {0, 1480, 2960};
  static constexpr uint16_t kLen[3] = {1480, 1480, 40};
  parse::PacketView v;
  v.frame_len = uint16_t(14 + 20 + kLen[part]);
  v.ether_type = 0x0800;
  v.l3 = parse::L3::kIpv4;
  v.l3_offset = 14;
  v.l4_offset = 34;
  v.ip_proto = parse::kProtoUdp;
  v.ttl = 64;
  v.is_fragment = true;
  v.is_first_fragment = part == 0;
  v.frag_more = part != 2;
  v.frag_offset = kOffset[part];
  v.frag_len = kLen[part];
  v.frag_id = train & 0xffff;
  const uint8_t src[4] = {10, 1, uint8_t(train >> 16), uint8_t(1 + (train >> 8) % 200)};
  const uint8_t dst[4] = {172, 16, 0, uint8_t(1 + train % 7)};
  std::memcpy(v.src_addr.data(), src, 4);
  std::memcpy(v.dst_addr.data(), dst, 4);
  v.payload_offset = part == 0 ? 42 : 34;
  v.payload_len = uint16_t(part == 0 ? kLen[part] - 8 : kLen[part]);
  return v;
}

// Trains in groups of `inflight`: fragment 0 of each, then 1 of each, then 2 of each.
std::vector<parse::PacketView> Stream(uint32_t inflight) {
  std::vector<parse::PacketView> s;
  s.reserve(size_t{kTrains} * 3);
  for (uint32_t g = 0; g < kTrains; g += inflight) {
    for (int part = 0; part < 3; ++part) {
      for (uint32_t t = g; t < g + inflight && t < kTrains; ++t) s.push_back(Fragment(t, part));
    }
  }
  return s;
}

void BM_FragmentGuardCheck(benchmark::State& st) {
  FragmentGuard g({.capacity = 4096, .timeout_ms = 30000, .hash_seed = 0x5eed});
  const auto stream = Stream(uint32_t(st.range(0)));
  size_t i = 0;
  uint64_t now = 1;
  for (auto _ : st) {
    benchmark::DoNotOptimize(g.Check(stream[i], now));
    if (++i == stream.size()) i = 0, ++now;
  }
  st.SetItemsProcessed(int64_t(st.iterations()));
  st.counters["table_KiB"] = double(g.MemoryBytes()) / 1024;
  const auto& c = g.counters();
  if (c.overlaps != 0 || c.untracked != 0) st.SkipWithError("overlap or untracked on a clean stream");
}
BENCHMARK(BM_FragmentGuardCheck)->Arg(1)->Arg(1024)->Arg(3072);

// TCP frames as the parser leaves them: clean ACKs, data with timestamps, SYNs with the
// usual options, and a few flagged ones (URG with pointer 0, window scale 15).
std::vector<std::pair<parse::ParseError, parse::PacketView>> TcpViews() {
  std::vector<std::pair<parse::ParseError, parse::PacketView>> out;
  for (int i = 0; i < 1024; ++i) {
    parse::PacketView v;
    v.l3 = parse::L3::kIpv4;
    v.ip_proto = parse::kProtoTcp;
    v.tcp_flags = parse::kTcpAck;
    switch (i % 8) {
      case 0:
        v.tcp_flags = parse::kTcpSyn;
        v.tcp_mss = 1460;
        v.tcp_wscale = 7;
        break;
      case 1:
        v.tcp_flags = parse::kTcpAck | parse::kTcpUrg;  // pointer 0
        break;
      case 2:
        v.tcp_flags = parse::kTcpSyn;
        v.tcp_wscale = 15;
        v.tcp_options_suspicious = true;
        break;
      default:
        v.tcp_has_timestamp = true;
        break;
    }
    out.emplace_back(i % 64 == 5 ? parse::ParseError::kTcpBadOptions : parse::ParseError::kNone, v);
  }
  return out;
}

void BM_BadTcpOptions(benchmark::State& st) {
  const auto views = TcpViews();
  size_t i = 0, bad = 0;
  for (auto _ : st) {
    bad += BadTcpOptions(views[i].first, views[i].second);
    if (++i == views.size()) i = 0;
  }
  benchmark::DoNotOptimize(bad);
  st.SetItemsProcessed(int64_t(st.iterations()));
}
BENCHMARK(BM_BadTcpOptions);

}  // namespace
}  // namespace wardgate::hygiene

BENCHMARK_MAIN();
