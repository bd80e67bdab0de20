// Reject frames: what a `reject` rule sends must be valid on the wire (checksums),
// aimed at the right end, and in the window the receiver expects.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "dataplane/inspect/reject.h"
#include "dataplane/parse/packet.h"
#include "tests/support/frames.h"

namespace wardgate::inspect {
namespace {

using testsupport::Frame;

uint16_t Sum16(const uint8_t* p, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += uint32_t(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += uint32_t(p[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}

// True when the L4 checksum of a parsed IPv4/IPv6 frame verifies (sums to 0xffff).
bool L4ChecksumOk(const std::vector<uint8_t>& f, const parse::PacketView& v) {
  const bool v6 = v.l3 == parse::L3::kIpv6;
  const size_t alen = v6 ? 16 : 4;
  const uint32_t l4_len = uint32_t(f.size() - v.l4_offset);
  uint32_t sum = Sum16(v.src_addr.data(), alen, 0);
  sum += Sum16(v.dst_addr.data(), alen, 0);
  if (v.ip_proto != parse::kProtoIcmp) sum += v.ip_proto + l4_len;
  else sum = 0;  // ICMPv4 has no pseudo-header
  return Sum16(f.data() + v.l4_offset, l4_len, sum) == 0xffff;
}

parse::PacketView Parse(const std::vector<uint8_t>& f) {
  parse::PacketView v;
  EXPECT_EQ(parse::ParsePacket(f, v), parse::ParseError::kNone);
  return v;
}

std::vector<uint8_t> Build(const Frame& in, bool to_sender, bool udp = false) {
  const auto v = Parse(in);
  std::array<uint8_t, kMaxRejectFrame> out{};
  const size_t n = udp ? BuildPortUnreachable(in, v, out) : BuildTcpReset(in, v, to_sender, out);
  return {out.begin(), out.begin() + n};
}

TEST(Reject, RstToSenderSwapsEndsAndUsesItsAck) {
  const Frame in = testsupport::TcpV4(100);  // 10.77.0.11:40000 -> 10.77.0.21:2575, seq 1000 ack 2000
  const auto out = Build(in, true);
  ASSERT_FALSE(out.empty());
  const auto v = Parse(out);
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 6, in.begin() + 6)) << "dst MAC = sender's MAC";
  EXPECT_EQ(v.src_port, 2575);
  EXPECT_EQ(v.dst_port, 40000);
  EXPECT_EQ(v.src_addr[3], 21);
  EXPECT_EQ(v.dst_addr[3], 11);
  EXPECT_EQ(v.tcp_flags & parse::kTcpRst, parse::kTcpRst);
  EXPECT_EQ(v.tcp_seq, 2000u);
  EXPECT_TRUE(L4ChecksumOk(out, v));
  std::vector<uint8_t> ip(out.begin() + 14, out.begin() + 34);
  EXPECT_EQ(Sum16(ip.data(), 20, 0), 0xffff) << "IPv4 header checksum";
}

TEST(Reject, RstToReceiverKeepsDirectionAndSeq) {
  const Frame in = testsupport::TcpV4(100);
  const auto out = Build(in, false);
  ASSERT_FALSE(out.empty());
  const auto v = Parse(out);
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 12, in.begin())) << "same MACs as the dropped frame";
  EXPECT_EQ(v.src_port, 40000);
  EXPECT_EQ(v.dst_port, 2575);
  EXPECT_EQ(v.tcp_seq, 1000u);
  EXPECT_EQ(v.tcp_flags & parse::kTcpRst, parse::kTcpRst);
  EXPECT_TRUE(L4ChecksumOk(out, v));
}

TEST(Reject, VlanTagsKept) {
  const Frame in = testsupport::TcpV4(10, {0x8100, 0x0064});
  const auto v = Parse(Build(in, true));
  EXPECT_EQ(v.vlan_count, 1);
  EXPECT_EQ(v.vlan_ids[0], 100);
}

TEST(Reject, SynWithoutAckGetsAckOfSyn) {
  const Frame in = testsupport::TcpV4(0, {}, parse::kTcpSyn);
  const auto v = Parse(Build(in, true));
  EXPECT_EQ(v.tcp_flags, parse::kTcpRst | parse::kTcpAck);
  EXPECT_EQ(v.tcp_seq, 0u);
  EXPECT_EQ(v.tcp_ack, 1001u) << "SYN counts one";
}

TEST(Reject, NeverAnswersRst) {
  const Frame in = testsupport::TcpV4(0, {}, parse::kTcpRst);
  EXPECT_TRUE(Build(in, true).empty());
}

TEST(Reject, UdpGetsPortUnreachableQuotingTheDatagram) {
  const Frame in = testsupport::UdpV4(20);
  const auto out = Build(in, true, true);
  ASSERT_FALSE(out.empty());
  const auto v = Parse(out);
  EXPECT_EQ(v.ip_proto, parse::kProtoIcmp);
  EXPECT_EQ(v.icmp_type, 3);
  EXPECT_EQ(v.icmp_code, 3);
  EXPECT_EQ(v.dst_addr[3], 11) << "back to the sender";
  EXPECT_TRUE(L4ChecksumOk(out, v));
  // The quote starts with the original IP header.
  EXPECT_TRUE(std::equal(in.begin() + 14, in.begin() + 34, out.begin() + v.l4_offset + 8));
}

TEST(Reject, Ipv6PortUnreachable) {
  // IPv6 UDP frame: reuse the ICMPv6 builder's addresses, swap next header to UDP.
  Frame in = testsupport::EthHeader({0x02, 0x77, 0, 0, 0, 0x21}, 0x86dd);
  for (uint8_t b : {0x60, 0, 0, 0, 0, 12, 17, 64}) in.push_back(b);
  for (int i = 0; i < 15; ++i) in.push_back(i == 0 ? 0xfd : 0);
  in.push_back(0x11);
  for (int i = 0; i < 15; ++i) in.push_back(i == 0 ? 0xfd : 0);
  in.push_back(0x21);
  for (uint8_t b : std::initializer_list<uint8_t>{0x13, 0x88, 0x00, 0x35, 0, 12, 0, 0, 'a', 'b', 'c', 'd'}) in.push_back(b);
  const auto out = Build(in, true, true);
  ASSERT_FALSE(out.empty());
  const auto v = Parse(out);
  EXPECT_EQ(v.ip_proto, parse::kProtoIcmpv6);
  EXPECT_EQ(v.icmp_type, 1);
  EXPECT_EQ(v.icmp_code, 4);
  EXPECT_EQ(v.dst_addr[15], 0x11);
  EXPECT_TRUE(L4ChecksumOk(out, v));
}

}  // namespace
}  // namespace wardgate::inspect
