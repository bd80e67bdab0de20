// ParsePacket cost per frame: a realistic hospital-LAN mix and each frame type alone.
// Frames sit in 2 KiB slots like mbuf data rooms, so the parser touches one or two
// cache lines per frame as in the dataplane.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "dataplane/parse/packet.h"

namespace wardgate::parse {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr size_t kFrames = 1024;
constexpr size_t kSlotSize = 2048;

void Put16(Bytes& b, unsigned v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void Put32(Bytes& b, uint32_t v) {
  Put16(b, v >> 16);
  Put16(b, v & 0xffff);
}
void Append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }

Bytes Eth(uint16_t ether_type, const Bytes& l3, std::initializer_list<uint16_t> vlans = {}) {
  Bytes b = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  uint16_t tpid = vlans.size() > 1 ? 0x88a8 : 0x8100;
  for (uint16_t vid : vlans) {
    Put16(b, tpid);
    Put16(b, vid);
    tpid = 0x8100;
  }
  Put16(b, ether_type);
  Append(b, l3);
  if (b.size() < 60) b.resize(60, 0);  // Ethernet minimum, as received from the NIC
  return b;
}

Bytes Ipv4(uint8_t proto, const Bytes& l4, uint16_t frag = 0x4000) {
  Bytes b = {0x45, 0};
  Put16(b, 20 + l4.size());
  Put16(b, 0x1234);
  Put16(b, frag);
  b.push_back(64);
  b.push_back(proto);
  Put16(b, 0);
  Append(b, {10, 1, 2, 3});
  Append(b, {10, 4, 5, 6});
  Append(b, l4);
  return b;
}

Bytes Ipv6(uint8_t next, const Bytes& rest) {
  Bytes b;
  Put32(b, 0x60000000);
  Put16(b, rest.size());
  b.push_back(next);
  b.push_back(64);
  for (int i = 0; i < 2; ++i) Append(b, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         static_cast<uint8_t>(i + 1)});
  Append(b, rest);
  return b;
}

Bytes Tcp(uint8_t flags, const Bytes& options, size_t payload) {
  Bytes b;
  Put16(b, 49152);
  Put16(b, 104);  // DICOM
  Put32(b, 0x11223344);
  Put32(b, 0x55667788);
  b.push_back(static_cast<uint8_t>((20 + options.size()) / 4 << 4));
  b.push_back(flags);
  Put16(b, 502);
  Put32(b, 0);
  Append(b, options);
  b.resize(b.size() + payload, 0x5a);
  return b;
}

Bytes Udp(uint16_t sport, uint16_t dport, size_t payload) {
  Bytes b;
  Put16(b, sport);
  Put16(b, dport);
  Put16(b, 8 + payload);
  Put16(b, 0);
  b.resize(b.size() + payload, 0x33);
  return b;
}

const Bytes kTsOptions = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
const Bytes kSynOptions = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};

enum class Kind {
  kTcp4Ack,
  kTcp4DataTs,
  kUdp4Dns,
  kVlanTcp4,
  kQinQUdp4,
  kTcp6,
  kIpv6HbhFrag,
  kIcmp4,
  kIcmp6,
  kIpv4Fragment,
  kArp,
};

Bytes Build(Kind kind) {
  switch (kind) {
    case Kind::kTcp4Ack:  // 54 bytes + padding: a 64-byte frame on the wire
      return Eth(0x0800, Ipv4(kProtoTcp, Tcp(kTcpAck, {}, 0)));
    case Kind::kTcp4DataTs:  // 1514 bytes: MSS-sized segment with timestamps
      return Eth(0x0800, Ipv4(kProtoTcp, Tcp(kTcpAck | kTcpPsh, kTsOptions, 1448)));
    case Kind::kUdp4Dns:
      return Eth(0x0800, Ipv4(kProtoUdp, Udp(33000, 53, 40)));
    case Kind::kVlanTcp4:
      return Eth(0x0800, Ipv4(kProtoTcp, Tcp(kTcpAck, kTsOptions, 200)), {100});
    case Kind::kQinQUdp4:
      return Eth(0x0800, Ipv4(kProtoUdp, Udp(5004, 5004, 160)), {200, 300});
    case Kind::kTcp6:
      return Eth(0x86dd, Ipv6(kProtoTcp, Tcp(kTcpSyn, kSynOptions, 0)));
    case Kind::kIpv6HbhFrag: {
      Bytes ext = {44, 0, 1, 4, 0, 0, 0, 0};  // hop-by-hop, PadN
      Append(ext, {kProtoUdp, 0, 0, 1, 0, 0, 0, 7});  // fragment: offset 0, M
      Append(ext, Udp(4500, 4500, 600));
      return Eth(0x86dd, Ipv6(0, ext));
    }
    case Kind::kIcmp4:
      return Eth(0x0800, Ipv4(kProtoIcmp, {8, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'}));
    case Kind::kIcmp6:
      return Eth(0x86dd, Ipv6(kProtoIcmpv6, {135, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8,
                                             0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}));
    case Kind::kIpv4Fragment:
      return Eth(0x0800, Ipv4(kProtoUdp, Bytes(600, 0x77), 185));
    case Kind::kArp:
      return Eth(0x0806, {0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 1, 2, 3,
                          0, 0, 0, 0, 0, 0, 10, 1, 2, 4});
  }
  return {};
}

// kFrames frames in mbuf-like slots.
class FrameSet {
 public:
  explicit FrameSet(const std::vector<Kind>& kinds) : arena_(kinds.size() * kSlotSize) {
    for (size_t i = 0; i < kinds.size(); ++i) {
      const Bytes f = Build(kinds[i]);
      uint8_t* slot = arena_.data() + i * kSlotSize;
      std::memcpy(slot, f.data(), f.size());
      frames_.emplace_back(slot, f.size());
    }
  }
  const std::vector<std::span<const uint8_t>>& frames() const { return frames_; }

 private:
  std::vector<uint8_t> arena_;
  std::vector<std::span<const uint8_t>> frames_;
};

// Shares roughly as seen on a clinical LAN segment: many pure ACKs, bulk PACS/DICOM
// transfers, DNS, VLAN-tagged device traffic, some IPv6, ICMP and ARP. Shuffled with a
// fixed seed so branch prediction sees an unordered stream.
std::vector<Kind> MixKinds() {
  const std::pair<Kind, int> shares[] = {
      {Kind::kTcp4Ack, 35}, {Kind::kTcp4DataTs, 25}, {Kind::kUdp4Dns, 8},
      {Kind::kVlanTcp4, 12}, {Kind::kQinQUdp4, 2},   {Kind::kTcp6, 8},
      {Kind::kIpv6HbhFrag, 1}, {Kind::kIcmp4, 2},    {Kind::kIcmp6, 2},
      {Kind::kIpv4Fragment, 1}, {Kind::kArp, 4},
  };
  std::vector<Kind> kinds;
  for (const auto& [kind, percent] : shares) {
    kinds.insert(kinds.end(), kFrames * percent / 100, kind);
  }
  kinds.resize(kFrames, Kind::kTcp4Ack);
  std::mt19937 rng(42);
  std::shuffle(kinds.begin(), kinds.end(), rng);
  return kinds;
}

void RunParse(benchmark::State& state, const FrameSet& set) {
  const auto& frames = set.frames();
  PacketView view;
  for (const auto& f : frames) {
    if (ParsePacket(f, view) != ParseError::kNone) {
      state.SkipWithError("benchmark frame does not parse");
      return;
    }
  }
  for (auto _ : state) {
    for (const auto& f : frames) {
      ParseError e = ParsePacket(f, view);
      benchmark::DoNotOptimize(e);
      benchmark::DoNotOptimize(view);
    }
  }
  const auto packets = static_cast<int64_t>(state.iterations() * frames.size());
  state.SetItemsProcessed(packets);
  state.counters["ns_per_pkt"] = benchmark::Counter(
      static_cast<double>(packets), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_ParseMix(benchmark::State& state) {
  static const FrameSet set(MixKinds());
  RunParse(state, set);
}
BENCHMARK(BM_ParseMix);

void BM_ParseSingle(benchmark::State& state, Kind kind) {
  static std::array<std::unique_ptr<FrameSet>, 16> sets;
  auto& set = sets[static_cast<size_t>(kind)];
  if (!set) set = std::make_unique<FrameSet>(std::vector<Kind>(kFrames, kind));
  RunParse(state, *set);
}
BENCHMARK_CAPTURE(BM_ParseSingle, Tcp4Ack64, Kind::kTcp4Ack);
BENCHMARK_CAPTURE(BM_ParseSingle, Tcp4Data1514Ts, Kind::kTcp4DataTs);
BENCHMARK_CAPTURE(BM_ParseSingle, Udp4Dns, Kind::kUdp4Dns);
BENCHMARK_CAPTURE(BM_ParseSingle, VlanTcp4, Kind::kVlanTcp4);
BENCHMARK_CAPTURE(BM_ParseSingle, QinQUdp4, Kind::kQinQUdp4);
BENCHMARK_CAPTURE(BM_ParseSingle, Tcp6Syn, Kind::kTcp6);
BENCHMARK_CAPTURE(BM_ParseSingle, Ipv6HbhFragUdp, Kind::kIpv6HbhFrag);
BENCHMARK_CAPTURE(BM_ParseSingle, Icmp4Echo, Kind::kIcmp4);
BENCHMARK_CAPTURE(BM_ParseSingle, Icmp6Ns, Kind::kIcmp6);
BENCHMARK_CAPTURE(BM_ParseSingle, Ipv4LaterFragment, Kind::kIpv4Fragment);
BENCHMARK_CAPTURE(BM_ParseSingle, Arp, Kind::kArp);

}  // namespace
}  // namespace wardgate::parse

BENCHMARK_MAIN();
