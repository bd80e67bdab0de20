#include "dataplane/parse/packet.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace wardgate::parse {
namespace {

// ---------------------------------------------------------------------------
// Frame builders. Each builds one layer around an already-built inner layer, with
// lengths computed unless a test overrides them to make the frame malformed.

using Bytes = std::vector<uint8_t>;
using Addr4 = std::array<uint8_t, 4>;
using Addr6 = std::array<uint8_t, 16>;

constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthArp = 0x0806;
constexpr uint16_t kEthIpv6 = 0x86dd;
constexpr uint16_t kTpidVlan = 0x8100;
constexpr uint16_t kTpidQinQ = 0x88a8;
constexpr uint16_t kTpidQinQLegacy = 0x9100;

constexpr uint8_t kNextHopByHop = 0;
constexpr uint8_t kNextRouting = 43;
constexpr uint8_t kNextFragment = 44;
constexpr uint8_t kNextAh = 51;
constexpr uint8_t kNextNone = 59;
constexpr uint8_t kNextDestOpts = 60;
constexpr uint8_t kProtoGre = 47;

constexpr Addr4 kSrc4{192, 168, 1, 10};
constexpr Addr4 kDst4{10, 20, 30, 40};
constexpr Addr6 kSrc6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr Addr6 kDst6{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff,
                      0xfe, 0x33, 0x44, 0x55};

void Put8(Bytes& b, unsigned v) { b.push_back(static_cast<uint8_t>(v)); }
void Put16(Bytes& b, unsigned v) {
  Put8(b, v >> 8);
  Put8(b, v & 0xff);
}
void Put32(Bytes& b, uint32_t v) {
  Put16(b, v >> 16);
  Put16(b, v & 0xffff);
}
template <typename C>
void Append(Bytes& b, const C& x) {
  b.insert(b.end(), std::begin(x), std::end(x));
}
Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) Append(b, p);
  return b;
}
// Recognizable non-zero filler, so payload bytes never look like a valid header.
Bytes Filler(size_t n, uint8_t seed = 0xa5) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}
Bytes Take(Bytes b, size_t n) {
  b.resize(n);
  return b;
}
Bytes With(Bytes b, size_t i, uint8_t v) {
  b.at(i) = v;
  return b;
}
// Ethernet minimum frame is 64 bytes with FCS, 60 without: NICs pad short frames.
Bytes Pad(Bytes f, size_t to = 60) {
  if (f.size() < to) f.resize(to, 0);
  return f;
}

struct Tag {
  uint16_t tpid;
  uint16_t tci;  // PCP(3) DEI(1) VID(12)
};

Bytes Eth(uint16_t ether_type, const Bytes& l3, std::vector<Tag> tags = {}) {
  Bytes b = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  for (const Tag& t : tags) {
    Put16(b, t.tpid);
    Put16(b, t.tci);
  }
  Put16(b, ether_type);
  Append(b, l3);
  return b;
}

struct Ip4 {
  uint8_t proto = kProtoTcp;
  uint16_t frag = 0;  // flags (reserved, DF, MF) + 13-bit offset
  Bytes options = {};  // multiple of 4 unless ihl is overridden
  uint8_t ttl = 64;
  int ihl = -1;        // override the computed IHL
  int total_len = -1;  // override the computed total length
  unsigned version = 4;
};

Bytes Ipv4(const Ip4& h, const Bytes& l4) {
  const size_t hlen = 20 + h.options.size();
  Bytes b;
  Put8(b, h.version << 4 | (h.ihl >= 0 ? static_cast<unsigned>(h.ihl) : hlen / 4));
  Put8(b, 0);
  Put16(b, h.total_len >= 0 ? static_cast<unsigned>(h.total_len) : hlen + l4.size());
  Put16(b, 0x1234);  // id
  Put16(b, h.frag);
  Put8(b, h.ttl);
  Put8(b, h.proto);
  Put16(b, 0);  // checksum: not verified by the parser
  Append(b, kSrc4);
  Append(b, kDst4);
  Append(b, h.options);
  Append(b, l4);
  return b;
}

constexpr uint16_t kIpv4Mf = 0x2000;
constexpr uint16_t kIpv4Df = 0x4000;

struct Ip6 {
  uint8_t next = kProtoTcp;
  uint8_t hop_limit = 64;
  int payload_len = -1;
  unsigned version = 6;
};

Bytes Ipv6(const Ip6& h, const Bytes& rest) {
  Bytes b;
  Put32(b, h.version << 28 | 0x00012345);  // traffic class 0, flow label
  Put16(b, h.payload_len >= 0 ? static_cast<unsigned>(h.payload_len) : rest.size());
  Put8(b, h.next);
  Put8(b, h.hop_limit);
  Append(b, kSrc6);
  Append(b, kDst6);
  Append(b, rest);
  return b;
}

// Hop-by-hop, routing or destination options: (len + 1) * 8 bytes, PadN filled.
Bytes Ext6(uint8_t next, uint8_t len = 0) {
  Bytes b = {next, len};
  const size_t total = (static_cast<size_t>(len) + 1) * 8;
  Put8(b, 1);  // PadN
  Put8(b, total - 4);
  b.resize(total, 0);
  return b;
}
Bytes Frag6(uint8_t next, uint16_t offset_units, bool more) {
  Bytes b = {next, 0};
  Put16(b, static_cast<unsigned>(offset_units << 3) | (more ? 1 : 0));
  Put32(b, 0xcafef00d);
  return b;
}
// AH: (len + 2) * 4 bytes (RFC 4302 2.2).
Bytes Ah6(uint8_t next, uint8_t len = 4) {
  Bytes b = {next, len};
  b.resize((static_cast<size_t>(len) + 2) * 4, 0x5a);
  return b;
}

struct Tcp {
  uint16_t sport = 49152;
  uint16_t dport = 443;
  uint32_t seq = 0x11223344;
  uint32_t ack = 0x55667788;
  uint8_t flags = kTcpAck;
  uint16_t window = 502;
  Bytes options = {};  // multiple of 4 unless doff is overridden
  int doff = -1;
  uint16_t urgent = 0;
};

Bytes TcpSeg(const Tcp& h, const Bytes& payload = {}) {
  Bytes b;
  Put16(b, h.sport);
  Put16(b, h.dport);
  Put32(b, h.seq);
  Put32(b, h.ack);
  Put8(b, (h.doff >= 0 ? static_cast<unsigned>(h.doff) : (20 + h.options.size()) / 4) << 4);
  Put8(b, h.flags);
  Put16(b, h.window);
  Put16(b, 0);  // checksum
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
Bytes OptTs(uint32_t val, uint32_t ecr) {
  Bytes b = {8, 10};
  Put32(b, val);
  Put32(b, ecr);
  return b;
}
Bytes OptNop() { return {1}; }
Bytes OptEol() { return {0}; }

Bytes UdpDgram(uint16_t sport, uint16_t dport, const Bytes& payload, int len = -1) {
  Bytes b;
  Put16(b, sport);
  Put16(b, dport);
  Put16(b, len >= 0 ? static_cast<unsigned>(len) : 8 + payload.size());
  Put16(b, 0);
  Append(b, payload);
  return b;
}

Bytes IcmpMsg(uint8_t type, uint8_t code, const Bytes& body) {
  Bytes b = {type, code, 0, 0};
  Append(b, body);
  return b;
}

// RFC 826 Ethernet/IPv4 ARP; hlen/plen only change the fields, not the layout.
Bytes Arp(uint16_t op, Addr4 spa, Addr4 tpa, uint8_t hlen = 6, uint8_t plen = 4) {
  Bytes b;
  Put16(b, 1);
  Put16(b, kEthIpv4);
  Put8(b, hlen);
  Put8(b, plen);
  Put16(b, op);
  Append(b, Bytes{0x02, 0, 0, 0, 0, 0x01});
  Append(b, spa);
  Append(b, Bytes{0, 0, 0, 0, 0, 0});
  Append(b, tpa);
  return b;
}

// Common frames, reused by the truncation sweep.
Bytes TcpSynOptions() {
  return Cat({OptMss(1460), OptSackPerm(), OptTs(0x01020304, 0), OptNop(), OptWscale(7)});
}
Bytes FrameIpv4TcpSyn() {
  return Eth(kEthIpv4, Ipv4({}, TcpSeg({.flags = kTcpSyn, .options = TcpSynOptions()})));
}
Bytes FrameIpv6HbhFragTcp() {
  return Eth(kEthIpv6,
             Ipv6({.next = kNextHopByHop},
                  Cat({Ext6(kNextFragment), Frag6(kProtoTcp, 0, true),
                       TcpSeg({.flags = kTcpSyn | kTcpAck, .options = Cat({OptMss(1440),
                                                                          OptNop(), OptNop(),
                                                                          OptSackPerm()})},
                              Filler(64))})));
}
Bytes FrameQinQUdp() {
  return Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, UdpDgram(5353, 5353, Filler(20))),
             {{kTpidQinQ, 200}, {kTpidVlan, 0xa000 | 300}});
}

std::string Hex(const Bytes& b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s += kDigits[c >> 4];
    s += kDigits[c & 0xf];
  }
  return s;
}

ParseError Parse(const Bytes& f, PacketView& v) { return ParsePacket(f, v); }

auto Fields(const PacketView& v) {
  return std::tie(v.ether_type, v.vlan_count, v.vlan_ids, v.l3, v.l3_offset, v.l4_offset,
                  v.ip_proto, v.ttl, v.ipv4_has_options, v.is_fragment, v.is_first_fragment,
                  v.src_addr, v.dst_addr, v.arp_op, v.src_port, v.dst_port, v.tcp_flags,
                  v.tcp_seq, v.tcp_ack, v.tcp_window, v.tcp_mss, v.tcp_wscale,
                  v.tcp_sack_permitted, v.tcp_has_timestamp, v.icmp_type, v.icmp_code,
                  v.payload_offset, v.payload_len, v.frag_more, v.frag_offset, v.frag_len,
                  v.frag_id, v.tcp_options_suspicious, v.tcp_urgent_ptr);
}

template <size_t N>
std::array<uint8_t, 16> Addr(const std::array<uint8_t, N>& a) {
  std::array<uint8_t, 16> out{};
  std::memcpy(out.data(), a.data(), N);
  return out;
}

// Invariants every result must satisfy, success or not.
void ExpectSane(const PacketView& v, size_t size) {
  EXPECT_EQ(v.frame_len, std::min<size_t>(size, 65535));
  EXPECT_LE(v.vlan_count, kMaxVlanTags);
  EXPECT_LE(v.l3_offset, v.frame_len);
  EXPECT_LE(v.l4_offset, v.frame_len);
  EXPECT_LE(size_t{v.payload_offset} + v.payload_len, v.frame_len);
}

// ---------------------------------------------------------------------------
// Valid frames.

struct ValidCase {
  std::string name;
  Bytes frame;
  std::function<void(const PacketView&)> check;
  size_t trailer = 0;  // bytes past the last parsed layer (padding, FCS); 0 if none
};

void PrintTo(const ValidCase& c, std::ostream* os) { *os << c.name << " " << Hex(c.frame); }

std::vector<ValidCase> ValidCases() {
  std::vector<ValidCase> cases;

  // 54-byte ACK padded to the 60-byte minimum: the 6 pad bytes are not payload.
  cases.push_back({"Ipv4TcpAckPadded", Pad(Eth(kEthIpv4, Ipv4({}, TcpSeg({})))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.frame_len, 60);
                     EXPECT_EQ(v.ether_type, kEthIpv4);
                     EXPECT_EQ(v.vlan_count, 0);
                     EXPECT_EQ(v.l3, L3::kIpv4);
                     EXPECT_EQ(v.l3_offset, 14);
                     EXPECT_EQ(v.l4_offset, 34);
                     EXPECT_EQ(v.ip_proto, kProtoTcp);
                     EXPECT_EQ(v.ttl, 64);
                     EXPECT_FALSE(v.ipv4_has_options);
                     EXPECT_FALSE(v.is_fragment);
                     EXPECT_FALSE(v.is_first_fragment);
                     EXPECT_EQ(v.src_addr, Addr(kSrc4));
                     EXPECT_EQ(v.dst_addr, Addr(kDst4));
                     EXPECT_EQ(v.src_port, 49152);
                     EXPECT_EQ(v.dst_port, 443);
                     EXPECT_EQ(v.tcp_seq, 0x11223344u);
                     EXPECT_EQ(v.tcp_ack, 0x55667788u);
                     EXPECT_EQ(v.tcp_flags, kTcpAck);
                     EXPECT_EQ(v.tcp_window, 502);
                     EXPECT_EQ(v.tcp_mss, 0);
                     EXPECT_EQ(v.tcp_wscale, 0xff);
                     EXPECT_FALSE(v.tcp_sack_permitted);
                     EXPECT_FALSE(v.tcp_has_timestamp);
                     EXPECT_EQ(v.payload_offset, 54);
                     EXPECT_EQ(v.payload_len, 0);
                     EXPECT_EQ(v.arp_op, 0);
                     EXPECT_FALSE(v.frag_more);
                     EXPECT_EQ(v.frag_offset, 0);
                     EXPECT_EQ(v.frag_len, 0);
                     EXPECT_EQ(v.frag_id, 0u);
                     EXPECT_FALSE(v.tcp_options_suspicious);
                     EXPECT_EQ(v.tcp_urgent_ptr, 0);
                   },
                   6});

  cases.push_back({"Ipv4TcpSynOptions", FrameIpv4TcpSyn(), [](const PacketView& v) {
                     EXPECT_EQ(v.tcp_flags, kTcpSyn);
                     EXPECT_EQ(v.tcp_mss, 1460);
                     EXPECT_EQ(v.tcp_wscale, 7);
                     EXPECT_TRUE(v.tcp_sack_permitted);
                     EXPECT_TRUE(v.tcp_has_timestamp);
                     EXPECT_FALSE(v.tcp_options_suspicious);
                     EXPECT_EQ(v.payload_offset, 34 + 40);
                     EXPECT_EQ(v.payload_len, 0);
                   }});

  // Options that parse but crash old stacks (URGENT/11 class) set tcp_options_suspicious;
  // the known values are still taken (the last one for duplicates).
  cases.push_back({"Ipv4TcpSynWscale15",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.flags = kTcpSyn,
                                                  .options = Cat({OptMss(1460), OptNop(),
                                                                  OptWscale(15)})}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.tcp_options_suspicious);
                     EXPECT_EQ(v.tcp_wscale, 15);
                     EXPECT_EQ(v.tcp_mss, 1460);
                   }});
  cases.push_back({"Ipv4TcpSynMssZero",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.flags = kTcpSyn, .options = OptMss(0)}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.tcp_options_suspicious);
                     EXPECT_EQ(v.tcp_mss, 0);
                   }});
  cases.push_back({"Ipv4TcpAckMssZeroNotSuspicious",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.options = OptMss(0)}))),
                   [](const PacketView& v) { EXPECT_FALSE(v.tcp_options_suspicious); }});
  cases.push_back({"Ipv4TcpDuplicateMss",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.flags = kTcpSyn,
                                                  .options = Cat({OptMss(1460), OptMss(536)})}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.tcp_options_suspicious);
                     EXPECT_EQ(v.tcp_mss, 536);
                   }});
  cases.push_back({"Ipv4TcpDuplicateWscale",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.flags = kTcpSyn,
                                                  .options = Cat({OptWscale(2), OptNop(),
                                                                  OptWscale(3), OptNop()})}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.tcp_options_suspicious);
                     EXPECT_EQ(v.tcp_wscale, 3);
                   }});
  cases.push_back({"Ipv4TcpSackWithoutBlocks",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.options = Cat({OptNop(), OptNop(),
                                                                  Bytes{5, 2}})}))),
                   [](const PacketView& v) { EXPECT_TRUE(v.tcp_options_suspicious); }});
  cases.push_back({"Ipv4TcpSackLength12",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.options = Cat({OptNop(), OptNop(),
                                                                  Bytes{5, 12}, Filler(10),
                                                                  OptNop(), OptNop()})}))),
                   [](const PacketView& v) { EXPECT_TRUE(v.tcp_options_suspicious); }});
  cases.push_back({"Ipv4TcpUrgentPointer",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.flags = kTcpAck | kTcpUrg, .urgent = 0x0102},
                                                 Filler(300)))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.tcp_urgent_ptr, 0x0102);
                     EXPECT_FALSE(v.tcp_options_suspicious);  // URG checks are hygiene's
                   }});

  cases.push_back(
      {"Ipv4TcpDataTimestamps",
       Eth(kEthIpv4,
           Ipv4({.ttl = 57},
                TcpSeg({.sport = 80,
                        .dport = 51000,
                        .seq = 0xfffffff0,
                        .ack = 1,
                        .flags = kTcpAck | kTcpPsh,
                        .window = 0xffff,
                        .options = Cat({OptNop(), OptNop(), OptTs(7, 9)})},
                       Filler(1448)))),
       [](const PacketView& v) {
         EXPECT_EQ(v.frame_len, 14 + 20 + 32 + 1448);
         EXPECT_EQ(v.ttl, 57);
         EXPECT_EQ(v.src_port, 80);
         EXPECT_EQ(v.dst_port, 51000);
         EXPECT_EQ(v.tcp_seq, 0xfffffff0u);
         EXPECT_EQ(v.tcp_ack, 1u);
         EXPECT_EQ(v.tcp_flags, kTcpAck | kTcpPsh);
         EXPECT_EQ(v.tcp_window, 0xffff);
         EXPECT_TRUE(v.tcp_has_timestamp);
         EXPECT_EQ(v.tcp_mss, 0);
         EXPECT_EQ(v.tcp_wscale, 0xff);
         EXPECT_EQ(v.payload_offset, 14 + 20 + 32);
         EXPECT_EQ(v.payload_len, 1448);
       }});

  // Near misses of the aligned NOP NOP TS fast path go through the full walk.
  cases.push_back({"Ipv4TcpTimestampThenNops",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.options = Cat({OptTs(1, 2), OptNop(),
                                                                  OptNop()})}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.tcp_has_timestamp);
                     EXPECT_EQ(v.payload_offset, 34 + 32);
                   }});
  cases.push_back({"Ipv4TcpAlignedTimestampThenMss",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.options = Cat({OptNop(), OptNop(),
                                                                  OptTs(1, 2), OptMss(1400)})}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.tcp_has_timestamp);
                     EXPECT_EQ(v.tcp_mss, 1400);
                     EXPECT_EQ(v.payload_offset, 34 + 36);
                   }});

  cases.push_back({"Ipv4TcpAllFlags",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.flags = 0xff}, Filler(3)))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.tcp_flags, kTcpFin | kTcpSyn | kTcpRst | kTcpPsh | kTcpAck |
                                                kTcpUrg | kTcpEce | kTcpCwr);
                     EXPECT_EQ(v.payload_len, 3);
                   }});

  // After EOL the option area is not parsed (RFC 9293 3.2): junk there is fine.
  cases.push_back({"Ipv4TcpOptionsEolStops",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({.options = Cat({OptMss(536), OptEol(),
                                                                  Bytes{2, 9, 3}})}))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.tcp_mss, 536);
                     EXPECT_EQ(v.tcp_wscale, 0xff);
                     EXPECT_EQ(v.payload_offset, 34 + 28);
                   }});

  // SACK blocks (kind 5) and an unknown kind are skipped by their length.
  cases.push_back(
      {"Ipv4TcpSackAndUnknownOptions",
       Eth(kEthIpv4, Ipv4({}, TcpSeg({.options = Cat({OptNop(), OptNop(),
                                                      Bytes{5, 10, 0, 0, 0, 1, 0, 0, 0, 9},
                                                      Bytes{30, 4, 0x10, 0x20}})},
                                     Filler(10)))),
       [](const PacketView& v) {
         EXPECT_EQ(v.tcp_mss, 0);
         EXPECT_FALSE(v.tcp_sack_permitted);
         EXPECT_EQ(v.payload_offset, 34 + 36);
         EXPECT_EQ(v.payload_len, 10);
       }});

  cases.push_back({"Ipv4TcpDontFragmentIsNotFragment",
                   Eth(kEthIpv4, Ipv4({.frag = kIpv4Df}, TcpSeg({}))),
                   [](const PacketView& v) {
                     EXPECT_FALSE(v.is_fragment);
                     EXPECT_FALSE(v.is_first_fragment);
                     EXPECT_EQ(v.src_port, 49152);
                   }});

  cases.push_back({"Ipv4UdpDns",
                   Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, UdpDgram(33000, 53, Filler(31)))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ip_proto, kProtoUdp);
                     EXPECT_EQ(v.src_port, 33000);
                     EXPECT_EQ(v.dst_port, 53);
                     EXPECT_EQ(v.l4_offset, 34);
                     EXPECT_EQ(v.payload_offset, 42);
                     EXPECT_EQ(v.payload_len, 31);
                     EXPECT_EQ(v.tcp_flags, 0);
                     EXPECT_EQ(v.tcp_wscale, 0xff);
                   }});

  cases.push_back({"Ipv4UdpPaddingNotPayload",
                   Pad(Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, UdpDgram(123, 123, {1, 2})))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.frame_len, 60);
                     EXPECT_EQ(v.payload_offset, 42);
                     EXPECT_EQ(v.payload_len, 2);
                   },
                   60 - 44});

  // IP carries more than the UDP length: payload is bounded by the UDP length.
  cases.push_back({"Ipv4UdpLengthBoundsPayload",
                   Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, UdpDgram(1, 2, Filler(10), 12))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.payload_offset, 42);
                     EXPECT_EQ(v.payload_len, 4);
                   }});

  cases.push_back({"Ipv4UdpEmpty",
                   Pad(Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, UdpDgram(7, 9, {})))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.dst_port, 9);
                     EXPECT_EQ(v.payload_offset, 42);
                     EXPECT_EQ(v.payload_len, 0);
                   },
                   60 - 42});

  cases.push_back({"Ipv4IcmpEcho",
                   Eth(kEthIpv4, Ipv4({.proto = kProtoIcmp}, IcmpMsg(8, 0, Filler(60)))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ip_proto, kProtoIcmp);
                     EXPECT_EQ(v.icmp_type, 8);
                     EXPECT_EQ(v.icmp_code, 0);
                     EXPECT_EQ(v.src_port, 0);
                     EXPECT_EQ(v.dst_port, 0);
                     EXPECT_EQ(v.payload_offset, 38);
                     EXPECT_EQ(v.payload_len, 60);
                   }});

  cases.push_back({"Ipv4IcmpPortUnreachablePadded",
                   Pad(Eth(kEthIpv4, Ipv4({.proto = kProtoIcmp}, IcmpMsg(3, 3, {})))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.icmp_type, 3);
                     EXPECT_EQ(v.icmp_code, 3);
                     EXPECT_EQ(v.payload_len, 0);
                   },
                   60 - 38});

  // NOP, Record Route (7, len 7), Router Alert (148, len 4), EOL: 12 bytes of options.
  cases.push_back(
      {"Ipv4WithOptions",
       Eth(kEthIpv4,
           Ipv4({.proto = kProtoUdp,
                 .options = Cat({OptNop(), Bytes{7, 7, 4, 0, 0, 0, 0}, Bytes{148, 4, 0, 0}})},
                UdpDgram(1000, 2000, Filler(5)))),
       [](const PacketView& v) {
         EXPECT_TRUE(v.ipv4_has_options);
         EXPECT_EQ(v.l4_offset, 14 + 32);
         EXPECT_EQ(v.src_port, 1000);
         EXPECT_EQ(v.dst_port, 2000);
         EXPECT_EQ(v.payload_offset, 14 + 32 + 8);
         EXPECT_EQ(v.payload_len, 5);
       }});

  cases.push_back({"Ipv4OptionsEolThenJunk",
                   Eth(kEthIpv4, Ipv4({.options = Bytes{1, 0, 0xff, 0xff}}, TcpSeg({}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.ipv4_has_options);
                     EXPECT_EQ(v.l4_offset, 38);
                     EXPECT_EQ(v.src_port, 49152);
                   }});

  // First fragment: L4 header present; UDP length covers the whole datagram.
  cases.push_back({"Ipv4FirstFragment",
                   Eth(kEthIpv4, Ipv4({.proto = kProtoUdp, .frag = kIpv4Mf},
                                      UdpDgram(5000, 5001, Filler(1472), 8 + 3000))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.is_fragment);
                     EXPECT_TRUE(v.is_first_fragment);
                     EXPECT_EQ(v.src_port, 5000);
                     EXPECT_EQ(v.dst_port, 5001);
                     EXPECT_EQ(v.payload_offset, 42);
                     EXPECT_EQ(v.payload_len, 1472);
                     EXPECT_TRUE(v.frag_more);
                     EXPECT_EQ(v.frag_offset, 0);
                     EXPECT_EQ(v.frag_len, 8 + 1472);
                     EXPECT_EQ(v.frag_id, 0x1234u);
                   }});

  // Later fragment: bytes after the IP header look like a bogus TCP header but are
  // fragment data, not L4.
  cases.push_back({"Ipv4MiddleFragment",
                   Eth(kEthIpv4, Ipv4({.frag = kIpv4Mf | 185}, Bytes(16, 0xff))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.is_fragment);
                     EXPECT_FALSE(v.is_first_fragment);
                     EXPECT_EQ(v.ip_proto, kProtoTcp);
                     EXPECT_EQ(v.l4_offset, 34);
                     EXPECT_EQ(v.src_port, 0);
                     EXPECT_EQ(v.tcp_flags, 0);
                     EXPECT_EQ(v.payload_offset, 34);
                     EXPECT_EQ(v.payload_len, 16);
                     EXPECT_TRUE(v.frag_more);
                     EXPECT_EQ(v.frag_offset, 185 * 8);
                     EXPECT_EQ(v.frag_len, 16);
                     EXPECT_EQ(v.frag_id, 0x1234u);
                   }});

  cases.push_back({"Ipv4LastFragmentPadded",
                   Pad(Eth(kEthIpv4, Ipv4({.proto = kProtoUdp, .frag = 370}, Filler(4)))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.is_fragment);
                     EXPECT_FALSE(v.is_first_fragment);
                     EXPECT_EQ(v.payload_offset, 34);
                     EXPECT_EQ(v.payload_len, 4);
                     EXPECT_FALSE(v.frag_more);
                     EXPECT_EQ(v.frag_offset, 370 * 8);
                     EXPECT_EQ(v.frag_len, 4);  // Ethernet padding is not fragment data
                   },
                   60 - 38});

  // Largest offset the 13-bit field holds: 8191 * 8 bytes.
  cases.push_back({"Ipv4FragmentMaxOffset",
                   Eth(kEthIpv4, Ipv4({.proto = kProtoUdp, .frag = 0x1fff}, Filler(8))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.frag_offset, 65528);
                     EXPECT_EQ(v.frag_len, 8);
                     EXPECT_FALSE(v.frag_more);
                   }});

  cases.push_back({"Ipv4OtherProtocol",
                   Eth(kEthIpv4, Ipv4({.proto = kProtoGre}, Filler(24))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ip_proto, kProtoGre);
                     EXPECT_EQ(v.l4_offset, 34);
                     EXPECT_EQ(v.payload_offset, 34);
                     EXPECT_EQ(v.payload_len, 24);
                   }});

  cases.push_back({"VlanIpv4Tcp",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({}, Filler(100))), {{kTpidVlan, 0xa000 | 100}}),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.vlan_count, 1);
                     EXPECT_EQ(v.vlan_ids[0], 100);  // PCP 5 masked off
                     EXPECT_EQ(v.vlan_ids[1], 0);
                     EXPECT_EQ(v.ether_type, kEthIpv4);
                     EXPECT_EQ(v.l3_offset, 18);
                     EXPECT_EQ(v.l4_offset, 38);
                     EXPECT_EQ(v.payload_offset, 58);
                     EXPECT_EQ(v.payload_len, 100);
                   }});

  cases.push_back({"VlanDeiAndMaxVid",
                   Pad(Eth(kEthIpv4, Ipv4({.proto = kProtoIcmp}, IcmpMsg(0, 0, {})),
                           {{kTpidVlan, 0x1fff}})),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.vlan_count, 1);
                     EXPECT_EQ(v.vlan_ids[0], 0xfff);
                   },
                   60 - 42});

  cases.push_back({"QinQUdp", FrameQinQUdp(), [](const PacketView& v) {
                     EXPECT_EQ(v.vlan_count, 2);
                     EXPECT_EQ(v.vlan_ids[0], 200);
                     EXPECT_EQ(v.vlan_ids[1], 300);
                     EXPECT_EQ(v.ether_type, kEthIpv4);
                     EXPECT_EQ(v.l3_offset, 22);
                     EXPECT_EQ(v.l4_offset, 42);
                     EXPECT_EQ(v.src_port, 5353);
                     EXPECT_EQ(v.payload_offset, 50);
                     EXPECT_EQ(v.payload_len, 20);
                   }});

  cases.push_back({"QinQLegacy9100",
                   Eth(kEthIpv4, Ipv4({}, TcpSeg({})), {{kTpidQinQLegacy, 7}, {kTpidVlan, 8}}),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.vlan_count, 2);
                     EXPECT_EQ(v.vlan_ids[0], 7);
                     EXPECT_EQ(v.vlan_ids[1], 8);
                     EXPECT_EQ(v.l3, L3::kIpv4);
                   }});

  // 0x9100 is recognized only as the outer tag; as an inner EtherType it is unknown.
  cases.push_back({"Inner9100IsUnknownEtherType",
                   Eth(kTpidQinQLegacy, Filler(40), {{kTpidQinQ, 5}}),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.vlan_count, 1);
                     EXPECT_EQ(v.ether_type, kTpidQinQLegacy);
                     EXPECT_EQ(v.l3, L3::kOther);
                     EXPECT_EQ(v.l3_offset, 18);
                   },
                   40});

  cases.push_back({"VlanIpv6Tcp",
                   Eth(kEthIpv6, Ipv6({}, TcpSeg({}, Filler(8))), {{kTpidVlan, 42}}),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.vlan_ids[0], 42);
                     EXPECT_EQ(v.l3, L3::kIpv6);
                     EXPECT_EQ(v.l3_offset, 18);
                     EXPECT_EQ(v.l4_offset, 58);
                     EXPECT_EQ(v.payload_offset, 78);
                     EXPECT_EQ(v.payload_len, 8);
                   }});

  cases.push_back({"ArpRequest", Pad(Eth(kEthArp, Arp(1, kSrc4, kDst4))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ether_type, kEthArp);
                     EXPECT_EQ(v.l3, L3::kArp);
                     EXPECT_EQ(v.l3_offset, 14);
                     EXPECT_EQ(v.arp_op, 1);
                     EXPECT_EQ(v.src_addr, Addr(kSrc4));
                     EXPECT_EQ(v.dst_addr, Addr(kDst4));
                     EXPECT_EQ(v.l4_offset, 0);
                     EXPECT_EQ(v.payload_len, 0);
                   },
                   60 - 42});

  cases.push_back({"VlanArpReply", Eth(kEthArp, Arp(2, kDst4, kSrc4), {{kTpidVlan, 10}}),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.arp_op, 2);
                     EXPECT_EQ(v.l3_offset, 18);
                     EXPECT_EQ(v.src_addr, Addr(kDst4));
                   }});

  // Non-Ethernet hardware type (IEEE 802, 6): only the 8-byte fixed header is checked.
  cases.push_back({"ArpOtherHardwareType",
                   Eth(kEthArp, Bytes{0, 6, 0x08, 0x00, 6, 4, 0, 1}),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.l3, L3::kArp);
                     EXPECT_EQ(v.arp_op, 0);
                   }});

  // Ethernet hardware but a non-IPv4 protocol type: hlen/plen are not checked.
  cases.push_back({"ArpEthernetOtherProtocol",
                   Eth(kEthArp, Bytes{0, 1, 0x86, 0xdd, 6, 16, 0, 1}),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.l3, L3::kArp);
                     EXPECT_EQ(v.arp_op, 0);
                     EXPECT_EQ(v.src_addr, (std::array<uint8_t, 16>{}));
                   }});

  cases.push_back({"Ipv6TcpSyn",
                   Eth(kEthIpv6, Ipv6({.hop_limit = 255},
                                      TcpSeg({.flags = kTcpSyn,
                                              .options = Cat({OptMss(1440), OptSackPerm(),
                                                              OptTs(1, 0), OptNop(),
                                                              OptWscale(14)})}))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ether_type, kEthIpv6);
                     EXPECT_EQ(v.l3, L3::kIpv6);
                     EXPECT_EQ(v.ttl, 255);
                     EXPECT_EQ(v.src_addr, kSrc6);
                     EXPECT_EQ(v.dst_addr, kDst6);
                     EXPECT_EQ(v.ip_proto, kProtoTcp);
                     EXPECT_EQ(v.l4_offset, 54);
                     EXPECT_EQ(v.tcp_mss, 1440);
                     EXPECT_EQ(v.tcp_wscale, 14);
                     EXPECT_TRUE(v.tcp_sack_permitted);
                     EXPECT_TRUE(v.tcp_has_timestamp);
                     EXPECT_FALSE(v.is_fragment);
                     EXPECT_EQ(v.payload_offset, 54 + 40);
                     EXPECT_EQ(v.payload_len, 0);
                   }});

  cases.push_back({"Ipv6Udp",
                   Eth(kEthIpv6, Ipv6({.next = kProtoUdp}, UdpDgram(546, 547, Filler(50)))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.src_port, 546);
                     EXPECT_EQ(v.dst_port, 547);
                     EXPECT_EQ(v.payload_offset, 62);
                     EXPECT_EQ(v.payload_len, 50);
                   }});

  // Trailing bytes past the IPv6 payload length (e.g. a kept FCS) are not payload.
  cases.push_back({"Ipv6TrailerNotPayload",
                   Cat({Eth(kEthIpv6, Ipv6({.next = kProtoUdp}, UdpDgram(1, 2, {9}))),
                        Bytes{0xde, 0xad, 0xbe, 0xef}}),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.payload_offset, 62);
                     EXPECT_EQ(v.payload_len, 1);
                   },
                   4});

  cases.push_back({"Ipv6Icmpv6EchoRequest",
                   Eth(kEthIpv6, Ipv6({.next = kProtoIcmpv6}, IcmpMsg(128, 0, Filler(12)))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ip_proto, kProtoIcmpv6);
                     EXPECT_EQ(v.icmp_type, 128);
                     EXPECT_EQ(v.icmp_code, 0);
                     EXPECT_EQ(v.payload_offset, 58);
                     EXPECT_EQ(v.payload_len, 12);
                   }});

  cases.push_back({"Ipv6Icmpv6DestUnreachable",
                   Eth(kEthIpv6, Ipv6({.next = kProtoIcmpv6}, IcmpMsg(1, 4, Filler(4)))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.icmp_type, 1);
                     EXPECT_EQ(v.icmp_code, 4);
                   }});

  cases.push_back({"Ipv6HopByHopFragmentTcp", FrameIpv6HbhFragTcp(), [](const PacketView& v) {
                     EXPECT_TRUE(v.is_fragment);
                     EXPECT_TRUE(v.is_first_fragment);
                     EXPECT_EQ(v.ip_proto, kProtoTcp);
                     EXPECT_EQ(v.l4_offset, 54 + 16);
                     EXPECT_EQ(v.src_port, 49152);
                     EXPECT_EQ(v.tcp_flags, kTcpSyn | kTcpAck);
                     EXPECT_EQ(v.tcp_mss, 1440);
                     EXPECT_TRUE(v.tcp_sack_permitted);
                     EXPECT_EQ(v.payload_offset, 54 + 16 + 28);
                     EXPECT_EQ(v.payload_len, 64);
                     EXPECT_TRUE(v.frag_more);
                     EXPECT_EQ(v.frag_offset, 0);
                     EXPECT_EQ(v.frag_len, 28 + 64);  // after the Fragment header
                     EXPECT_EQ(v.frag_id, 0xcafef00du);
                   }});

  // Later IPv6 fragment: the next header says TCP but no TCP header is present.
  cases.push_back({"Ipv6LaterFragment",
                   Eth(kEthIpv6, Ipv6({.next = kNextHopByHop},
                                      Cat({Ext6(kNextFragment), Frag6(kProtoTcp, 181, false),
                                           Bytes(24, 0xff)}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.is_fragment);
                     EXPECT_FALSE(v.is_first_fragment);
                     EXPECT_EQ(v.ip_proto, kProtoTcp);
                     EXPECT_EQ(v.l4_offset, 70);
                     EXPECT_EQ(v.src_port, 0);
                     EXPECT_EQ(v.payload_offset, 70);
                     EXPECT_EQ(v.payload_len, 24);
                     EXPECT_FALSE(v.frag_more);
                     EXPECT_EQ(v.frag_offset, 181 * 8);
                     EXPECT_EQ(v.frag_len, 24);
                     EXPECT_EQ(v.frag_id, 0xcafef00du);
                   }});

  // Extension headers after the Fragment header belong to the fragmentable part, so
  // they count in frag_len (RFC 8200 4.5), though the parser walks past them.
  cases.push_back({"Ipv6FragmentThenDestOpts",
                   Eth(kEthIpv6, Ipv6({.next = kNextFragment},
                                      Cat({Frag6(kNextDestOpts, 0, true), Ext6(kProtoUdp),
                                           UdpDgram(7, 8, Filler(16), 2000)}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.is_first_fragment);
                     EXPECT_EQ(v.ip_proto, kProtoUdp);
                     EXPECT_EQ(v.l4_offset, 54 + 8 + 8);
                     EXPECT_EQ(v.frag_len, 8 + 8 + 16);
                     EXPECT_TRUE(v.frag_more);
                   }});

  // Atomic fragment (RFC 6946): offset 0, M 0.
  cases.push_back({"Ipv6AtomicFragmentUdp",
                   Eth(kEthIpv6, Ipv6({.next = kNextFragment},
                                      Cat({Frag6(kProtoUdp, 0, false), UdpDgram(1, 2, {})}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.is_fragment);
                     EXPECT_TRUE(v.is_first_fragment);
                     EXPECT_EQ(v.dst_port, 2);
                     EXPECT_EQ(v.payload_len, 0);
                     EXPECT_FALSE(v.frag_more);
                     EXPECT_EQ(v.frag_offset, 0);
                     EXPECT_EQ(v.frag_len, 8);
                   }});

  // First IPv6 fragment: UDP length covers the reassembled datagram.
  cases.push_back({"Ipv6FirstFragmentUdp",
                   Eth(kEthIpv6, Ipv6({.next = kNextFragment},
                                      Cat({Frag6(kProtoUdp, 0, true),
                                           UdpDgram(4500, 4500, Filler(100), 4000)}))),
                   [](const PacketView& v) {
                     EXPECT_TRUE(v.is_first_fragment);
                     EXPECT_EQ(v.src_port, 4500);
                     EXPECT_EQ(v.payload_offset, 70);
                     EXPECT_EQ(v.payload_len, 100);
                   }});

  cases.push_back({"Ipv6RoutingDestOptsAhUdp",
                   Eth(kEthIpv6, Ipv6({.next = kNextRouting},
                                      Cat({Ext6(kNextDestOpts, 1), Ext6(kNextAh, 2),
                                           Ah6(kProtoUdp, 4), UdpDgram(10, 20, Filler(3))}))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ip_proto, kProtoUdp);
                     EXPECT_EQ(v.l4_offset, 54 + 16 + 24 + 24);
                     EXPECT_EQ(v.dst_port, 20);
                     EXPECT_FALSE(v.is_fragment);
                     EXPECT_EQ(v.payload_len, 3);
                   }});

  cases.push_back({"Ipv6MaxExtensionHeaders",
                   Eth(kEthIpv6,
                       Ipv6({.next = kNextDestOpts},
                            Cat({Ext6(kNextDestOpts), Ext6(kNextDestOpts), Ext6(kNextDestOpts),
                                 Ext6(kNextDestOpts), Ext6(kNextDestOpts), Ext6(kNextDestOpts),
                                 Ext6(kNextDestOpts), Ext6(kProtoTcp), TcpSeg({})}))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ip_proto, kProtoTcp);
                     EXPECT_EQ(v.l4_offset, 54 + 8 * kMaxIpv6ExtHeaders);
                     EXPECT_EQ(v.src_port, 49152);
                   }});

  // RFC 8200 4.7: nothing follows No Next Header; any bytes are exposed as payload.
  cases.push_back({"Ipv6NoNextHeader",
                   Eth(kEthIpv6, Ipv6({.next = kNextHopByHop},
                                      Cat({Ext6(kNextNone), Bytes{1, 2, 3}}))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ip_proto, kNextNone);
                     EXPECT_EQ(v.l4_offset, 62);
                     EXPECT_EQ(v.payload_offset, 62);
                     EXPECT_EQ(v.payload_len, 3);
                   }});

  cases.push_back({"UnknownEtherType", Pad(Eth(0x88cc, Filler(20))),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ether_type, 0x88cc);
                     EXPECT_EQ(v.l3, L3::kOther);
                     EXPECT_EQ(v.l3_offset, 14);
                     EXPECT_EQ(v.payload_len, 0);
                   },
                   60 - 14});

  // 802.3 frame: the "EtherType" is a length; treated as an unknown EtherType.
  cases.push_back({"Ieee8023Length", Pad(Eth(38, Bytes{0x42, 0x42, 0x03})),
                   [](const PacketView& v) {
                     EXPECT_EQ(v.ether_type, 38);
                     EXPECT_EQ(v.l3, L3::kOther);
                   },
                   60 - 14});

  return cases;
}

class ParseValidTest : public ::testing::TestWithParam<ValidCase> {};

TEST_P(ParseValidTest, ParsesFields) {
  const ValidCase& c = GetParam();
  PacketView v;
  ASSERT_EQ(ParseErrorName(Parse(c.frame, v)), "none");
  ExpectSane(v, c.frame.size());
  EXPECT_EQ(v.frame_len, c.frame.size());
  c.check(v);
}

// Every prefix of a valid frame: no out-of-bounds read (the buffer is exactly the
// prefix, so ASan sees any overrun), sane offsets, and success only once the frame
// holds every parsed byte, with the same view as the full frame.
TEST_P(ParseValidTest, EveryPrefixIsSafe) {
  const ValidCase& c = GetParam();
  PacketView full;
  ASSERT_EQ(Parse(c.frame, full), ParseError::kNone);
  const size_t needed = c.frame.size() - c.trailer;
  for (size_t n = 0; n <= c.frame.size(); ++n) {
    SCOPED_TRACE("prefix " + std::to_string(n));
    auto buf = std::make_unique<uint8_t[]>(n);
    std::memcpy(buf.get(), c.frame.data(), n);
    PacketView v;
    const ParseError e = ParsePacket({buf.get(), n}, v);
    ExpectSane(v, n);
    if (n < needed) {
      EXPECT_NE(e, ParseError::kNone);
    } else {
      EXPECT_EQ(e, ParseError::kNone);
      EXPECT_EQ(Fields(v), Fields(full));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Frames, ParseValidTest, ::testing::ValuesIn(ValidCases()),
                         [](const auto& tp) { return tp.param.name; });

// ---------------------------------------------------------------------------
// Malformed frames, each yielding exactly one error.

struct ErrorCase {
  std::string name;
  Bytes frame;
  ParseError want;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name << " " << Hex(c.frame); }

Bytes Ipv4Tcp(const Tcp& t, const Bytes& payload = {}) {
  return Eth(kEthIpv4, Ipv4({}, TcpSeg(t, payload)));
}
Bytes Ipv4TcpOptions(const Bytes& options) { return Ipv4Tcp({.options = options}); }

std::vector<ErrorCase> ErrorCases() {
  using E = ParseError;
  return {
      {"EthEmpty", {}, E::kEthTruncated},
      {"EthThirteenBytes", Bytes(13, 0), E::kEthTruncated},

      {"VlanTagCut", Cat({Eth(kTpidVlan, {}), Bytes{0x00, 0x64}}), E::kVlanTruncated},
      {"VlanTagOnlyTpid", Eth(kTpidVlan, {}), E::kVlanTruncated},
      {"QinQInnerTagCut", Eth(kTpidVlan, Bytes{0x00, 0x64}, {{kTpidQinQ, 1}}),
       E::kVlanTruncated},
      {"VlanThreeTags", Eth(kEthIpv4, Ipv4({}, TcpSeg({})),
                            {{kTpidQinQ, 1}, {kTpidVlan, 2}, {kTpidVlan, 3}}),
       E::kVlanTooManyTags},
      {"VlanThreeTags88a8Inner", Eth(kEthIpv4, Ipv4({}, TcpSeg({})),
                                     {{kTpidQinQLegacy, 1}, {kTpidVlan, 2}, {kTpidQinQ, 3}}),
       E::kVlanTooManyTags},

      {"ArpFixedHeaderCut", Eth(kEthArp, Bytes{0, 1, 8, 0, 6, 4, 0}), E::kArpTruncated},
      {"ArpEmpty", Eth(kEthArp, {}), E::kArpTruncated},
      {"ArpAddressesCut", Take(Eth(kEthArp, Arp(1, kSrc4, kDst4)), 14 + 27), E::kArpTruncated},
      {"ArpOtherTypeCut", Eth(kEthArp, Bytes{0, 6, 8, 0, 6, 4, 0}), E::kArpTruncated},
      {"ArpBadHlen", Eth(kEthArp, Arp(1, kSrc4, kDst4, 8, 4)), E::kArpMalformed},
      {"ArpBadPlen", Pad(Eth(kEthArp, Arp(2, kSrc4, kDst4, 6, 16))), E::kArpMalformed},

      {"Ipv4NineteenBytes", Eth(kEthIpv4, Take(Ipv4({}, {}), 19)), E::kIpv4Truncated},
      {"Ipv4EmptyPayload", Eth(kEthIpv4, {}), E::kIpv4Truncated},
      {"Ipv4IhlPastFrame", Eth(kEthIpv4, Ipv4({.ihl = 15, .total_len = 60}, Filler(20))),
       E::kIpv4Truncated},
      {"Ipv4Version6", Eth(kEthIpv4, Ipv4({.version = 6}, TcpSeg({}))), E::kIpv4BadVersion},
      {"Ipv4Version0", Pad(Eth(kEthIpv4, Ipv4({.version = 0}, {}))), E::kIpv4BadVersion},
      {"Ipv4Ihl4", Eth(kEthIpv4, Ipv4({.ihl = 4}, TcpSeg({}))), E::kIpv4BadHeaderLength},
      {"Ipv4Ihl0", Eth(kEthIpv4, Ipv4({.ihl = 0}, TcpSeg({}))), E::kIpv4BadHeaderLength},
      {"Ipv4TotalBelowHeader", Eth(kEthIpv4, Ipv4({.total_len = 19}, TcpSeg({}))),
       E::kIpv4BadTotalLength},
      {"Ipv4TotalBelowOptions",
       Eth(kEthIpv4, Ipv4({.options = Bytes{1, 1, 1, 1}, .total_len = 20}, TcpSeg({}))),
       E::kIpv4BadTotalLength},
      {"Ipv4TotalPastFrame", Eth(kEthIpv4, Ipv4({.total_len = 41}, TcpSeg({}))),
       E::kIpv4BadTotalLength},
      {"Ipv4OptionLengthOne", Eth(kEthIpv4, Ipv4({.options = Bytes{7, 1, 0, 0}}, TcpSeg({}))),
       E::kIpv4BadOptions},
      {"Ipv4OptionLengthZero",
       Eth(kEthIpv4, Ipv4({.options = Bytes{1, 148, 0, 0}}, TcpSeg({}))), E::kIpv4BadOptions},
      {"Ipv4OptionPastHeader",
       Eth(kEthIpv4, Ipv4({.options = Bytes{1, 7, 7, 4}}, TcpSeg({}))), E::kIpv4BadOptions},
      {"Ipv4OptionNoLengthByte",
       Eth(kEthIpv4, Ipv4({.options = Bytes{1, 1, 1, 148}}, TcpSeg({}))), E::kIpv4BadOptions},

      {"Ipv6ThirtyNineBytes", Eth(kEthIpv6, Filler(39)), E::kIpv6Truncated},
      {"Ipv6Empty", Eth(kEthIpv6, {}), E::kIpv6Truncated},
      {"Ipv6Version4", Eth(kEthIpv6, Ipv6({.version = 4}, TcpSeg({}))), E::kIpv6BadVersion},
      {"Ipv6PayloadPastFrame", Eth(kEthIpv6, Ipv6({.payload_len = 21}, TcpSeg({}))),
       E::kIpv6BadPayloadLength},
      // Hdr Ext Len 3 claims 32 bytes; 8 are present.
      {"Ipv6ExtLengthPastPacket",
       Eth(kEthIpv6, Ipv6({.next = kNextHopByHop}, With(Ext6(kProtoTcp), 1, 3))),
       E::kIpv6ExtTruncated},
      {"Ipv6ExtLessThanEightBytes",
       Eth(kEthIpv6, Ipv6({.next = kNextDestOpts}, Bytes{kProtoTcp, 0, 1, 2})),
       E::kIpv6ExtTruncated},
      {"Ipv6ExtChainNoRoom", Eth(kEthIpv6, Ipv6({.next = kNextRouting}, Ext6(kNextFragment))),
       E::kIpv6ExtTruncated},
      {"Ipv6FragmentCut",
       Eth(kEthIpv6, Ipv6({.next = kNextFragment}, Bytes{kProtoUdp, 0, 0, 1, 0, 0})),
       E::kIpv6ExtTruncated},
      // AH length 5 means (5 + 2) * 4 = 28 bytes; 24 are present.
      {"Ipv6AhPastPacket", Eth(kEthIpv6, Ipv6({.next = kNextAh}, With(Ah6(kProtoTcp, 4), 1, 5))),
       E::kIpv6ExtTruncated},
      // Payload length, not the frame, bounds the chain: trailing bytes don't count.
      {"Ipv6ExtIntoTrailer",
       Cat({Eth(kEthIpv6, Ipv6({.next = kNextDestOpts}, Bytes{kProtoTcp, 0, 1, 2})),
            Bytes(16, 0)}),
       E::kIpv6ExtTruncated},
      {"Ipv6NineExtHeaders",
       Eth(kEthIpv6, Ipv6({.next = kNextHopByHop},
                          Cat({Ext6(kNextDestOpts), Ext6(kNextRouting), Ext6(kNextDestOpts),
                               Ext6(kNextDestOpts), Ext6(kNextDestOpts), Ext6(kNextDestOpts),
                               Ext6(kNextDestOpts), Ext6(kNextDestOpts), Ext6(kProtoTcp),
                               TcpSeg({})}))),
       E::kIpv6ExtTooMany},

      {"TcpNineteenBytes", Eth(kEthIpv4, Ipv4({}, Take(TcpSeg({}), 19))), E::kTcpTruncated},
      // Frame has 60 bytes, but IP total length leaves only 6 bytes of TCP: padding
      // must not be parsed as the rest of the header.
      {"TcpCutByTotalLengthNotPadding",
       Pad(Eth(kEthIpv4, Ipv4({.total_len = 26}, TcpSeg({})))), E::kTcpTruncated},
      {"TcpIpv6Empty", Eth(kEthIpv6, Ipv6({}, {})), E::kTcpTruncated},
      {"TcpDataOffset4", Ipv4Tcp({.doff = 4}), E::kTcpBadDataOffset},
      {"TcpDataOffset0", Ipv4Tcp({.doff = 0}), E::kTcpBadDataOffset},
      {"TcpDataOffsetPastSegment", Ipv4Tcp({.doff = 15}, Filler(20)), E::kTcpBadDataOffset},
      {"TcpDataOffsetIntoPadding", Pad(Eth(kEthIpv4, Ipv4({}, TcpSeg({.doff = 6})))),
       E::kTcpBadDataOffset},
      {"TcpMssLength3", Ipv4TcpOptions(Bytes{2, 3, 5, 1}), E::kTcpBadOptions},
      {"TcpWscaleLength4", Ipv4TcpOptions(Bytes{3, 4, 7, 0}), E::kTcpBadOptions},
      {"TcpSackPermLength3", Ipv4TcpOptions(Bytes{4, 3, 0, 1}), E::kTcpBadOptions},
      {"TcpTimestampLength8", Ipv4TcpOptions(Bytes{8, 8, 0, 0, 0, 0, 0, 0}),
       E::kTcpBadOptions},
      {"TcpAlignedTimestampLength8", Ipv4TcpOptions(Bytes{1, 1, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0}),
       E::kTcpBadOptions},
      {"TcpOptionLengthZero", Ipv4TcpOptions(Bytes{30, 0, 0, 0}), E::kTcpBadOptions},
      {"TcpOptionLengthOne", Ipv4TcpOptions(Bytes{30, 1, 1, 1}), E::kTcpBadOptions},
      {"TcpOptionPastHeader", Ipv4TcpOptions(Cat({OptNop(), OptNop(), Bytes{8, 10}})),
       E::kTcpBadOptions},
      {"TcpOptionNoLengthByte", Ipv4TcpOptions(Bytes{1, 1, 1, 2}), E::kTcpBadOptions},

      {"UdpSevenBytes",
       Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, Bytes{0, 53, 0, 53, 0, 8, 0})),
       E::kUdpTruncated},
      {"UdpCutByTotalLengthNotPadding",
       Pad(Eth(kEthIpv4, Ipv4({.proto = kProtoUdp, .total_len = 24}, UdpDgram(1, 2, {})))),
       E::kUdpTruncated},
      {"UdpLengthSeven",
       Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, UdpDgram(1, 2, Filler(4), 7))),
       E::kUdpBadLength},
      {"UdpLengthZero", Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, UdpDgram(1, 2, {}, 0))),
       E::kUdpBadLength},
      {"UdpLengthPastPacket",
       Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, UdpDgram(1, 2, Filler(4), 13))),
       E::kUdpBadLength},
      // UDP length fits the frame only by counting Ethernet padding.
      {"UdpLengthIntoPadding",
       Pad(Eth(kEthIpv4, Ipv4({.proto = kProtoUdp}, UdpDgram(1, 2, {1}, 12)))),
       E::kUdpBadLength},
      {"Ipv6UdpLengthPastPacket",
       Eth(kEthIpv6, Ipv6({.next = kProtoUdp}, UdpDgram(1, 2, Filler(4), 100))),
       E::kUdpBadLength},

      {"IcmpThreeBytes", Eth(kEthIpv4, Ipv4({.proto = kProtoIcmp}, Bytes{8, 0, 0})),
       E::kIcmpTruncated},
      {"IcmpEmptyPadded", Pad(Eth(kEthIpv4, Ipv4({.proto = kProtoIcmp}, {}))),
       E::kIcmpTruncated},
      {"Icmpv6ThreeBytes", Eth(kEthIpv6, Ipv6({.next = kProtoIcmpv6}, Bytes{128, 0, 0})),
       E::kIcmpv6Truncated},
      {"Icmpv6AfterHopByHop",
       Eth(kEthIpv6, Ipv6({.next = kNextHopByHop}, Ext6(kProtoIcmpv6))), E::kIcmpv6Truncated},
  };
}

class ParseErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ParseErrorTest, YieldsExactError) {
  const ErrorCase& c = GetParam();
  ASSERT_FALSE(c.frame.empty() && c.want != ParseError::kEthTruncated) << "builder failed";
  // Exact-size heap copy so ASan catches a read past the frame.
  auto buf = std::make_unique<uint8_t[]>(c.frame.size());
  if (!c.frame.empty()) std::memcpy(buf.get(), c.frame.data(), c.frame.size());
  PacketView v;
  const ParseError e = ParsePacket({buf.get(), c.frame.size()}, v);
  EXPECT_EQ(ParseErrorName(e), ParseErrorName(c.want));
  ExpectSane(v, c.frame.size());
}

INSTANTIATE_TEST_SUITE_P(Frames, ParseErrorTest, ::testing::ValuesIn(ErrorCases()),
                         [](const auto& tp) { return tp.param.name; });

TEST(ParseErrorCoverage, EveryErrorHasAMalformedFrame) {
  std::set<ParseError> seen;
  for (const ErrorCase& c : ErrorCases()) seen.insert(c.want);
  for (size_t i = 1; i < kParseErrorCount; ++i) {
    const auto e = static_cast<ParseError>(i);
    EXPECT_TRUE(seen.count(e)) << "no frame yields " << ParseErrorName(e);
  }
}

// ---------------------------------------------------------------------------
// Other properties.

TEST(ParseErrorName, StableSnakeCaseNames) {
  const std::array<std::string_view, kParseErrorCount> want = {
      "none",
      "eth_truncated",
      "vlan_truncated",
      "vlan_too_many_tags",
      "arp_truncated",
      "arp_malformed",
      "ipv4_truncated",
      "ipv4_bad_version",
      "ipv4_bad_header_length",
      "ipv4_bad_total_length",
      "ipv4_bad_options",
      "ipv6_truncated",
      "ipv6_bad_version",
      "ipv6_bad_payload_length",
      "ipv6_ext_truncated",
      "ipv6_ext_too_many",
      "tcp_truncated",
      "tcp_bad_data_offset",
      "tcp_bad_options",
      "udp_truncated",
      "udp_bad_length",
      "icmp_truncated",
      "icmpv6_truncated",
  };
  for (size_t i = 0; i < kParseErrorCount; ++i) {
    EXPECT_EQ(ParseErrorName(static_cast<ParseError>(i)), want[i]) << i;
  }
  EXPECT_EQ(ParseErrorName(ParseError::kCount), "unknown");
  EXPECT_EQ(ParseErrorName(static_cast<ParseError>(255)), "unknown");
}

// A reused view must not keep fields from the previous frame.
TEST(ParsePacket, ResetsViewBetweenFrames) {
  PacketView v;
  ASSERT_EQ(Parse(FrameIpv4TcpSyn(), v), ParseError::kNone);
  ASSERT_EQ(v.tcp_mss, 1460);
  ASSERT_EQ(Parse(Eth(kEthIpv4, Ipv4({.frag = kIpv4Mf | 3},
                                     TcpSeg({.flags = kTcpUrg, .urgent = 9}))), v),
            ParseError::kNone);
  ASSERT_EQ(v.frag_offset, 24);
  ASSERT_EQ(Parse(Eth(kEthIpv4, Ipv4({}, TcpSeg({.flags = kTcpSyn | kTcpUrg,
                                                 .options = Cat({OptWscale(15), OptNop()}),
                                                 .urgent = 9}))),
                  v),
            ParseError::kNone);
  ASSERT_TRUE(v.tcp_options_suspicious);
  ASSERT_EQ(v.tcp_urgent_ptr, 9);
  EXPECT_FALSE(v.is_fragment);
  EXPECT_FALSE(v.frag_more);
  EXPECT_EQ(v.frag_offset, 0);
  EXPECT_EQ(v.frag_len, 0);
  EXPECT_EQ(v.frag_id, 0u);
  ASSERT_EQ(Parse(FrameQinQUdp(), v), ParseError::kNone);
  EXPECT_FALSE(v.tcp_options_suspicious);
  EXPECT_EQ(v.tcp_urgent_ptr, 0);
  EXPECT_EQ(v.tcp_mss, 0);
  EXPECT_EQ(v.tcp_wscale, 0xff);
  EXPECT_FALSE(v.tcp_has_timestamp);
  EXPECT_EQ(v.tcp_flags, 0);
  ASSERT_EQ(Parse(Pad(Eth(kEthArp, Arp(1, kSrc4, kDst4))), v), ParseError::kNone);
  EXPECT_EQ(v.vlan_count, 0);
  EXPECT_EQ(v.vlan_ids[0], 0);
  EXPECT_EQ(v.src_port, 0);
  EXPECT_EQ(v.ip_proto, 0);
  EXPECT_EQ(v.payload_len, 0);
  ASSERT_EQ(Parse(Bytes(5, 0), v), ParseError::kEthTruncated);
  EXPECT_EQ(v.l3, L3::kNone);
  EXPECT_EQ(v.arp_op, 0);
  EXPECT_EQ(v.src_addr, (std::array<uint8_t, 16>{}));
}

// On error the view keeps what was parsed before the fault.
TEST(ParsePacket, ErrorKeepsOuterLayers) {
  PacketView v;
  ASSERT_EQ(Parse(Eth(kEthIpv4, Ipv4({}, TcpSeg({.doff = 15}))), v),
            ParseError::kTcpBadDataOffset);
  EXPECT_EQ(v.l3, L3::kIpv4);
  EXPECT_EQ(v.src_addr, Addr(kSrc4));
  EXPECT_EQ(v.l4_offset, 34);
  EXPECT_EQ(v.src_port, 49152);
  EXPECT_EQ(v.payload_len, 0);
}

TEST(ParsePacket, ClampsFrameLength) {
  Bytes big = Eth(0x88b5, Bytes(70000, 0));
  PacketView v;
  EXPECT_EQ(Parse(big, v), ParseError::kNone);
  EXPECT_EQ(v.frame_len, 65535);
  EXPECT_EQ(v.l3, L3::kOther);
}

// Unaligned frame starts must not matter (memcpy loads, no UB under UBSan).
TEST(ParsePacket, UnalignedFrame) {
  const Bytes f = FrameIpv6HbhFragTcp();
  Bytes shifted(f.size() + 3);
  for (size_t shift = 0; shift < 4; ++shift) {
    std::memcpy(shifted.data() + shift, f.data(), f.size());
    PacketView a, b;
    ASSERT_EQ(ParsePacket({shifted.data() + shift, f.size()}, a), ParseError::kNone);
    ASSERT_EQ(Parse(f, b), ParseError::kNone);
    EXPECT_EQ(Fields(a), Fields(b));
  }
}

}  // namespace
}  // namespace wardgate::parse
