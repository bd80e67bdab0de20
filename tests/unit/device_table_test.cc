// The per-worker device table and the control thread's inventory: what is learned
// from which frames (and what is not), the limits (full table, full lists), snapshots
// taken while the worker writes, and the merge over workers with stable ids and IP
// conflicts. Frames are built byte by byte and parsed by the real parser.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "dataplane/device/device_table.h"
#include "dataplane/device/inventory.h"
#include "dataplane/parse/packet.h"

namespace wardgate::device {
namespace {

using Bytes = std::vector<uint8_t>;
using V4 = std::array<uint8_t, 4>;
using V6 = std::array<uint8_t, 16>;

constexpr Mac kPump = {0x02, 0x77, 0x00, 0x00, 0x00, 0x11};     // on the device segment
constexpr Mac kMonitor = {0x02, 0x77, 0x00, 0x00, 0x00, 0x12};
constexpr Mac kRouter = {0x02, 0x48, 0x00, 0x00, 0x00, 0x01};   // hospital side
constexpr Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr Mac kMdns = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb};

V4 Ip4(const char* s) {
  V4 a{};
  EXPECT_EQ(inet_pton(AF_INET, s, a.data()), 1) << s;
  return a;
}
V6 Ip6(const char* s) {
  V6 a{};
  EXPECT_EQ(inet_pton(AF_INET6, s, a.data()), 1) << s;
  return a;
}
V6 Wide(const V4& a) {  // IPv4 as in Peer/IpAddress: first 4 bytes, rest zero
  V6 w{};
  std::memcpy(w.data(), a.data(), 4);
  return w;
}

void Put16(Bytes& b, uint16_t v) {
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}
template <class C>
void Append(Bytes& b, const C& c) {
  b.insert(b.end(), c.begin(), c.end());
}

Bytes Eth(const Mac& dst, const Mac& src, uint16_t type, uint16_t vlan = 0) {
  Bytes b;
  Append(b, dst);
  Append(b, src);
  if (vlan) {
    Put16(b, 0x8100);
    Put16(b, vlan);
  }
  Put16(b, type);
  return b;
}

Bytes Udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes b;
  Put16(b, sport);
  Put16(b, dport);
  Put16(b, uint16_t(8 + payload.size()));
  Put16(b, 0);
  Append(b, payload);
  return b;
}

Bytes Ipv4(Bytes frame, const V4& src, const V4& dst, uint8_t proto, const Bytes& l4) {
  Put16(frame, 0x4500);
  Put16(frame, uint16_t(20 + l4.size()));
  Put16(frame, 0);
  Put16(frame, 0);
  frame.push_back(64);
  frame.push_back(proto);
  Put16(frame, 0);
  Append(frame, src);
  Append(frame, dst);
  Append(frame, l4);
  return frame;
}

Bytes Ipv6(Bytes frame, const V6& src, const V6& dst, uint8_t next, const Bytes& l4) {
  Put16(frame, 0x6000);
  Put16(frame, 0);
  Put16(frame, uint16_t(l4.size()));
  frame.push_back(next);
  frame.push_back(255);
  Append(frame, src);
  Append(frame, dst);
  Append(frame, l4);
  return frame;
}

// A UDP datagram between two hosts; the Ethernet ends are given separately.
Bytes UdpFrame(const Mac& dst, const Mac& src, const char* ip_src, const char* ip_dst, uint16_t vlan = 0,
               size_t payload = 20) {
  return Ipv4(Eth(dst, src, 0x0800, vlan), Ip4(ip_src), Ip4(ip_dst), parse::kProtoUdp,
              Udp(40000, 2575, Bytes(payload, 'x')));
}

Bytes Udp6Frame(const Mac& dst, const Mac& src, const char* ip_src, const char* ip_dst) {
  return Ipv6(Eth(dst, src, 0x86dd), Ip6(ip_src), Ip6(ip_dst), parse::kProtoUdp, Udp(40000, 104, Bytes(8, 'x')));
}

Bytes Arp(const Mac& eth_dst, const Mac& eth_src, uint16_t op, const Mac& sha, const char* spa, const char* tpa) {
  Bytes b = Eth(eth_dst, eth_src, 0x0806);
  Put16(b, 1);
  Put16(b, 0x0800);
  b.push_back(6);
  b.push_back(4);
  Put16(b, op);
  Append(b, sha);
  Append(b, Ip4(spa));
  Append(b, Mac{});
  Append(b, Ip4(tpa));
  return b;
}

// A BOOTP reply with the DHCP message type option (RFC 2131 / 2132).
Bytes Dhcp(const Mac& chaddr, const char* yiaddr, uint8_t type) {
  Bytes m(240, 0);
  m[0] = 2;  // BOOTREPLY
  m[1] = 1;
  m[2] = 6;
  std::memcpy(&m[16], Ip4(yiaddr).data(), 4);
  std::memcpy(&m[28], chaddr.data(), 6);
  const uint8_t cookie[4] = {99, 130, 83, 99};
  std::memcpy(&m[236], cookie, 4);
  for (uint8_t b : {53, 1, int(type), 54, 4, 10, 77, 0, 1, 255}) m.push_back(b);
  return m;
}

Bytes DhcpFrame(const Mac& eth_dst, const Bytes& dhcp) {
  return Ipv4(Eth(eth_dst, kRouter, 0x0800), Ip4("10.77.0.1"), Ip4("10.77.0.50"), parse::kProtoUdp,
              Udp(67, 68, dhcp));
}

// ICMPv6 neighbour advertisement (RFC 4861 4.4) for `target`; `body` cuts it short.
Bytes NaFrame(const Mac& src, const char* ip_src, const char* target, size_t body = 24) {
  Bytes icmp = {136, 0, 0, 0, 0x60, 0, 0, 0};
  Append(icmp, Ip6(target));
  icmp.resize(body);
  return Ipv6(Eth(kRouter, src, 0x86dd), Ip6(ip_src), Ip6("fe80::1"), parse::kProtoIcmpv6, icmp);
}

// Parses (it must parse) and observes.
uint32_t Feed(DeviceTable& t, const Bytes& f, bool from_device, uint64_t now = 1, uint16_t port = 0) {
  parse::PacketView v;
  EXPECT_EQ(parse::ParsePacket(f, v), parse::ParseError::kNone);
  return t.Observe(v, f.data(), uint32_t(f.size()), from_device, port, now);
}

DeviceRecord Rec(const DeviceTable& t, const Mac& mac) {
  std::vector<DeviceRecord> all;
  t.Snapshot(&all);
  for (const auto& r : all)
    if (r.mac == mac) return r;
  ADD_FAILURE() << "no record for " << MacText(mac);
  return {};
}

std::vector<V4> Ipv4s(const DeviceRecord& r) { return {r.ipv4.begin(), r.ipv4.begin() + r.n_ipv4}; }
std::vector<V6> Ipv6s(const DeviceRecord& r) { return {r.ipv6.begin(), r.ipv6.begin() + r.n_ipv6}; }

TEST(MacTest, TextAndParse) {
  EXPECT_EQ(MacText(kPump), "02:77:00:00:00:11");
  Mac m{};
  ASSERT_TRUE(ParseMac("02:77:00:00:00:11", &m));
  EXPECT_EQ(m, kPump);
  ASSERT_TRUE(ParseMac("AA-bb-Cc-00-01-FF", &m));
  EXPECT_EQ(m, (Mac{0xaa, 0xbb, 0xcc, 0x00, 0x01, 0xff}));
  for (const char* bad : {"", "02:77:00:00:00", "02:77:00:00:00:11:22", "02:77-00:00:00:11", "02:77:00:00:00:1g",
                          "0277.0000.0011", " 02:77:00:00:00:11"})
    EXPECT_FALSE(ParseMac(bad, &m)) << bad;
  EXPECT_EQ(m, (Mac{0xaa, 0xbb, 0xcc, 0x00, 0x01, 0xff}));  // untouched on failure
}

TEST(DeviceTableTest, LearnsDeviceAndAddressFromDeviceSideIpv4) {
  DeviceTable t(16);
  const Bytes f = UdpFrame(kRouter, kPump, "10.77.0.11", "10.48.0.9", /*vlan=*/77);
  const uint32_t slot = Feed(t, f, true, 1000, /*port=*/2);
  ASSERT_NE(slot, kNoDevice);
  EXPECT_EQ(t.Find(kPump), slot);
  EXPECT_EQ(t.Find(kRouter), kNoDevice);  // the other end is not a device
  EXPECT_EQ(Feed(t, f, true, 2000, 2), slot);

  const DeviceRecord r = Rec(t, kPump);
  EXPECT_EQ(r.vlan, 77);
  EXPECT_EQ(r.port, 2);
  EXPECT_EQ(Ipv4s(r), std::vector<V4>{Ip4("10.77.0.11")});
  EXPECT_EQ(r.packets_from, 2u);
  EXPECT_EQ(r.bytes_from, 2 * f.size());
  EXPECT_EQ(r.packets_to, 0u);
  EXPECT_EQ(r.first_seen_ns, 1000u);
  EXPECT_EQ(r.last_seen_ns, 2000u);
  EXPECT_EQ(r.overflow, 0u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.counters().learned, 1u);
  EXPECT_EQ(t.counters().ip_learned, 1u);
}

TEST(DeviceTableTest, SkipsSourcesThatAreNotAnAddressOfTheDevice) {
  DeviceTable t(16);
  Feed(t, UdpFrame(kBroadcast, kPump, "0.0.0.0", "255.255.255.255"), true);  // DHCP discover
  Feed(t, UdpFrame(kRouter, kPump, "255.255.255.255", "10.0.0.1"), true);
  Feed(t, UdpFrame(kRouter, kPump, "224.0.0.251", "10.0.0.1"), true);
  Feed(t, UdpFrame(kRouter, kPump, "127.0.0.1", "10.0.0.1"), true);
  Feed(t, Udp6Frame(kRouter, kPump, "::", "ff02::1:2"), true);
  Feed(t, Udp6Frame(kRouter, kPump, "ff02::1", "fe80::1"), true);
  const DeviceRecord r = Rec(t, kPump);
  EXPECT_EQ(r.packets_from, 6u);  // the device itself is learned ...
  EXPECT_EQ(r.n_ipv4, 0);         // ... but none of these addresses
  EXPECT_EQ(r.n_ipv6, 0);
  EXPECT_EQ(t.counters().ip_learned, 0u);
}

TEST(DeviceTableTest, LearnsArpSenderOnlyWhenItIsTheFrameSource) {
  DeviceTable t(16);
  Feed(t, Arp(kBroadcast, kPump, 1, kPump, "0.0.0.0", "10.77.0.11"), true);     // probe: nothing yet
  EXPECT_EQ(Rec(t, kPump).n_ipv4, 0);
  Feed(t, Arp(kBroadcast, kPump, 1, kMonitor, "10.77.0.99", "10.77.0.1"), true); // sha is not the sender
  EXPECT_EQ(Rec(t, kPump).n_ipv4, 0);
  Feed(t, Arp(kRouter, kPump, 2, kPump, "10.77.0.11", "10.77.0.1"), true);      // reply
  Feed(t, Arp(kBroadcast, kPump, 1, kPump, "10.77.0.12", "10.77.0.1"), true);   // request
  Feed(t, Arp(kBroadcast, kPump, 3, kPump, "10.77.0.13", "10.77.0.1"), true);   // RARP request: not op 1/2
  EXPECT_EQ(Ipv4s(Rec(t, kPump)), (std::vector<V4>{Ip4("10.77.0.11"), Ip4("10.77.0.12")}));
}

TEST(DeviceTableTest, LearnsDhcpAckGivenToTheDevice) {
  DeviceTable t(16);
  const uint32_t slot = Feed(t, DhcpFrame(kPump, Dhcp(kPump, "10.77.0.50", 5)), false);
  ASSERT_NE(slot, kNoDevice);
  const DeviceRecord r = Rec(t, kPump);
  EXPECT_EQ(Ipv4s(r), std::vector<V4>{Ip4("10.77.0.50")});
  EXPECT_EQ(r.packets_to, 1u);
  EXPECT_EQ(r.packets_from, 0u);
}

TEST(DeviceTableTest, DhcpThatIsNotAnAckForTheDeviceLearnsNothing) {
  DeviceTable t(16);
  Feed(t, DhcpFrame(kPump, Dhcp(kMonitor, "10.77.0.50", 5)), false);  // chaddr of another device
  Feed(t, DhcpFrame(kPump, Dhcp(kPump, "10.77.0.51", 2)), false);     // OFFER, not ACK
  Bytes truncated = Dhcp(kPump, "10.77.0.52", 5);
  truncated.resize(200);  // ends before the options
  Feed(t, DhcpFrame(kPump, truncated), false);
  Bytes bogus = Dhcp(kPump, "10.77.0.53", 5);
  bogus[241] = 200;  // option 53 claims 200 bytes, past the end
  Feed(t, DhcpFrame(kPump, bogus), false);
  Bytes no_cookie = Dhcp(kPump, "10.77.0.54", 5);
  no_cookie[236] = 0;
  Feed(t, DhcpFrame(kPump, no_cookie), false);
  Bytes request = Dhcp(kPump, "10.77.0.56", 5);
  request[0] = 1;  // BOOTREQUEST, whatever its options say
  Feed(t, DhcpFrame(kPump, request), false);
  const DeviceRecord r = Rec(t, kPump);
  EXPECT_EQ(r.packets_to, 6u);
  EXPECT_EQ(r.n_ipv4, 0);
  // The control: the same builder with everything right does learn.
  Feed(t, DhcpFrame(kPump, Dhcp(kPump, "10.77.0.55", 5)), false);
  EXPECT_EQ(Rec(t, kPump).n_ipv4, 1);
}

TEST(DeviceTableTest, BroadcastDhcpAckTeachesOnlyAKnownDevice) {
  DeviceTable t(16);
  EXPECT_EQ(Feed(t, DhcpFrame(kBroadcast, Dhcp(kPump, "10.77.0.50", 5)), false), kNoDevice);
  EXPECT_EQ(t.size(), 0u);  // no device from a broadcast
  Feed(t, UdpFrame(kBroadcast, kPump, "0.0.0.0", "255.255.255.255"), true);
  EXPECT_EQ(Feed(t, DhcpFrame(kBroadcast, Dhcp(kPump, "10.77.0.50", 5)), false), kNoDevice);
  const DeviceRecord r = Rec(t, kPump);
  EXPECT_EQ(Ipv4s(r), std::vector<V4>{Ip4("10.77.0.50")});
  EXPECT_EQ(r.packets_to, 0u);  // a broadcast is not traffic to the device
}

TEST(DeviceTableTest, LearnsIpv6SourceAndNeighbourAdvertisementTarget) {
  DeviceTable t(16);
  Feed(t, NaFrame(kPump, "fe80::77:11", "2001:db8:77::11"), true);
  EXPECT_EQ(Ipv6s(Rec(t, kPump)), (std::vector<V6>{Ip6("fe80::77:11"), Ip6("2001:db8:77::11")}));
  // An advertisement cut short before its target learns only the source.
  Feed(t, NaFrame(kMonitor, "fe80::77:12", "2001:db8:77::12", 12), true);
  EXPECT_EQ(Ipv6s(Rec(t, kMonitor)), std::vector<V6>{Ip6("fe80::77:12")});
  // A target the device does not send for itself (from the network side) is not learned.
  Bytes in = NaFrame(kRouter, "fe80::1", "2001:db8:77::99");
  std::memcpy(in.data(), kPump.data(), 6);
  Feed(t, in, false);
  EXPECT_EQ(Rec(t, kPump).n_ipv6, 2);
}

TEST(DeviceTableTest, NetworkSideFrameCountsTrafficToTheDeviceButLearnsNoAddress) {
  DeviceTable t(16);
  const Bytes f = UdpFrame(kPump, kRouter, "10.48.0.9", "10.77.0.11", 77, 100);
  const uint32_t slot = Feed(t, f, false, 5, 2);
  ASSERT_NE(slot, kNoDevice);
  EXPECT_EQ(t.Find(kRouter), kNoDevice);
  const DeviceRecord r = Rec(t, kPump);
  EXPECT_EQ(r.packets_to, 1u);
  EXPECT_EQ(r.bytes_to, f.size());
  EXPECT_EQ(r.packets_from, 0u);
  EXPECT_EQ(r.n_ipv4, 0);  // 10.48.0.9 is the hospital host's, not the pump's
  EXPECT_EQ(r.port, 2);
  EXPECT_EQ(r.vlan, 77);
}

TEST(DeviceTableTest, GroupOrZeroMacHasNoDeviceEnd) {
  DeviceTable t(16);
  EXPECT_EQ(Feed(t, UdpFrame(kBroadcast, kRouter, "10.48.0.9", "10.77.0.255"), false), kNoDevice);
  EXPECT_EQ(Feed(t, UdpFrame(kMdns, kRouter, "10.48.0.9", "224.0.0.251"), false), kNoDevice);
  EXPECT_EQ(Feed(t, UdpFrame(kRouter, kMdns, "10.77.0.11", "10.48.0.9"), true), kNoDevice);  // bogus source
  EXPECT_EQ(Feed(t, UdpFrame(kRouter, Mac{}, "10.77.0.11", "10.48.0.9"), true), kNoDevice);  // no address
  EXPECT_EQ(Feed(t, UdpFrame(Mac{}, kRouter, "10.48.0.9", "10.77.0.11"), false), kNoDevice);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.Find(kBroadcast), kNoDevice);
  EXPECT_EQ(t.Find(Mac{}), kNoDevice);
  EXPECT_EQ(t.counters().learned, 0u);
}

TEST(DeviceTableTest, FullTableCountsAndReturnsNoDevice) {
  DeviceTable t(2);
  const uint32_t a = Feed(t, UdpFrame(kRouter, kPump, "10.77.0.11", "10.48.0.9"), true);
  const uint32_t b = Feed(t, UdpFrame(kRouter, kMonitor, "10.77.0.12", "10.48.0.9"), true);
  ASSERT_NE(a, kNoDevice);
  ASSERT_NE(b, kNoDevice);
  const Mac third = {0x02, 0x77, 0, 0, 0, 0x13};
  EXPECT_EQ(Feed(t, UdpFrame(kRouter, third, "10.77.0.13", "10.48.0.9"), true), kNoDevice);
  EXPECT_EQ(Feed(t, UdpFrame(third, kRouter, "10.48.0.9", "10.77.0.13"), false), kNoDevice);
  EXPECT_EQ(t.counters().table_full, 2u);
  EXPECT_EQ(t.counters().learned, 2u);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Find(third), kNoDevice);
  EXPECT_EQ(Feed(t, UdpFrame(kRouter, kPump, "10.77.0.11", "10.48.0.9"), true), a);  // known ones still count
  EXPECT_EQ(Rec(t, kPump).packets_from, 2u);
  EXPECT_EQ(t.counters().table_full, 2u);
}

TEST(DeviceTableTest, AddressListOverflowMarksTheRecordIncomplete) {
  DeviceTable t(4);
  const char* v4[] = {"10.77.0.1", "10.77.0.2", "10.77.0.3", "10.77.0.4"};
  for (const char* a : v4) Feed(t, UdpFrame(kRouter, kPump, a, "10.48.0.9"), true);
  EXPECT_EQ(Rec(t, kPump).overflow, 0u);  // exactly full is complete
  Feed(t, UdpFrame(kRouter, kPump, "10.77.0.5", "10.48.0.9"), true);
  Feed(t, UdpFrame(kRouter, kPump, "10.77.0.1", "10.48.0.9"), true);  // a known one again: no duplicate
  const char* v6[] = {"fe80::1", "fe80::2", "fe80::3", "fe80::4", "fe80::5"};
  for (const char* a : v6) Feed(t, Udp6Frame(kRouter, kPump, a, "2001:db8::1"), true);
  const DeviceRecord r = Rec(t, kPump);
  EXPECT_EQ(r.n_ipv4, kMaxIpv4);
  EXPECT_EQ(Ipv4s(r), (std::vector<V4>{Ip4(v4[0]), Ip4(v4[1]), Ip4(v4[2]), Ip4(v4[3])}));
  EXPECT_EQ(r.n_ipv6, kMaxIpv6);
  EXPECT_EQ(r.overflow, kOverflowIpv4 | kOverflowIpv6);
  EXPECT_EQ(t.counters().ip_learned, uint64_t(kMaxIpv4 + kMaxIpv6));
}

TEST(DeviceTableTest, ServicesPeersAndAppsDedupeAndOverflow) {
  DeviceTable t(4);
  const uint32_t s = Feed(t, UdpFrame(kRouter, kPump, "10.77.0.11", "10.48.0.9"), true);
  t.NoteService(s, parse::kProtoTcp, 2575);
  t.NoteService(s, parse::kProtoTcp, 2575);
  t.NoteService(s, parse::kProtoUdp, 2575);  // another protocol, another service
  V6 junk{};
  junk.fill(0xee);
  std::memcpy(junk.data(), Ip4("10.48.0.9").data(), 4);
  t.NotePeer(s, junk, false);  // IPv4: bytes past the 4th do not count
  t.NotePeer(s, Wide(Ip4("10.48.0.9")), false);
  t.NotePeer(s, Ip6("2001:db8::9"), true);
  t.NoteApp(s, kAppHl7);
  t.NoteApp(s, kAppHl7);
  t.NoteApp(s, kAppDicom);
  t.NoteService(kNoDevice, parse::kProtoTcp, 104);  // ignored, no crash
  t.NotePeer(kNoDevice, junk, true);
  t.NoteApp(kNoDevice, kAppDicom);
  DeviceRecord r = Rec(t, kPump);
  ASSERT_EQ(r.n_services, 2);
  EXPECT_EQ(r.services[0], (Service{parse::kProtoTcp, 2575}));
  EXPECT_EQ(r.services[1], (Service{parse::kProtoUdp, 2575}));
  ASSERT_EQ(r.n_peers, 2);
  EXPECT_EQ(r.peers[0], (Peer{Wide(Ip4("10.48.0.9")), false}));
  EXPECT_EQ(r.peers[1], (Peer{Ip6("2001:db8::9"), true}));
  EXPECT_EQ(r.apps, kAppHl7 | kAppDicom);
  EXPECT_EQ(r.overflow, 0u);

  for (uint16_t p = 0; p < 40; ++p) t.NoteService(s, parse::kProtoTcp, uint16_t(10000 + p));
  for (uint8_t p = 0; p < 40; ++p) t.NotePeer(s, Wide({10, 48, 1, p}), false);
  r = Rec(t, kPump);
  EXPECT_EQ(r.n_services, kMaxServices);
  EXPECT_EQ(r.n_peers, kMaxPeers);
  EXPECT_EQ(r.overflow, kOverflowServices | kOverflowPeers);
  EXPECT_EQ(r.services[2], (Service{parse::kProtoTcp, 10000}));
  EXPECT_EQ(r.peers[kMaxPeers - 1], (Peer{Wide({10, 48, 1, uint8_t(kMaxPeers - 3)}), false}));
}

TEST(DeviceTableTest, HostileFramesNeverReadOutOfBounds) {
  // Every prefix and random corruptions of frames that exercise the DHCP, ARP and NA
  // paths, each in a buffer of its exact size (ASan reports any overread). Observe is
  // called whatever the parser said: the view holds what parsed before the fault.
  DeviceTable t(64);
  const std::vector<Bytes> seeds = {DhcpFrame(kPump, Dhcp(kPump, "10.77.0.50", 5)),
                                    DhcpFrame(kBroadcast, Dhcp(kPump, "10.77.0.50", 5)),
                                    Arp(kBroadcast, kPump, 1, kPump, "10.77.0.11", "10.77.0.1"),
                                    NaFrame(kPump, "fe80::11", "2001:db8::11")};
  std::mt19937 rng(7);
  uint64_t observed = 0;
  for (const Bytes& seed : seeds) {
    for (int round = 0; round < 300; ++round) {
      Bytes f = seed;
      if (round > 0)
        for (int k = 0; k < 1 + round % 8; ++k) f[rng() % f.size()] = uint8_t(rng());
      for (size_t len = 0; len <= f.size(); ++len) {
        auto buf = std::make_unique<uint8_t[]>(len ? len : 1);
        std::memcpy(buf.get(), f.data(), len);
        parse::PacketView v;
        parse::ParsePacket({buf.get(), len}, v);
        const bool from_device = (len + round) & 1;
        t.Observe(v, buf.get(), uint32_t(len), from_device, 0, len);
        ++observed;
      }
    }
  }
  std::vector<DeviceRecord> all;
  t.Snapshot(&all);
  EXPECT_GT(observed, 1000u);
  EXPECT_LE(all.size(), 64u);
}

TEST(DeviceTableTest, SnapshotIsConsistentWhileTheWorkerWrites) {
  // The writer hammers one device with a frame from it (100 bytes of payload) then
  // one to it (10) at times 2i and 2i+1, on port i % 2 (the port and the time are at
  // the two ends of the copy), so every whole step leaves
  // last_seen == packets_from + packets_to + 1 and port == last_seen / 2 % 2; it
  // visits a few other devices now and then and adds one every few thousand steps.
  // Every record the reader copies must show a whole number of steps: a torn copy
  // (the port or time of one step, counters of another) breaks an equality.
  constexpr uint32_t kDevices = 8;
  DeviceTable t(kDevices);
  std::vector<Bytes> from, to;
  for (uint32_t k = 0; k < kDevices; ++k) {
    const Mac m = {0x02, 0x77, 0, 0, 0, uint8_t(0x11 + k)};
    from.push_back(UdpFrame(kRouter, m, "10.77.0.11", "10.48.0.9", 0, 100));
    to.push_back(UdpFrame(m, kRouter, "10.48.0.9", "10.77.0.11", 0, 10));
  }
  parse::PacketView vf, vt;
  ASSERT_EQ(parse::ParsePacket(from[0], vf), parse::ParseError::kNone);
  ASSERT_EQ(parse::ParsePacket(to[0], vt), parse::ParseError::kNone);
  const uint64_t from_len = from[0].size(), to_len = to[0].size();

  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint32_t devices = 1;
    auto step = [&](uint32_t k, uint64_t i) {
      t.Observe(vf, from[k].data(), uint32_t(from_len), true, uint16_t(i % 2), 2 * i);
      t.Observe(vt, to[k].data(), uint32_t(to_len), false, uint16_t(i % 2), 2 * i + 1);
    };
    for (uint64_t i = 1; !stop.load(std::memory_order_relaxed); ++i) {
      step(0, i);
      t.NoteService(0, parse::kProtoTcp, uint16_t(i % 20));  // fills, then overflows
      if (i % 16 == 0)
        for (uint32_t k = 1; k < devices; ++k) step(k, i);
      if (i % 4096 == 0 && devices < kDevices) step(devices++, i);
    }
  });

  struct JoinOnExit {  // also when an ASSERT returns early
    std::atomic<bool>& stop;
    std::thread& thread;
    ~JoinOnExit() {
      stop = true;
      thread.join();
    }
  } join{stop, writer};

  std::vector<DeviceRecord> snap;
  uint64_t checked = 0, max_packets = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < deadline) {
    t.Snapshot(&snap);
    for (size_t k = 0; k < snap.size(); ++k) {
      const DeviceRecord& r = snap[k];
      ++checked;
      ASSERT_EQ(r.mac, (Mac{0x02, 0x77, 0, 0, 0, uint8_t(0x11 + k)}));
      ASSERT_EQ(r.bytes_from, r.packets_from * from_len);
      ASSERT_EQ(r.bytes_to, r.packets_to * to_len);
      ASSERT_TRUE(r.packets_from == r.packets_to || r.packets_from == r.packets_to + 1)
          << r.packets_from << " from, " << r.packets_to << " to";
      ASSERT_GE(r.packets_from, 1u);  // published only once its first frame is counted
      ASSERT_EQ(r.n_ipv4, 1);
      ASSERT_LE(r.first_seen_ns, r.last_seen_ns);
      if (k == 0) {
        ASSERT_EQ(r.last_seen_ns, r.packets_from + r.packets_to + 1);
        ASSERT_EQ(r.port, r.last_seen_ns / 2 % 2) << "at " << r.last_seen_ns;
        ASSERT_EQ(r.overflow != 0, r.n_services == kMaxServices);
        ASSERT_EQ(r.overflow & ~kOverflowServices, 0u);
        for (int i = 0; i < r.n_services; ++i) ASSERT_EQ(r.services[i].port, (i + 1) % 20);
      }
      max_packets = std::max(max_packets, r.packets_from);
    }
  }
  EXPECT_GT(checked, 1000u);
  EXPECT_GT(max_packets, 10000u);  // the writer really ran alongside
  EXPECT_GT(t.size(), 1u);
}

// ---------------------------------------------------------------------------
// Inventory

std::array<uint8_t, 16> A4(const char* s) { return Wide(Ip4(s)); }

TEST(InventoryTest, MergesOneDeviceSeenByTwoWorkers) {
  DeviceTable w0(16), w1(16);
  const Bytes from = UdpFrame(kRouter, kPump, "10.77.0.11", "10.48.0.9", 77);
  for (int i = 0; i < 3; ++i) Feed(w0, from, true, 100 + i, 2);
  Feed(w1, UdpFrame(kPump, kRouter, "10.48.0.9", "10.77.0.11", 88), false, 50, 4);
  Feed(w1, Udp6Frame(kRouter, kPump, "fe80::11", "fe80::1"), true, 60, 4);
  Feed(w1, DhcpFrame(kPump, Dhcp(kPump, "10.77.0.12", 5)), false, 70, 4);
  Feed(w1, UdpFrame(kPump, kRouter, "10.48.0.9", "10.77.0.11", 88), false, 900, 4);
  const uint32_t s0 = w0.Find(kPump), s1 = w1.Find(kPump);
  w0.NoteService(s0, parse::kProtoTcp, 2575);
  w1.NoteService(s1, parse::kProtoTcp, 2575);
  w1.NoteService(s1, parse::kProtoTcp, 104);
  w0.NotePeer(s0, A4("10.48.0.9"), false);
  w1.NotePeer(s1, A4("10.48.0.10"), false);
  w0.NoteApp(s0, kAppHl7);
  w1.NoteApp(s1, kAppDicom);

  Inventory inv;
  EXPECT_TRUE(inv.Update({&w0, &w1}).empty());
  const auto d = inv.ByMac(kPump);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->seen);
  const DeviceRecord& r = d->learned;
  EXPECT_EQ(r.packets_from, 4u);
  EXPECT_EQ(r.packets_to, 3u);
  EXPECT_EQ(r.bytes_from, 3 * from.size() + Rec(w1, kPump).bytes_from);
  EXPECT_EQ(r.first_seen_ns, 50u);
  EXPECT_EQ(r.last_seen_ns, 900u);
  EXPECT_EQ(r.vlan, 88);  // from the worker that saw it last
  EXPECT_EQ(r.port, 4);
  EXPECT_EQ(Ipv4s(r), (std::vector<V4>{Ip4("10.77.0.11"), Ip4("10.77.0.12")}));
  EXPECT_EQ(Ipv6s(r), std::vector<V6>{Ip6("fe80::11")});
  EXPECT_EQ(r.n_services, 2);  // 2575 once
  EXPECT_EQ(r.n_peers, 2);
  EXPECT_EQ(r.apps, kAppHl7 | kAppDicom);
  EXPECT_EQ(inv.List().size(), 1u);

  // Recomputed, not accumulated: a second Update with no traffic changes nothing.
  inv.Update({&w0, &w1});
  EXPECT_EQ(inv.ByMac(kPump)->learned.packets_from, 4u);
}

TEST(InventoryTest, StaticRecordsAndStableIds) {
  Inventory inv;
  StaticDevice pump{kPump, "pump-3a", "infusion-pump", "icu", "life-critical", {{A4("10.77.0.11"), false}}};
  StaticDevice monitor{kMonitor, "mon-1", "patient-monitor", "icu", "clinical", {}};
  inv.SetStatic({pump, monitor});
  auto list = inv.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, 1u);
  EXPECT_EQ(list[0].name, "pump-3a");
  EXPECT_EQ(list[0].learned.mac, kPump);
  EXPECT_FALSE(list[0].seen);
  EXPECT_EQ(list[1].id, 2u);
  EXPECT_EQ(list[1].criticality, "clinical");

  // Learned devices: ids in order of first appearance, whichever worker saw them.
  const Mac late = {0x02, 0x77, 0, 0, 0, 0x21}, early = {0x02, 0x77, 0, 0, 0, 0x22};
  DeviceTable w0(16), w1(16);
  Feed(w0, UdpFrame(kRouter, late, "10.77.0.21", "10.48.0.9"), true, 500);
  Feed(w1, UdpFrame(kRouter, early, "10.77.0.22", "10.48.0.9"), true, 300);
  Feed(w1, UdpFrame(kRouter, kPump, "10.77.0.11", "10.48.0.9"), true, 400);
  inv.Update({&w0, &w1});
  EXPECT_EQ(inv.ByMac(early)->id, 3u);
  EXPECT_EQ(inv.ByMac(late)->id, 4u);
  EXPECT_TRUE(inv.ById(1)->seen);
  EXPECT_EQ(inv.ById(1)->name, "pump-3a");  // static facts joined to the learned record
  EXPECT_EQ(inv.ById(1)->learned.packets_from, 1u);
  EXPECT_EQ(inv.ByIp(A4("10.77.0.22"), false)->id, 3u);
  EXPECT_FALSE(inv.ByIp(A4("10.77.0.99"), false).has_value());

  // A new device appears, the configuration changes: nobody's id moves.
  const Mac newer = {0x02, 0x77, 0, 0, 0, 0x23};
  Feed(w0, UdpFrame(kRouter, newer, "10.77.0.23", "10.48.0.9"), true, 100);  // earliest, but new now
  inv.Update({&w0, &w1});
  EXPECT_EQ(inv.ByMac(newer)->id, 5u);
  StaticDevice scanner{{0x02, 0x77, 0, 0, 0, 0x31}, "ct-1", "ct-scanner", "radiology", "clinical", {}};
  StaticDevice early_named{early, "early", "lab-analyser", "lab", "general", {}};
  inv.SetStatic({scanner, early_named, pump});  // monitor dropped (never seen): no longer listed
  inv.Update({&w0, &w1});
  EXPECT_EQ(inv.ByMac(scanner.mac)->id, 6u);
  EXPECT_EQ(inv.ByMac(early)->id, 3u);
  EXPECT_EQ(inv.ByMac(early)->name, "early");
  EXPECT_EQ(inv.ByMac(kPump)->id, 1u);
  EXPECT_FALSE(inv.ByMac(kMonitor).has_value());
  EXPECT_FALSE(inv.ById(2).has_value());
  list = inv.List();
  std::vector<uint64_t> ids;
  for (const auto& d : list) ids.push_back(d.id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{1, 3, 4, 5, 6}));
}

TEST(InventoryTest, IpConflictBetweenLearnedDevicesOnDifferentWorkersReportedOnce) {
  DeviceTable w0(16), w1(16);
  Feed(w0, UdpFrame(kRouter, kPump, "10.77.0.50", "10.48.0.9"), true, 100);
  Feed(w1, UdpFrame(kRouter, kMonitor, "10.77.0.50", "10.48.0.9"), true, 200);
  Inventory inv;
  auto c = inv.Update({&w0, &w1});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].addr, A4("10.77.0.50"));
  EXPECT_FALSE(c[0].v6);
  EXPECT_EQ(c[0].owner, kPump);  // the first to hold it
  EXPECT_EQ(c[0].claimant, kMonitor);
  EXPECT_EQ(c[0].ts_ns, 200u);
  EXPECT_EQ(inv.ByIp(A4("10.77.0.50"), false)->learned.mac, kPump);

  Feed(w1, UdpFrame(kRouter, kMonitor, "10.77.0.50", "10.48.0.9"), true, 300);
  EXPECT_TRUE(inv.Update({&w0, &w1}).empty());  // already reported

  // A third claimant of the same address, later: reported, still against the first owner.
  const Mac third = {0x02, 0x77, 0, 0, 0, 0x13};
  Feed(w0, NaFrame(third, "fe80::13", "2001:db8::13"), true, 400);
  Feed(w0, UdpFrame(kRouter, third, "10.77.0.50", "10.48.0.9"), true, 400);
  c = inv.Update({&w0, &w1});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].owner, kPump);
  EXPECT_EQ(c[0].claimant, third);
  // IPv6 too: the NA target made `third` the owner before the monitor used the address.
  Feed(w1, Udp6Frame(kRouter, kMonitor, "2001:db8::13", "2001:db8::1"), true, 500);
  c = inv.Update({&w0, &w1});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_TRUE(c[0].v6);
  EXPECT_EQ(c[0].addr, Ip6("2001:db8::13"));
  EXPECT_EQ(c[0].owner, third);
  EXPECT_EQ(c[0].claimant, kMonitor);
  EXPECT_EQ(c[0].ts_ns, 500u);
}

TEST(InventoryTest, IpConflictWithAStaticRecord) {
  Inventory inv;
  inv.SetStatic({{kPump, "pump-3a", "infusion-pump", "icu", "life-critical", {{A4("10.77.0.11"), false}}}});
  DeviceTable w0(16);
  Feed(w0, UdpFrame(kRouter, kPump, "10.77.0.11", "10.48.0.9"), true, 10);  // its own address: fine
  EXPECT_TRUE(inv.Update({&w0}).empty());
  Feed(w0, Arp(kBroadcast, kMonitor, 2, kMonitor, "10.77.0.11", "10.77.0.1"), true, 20);  // someone else's
  auto c = inv.Update({&w0});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].owner, kPump);
  EXPECT_EQ(c[0].claimant, kMonitor);
  EXPECT_EQ(c[0].ts_ns, 20u);
  EXPECT_EQ(inv.ByIp(A4("10.77.0.11"), false)->name, "pump-3a");
  EXPECT_TRUE(inv.Update({&w0}).empty());
}

TEST(InventoryTest, StaticOwnerWinsEvenWhenNeverSeen) {
  Inventory inv;
  inv.SetStatic({{kPump, "pump-3a", "infusion-pump", "icu", "life-critical", {{Ip6("2001:db8::11"), true}}}});
  DeviceTable w0(16);
  Feed(w0, Udp6Frame(kRouter, kMonitor, "2001:db8::11", "2001:db8::1"), true, 10);
  auto c = inv.Update({&w0});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_TRUE(c[0].v6);
  EXPECT_EQ(c[0].owner, kPump);
  EXPECT_EQ(inv.ByIp(Ip6("2001:db8::11"), true)->id, 1u);
}

}  // namespace
}  // namespace wardgate::device
