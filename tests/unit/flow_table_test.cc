// The per-worker flow table and its TCP tracker: one flow for both directions,
// capacity and eviction, timeouts on a fake clock, and the TCP handshakes and closes
// an inline IPS meets on a hospital LAN.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "dataplane/flow/flow_table.h"
#include "dataplane/stream/tcp_stream.h"

namespace wardgate::flow {
namespace {

using parse::kTcpAck;
using parse::kTcpFin;
using parse::kTcpRst;
using parse::kTcpSyn;

constexpr uint64_t kSec = 1'000'000'000ull;

parse::PacketView Ip(const char* src, const char* dst, uint8_t proto) {
  parse::PacketView pv;
  pv.frame_len = 100;
  if (inet_pton(AF_INET, src, pv.src_addr.data()) == 1) {
    EXPECT_EQ(inet_pton(AF_INET, dst, pv.dst_addr.data()), 1);
    pv.l3 = parse::L3::kIpv4;
    pv.ether_type = 0x0800;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, src, pv.src_addr.data()), 1);
    EXPECT_EQ(inet_pton(AF_INET6, dst, pv.dst_addr.data()), 1);
    pv.l3 = parse::L3::kIpv6;
    pv.ether_type = 0x86dd;
  }
  pv.ip_proto = proto;
  return pv;
}

parse::PacketView Udp(const char* src, uint16_t sp, const char* dst, uint16_t dp) {
  auto pv = Ip(src, dst, parse::kProtoUdp);
  pv.src_port = sp;
  pv.dst_port = dp;
  return pv;
}

parse::PacketView Icmp(const char* src, const char* dst, uint8_t type) {
  const bool v6 = std::string(src).find(':') != std::string::npos;
  auto pv = Ip(src, dst, v6 ? parse::kProtoIcmpv6 : parse::kProtoIcmp);
  pv.icmp_type = type;
  return pv;
}

// A TCP host pair: client C (10.1.0.5:49152) and server S (10.2.0.9:2575, HL7/MLLP).
struct Tcp {
  std::string c = "10.1.0.5", s = "10.2.0.9";
  uint16_t cp = 49152, sp = 2575;
  parse::PacketView FromC(uint8_t flags, uint32_t seq, uint32_t ack = 0, uint16_t len = 0) const {
    return Make(c, cp, s, sp, flags, seq, ack, len);
  }
  parse::PacketView FromS(uint8_t flags, uint32_t seq, uint32_t ack = 0, uint16_t len = 0) const {
    return Make(s, sp, c, cp, flags, seq, ack, len);
  }
  static parse::PacketView Make(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport,
                                uint8_t flags, uint32_t seq, uint32_t ack, uint16_t len) {
    auto pv = Ip(src.c_str(), dst.c_str(), parse::kProtoTcp);
    pv.src_port = sport;
    pv.dst_port = dport;
    pv.tcp_flags = flags;
    pv.tcp_seq = seq;
    pv.tcp_ack = ack;
    pv.tcp_window = 1000;
    pv.payload_len = len;
    return pv;
  }
};

FlowTableConfig Cfg(uint32_t capacity = 1024) {
  FlowTableConfig c;
  c.capacity = capacity;
  c.worker_id = 3;
  return c;
}

struct Ended {
  std::vector<std::pair<uint64_t, FlowEndReason>> flows;
  static void Fn(void* ctx, const Flow& f, FlowEndReason why) {
    static_cast<Ended*>(ctx)->flows.emplace_back(f.flow_id, why);
  }
};

// ------------------------------------------------------------------------- keys

TEST(FlowTable, BothDirectionsFindOneFlow) {
  FlowTable t(Cfg());
  Tcp h;
  auto syn = t.LookupOrCreate(h.FromC(kTcpSyn, 100), 1 * kSec);
  ASSERT_EQ(syn.status, FlowStatus::kCreated);
  EXPECT_TRUE(syn.to_server);
  auto synack = t.LookupOrCreate(h.FromS(kTcpSyn | kTcpAck, 500, 101), 2 * kSec);
  ASSERT_EQ(synack.status, FlowStatus::kFound);
  EXPECT_EQ(synack.flow, syn.flow);
  EXPECT_FALSE(synack.to_server);
  const Flow& f = *syn.flow;
  EXPECT_EQ(f.packets[kToServer], 1u);
  EXPECT_EQ(f.packets[kToClient], 1u);
  EXPECT_EQ(f.bytes[kToServer], 100u);
  EXPECT_EQ(f.first_seen_ns, 1 * kSec);
  EXPECT_EQ(f.last_seen_ns, 2 * kSec);
  EXPECT_EQ(t.size(), 1u);
  // The key is the same whichever side is lower.
  FlowKey k1, k2;
  bool first1, first2;
  ASSERT_EQ(MakeFlowKey(h.FromC(kTcpAck, 1), k1, first1), KeyStatus::kOk);
  ASSERT_EQ(MakeFlowKey(h.FromS(kTcpAck, 1), k2, first2), KeyStatus::kOk);
  EXPECT_TRUE(k1 == k2);
  EXPECT_NE(first1, first2);
}

TEST(FlowTable, ClientIsTheFirstSenderEvenWhenItIsTheHigherAddress) {
  FlowTable t(Cfg());
  Tcp h;
  h.c = "192.168.7.7";  // higher than the server's address: key side 1
  auto a = t.LookupOrCreate(h.FromC(kTcpSyn, 1), 0);
  EXPECT_TRUE(a.to_server);
  EXPECT_EQ(a.flow->client_side(), 1);
  EXPECT_FALSE(t.LookupOrCreate(h.FromS(kTcpSyn | kTcpAck, 9, 2), 0).to_server);
}

TEST(FlowTable, Ipv6UdpIcmpAndOtherProtocols) {
  FlowTable t(Cfg());
  // IPv6 TCP
  Tcp v6;
  v6.c = "2001:db8::5";
  v6.s = "2001:db8:1::9";
  auto a = t.LookupOrCreate(v6.FromC(kTcpSyn, 1), 0);
  ASSERT_EQ(a.status, FlowStatus::kCreated);
  EXPECT_EQ(a.flow->key.family, 6);
  EXPECT_EQ(t.LookupOrCreate(v6.FromS(kTcpSyn | kTcpAck, 9, 2), 0).flow, a.flow);
  // UDP (DICOM doesn't, but HL7 over UDP and syslog do)
  auto u1 = t.LookupOrCreate(Udp("10.0.0.1", 5000, "10.0.0.2", 514), 0);
  auto u2 = t.LookupOrCreate(Udp("10.0.0.2", 514, "10.0.0.1", 5000), 0);
  EXPECT_EQ(u1.status, FlowStatus::kCreated);
  EXPECT_EQ(u2.status, FlowStatus::kFound);
  EXPECT_EQ(u1.flow, u2.flow);
  EXPECT_TRUE(u1.to_server);
  EXPECT_FALSE(u2.to_server);
  EXPECT_TRUE(u1.flow->Established());
  // Another source port is another flow.
  EXPECT_EQ(t.LookupOrCreate(Udp("10.0.0.1", 5001, "10.0.0.2", 514), 0).status, FlowStatus::kCreated);
  // ICMP echo request and reply: one flow whatever the type.
  auto e1 = t.LookupOrCreate(Icmp("10.0.0.1", "10.0.0.2", 8), 0);
  auto e2 = t.LookupOrCreate(Icmp("10.0.0.2", "10.0.0.1", 0), 0);
  EXPECT_EQ(e1.flow, e2.flow);
  EXPECT_FALSE(e2.to_server);
  // ICMPv6
  auto n1 = t.LookupOrCreate(Icmp("fe80::1", "fe80::2", 128), 0);
  auto n2 = t.LookupOrCreate(Icmp("fe80::2", "fe80::1", 129), 0);
  EXPECT_EQ(n1.flow, n2.flow);
  EXPECT_EQ(n1.flow->key.ip_proto, parse::kProtoIcmpv6);
  // Other IP protocol (e.g. GRE): addresses + protocol.
  auto g1 = t.LookupOrCreate(Ip("10.0.0.1", "10.0.0.2", 47), 0);
  auto g2 = t.LookupOrCreate(Ip("10.0.0.2", "10.0.0.1", 47), 0);
  EXPECT_EQ(g1.flow, g2.flow);
  EXPECT_NE(g1.flow, e1.flow);
  EXPECT_EQ(t.size(), 6u);
}

TEST(FlowTable, VlanIsPartOfTheKey) {
  FlowTable t(Cfg());
  auto a = Udp("10.0.0.1", 5000, "10.0.0.2", 53);
  auto b = a;
  b.vlan_count = 1;
  b.vlan_ids[0] = 20;
  EXPECT_NE(t.LookupOrCreate(a, 0).flow, t.LookupOrCreate(b, 0).flow);
}

TEST(FlowTable, NonIpAndLaterFragmentsAreNotTracked) {
  FlowTable t(Cfg());
  parse::PacketView arp;
  arp.l3 = parse::L3::kArp;
  EXPECT_EQ(t.LookupOrCreate(arp, 0).status, FlowStatus::kNotIp);
  auto frag = Udp("10.0.0.1", 0, "10.0.0.2", 0);
  frag.is_fragment = true;
  EXPECT_EQ(t.LookupOrCreate(frag, 0).status, FlowStatus::kFragment);
  frag.is_first_fragment = true;
  frag.src_port = 5;
  frag.dst_port = 6;
  EXPECT_EQ(t.LookupOrCreate(frag, 0).status, FlowStatus::kCreated);
  EXPECT_EQ(t.counters().not_tracked_non_ip, 1u);
  EXPECT_EQ(t.counters().not_tracked_fragments, 1u);
}

TEST(FlowTable, FlowIdIsStablePerFlowAndDistinctAcrossFlows) {
  FlowTable t(Cfg());
  std::set<uint64_t> ids;
  for (uint16_t p = 1; p <= 100; ++p) {
    auto r = t.LookupOrCreate(Udp("10.0.0.1", p, "10.0.0.2", 53), 0);
    ids.insert(r.flow->flow_id);
    EXPECT_EQ(r.flow->flow_id >> 45, 3u) << "worker id in the top bits";
    EXPECT_LT(r.flow->flow_id, uint64_t(1) << 53) << "exact as a JSON number";
    EXPECT_EQ(t.LookupOrCreate(Udp("10.0.0.2", 53, "10.0.0.1", p), 5).flow->flow_id, r.flow->flow_id);
  }
  EXPECT_EQ(ids.size(), 100u);
  // Another worker never produces the same ids.
  FlowTableConfig c = Cfg();
  c.worker_id = 4;
  FlowTable t4(c);
  EXPECT_EQ(ids.count(t4.LookupOrCreate(Udp("10.0.0.1", 1, "10.0.0.2", 53), 0).flow->flow_id), 0u);
}

// -------------------------------------------------------------- capacity, eviction

TEST(FlowTable, FullTableEvictsTheLeastRecentlySeen) {
  FlowTable t(Cfg(8));  // the eviction sample (8) covers the whole table: exact LRU
  Ended ended;
  t.SetEndHandler(&Ended::Fn, &ended);
  std::vector<uint64_t> id;
  for (uint16_t p = 0; p < 8; ++p) {
    auto a = t.LookupOrCreate(Udp("10.0.0.1", 1000 + p, "10.0.0.2", 53), p * kSec);
    t.LookupOrCreate(Udp("10.0.0.2", 53, "10.0.0.1", 1000 + p), p * kSec);  // both ways
    id.push_back(a.flow->flow_id);
  }
  EXPECT_EQ(t.size(), 8u);
  t.LookupOrCreate(Udp("10.0.0.1", 1000, "10.0.0.2", 53), 10 * kSec);  // flow 0 seen again
  auto n = t.LookupOrCreate(Udp("10.0.0.1", 2000, "10.0.0.2", 53), 11 * kSec);
  t.LookupOrCreate(Udp("10.0.0.2", 53, "10.0.0.1", 2000), 11 * kSec);
  EXPECT_EQ(n.status, FlowStatus::kCreated);
  EXPECT_EQ(t.size(), 8u);
  ASSERT_EQ(ended.flows.size(), 1u);
  EXPECT_EQ(ended.flows[0].first, id[1]);
  EXPECT_EQ(ended.flows[0].second, FlowEndReason::kEvicted);
  EXPECT_EQ(t.counters().evictions, 1u);
  // Next: flow 2, then 3.
  for (uint16_t p : {2001, 2002}) {
    t.LookupOrCreate(Udp("10.0.0.1", p, "10.0.0.2", 53), p * kSec);
    t.LookupOrCreate(Udp("10.0.0.2", 53, "10.0.0.1", p), p * kSec);
  }
  ASSERT_EQ(ended.flows.size(), 3u);
  EXPECT_EQ(ended.flows[1].first, id[2]);
  EXPECT_EQ(ended.flows[2].first, id[3]);
  EXPECT_EQ(t.counters().evictions, 3u);
  // A flow seen one way only (a probe, a flood) goes before older two-way flows.
  const uint64_t probe = t.LookupOrCreate(Udp("10.0.0.1", 3000, "10.0.0.2", 53), 3000 * kSec).flow->flow_id;
  t.LookupOrCreate(Udp("10.0.0.1", 3001, "10.0.0.2", 53), 3001 * kSec);
  ASSERT_EQ(ended.flows.size(), 5u);
  EXPECT_EQ(ended.flows[3].first, id[4]);
  EXPECT_EQ(ended.flows[4].first, probe) << "the one-way probe, not flow 5";
  // Evicted flows are gone, the rest are found.
  FlowKey k;
  bool first;
  MakeFlowKey(Udp("10.0.0.1", 1001, "10.0.0.2", 53), k, first);
  EXPECT_EQ(t.Find(k), nullptr);
  MakeFlowKey(Udp("10.0.0.1", 1000, "10.0.0.2", 53), k, first);
  EXPECT_NE(t.Find(k), nullptr);
}

TEST(FlowTable, SynFloodEvictsHalfOpenBeforeEstablishedSessions) {
  FlowTable t(Cfg(8));
  Tcp h;
  // One established HL7 session, idle for a long time.
  t.LookupOrCreate(h.FromC(kTcpSyn, 100), 0);
  t.LookupOrCreate(h.FromS(kTcpSyn | kTcpAck, 500, 101), 0);
  auto est = t.LookupOrCreate(h.FromC(kTcpAck, 101, 501), 0);
  ASSERT_TRUE(est.flow->Established());
  const uint64_t id = est.flow->flow_id;
  // A flood of SYNs, all more recent than the session.
  for (uint16_t p = 0; p < 50; ++p) {
    Tcp flood;
    flood.c = "10.66.6.6";
    flood.cp = 10000 + p;
    t.LookupOrCreate(flood.FromC(kTcpSyn, p), (10 + p) * kSec);
  }
  FlowKey k;
  bool first;
  MakeFlowKey(h.FromC(kTcpAck, 0), k, first);
  Flow* f = t.Find(k);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->flow_id, id);
  EXPECT_EQ(t.counters().evictions, 50u - 7u);
}

TEST(FlowTable, BothBucketsFullEvictsWithinThem) {
  FlowTable t(Cfg(64));  // 16 buckets: same-pair keys are easy to find
  ASSERT_EQ(t.bucket_count(), 16u);
  Ended ended;
  t.SetEndHandler(&Ended::Fn, &ended);
  // Find 17 keys whose candidate buckets are the same pair: 16 slots hold 16 of them.
  std::vector<uint16_t> ports;
  uint32_t want1 = 0, want2 = 0;
  for (uint32_t p = 1; p < 65536 && ports.size() < 17; ++p) {
    FlowKey k;
    bool first;
    MakeFlowKey(Udp("10.0.0.1", uint16_t(p), "10.0.0.2", 53), k, first);
    uint32_t b1, b2;
    t.CandidateBuckets(t.Hash(k), b1, b2);
    if (ports.empty()) {
      want1 = b1;
      want2 = b2;
    }
    if ((b1 == want1 && b2 == want2) || (b1 == want2 && b2 == want1)) ports.push_back(uint16_t(p));
  }
  ASSERT_EQ(ports.size(), 17u);
  for (size_t i = 0; i < 16; ++i) t.LookupOrCreate(Udp("10.0.0.1", ports[i], "10.0.0.2", 53), (i + 1) * kSec);
  EXPECT_TRUE(ended.flows.empty());
  auto r = t.LookupOrCreate(Udp("10.0.0.1", ports[16], "10.0.0.2", 53), 100 * kSec);
  EXPECT_EQ(r.status, FlowStatus::kCreated);
  EXPECT_EQ(t.counters().evictions_bucket_full, 1u);
  ASSERT_EQ(ended.flows.size(), 1u);
  FlowKey k;
  bool first;
  MakeFlowKey(Udp("10.0.0.1", ports[0], "10.0.0.2", 53), k, first);
  EXPECT_EQ(t.Find(k), nullptr) << "the oldest of the 16 went";
  for (size_t i = 1; i < 17; ++i) {
    MakeFlowKey(Udp("10.0.0.1", ports[i], "10.0.0.2", 53), k, first);
    EXPECT_NE(t.Find(k), nullptr) << i;
  }
}

TEST(FlowTable, BothBucketsFullMovesAnEntryToItsOtherBucketFirst) {
  FlowTable t(Cfg(64));
  Ended ended;
  t.SetEndHandler(&Ended::Fn, &ended);
  auto key_of = [](uint16_t p) {
    FlowKey k;
    bool first;
    MakeFlowKey(Udp("10.0.0.1", p, "10.0.0.2", 53), k, first);
    return k;
  };
  // A new key with buckets {x, y}; fill x and y with keys whose first bucket they are
  // (and whose other bucket is neither), then insert the new key.
  uint32_t x, y;
  t.CandidateBuckets(t.Hash(key_of(1)), x, y);
  std::vector<uint16_t> in_x, in_y;
  for (uint32_t p = 2; p < 65536 && (in_x.size() < 8 || in_y.size() < 8); ++p) {
    uint32_t b1, b2;
    t.CandidateBuckets(t.Hash(key_of(uint16_t(p))), b1, b2);
    if (b2 == x || b2 == y) continue;
    if (b1 == x && in_x.size() < 8) in_x.push_back(uint16_t(p));
    if (b1 == y && in_y.size() < 8) in_y.push_back(uint16_t(p));
  }
  ASSERT_EQ(in_x.size() + in_y.size(), 16u);
  for (uint16_t p : in_x) t.LookupOrCreate(Udp("10.0.0.1", p, "10.0.0.2", 53), 0);
  for (uint16_t p : in_y) t.LookupOrCreate(Udp("10.0.0.1", p, "10.0.0.2", 53), 0);
  EXPECT_EQ(t.counters().index_displacements, 0u);
  t.LookupOrCreate(Udp("10.0.0.1", 1, "10.0.0.2", 53), 0);
  EXPECT_EQ(t.counters().index_displacements, 1u);
  EXPECT_EQ(t.counters().evictions, 0u);
  EXPECT_TRUE(ended.flows.empty());
  for (uint16_t p : in_x) EXPECT_NE(t.Find(key_of(p)), nullptr);
  for (uint16_t p : in_y) EXPECT_NE(t.Find(key_of(p)), nullptr);
  EXPECT_NE(t.Find(key_of(1)), nullptr);
}

TEST(FlowTable, ChurnKeepsIndexAndFlowsConsistent) {
  FlowTable t(Cfg(512));
  std::mt19937 rng(7);
  for (uint32_t i = 0; i < 20000; ++i) {
    const uint16_t p = uint16_t(rng() % 2000);
    auto r = t.LookupOrCreate(Udp("10.0.0.1", p, "10.0.0.2", 53), i * kSec / 100);
    ASSERT_NE(r.flow, nullptr);
    if (i % 64 == 0) t.Expire(i * kSec / 100, 32);
  }
  uint32_t n = 0;
  t.ForEach([&](const Flow& f) {
    ++n;
    EXPECT_EQ(t.Find(f.key), &f);
  });
  EXPECT_EQ(n, t.size());
  EXPECT_LE(t.size(), 512u);
  EXPECT_GT(t.counters().evictions, 0u);
}

// ------------------------------------------------------------------------ timeouts

TEST(FlowTable, ExpireUsesThePerStateTimeouts) {
  FlowTableConfig c = Cfg(64);
  c.timeouts = FlowTimeouts{.new_s = 10, .established_s = 100, .closed_s = 5, .udp_s = 20, .icmp_s = 3, .other_s = 7};
  FlowTable t(c);
  Ended ended;
  t.SetEndHandler(&Ended::Fn, &ended);
  Tcp est, half, closed;
  half.cp = 50000;
  closed.cp = 50001;
  t.LookupOrCreate(est.FromC(kTcpSyn, 1), 0);
  t.LookupOrCreate(est.FromS(kTcpSyn | kTcpAck, 9, 2), 0);
  auto e = t.LookupOrCreate(est.FromC(kTcpAck, 2, 10), 0);
  auto hs = t.LookupOrCreate(half.FromC(kTcpSyn, 1), 0);
  t.LookupOrCreate(closed.FromC(kTcpSyn, 1), 0);
  t.LookupOrCreate(closed.FromS(kTcpSyn | kTcpAck, 9, 2), 0);
  t.LookupOrCreate(closed.FromC(kTcpAck, 2, 10), 0);
  auto cl = t.LookupOrCreate(closed.FromC(kTcpRst | kTcpAck, 2, 10), 0);
  ASSERT_EQ(cl.flow->state(), TcpState::kClosed);
  auto u = t.LookupOrCreate(Udp("10.0.0.1", 1, "10.0.0.2", 2), 0);
  auto i = t.LookupOrCreate(Icmp("10.0.0.1", "10.0.0.2", 8), 0);
  auto o = t.LookupOrCreate(Ip("10.0.0.1", "10.0.0.2", 132), 0);
  const uint64_t ids[] = {e.flow->flow_id, hs.flow->flow_id, cl.flow->flow_id, u.flow->flow_id, i.flow->flow_id,
                          o.flow->flow_id};
  EXPECT_EQ(t.size(), 6u);

  auto expire_at = [&](uint64_t s) {
    ended.flows.clear();
    t.Expire(s * kSec + 1, t.capacity());  // a full sweep
    std::set<uint64_t> gone;
    for (auto& [id, why] : ended.flows) {
      EXPECT_EQ(why, FlowEndReason::kTimeout);
      gone.insert(id);
    }
    return gone;
  };
  EXPECT_EQ(expire_at(2), std::set<uint64_t>{});
  EXPECT_EQ(expire_at(3), std::set<uint64_t>{ids[4]});    // icmp 3 s
  EXPECT_EQ(expire_at(5), std::set<uint64_t>{ids[2]});    // closed 5 s
  EXPECT_EQ(expire_at(7), std::set<uint64_t>{ids[5]});    // other 7 s
  EXPECT_EQ(expire_at(10), std::set<uint64_t>{ids[1]});   // half open: new 10 s
  EXPECT_EQ(expire_at(20), std::set<uint64_t>{ids[3]});   // udp 20 s
  EXPECT_EQ(expire_at(99), std::set<uint64_t>{});
  EXPECT_EQ(expire_at(100), std::set<uint64_t>{ids[0]});  // established 100 s
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.counters().expired, 6u);
}

TEST(FlowTable, ActivityPostponesExpiry) {
  FlowTableConfig c = Cfg(16);
  c.timeouts.udp_s = 20;
  FlowTable t(c);
  t.LookupOrCreate(Udp("10.0.0.1", 1, "10.0.0.2", 2), 0);
  t.LookupOrCreate(Udp("10.0.0.2", 2, "10.0.0.1", 1), 15 * kSec);
  EXPECT_EQ(t.Expire(30 * kSec, 16), 0u);
  EXPECT_EQ(t.Expire(36 * kSec, 16), 1u);
}

TEST(FlowTable, ExpireExaminesOnlyItsBudgetPerCall) {
  FlowTableConfig c = Cfg(64);
  c.timeouts.udp_s = 1;
  FlowTable t(c);
  for (uint16_t p = 0; p < 64; ++p) t.LookupOrCreate(Udp("10.0.0.1", p, "10.0.0.2", 2), 0);
  EXPECT_EQ(t.Expire(10 * kSec, 16), 16u);
  EXPECT_EQ(t.size(), 48u);
  uint32_t calls = 1;
  while (t.size() > 0) {
    EXPECT_LE(t.Expire(10 * kSec, 16), 16u);
    ++calls;
  }
  EXPECT_EQ(calls, 4u) << "a sweep of 64 slots in 4 calls of 16";
}

TEST(FlowTable, MidstreamPickupOneWayGetsTheNewTimeout) {
  FlowTableConfig c = Cfg(16);
  c.midstream = true;
  c.timeouts.new_s = 10;
  c.timeouts.established_s = 1000;
  FlowTable t(c);
  Tcp h;
  auto a = t.LookupOrCreate(h.FromC(kTcpAck, 5, 5), 0);  // an ACK scan, say
  ASSERT_EQ(a.flow->state(), TcpState::kEstablished);
  EXPECT_EQ(t.Expire(11 * kSec, 16), 1u);
}

TEST(FlowTable, ExpiryReturnsStreamMemory) {
  stream::StreamConfig sc;
  sc.segment_pool = 8;
  sc.window_pool = 4;
  stream::Reassembler r(sc);
  FlowTableConfig c = Cfg(16);
  c.timeouts.new_s = 1;
  FlowTable t(c, &r);
  Tcp h;
  auto a = t.LookupOrCreate(h.FromC(kTcpSyn, 100), 0);
  const uint8_t data[4] = {1, 2, 3, 4};
  a.flow->stream[kToServer].Feed(r, 100, {}, kTcpSyn);
  EXPECT_EQ(a.flow->stream[kToServer].Feed(r, 101, data, kTcpAck).cls, stream::SegmentClass::kDelivered);
  EXPECT_EQ(a.flow->stream[kToServer].Feed(r, 200, data, kTcpAck).cls, stream::SegmentClass::kHeld);
  EXPECT_EQ(r.segments().available(), 7u);
  EXPECT_EQ(r.windows().available(), 3u);
  EXPECT_EQ(t.Expire(5 * kSec, 16), 1u);
  EXPECT_EQ(r.segments().available(), 8u);
  EXPECT_EQ(r.windows().available(), 4u);
}

// --------------------------------------------------------------------------- TCP

struct TcpFixture : ::testing::Test {
  FlowTable t{Cfg()};
  Tcp h;
  FlowResult C(uint8_t fl, uint32_t seq, uint32_t ack = 0, uint16_t len = 0) {
    return t.LookupOrCreate(h.FromC(fl, seq, ack, len), now += kSec);
  }
  FlowResult S(uint8_t fl, uint32_t seq, uint32_t ack = 0, uint16_t len = 0) {
    return t.LookupOrCreate(h.FromS(fl, seq, ack, len), now += kSec);
  }
  uint64_t now = 0;
};

TEST_F(TcpFixture, ThreeWayHandshake) {
  auto a = C(kTcpSyn, 1000);
  EXPECT_EQ(a.flow->state(), TcpState::kSynSent);
  EXPECT_FALSE(a.flow->Established());
  EXPECT_EQ(S(kTcpSyn | kTcpAck, 5000, 1001).flow->state(), TcpState::kSynRecv);
  auto e = C(kTcpAck, 1001, 5001);
  EXPECT_EQ(e.flow->state(), TcpState::kEstablished);
  EXPECT_TRUE(e.flow->Established());
  EXPECT_EQ(e.flow->info & kInfoMidstream, 0);
}

TEST_F(TcpFixture, SynAckAcknowledgingNoSynIsIgnored) {
  C(kTcpSyn, 1000);
  auto bad = S(kTcpSyn | kTcpAck, 5000, 4242);
  EXPECT_TRUE(bad.tcp_notes & kTcpNoteHandshakeInvalid);
  EXPECT_EQ(bad.flow->state(), TcpState::kSynSent);
  EXPECT_EQ(t.counters().tcp_handshake_invalid, 1u);
  EXPECT_EQ(S(kTcpSyn | kTcpAck, 5000, 1001).flow->state(), TcpState::kSynRecv);
}

TEST_F(TcpFixture, SplitHandshakeSynSynThenSynAck) {
  // Suricata's tcp-split-handshake / 4-way handshake: the server answers SYN with SYN.
  auto a = C(kTcpSyn, 1000);
  EXPECT_EQ(S(kTcpSyn, 5000).flow->state(), TcpState::kSynSent);
  EXPECT_EQ(C(kTcpSyn | kTcpAck, 1000, 5001).flow->state(), TcpState::kSynRecv);
  auto e = S(kTcpAck, 5001, 1001);
  EXPECT_EQ(e.flow->state(), TcpState::kEstablished);
  EXPECT_EQ(e.flow, a.flow);
  EXPECT_FALSE(e.to_server) << "the first SYN's sender stays the client";
}

TEST_F(TcpFixture, SimultaneousOpenBothSynAcks) {
  C(kTcpSyn, 1000);
  S(kTcpSyn, 5000);
  EXPECT_EQ(C(kTcpSyn | kTcpAck, 1000, 5001).flow->state(), TcpState::kSynRecv);
  EXPECT_EQ(S(kTcpSyn | kTcpAck, 5000, 1001).flow->state(), TcpState::kEstablished);
}

TEST_F(TcpFixture, SplitHandshakeAckThenSyn) {
  // The split-handshake variant: the server acknowledges the SYN, then sends its own.
  C(kTcpSyn, 1000);
  EXPECT_EQ(S(kTcpAck, 5000, 1001).flow->state(), TcpState::kSynRecv);
  EXPECT_EQ(S(kTcpSyn, 5000).flow->state(), TcpState::kSynRecv);
  EXPECT_EQ(C(kTcpSyn | kTcpAck, 1000, 5001).flow->state(), TcpState::kEstablished);
}

TEST_F(TcpFixture, FourWayClose) {
  C(kTcpSyn, 1000);
  S(kTcpSyn | kTcpAck, 5000, 1001);
  C(kTcpAck, 1001, 5001);
  C(kTcpAck, 1001, 5001, 10);  // data 1001..1010
  EXPECT_EQ(C(kTcpFin | kTcpAck, 1011, 5001).flow->state(), TcpState::kFinWait);
  EXPECT_EQ(S(kTcpAck, 5001, 1012).flow->state(), TcpState::kFinWait);
  EXPECT_EQ(S(kTcpFin | kTcpAck, 5001, 1012).flow->state(), TcpState::kClosing);
  auto last = C(kTcpAck, 1012, 5002);
  EXPECT_EQ(last.flow->state(), TcpState::kClosed);
  EXPECT_EQ(last.flow->info & kInfoRst, 0);
}

TEST_F(TcpFixture, SimultaneousCloseNeedsBothFinsAcknowledged) {
  C(kTcpSyn, 1000);
  S(kTcpSyn | kTcpAck, 5000, 1001);
  C(kTcpAck, 1001, 5001);
  C(kTcpFin | kTcpAck, 1001, 5001);
  EXPECT_EQ(S(kTcpFin | kTcpAck, 5001, 1001).flow->state(), TcpState::kClosing);  // acks data, not the FIN
  EXPECT_EQ(S(kTcpAck, 5002, 1002).flow->state(), TcpState::kClosing);
  EXPECT_EQ(C(kTcpAck, 1002, 5002).flow->state(), TcpState::kClosed);
}

TEST_F(TcpFixture, RstInWindowCloses) {
  C(kTcpSyn, 1000);
  S(kTcpSyn | kTcpAck, 5000, 1001);
  C(kTcpAck, 1001, 5001);
  auto r = S(kTcpRst | kTcpAck, 5001, 1001);
  EXPECT_EQ(r.flow->state(), TcpState::kClosed);
  EXPECT_TRUE(r.flow->info & kInfoRst);
}

TEST_F(TcpFixture, RstOutsideTheWindowIsIgnored) {
  C(kTcpSyn, 1000);
  S(kTcpSyn | kTcpAck, 5000, 1001);
  C(kTcpAck, 1001, 5001);
  auto r = S(kTcpRst, 5001 + 10'000'000, 0);  // a blind reset guess
  EXPECT_TRUE(r.tcp_notes & kTcpNoteRstInvalid);
  EXPECT_EQ(r.flow->state(), TcpState::kEstablished);
  EXPECT_EQ(t.counters().tcp_rst_invalid, 1u);
}

TEST_F(TcpFixture, RstRefusingTheSynCloses) {
  C(kTcpSyn, 1000);
  EXPECT_EQ(S(kTcpRst | kTcpAck, 0, 999).flow->state(), TcpState::kSynSent) << "acks nothing we sent";
  EXPECT_EQ(S(kTcpRst | kTcpAck, 0, 1001).flow->state(), TcpState::kClosed);
}

TEST_F(TcpFixture, RstWithoutFlowCreatesNothing) {
  EXPECT_EQ(C(kTcpRst, 5).status, FlowStatus::kRstWithoutFlow);
  EXPECT_EQ(t.size(), 0u);
}

TEST_F(TcpFixture, MidstreamRefusedByDefault) {
  auto r = C(kTcpAck, 1000, 5000, 100);
  EXPECT_EQ(r.status, FlowStatus::kMidstreamRefused);
  EXPECT_EQ(r.flow, nullptr);
  EXPECT_EQ(S(kTcpSyn | kTcpAck, 5000, 1001).status, FlowStatus::kMidstreamRefused);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.counters().midstream_refused, 2u);
}

TEST(FlowTableMidstream, PickupGuessesTheServerByLowerPort) {
  FlowTableConfig c = Cfg();
  c.midstream = true;
  FlowTable t(c);
  Tcp h;
  // First packet from the server (port 2575 < 49152): the sender is the server.
  auto a = t.LookupOrCreate(h.FromS(kTcpAck, 5000, 1000, 20), 0);
  ASSERT_EQ(a.status, FlowStatus::kCreated);
  EXPECT_FALSE(a.to_server);
  EXPECT_EQ(a.flow->state(), TcpState::kEstablished);
  EXPECT_TRUE(a.flow->info & kInfoMidstream);
  EXPECT_TRUE(t.LookupOrCreate(h.FromC(kTcpAck, 1000, 5020), 0).to_server);
  // FIN handling works from a midstream start.
  t.LookupOrCreate(h.FromC(kTcpFin | kTcpAck, 1000, 5020), 0);
  t.LookupOrCreate(h.FromS(kTcpFin | kTcpAck, 5020, 1001), 0);
  EXPECT_EQ(t.LookupOrCreate(h.FromC(kTcpAck, 1001, 5021), 0).flow->state(), TcpState::kClosed);
  EXPECT_EQ(t.counters().midstream_picked_up, 1u);
}

TEST(FlowTableMidstream, SynAckFirstMeansTheSenderIsTheServer) {
  FlowTableConfig c = Cfg();
  c.midstream = true;
  FlowTable t(c);
  Tcp h;
  h.cp = 80;  // even with a lower port on the client side
  auto a = t.LookupOrCreate(h.FromS(kTcpSyn | kTcpAck, 5000, 1001), 0);
  ASSERT_EQ(a.status, FlowStatus::kCreated);
  EXPECT_FALSE(a.to_server);
  EXPECT_EQ(a.flow->state(), TcpState::kSynRecv);
  auto e = t.LookupOrCreate(h.FromC(kTcpAck, 1001, 5001), 0);
  EXPECT_TRUE(e.to_server);
  EXPECT_EQ(e.flow->state(), TcpState::kEstablished);
  EXPECT_FALSE(e.flow->ReceiverWindowOf(kToClient).known) << "client's window scale never seen";
  t.LookupOrCreate(h.FromS(kTcpAck, 5001, 1001, 100), 0);
  EXPECT_FALSE(e.flow->ReceiverWindowOf(kToServer).known) << "scaled or not: unknown";
}

TEST_F(TcpFixture, SynOnClosedConnectionStartsANewFlow) {
  Ended ended;
  t.SetEndHandler(&Ended::Fn, &ended);
  auto a = C(kTcpSyn, 1000);
  const uint64_t old_id = a.flow->flow_id;
  S(kTcpSyn | kTcpAck, 5000, 1001);
  C(kTcpAck, 1001, 5001);
  C(kTcpRst | kTcpAck, 1001, 5001);
  auto b = C(kTcpSyn, 90000);
  EXPECT_EQ(b.status, FlowStatus::kCreated);
  EXPECT_TRUE(b.tcp_notes & kTcpNoteReused);
  EXPECT_NE(b.flow->flow_id, old_id);
  EXPECT_EQ(b.flow->state(), TcpState::kSynSent);
  EXPECT_EQ(b.flow->packets[kToServer], 1u);
  EXPECT_EQ(b.flow->packets[kToClient], 0u);
  ASSERT_EQ(ended.flows.size(), 1u);
  EXPECT_EQ(ended.flows[0].first, old_id);
  EXPECT_EQ(ended.flows[0].second, FlowEndReason::kReused);
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(TcpFixture, ReceiverWindowIsScaledAfterTheHandshake) {
  auto syn = h.FromC(kTcpSyn, 1000);
  syn.tcp_wscale = 7;
  syn.tcp_window = 64240;
  t.LookupOrCreate(syn, 1);
  auto synack = h.FromS(kTcpSyn | kTcpAck, 5000, 1001);
  synack.tcp_wscale = 2;
  synack.tcp_window = 65535;
  auto r = t.LookupOrCreate(synack, 2);
  // SYN windows are not scaled (RFC 7323 2.2).
  EXPECT_EQ(r.flow->ReceiverWindowOf(kToServer).end, 1001u + 65535u);
  auto ack = h.FromC(kTcpAck, 1001, 5001);
  ack.tcp_window = 502;
  r = t.LookupOrCreate(ack, 3);
  auto w = r.flow->ReceiverWindowOf(kToClient);
  EXPECT_TRUE(w.known);
  EXPECT_EQ(w.end, 5001u + (502u << 7));
  // A shrinking window keeps the right edge already offered.
  ack.tcp_seq = 1001;
  ack.tcp_ack = 5101;
  ack.tcp_window = 0;
  r = t.LookupOrCreate(ack, 4);
  EXPECT_EQ(r.flow->ReceiverWindowOf(kToClient).end, 5001u + (502u << 7));
  ack.tcp_window = 1000;
  r = t.LookupOrCreate(ack, 5);
  EXPECT_EQ(r.flow->ReceiverWindowOf(kToClient).end, 5101u + (1000u << 7));
}

}  // namespace
}  // namespace wardgate::flow

namespace wardgate::flow {
namespace {

// Flowbits live in pool slots: taken at a flow's first set bit, returned when the
// flow ends (so a new flow in the same slot starts clean); an empty pool refuses the
// bit and counts it.
TEST(FlowTable, FlowbitsSlotsAreTakenOnFirstSetAndReturnedWhenTheFlowEnds) {
  FlowTableConfig c = Cfg();
  c.flowbits_capacity = 2;
  FlowTable t(c);
  Flow* a = t.LookupOrCreate(Udp("10.0.0.1", 1000, "10.0.0.2", 53), 0).flow;
  Flow* b = t.LookupOrCreate(Udp("10.0.0.1", 1001, "10.0.0.2", 53), 0).flow;
  Flow* d = t.LookupOrCreate(Udp("10.0.0.1", 1002, "10.0.0.2", 53), 0).flow;
  ASSERT_TRUE(a && b && d);
  EXPECT_FALSE(t.BitIsSet(*a, 7));
  t.SetBit(*a, 7);
  t.SetBit(*a, 511);
  t.SetBit(*a, 512);  // out of range: ignored
  EXPECT_TRUE(t.BitIsSet(*a, 7));
  EXPECT_TRUE(t.BitIsSet(*a, 511));
  EXPECT_FALSE(t.BitIsSet(*a, 8));
  EXPECT_FALSE(t.BitIsSet(*b, 7)) << "bits are per flow";
  t.SetBit(*b, 1);
  t.SetBit(*d, 1);  // the pool (2 slots) is empty
  EXPECT_FALSE(t.BitIsSet(*d, 1));
  EXPECT_EQ(t.counters().flowbits_exhausted, 1u);
  t.ClearBit(*a, 7);
  EXPECT_FALSE(t.BitIsSet(*a, 7));
  EXPECT_TRUE(t.BitIsSet(*a, 511));
  t.Remove(*a);  // its slot returns to the pool
  t.SetBit(*d, 1);
  EXPECT_TRUE(t.BitIsSet(*d, 1));
  EXPECT_EQ(t.counters().flowbits_exhausted, 1u);
  Flow* again = t.LookupOrCreate(Udp("10.0.0.1", 1000, "10.0.0.2", 53), 0).flow;
  ASSERT_NE(again, nullptr);
  EXPECT_FALSE(t.BitIsSet(*again, 511)) << "a new flow starts without the old one's bits";
}

}  // namespace
}  // namespace wardgate::flow
