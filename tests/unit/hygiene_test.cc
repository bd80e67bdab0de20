// Stack hygiene toward the device segment: BadTcpOptions (URGENT/11-class TCP) and the
// FragmentGuard (overlapping fragments), on hand-built frames parsed by ParsePacket.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "dataplane/hygiene/fragment_guard.h"
#include "dataplane/hygiene/tcp_options.h"
#include "dataplane/parse/packet.h"

namespace wardgate::hygiene {
namespace {

using parse::PacketView;
using parse::ParseError;
using Bytes = std::vector<uint8_t>;
using Result = FragmentGuard::Result;

constexpr uint8_t kUdp = parse::kProtoUdp;
constexpr uint8_t kTcp = parse::kProtoTcp;
constexpr uint64_t kMs = 1'000'000;

void Put8(Bytes& b, unsigned v) { b.push_back(static_cast<uint8_t>(v)); }
void Put16(Bytes& b, unsigned v) {
  Put8(b, v >> 8);
  Put8(b, v & 0xff);
}
void Put32(Bytes& b, uint32_t v) {
  Put16(b, v >> 16);
  Put16(b, v & 0xffff);
}
void Append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }
Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) Append(b, p);
  return b;
}
Bytes Filler(size_t n, uint8_t seed = 0x5a) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 13);
  return b;
}

Bytes Eth(uint16_t ether_type, const Bytes& l3) {
  Bytes b = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  Put16(b, ether_type);
  Append(b, l3);
  if (b.size() < 60) b.resize(60, 0);  // as received: NICs pad short frames
  return b;
}

struct Ip4 {
  uint8_t proto = kTcp;
  uint16_t id = 0x1234;
  uint16_t frag = 0;  // flags + offset in 8-byte units
  uint8_t src_last = 10;
};
Bytes Ipv4(const Ip4& h, const Bytes& l4) {
  Bytes b;
  Put8(b, 0x45);
  Put8(b, 0);
  Put16(b, 20 + l4.size());
  Put16(b, h.id);
  Put16(b, h.frag);
  Put8(b, 64);
  Put8(b, h.proto);
  Put16(b, 0);
  Append(b, {192, 168, 1, h.src_last});
  Append(b, {10, 20, 30, 40});
  Append(b, l4);
  return b;
}

Bytes Ipv6(uint8_t next, const Bytes& rest) {
  Bytes b;
  Put32(b, 0x60000000);
  Put16(b, rest.size());
  Put8(b, next);
  Put8(b, 64);
  Append(b, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});
  Append(b, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02});
  Append(b, rest);
  return b;
}

struct Tcp {
  uint8_t flags = parse::kTcpAck;
  Bytes options = {};
  uint16_t urgent = 0;
  int doff = -1;
};
Bytes TcpSeg(const Tcp& h, const Bytes& payload = {}) {
  Bytes b;
  Put16(b, 49152);
  Put16(b, 104);
  Put32(b, 1000);
  Put32(b, 2000);
  Put8(b, (h.doff >= 0 ? static_cast<unsigned>(h.doff) : (20 + h.options.size()) / 4) << 4);
  Put8(b, h.flags);
  Put16(b, 65535);
  Put16(b, 0);
  Put16(b, h.urgent);
  Append(b, h.options);
  Append(b, payload);
  return b;
}

Bytes OptMss(uint16_t mss) {
  Bytes b = {2, 4};
  Put16(b, mss);
  return b;
}
Bytes OptWscale(uint8_t shift) { return {3, 3, shift}; }
Bytes OptSackPerm() { return {4, 2}; }
Bytes OptTs() { return {8, 10, 0, 0, 0, 1, 0, 0, 0, 0}; }
Bytes OptNop() { return {1}; }
Bytes OptSack(int blocks) {  // kind 5, length 2 + 8 * blocks
  Bytes b = {5, static_cast<uint8_t>(2 + 8 * blocks)};
  for (int i = 0; i < blocks; ++i) {
    Put32(b, 5000 + i * 100);
    Put32(b, 5050 + i * 100);
  }
  return b;
}
// Pads an option list to a multiple of 4 with NOPs in front.
Bytes Aligned(Bytes o) {
  while (o.size() % 4) o.insert(o.begin(), 1);
  return o;
}

Bytes SynOptions() { return Cat({OptMss(1460), OptSackPerm(), OptTs(), OptNop(), OptWscale(7)}); }
Bytes Tcp4(const Tcp& t) { return Eth(0x0800, Ipv4({}, TcpSeg(t))); }
Bytes Syn4(const Bytes& options) { return Tcp4({.flags = parse::kTcpSyn, .options = Aligned(options)}); }
Bytes Ack4(const Bytes& options) { return Tcp4({.options = Aligned(options)}); }

// ---------------------------------------------------------------- TCP options

struct TcpCase {
  std::string name;
  Bytes frame;
  ParseError err;
  bool suspicious;
  bool bad;
};
void PrintTo(const TcpCase& c, std::ostream* os) { *os << c.name; }

std::vector<TcpCase> TcpCases() {
  using E = ParseError;
  return {
      // Clean: nothing is flagged.
      {"CleanSynAllOptions", Syn4(SynOptions()), E::kNone, false, false},
      {"CleanSynAckAllOptions", Tcp4({.flags = parse::kTcpSyn | parse::kTcpAck, .options = SynOptions()}),
       E::kNone, false, false},
      {"CleanIpv6Syn", Eth(0x86dd, Ipv6(kTcp, TcpSeg({.flags = parse::kTcpSyn, .options = SynOptions()}))),
       E::kNone, false, false},
      {"CleanAckAlignedTimestamp", Ack4(Cat({OptNop(), OptNop(), OptTs()})), E::kNone, false, false},
      {"CleanAckNoOptions", Tcp4({}), E::kNone, false, false},
      {"CleanSackOneBlock", Ack4(Cat({OptNop(), OptNop(), OptSack(1)})), E::kNone, false, false},
      {"CleanSackFourBlocks", Ack4(Cat({OptNop(), OptNop(), OptSack(4)})), E::kNone, false, false},
      {"CleanWscale14", Syn4(Cat({OptMss(1460), OptWscale(14)})), E::kNone, false, false},
      {"CleanWscale0", Syn4(Cat({OptMss(1460), OptWscale(0)})), E::kNone, false, false},
      {"CleanMss0OnAck", Ack4(OptMss(0)), E::kNone, false, false},  // MSS 0 is only a SYN problem
      {"CleanUrgWithPointer", Tcp4({.flags = parse::kTcpAck | parse::kTcpUrg, .urgent = 5}), E::kNone, false,
       false},
      {"CleanPointerWithoutUrg", Tcp4({.urgent = 0}), E::kNone, false, false},
      {"CleanUnknownKind", Ack4(Bytes{30, 4, 0, 0}), E::kNone, false, false},

      // Suspicious: parse, but flagged.
      {"WscaleShift15", Syn4(Cat({OptMss(1460), OptWscale(15)})), E::kNone, true, true},
      {"WscaleShift255", Syn4(OptWscale(255)), E::kNone, true, true},
      {"Mss0OnSyn", Syn4(Cat({OptMss(0), OptWscale(7)})), E::kNone, true, true},
      {"Mss0OnSynAck", Tcp4({.flags = parse::kTcpSyn | parse::kTcpAck, .options = OptMss(0)}), E::kNone, true,
       true},
      {"DuplicateMss", Syn4(Cat({OptMss(1460), OptMss(536)})), E::kNone, true, true},
      {"DuplicateWscale", Syn4(Cat({OptWscale(7), OptMss(1460), OptWscale(2)})), E::kNone, true, true},
      {"SackNoBlocks", Ack4(Cat({OptNop(), OptNop(), Bytes{5, 2}})), E::kNone, true, true},
      {"SackLength6", Ack4(Cat({OptNop(), OptNop(), Bytes{5, 6, 0, 0, 0, 1}})), E::kNone, true, true},
      {"SackLength11", Ack4(Cat({OptNop(), Bytes{5, 11}, Filler(9)})), E::kNone, true, true},
      {"SuspiciousAfterValidOptions",  // the flag is not reset by later good options
       Syn4(Cat({OptWscale(20), OptMss(1460), OptSackPerm(), OptTs()})), E::kNone, true, true},
      {"Ipv6WscaleShift15",
       Eth(0x86dd, Ipv6(kTcp, TcpSeg({.flags = parse::kTcpSyn, .options = Aligned(OptWscale(15))}))),
       E::kNone, true, true},

      // URGENT/11 CVE-2019-12255: URG with urgent pointer 0 (flag not set: options are fine).
      {"UrgPointerZero", Tcp4({.flags = parse::kTcpAck | parse::kTcpUrg, .urgent = 0}), E::kNone, false, true},
      {"UrgPointerZeroWithData",
       Eth(0x0800, Ipv4({}, TcpSeg({.flags = parse::kTcpAck | parse::kTcpPsh | parse::kTcpUrg}, Filler(40)))),
       E::kNone, false, true},

      // Wrong lengths of known options and bad data offsets: parse errors, flagged by err.
      {"WscaleLength4", Ack4(Bytes{3, 4, 7, 0}), E::kTcpBadOptions, false, true},
      {"WscaleLength2", Ack4(Bytes{1, 1, 3, 2}), E::kTcpBadOptions, false, true},
      {"MssLength3", Syn4(Bytes{2, 3, 5, 1}), E::kTcpBadOptions, false, true},
      {"MssLength6", Syn4(Bytes{1, 1, 2, 6, 5, 0xb4, 0, 0}), E::kTcpBadOptions, false, true},
      {"SackPermLength3", Syn4(Bytes{4, 3, 0, 1}), E::kTcpBadOptions, false, true},
      {"TimestampLength8", Ack4(Bytes{8, 8, 0, 0, 0, 0, 0, 0}), E::kTcpBadOptions, false, true},
      {"OptionLengthZero", Ack4(Bytes{30, 0, 0, 0}), E::kTcpBadOptions, false, true},
      {"OptionPastHeader", Ack4(Bytes{1, 1, 8, 10}), E::kTcpBadOptions, false, true},
      {"DataOffset4", Tcp4({.doff = 4}), E::kTcpBadDataOffset, false, true},
      {"DataOffsetPastSegment", Tcp4({.doff = 15}), E::kTcpBadDataOffset, false, true},

      // Not TCP, or no TCP header: never flagged.
      {"Udp", Eth(0x0800, Ipv4({.proto = kUdp}, Bytes{0, 53, 0, 53, 0, 8, 0, 0})), E::kNone, false, false},
      {"TcpTruncated", Eth(0x0800, Ipv4({}, Filler(12))), E::kTcpTruncated, false, false},
      // A later fragment whose data looks like TCP with URG and pointer 0.
      {"LaterFragmentNotParsedAsTcp",
       Eth(0x0800, Ipv4({.frag = 0x0002}, TcpSeg({.flags = parse::kTcpUrg, .options = Aligned(OptWscale(15))}))),
       E::kNone, false, false},
  };
}

class BadTcpOptionsTest : public ::testing::TestWithParam<TcpCase> {};

TEST_P(BadTcpOptionsTest, Flags) {
  const TcpCase& c = GetParam();
  PacketView v;
  const ParseError err = parse::ParsePacket(c.frame, v);
  EXPECT_EQ(parse::ParseErrorName(err), parse::ParseErrorName(c.err));
  EXPECT_EQ(v.tcp_options_suspicious, c.suspicious);
  EXPECT_EQ(BadTcpOptions(err, v), c.bad);
}

INSTANTIATE_TEST_SUITE_P(Frames, BadTcpOptionsTest, ::testing::ValuesIn(TcpCases()),
                         [](const auto& tp) { return tp.param.name; });

TEST(BadTcpOptions, UrgentPointerIsParsed) {
  PacketView v;
  ASSERT_EQ(parse::ParsePacket(Tcp4({.flags = parse::kTcpAck | parse::kTcpUrg, .urgent = 0xbeef}), v),
            ParseError::kNone);
  EXPECT_EQ(v.tcp_urgent_ptr, 0xbeef);
  EXPECT_FALSE(BadTcpOptions(ParseError::kNone, v));
  v.tcp_urgent_ptr = 0;
  EXPECT_TRUE(BadTcpOptions(ParseError::kNone, v));
}

// A suspicious SYN must not leave the flag set for the next frame parsed into the view.
TEST(BadTcpOptions, FlagResetBetweenFrames) {
  PacketView v;
  ASSERT_EQ(parse::ParsePacket(Syn4(OptWscale(15)), v), ParseError::kNone);
  ASSERT_TRUE(v.tcp_options_suspicious);
  ASSERT_EQ(parse::ParsePacket(Syn4(SynOptions()), v), ParseError::kNone);
  EXPECT_FALSE(v.tcp_options_suspicious);
  EXPECT_FALSE(BadTcpOptions(ParseError::kNone, v));
}

// ---------------------------------------------------------------- fragments

// An IPv4 fragment: `len` data bytes at byte `offset` (a multiple of 8). The first
// fragment starts with a UDP header whose length covers the whole datagram.
Bytes Frag4(uint16_t id, uint32_t offset, size_t len, bool more, uint8_t proto = kUdp, uint8_t src_last = 10) {
  Bytes data = Filler(len, static_cast<uint8_t>(offset));
  if (offset == 0 && proto == kUdp && len >= 8) {
    data[4] = 0xff;  // UDP length: more than this fragment carries
    data[5] = 0xff;
  }
  const uint16_t frag = static_cast<uint16_t>((more ? 0x2000 : 0) | (offset / 8));
  return Eth(0x0800, Ipv4({.proto = proto, .id = id, .frag = frag, .src_last = src_last}, data));
}

Bytes Frag6Hdr(uint8_t next, uint32_t offset, bool more, uint32_t id) {
  Bytes b = {next, 0};
  Put16(b, (offset & 0xfff8) | (more ? 1 : 0));
  Put32(b, id);
  return b;
}
Bytes Frag6(uint32_t id, uint32_t offset, size_t len, bool more, uint8_t next = kUdp) {
  Bytes data = Filler(len, static_cast<uint8_t>(offset));
  if (offset == 0 && next == kUdp && len >= 8) {
    data[4] = 0xff;
    data[5] = 0xff;
  }
  return Eth(0x86dd, Ipv6(44, Cat({Frag6Hdr(next, offset, more, id), data})));
}

PacketView View(const Bytes& frame) {
  PacketView v;
  const ParseError err = parse::ParsePacket(frame, v);
  EXPECT_EQ(parse::ParseErrorName(err), "none");
  EXPECT_TRUE(v.is_fragment);
  return v;
}

class FragmentGuardTest : public ::testing::Test {
 protected:
  Result Check(const Bytes& frame, uint64_t now_ns = 1) { return guard_.Check(View(frame), now_ns); }
  FragmentGuard guard_{FragmentGuardConfig{.capacity = 4096, .timeout_ms = 30000, .hash_seed = 0x5eed}};
};

TEST(FragmentFields, ParsedForIpv4AndIpv6) {
  PacketView v = View(Frag4(0xbeef, 1480, 1000, true));
  EXPECT_EQ(v.frag_offset, 1480);
  EXPECT_EQ(v.frag_len, 1000);
  EXPECT_TRUE(v.frag_more);
  EXPECT_EQ(v.frag_id, 0xbeefu);
  v = View(Frag6(0xcafef00d, 65528 & ~7u, 7, false));
  EXPECT_EQ(v.frag_offset, 65528);
  EXPECT_EQ(v.frag_len, 7);
  EXPECT_FALSE(v.frag_more);
  EXPECT_EQ(v.frag_id, 0xcafef00du);
}

TEST_F(FragmentGuardTest, InOrderTrainOk) {
  EXPECT_EQ(Check(Frag4(1, 0, 1480, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(1, 1480, 1480, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(1, 2960, 40, false)), Result::kOk);
  EXPECT_EQ(guard_.counters().trains, 1u);
  EXPECT_EQ(guard_.counters().completed, 1u);
  EXPECT_EQ(guard_.counters().overlaps, 0u);
}

TEST_F(FragmentGuardTest, OutOfOrderNonOverlappingOk) {
  EXPECT_EQ(Check(Frag4(2, 2960, 40, false)), Result::kOk);
  EXPECT_EQ(Check(Frag4(2, 1480, 1480, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(2, 0, 1480, true)), Result::kOk);
  EXPECT_EQ(guard_.counters().completed, 1u);
  EXPECT_EQ(guard_.counters().overlaps, 0u);
}

TEST_F(FragmentGuardTest, ExactDuplicateIsARetransmission) {
  EXPECT_EQ(Check(Frag4(3, 0, 48, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(3, 0, 48, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(3, 96, 8, false)), Result::kOk);
  EXPECT_EQ(Check(Frag4(3, 96, 8, false)), Result::kOk);  // duplicate last fragment
  // The duplicates were not recorded as new data: the train is still open and
  // still catches an overlap.
  EXPECT_EQ(guard_.counters().completed, 0u);
  EXPECT_EQ(Check(Frag4(3, 40, 16, true)), Result::kOverlap);
  EXPECT_EQ(Check(Frag4(3, 48, 48, true)), Result::kOk);
  EXPECT_EQ(guard_.counters().completed, 1u);
  EXPECT_EQ(guard_.counters().overlaps, 1u);
}

// Teardrop (CVE-1997-0014 class): the second fragment starts inside the first.
TEST_F(FragmentGuardTest, TeardropPartialOverlap) {
  EXPECT_EQ(Check(Frag4(4, 0, 48, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(4, 24, 48, true)), Result::kOverlap);
  EXPECT_EQ(guard_.counters().overlaps, 1u);
  // Classic teardrop: a last fragment ending inside the first.
  EXPECT_EQ(Check(Frag4(5, 0, 36, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(5, 24, 4, false)), Result::kOverlap);
  EXPECT_EQ(guard_.counters().overlaps, 2u);
}

TEST_F(FragmentGuardTest, OverlapShapes) {
  EXPECT_EQ(Check(Frag4(6, 48, 48, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(6, 48, 24, true)), Result::kOverlap) << "same offset, shorter";
  EXPECT_EQ(Check(Frag4(6, 48, 56, true)), Result::kOverlap) << "same offset, longer";
  EXPECT_EQ(Check(Frag4(6, 56, 16, true)), Result::kOverlap) << "inside";
  EXPECT_EQ(Check(Frag4(6, 0, 104, true)), Result::kOverlap) << "covers";
  EXPECT_EQ(Check(Frag4(6, 0, 56, true)), Result::kOverlap) << "ends inside";
  EXPECT_EQ(Check(Frag4(6, 0, 48, true)), Result::kOk) << "adjacent before";
  EXPECT_EQ(Check(Frag4(6, 96, 8, true)), Result::kOk) << "adjacent after";
  EXPECT_EQ(guard_.counters().overlaps, 5u);
}

TEST_F(FragmentGuardTest, DataBeyondTheLastFragment) {
  EXPECT_EQ(Check(Frag4(7, 48, 16, false)), Result::kOk);  // the datagram ends at 64
  EXPECT_EQ(Check(Frag4(7, 64, 8, true)), Result::kOverlap) << "starts at the end";
  EXPECT_EQ(Check(Frag4(7, 72, 8, false)), Result::kOverlap) << "a second, later end";
  EXPECT_EQ(Check(Frag4(7, 56, 16, true)), Result::kOverlap) << "runs past the end";
  // A last fragment ending before data already seen.
  EXPECT_EQ(Check(Frag4(8, 96, 48, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(8, 48, 8, false)), Result::kOverlap);
  EXPECT_EQ(guard_.counters().overlaps, 4u);
}

// Ping of death: the reassembled datagram (IPv4 header included) exceeds 65535 bytes.
TEST_F(FragmentGuardTest, OversizedDatagram) {
  EXPECT_EQ(Check(Frag4(9, 65496, 16, false)), Result::kOk);  // 20 + 65512 = 65532
  EXPECT_EQ(Check(Frag4(10, 65496, 24, false)), Result::kOverlap);  // 20 + 65520
  EXPECT_EQ(Check(Frag6(11, 65520, 15, false)), Result::kOk);  // 65535
  EXPECT_EQ(Check(Frag6(12, 65528, 8, false)), Result::kOverlap);  // 65536
  EXPECT_EQ(guard_.counters().overlaps, 2u);
}

TEST_F(FragmentGuardTest, Ipv6Overlap) {
  EXPECT_EQ(Check(Frag6(0x10000001, 0, 1232, true)), Result::kOk);
  EXPECT_EQ(Check(Frag6(0x10000001, 1224, 64, false)), Result::kOverlap);
  EXPECT_EQ(Check(Frag6(0x10000001, 1232, 64, false)), Result::kOk);
  EXPECT_EQ(guard_.counters().overlaps, 1u);
  EXPECT_EQ(guard_.counters().completed, 1u);
}

// RFC 8200 4.5: IPv6 reassembles by addresses and id; fragments with different next
// header values still belong to one packet.
TEST_F(FragmentGuardTest, Ipv6KeyIgnoresNextHeader) {
  EXPECT_EQ(Check(Frag6(77, 0, 64, true, kUdp)), Result::kOk);
  EXPECT_EQ(Check(Frag6(77, 32, 64, true, 59)), Result::kOverlap);
}

// IPv4 reassembles by (src, dst, protocol, id): each differing key is its own train.
TEST_F(FragmentGuardTest, DifferentTrainsDoNotInterfere) {
  EXPECT_EQ(Check(Frag4(20, 0, 48, true)), Result::kOk);
  EXPECT_EQ(Check(Frag4(21, 24, 48, true)), Result::kOk) << "other id";
  EXPECT_EQ(Check(Frag4(20, 24, 48, true, kTcp)), Result::kOk) << "other protocol";
  EXPECT_EQ(Check(Frag4(20, 24, 48, true, kUdp, 11)), Result::kOk) << "other source";
  EXPECT_EQ(Check(Frag6(20, 24, 48, true)), Result::kOk) << "IPv6, same id";
  EXPECT_EQ(guard_.counters().trains, 5u);
  EXPECT_EQ(guard_.counters().overlaps, 0u);
  EXPECT_EQ(Check(Frag4(20, 24, 48, true)), Result::kOverlap) << "the first train still holds its range";
}

TEST_F(FragmentGuardTest, AtomicFragmentAndNonFragmentUntouched) {
  EXPECT_EQ(Check(Frag6(5, 0, 64, false)), Result::kOk);  // RFC 6946 atomic fragment
  EXPECT_EQ(Check(Frag6(5, 0, 64, false)), Result::kOk);
  PacketView v;
  ASSERT_EQ(parse::ParsePacket(Tcp4({}), v), ParseError::kNone);
  EXPECT_EQ(guard_.Check(v, 1), Result::kOk);
  EXPECT_EQ(guard_.counters().trains, 0u);
}

TEST(FragmentGuard, ExpiryAfterTimeoutStartsOver) {
  FragmentGuard g({.capacity = 64, .timeout_ms = 1000, .hash_seed = 1});
  const uint64_t t0 = 5'000 * kMs;
  EXPECT_EQ(g.Check(View(Frag4(30, 0, 48, true)), t0), Result::kOk);
  EXPECT_EQ(g.Check(View(Frag4(30, 24, 48, true)), t0 + 999 * kMs), Result::kOverlap);
  // The receiver has dropped its queue by now: the same fragment starts a new train.
  EXPECT_EQ(g.Check(View(Frag4(30, 24, 48, true)), t0 + 1000 * kMs), Result::kOk);
  EXPECT_EQ(g.counters().expired, 1u);
  EXPECT_EQ(g.counters().trains, 2u);
  // ... which is tracked from that time on.
  EXPECT_EQ(g.Check(View(Frag4(30, 0, 48, true)), t0 + 1001 * kMs), Result::kOverlap);
}

// Capacity 8 is one bucket: the ninth open train does not fit.
TEST(FragmentGuard, TableFullIsUntrackedAndCounted) {
  FragmentGuard g({.capacity = 8, .timeout_ms = 1000, .hash_seed = 2});
  ASSERT_EQ(g.capacity(), 8u);
  const uint64_t t0 = 1'000 * kMs;
  for (uint16_t id = 0; id < 8; ++id) EXPECT_EQ(g.Check(View(Frag4(id, 0, 48, true)), t0), Result::kOk);
  EXPECT_EQ(g.Check(View(Frag4(100, 0, 48, true)), t0), Result::kUntracked);
  EXPECT_EQ(g.Check(View(Frag4(100, 24, 48, true)), t0), Result::kUntracked) << "not tracked: not seen";
  EXPECT_EQ(g.counters().untracked, 2u);
  EXPECT_EQ(g.counters().trains, 8u);
  // The tracked trains are still checked.
  EXPECT_EQ(g.Check(View(Frag4(3, 24, 48, true)), t0), Result::kOverlap);
  // A completed train frees its slot at once.
  EXPECT_EQ(g.Check(View(Frag4(3, 48, 8, false)), t0), Result::kOk);
  EXPECT_EQ(g.counters().completed, 1u);
  EXPECT_EQ(g.Check(View(Frag4(100, 0, 48, true)), t0), Result::kOk);
  EXPECT_EQ(g.Check(View(Frag4(101, 0, 48, true)), t0), Result::kUntracked);
  // After the timeout, stale trains give their slots to new ones.
  EXPECT_EQ(g.Check(View(Frag4(101, 0, 48, true)), t0 + 1000 * kMs), Result::kOk);
  EXPECT_EQ(g.counters().expired, 1u);
  EXPECT_EQ(g.counters().untracked, 3u);
}

// Two-choice buckets: a table 75% full of open trains still places every new one.
TEST(FragmentGuard, ThreeQuartersFullTracksEveryTrain) {
  FragmentGuard g({.capacity = 4096, .timeout_ms = 30000, .hash_seed = 4});
  ASSERT_EQ(g.capacity(), 4096u);
  for (uint32_t t = 0; t < 3072; ++t) {
    ASSERT_EQ(g.Check(View(Frag4(static_cast<uint16_t>(t), 0, 48, true)), 1), Result::kOk) << t;
  }
  EXPECT_EQ(g.counters().trains, 3072u);
  EXPECT_EQ(g.counters().untracked, 0u);
  // And every one of them is still found.
  for (uint32_t t = 0; t < 3072; ++t) {
    ASSERT_EQ(g.Check(View(Frag4(static_cast<uint16_t>(t), 24, 48, true)), 1), Result::kOverlap) << t;
  }
}

// Completed trains leave the table, so a small table serves any number of them in turn.
TEST(FragmentGuard, CompletedTrainsDoNotFillTheTable) {
  FragmentGuard g({.capacity = 8, .timeout_ms = 30000, .hash_seed = 3});
  for (uint16_t id = 0; id < 1000; ++id) {
    ASSERT_EQ(g.Check(View(Frag4(id, 0, 1480, true)), 1), Result::kOk) << id;
    ASSERT_EQ(g.Check(View(Frag4(id, 1480, 100, false)), 1), Result::kOk) << id;
  }
  EXPECT_EQ(g.counters().completed, 1000u);
  EXPECT_EQ(g.counters().untracked, 0u);
}

TEST_F(FragmentGuardTest, MoreThanSixteenFragmentsStopsTracking) {
  for (uint32_t i = 0; i < FragmentGuard::kMaxRanges; ++i) {
    EXPECT_EQ(Check(Frag4(40, i * 16, 16, true)), Result::kOk) << i;
  }
  EXPECT_EQ(guard_.counters().untracked, 0u);
  EXPECT_EQ(Check(Frag4(40, 256, 16, true)), Result::kUntracked);
  EXPECT_EQ(Check(Frag4(40, 272, 16, true)), Result::kUntracked);
  EXPECT_EQ(guard_.counters().untracked, 2u);
  // What was recorded is still checked; duplicates of it still pass.
  EXPECT_EQ(Check(Frag4(40, 8, 16, true)), Result::kOverlap);
  EXPECT_EQ(Check(Frag4(40, 16, 16, true)), Result::kOk);
  EXPECT_EQ(guard_.counters().completed, 0u);
  EXPECT_EQ(guard_.counters().trains, 1u);
}

TEST(FragmentGuard, ResultNames) {
  EXPECT_EQ(FragmentGuard::ResultName(Result::kOk), "ok");
  EXPECT_EQ(FragmentGuard::ResultName(Result::kOverlap), "overlap");
  EXPECT_EQ(FragmentGuard::ResultName(Result::kUntracked), "untracked");
}

}  // namespace
}  // namespace wardgate::hygiene
