// Pipeline tests of the IPS stages: flow tracking, TCP stream reassembly, rule
// verdicts and alert records, driven through worker::ProcessBurst with hand-made
// bursts (EAL --no-huge for the mbuf pool; no ports: the verdict is read directly).
//
// Every test builds a Generation with compiled rules, an Inspector (blocking unless
// the test says otherwise), a FlowTable + Reassembler and an EventRing, feeds frames
// received on kDev (the client's side) or kNet (the server's side), and checks which
// mbufs were forwarded, dropped or answered, the drop counters by reason and the alert
// records (sid, blocked, stream vs wire, flow_id).
#include <gtest/gtest.h>

#include <fstream>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/events/alert.h"
#include "dataplane/events/event_ring.h"
#include "dataplane/flow/flow_table.h"
#include "dataplane/generation/generation.h"
#include "dataplane/inspect/inspector.h"
#include "dataplane/inspect/rules_loader.h"
#include "dataplane/parse/packet.h"
#include "dataplane/stream/tcp_stream.h"
#include "dataplane/worker/counters.h"
#include "dataplane/worker/worker.h"
#include "tests/support/frames.h"
#include "tests/support/ip_frames.h"
#include "tests/support/ring_ports.h"

namespace wardgate {
namespace {

using testsupport::Frame;
using testsupport::Put16;
using testsupport::Put32;
using worker::DropReason;
using events::PacketSource;

rte_mempool* g_pool = nullptr;

constexpr uint16_t kDev = 0;  // the client's side of the pair
constexpr uint16_t kNet = 1;  // the server's side

using testsupport::Host;
using testsupport::Ipv4Frame;
using testsupport::TcpSegment;
using testsupport::UdpDatagram;
using testsupport::IcmpEcho;
using testsupport::TcpConn;
using testsupport::Client;
using testsupport::Server;
using testsupport::kSyn;
using testsupport::kAck;
using testsupport::kPsh;
using testsupport::kRst;

// ------------------------------------------------------------------ the harness

struct Alert {
  uint32_t sid = 0;
  bool blocked = false;
  bool log_alert = true;  // false: a drop record only (the rule's alert was suppressed)
  PacketSource source = PacketSource::kWire;
  uint64_t flow_id = 0;
  uint16_t src_port = 0, dst_port = 0;
  uint8_t ip_proto = 0;
  std::string anomaly;  // anomaly records: "stream.depth_reached", ...
  std::string payload;  // the new part of the inspected buffer (as logged)
  Frame packet;         // the head of the frame that produced it
};

// What one burst became, by input index.
struct Outcome {
  std::vector<bool> forwarded;    // the received mbuf left on the peer port
  std::vector<bool> dropped;      // the received mbuf was freed
  std::vector<Frame> injected;    // frames forwarded that were not received (reject: RST to the receiver)
  std::vector<Frame> replies;     // frames back to the sender (reject)
  std::vector<Alert> alerts;      // records the burst produced
};

struct Options {
  bool blocking = true;
  bool midstream = false;
  uint32_t depth = 1u << 20;  // stream.depth
  bool drop_on_limit = false;  // stream.on_limit: drop
};

class IpsPipeline : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(rte_mempool_in_use_count(g_pool), 0u) << "mbufs leaked"; }

  // Compiles `rules` into the generation and builds fresh stages.
  void Configure(const std::string& rules, Options opt = {}, config::RulesConfig rc = NoCache()) {
    const auto load = inspect::LoadRuleText(rules, "test.rules", rc);
    ASSERT_TRUE(load.compiled) << (load.errors.empty() ? "no rules" : load.errors[0]);
    gen_ = std::make_unique<generation::Generation>();
    gen_->peer[kDev] = kNet;
    gen_->peer[kNet] = kDev;
    inspect::AttachRules(*gen_, load, "test", 1);
    ring_ = std::make_unique<events::EventRing<events::AlertRecord>>(256);
    inspector_ = std::make_unique<inspect::Inspector>(0, ring_.get(), opt.blocking);
    stream::StreamConfig sc;
    sc.segment_pool = 256;
    sc.window_pool = 256;
    sc.depth = opt.depth;
    streams_ = std::make_unique<stream::Reassembler>(sc);
    drop_on_limit_ = opt.drop_on_limit;
    flow::FlowTableConfig fc;
    fc.capacity = 1024;
    fc.midstream = opt.midstream;
    fc.hash_seed = 0x5eed;
    flows_ = std::make_unique<flow::FlowTable>(fc, streams_.get());
    counters_ = std::make_unique<worker::WorkerCounters>();
    verdict_ = std::make_unique<worker::BurstVerdict>();
  }

  static config::RulesConfig NoCache() {
    config::RulesConfig rc;
    rc.cache_dir.clear();
    return rc;
  }
  // A file under a fresh temporary directory (overrides, threshold.config).
  std::string WriteFile(const std::string& name, const std::string& text) {
    if (dir_.empty()) {
      char tmpl[] = "/tmp/wg-ips-test.XXXXXX";
      dir_ = mkdtemp(tmpl);
    }
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // One burst received on rx_port through ProcessBurst; everything is freed after.
  Outcome Run(uint16_t rx_port, const std::vector<Frame>& frames) {
    Outcome out;
    std::vector<rte_mbuf*> in;
    for (const auto& f : frames) {
      rte_mbuf* m = testsupport::MbufFrom(g_pool, f);
      EXPECT_NE(m, nullptr);
      in.push_back(m);
    }
    worker::Stages stages;
    stages.inspector = inspector_.get();
    stages.flows = flows_.get();
    stages.streams = streams_.get();
    stages.drop_on_limit = drop_on_limit_;
    stages.burst_ts_ns = (now_ns_ += 1000000);
    auto& v = *verdict_;
    worker::ProcessBurst(*gen_, *counters_, rx_port, in.data(), uint16_t(in.size()), v, &stages);
    EXPECT_EQ(v.in_port, rx_port);
    EXPECT_EQ(v.out_port, rx_port == kDev ? kNet : kDev);
    auto index_of = [&](rte_mbuf* m) { return size_t(std::find(in.begin(), in.end(), m) - in.begin()); };
    out.forwarded.assign(in.size(), false);
    out.dropped.assign(in.size(), false);
    size_t prev = 0;
    bool first = true;
    for (uint16_t i = 0; i < v.n_forward; ++i) {
      const size_t k = index_of(v.forward[i]);
      if (k == in.size()) {
        out.injected.push_back(testsupport::BytesOf(v.forward[i]));
        continue;
      }
      EXPECT_FALSE(out.forwarded[k]) << "mbuf forwarded twice";
      EXPECT_TRUE(first || k > prev) << "forward[] out of receive order";
      prev = k;
      first = false;
      out.forwarded[k] = true;
    }
    for (uint16_t i = 0; i < v.n_drop; ++i) {
      const size_t k = index_of(v.drop[i]);
      EXPECT_LT(k, in.size()) << "dropped an mbuf that was not received";
      if (k < in.size()) out.dropped[k] = true;
    }
    for (uint16_t i = 0; i < v.n_reply; ++i) out.replies.push_back(testsupport::BytesOf(v.reply[i]));
    for (size_t k = 0; k < in.size(); ++k) {
      EXPECT_NE(out.forwarded[k], out.dropped[k]) << "frame " << k << " must be either forwarded or dropped";
    }
    worker::DiscardBurst(v);
    out.alerts = DrainAlerts();
    return out;
  }

  // One frame on its own burst.
  Outcome Step(uint16_t rx_port, const Frame& frame) { return Run(rx_port, {frame}); }
  // Client -> server frames arrive on kDev, server -> client frames on kNet.
  Outcome FromClient(const Frame& f) { return Step(kDev, f); }
  Outcome FromServer(const Frame& f) { return Step(kNet, f); }

  // SYN, SYN-ACK, ACK; each must be forwarded without alerts.
  void Handshake(TcpConn& c) {
    for (const auto& [port, frame] : {std::pair{kDev, c.Syn()}, std::pair{kNet, c.SynAck()}, std::pair{kDev, c.Ack()}}) {
      const auto o = Step(port, frame);
      EXPECT_TRUE(o.forwarded[0]) << "handshake segment dropped";
      EXPECT_TRUE(o.alerts.empty()) << "alert on a handshake segment, sid " << o.alerts[0].sid;
    }
  }

  std::vector<Alert> DrainAlerts() {
    std::vector<Alert> out;
    while (const events::AlertRecord* r = ring_->Peek()) {
      Alert a;
      a.sid = r->rule ? r->rule->sid : 0;
      if (r->kind == events::AlertRecord::Kind::kAnomaly) a.anomaly = r->anomaly;
      a.blocked = r->blocked;
      a.log_alert = r->log_alert;
      a.source = r->source;
      a.flow_id = r->flow_id;
      a.src_port = r->src_port;
      a.dst_port = r->dst_port;
      a.ip_proto = r->ip_proto;
      a.payload.assign(reinterpret_cast<const char*>(r->payload.data()), r->payload_len);
      a.packet.assign(r->packet.begin(), r->packet.begin() + r->packet_len);
      out.push_back(std::move(a));
      ring_->Release();
    }
    return out;
  }

  uint64_t Drops(DropReason r) const { return counters_->drops[size_t(r)].Load(); }
  flow::Flow* FindFlow(const Frame& any_frame_of_flow) {
    parse::PacketView pv;
    EXPECT_EQ(parse::ParsePacket(any_frame_of_flow, pv), parse::ParseError::kNone);
    flow::FlowKey key;
    bool first = false;
    EXPECT_EQ(flow::MakeFlowKey(pv, key, first), flow::KeyStatus::kOk);
    return flows_->Find(key);
  }

  std::unique_ptr<generation::Generation> gen_;
  std::unique_ptr<events::EventRing<events::AlertRecord>> ring_;
  bool drop_on_limit_ = false;
  std::unique_ptr<inspect::Inspector> inspector_;
  std::unique_ptr<stream::Reassembler> streams_;
  std::unique_ptr<flow::FlowTable> flows_;
  std::unique_ptr<worker::WorkerCounters> counters_;
  std::unique_ptr<worker::BurstVerdict> verdict_;
  uint64_t now_ns_ = 1'700'000'000'000'000'000ull;
  std::string dir_;
};

// The head of `frame` that an alert record keeps: the alert was raised on this packet.
bool RaisedOn(const Alert& a, const Frame& frame) {
  const size_t n = std::min(a.packet.size(), frame.size());
  return n > 0 && std::equal(a.packet.begin(), a.packet.begin() + n, frame.begin());
}

std::vector<uint32_t> Sids(const std::vector<Alert>& alerts) {
  std::vector<uint32_t> s;
  for (const auto& a : alerts) s.push_back(a.sid);
  return s;
}

using Sid = std::vector<uint32_t>;

// ------------------------------------------------------------------ 1. handshake, data

TEST_F(IpsPipeline, HandshakeThenDataAlertsOnceWithTheSameFlowIdBothWays) {
  Configure(
      "alert tcp any any -> any any (msg:\"HL7 ADT\"; content:\"ADT^A01\"; sid:1001; rev:1;)\n"
      "alert tcp any any -> any any (msg:\"HL7 ACK\"; content:\"MSA|7c|AA\"; sid:1002; rev:1;)\n");
  TcpConn c;
  Handshake(c);
  const Frame adt = c.Send(true, "\x0bMSH|^~\\&|EPIC|ER|LAB|HOSP|20260101||ADT^A01|42|P|2.5\r\x1c\r");
  auto o = FromClient(adt);
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  const Alert a1 = o.alerts[0];
  EXPECT_EQ(a1.sid, 1001u);
  EXPECT_FALSE(a1.blocked);
  EXPECT_EQ(a1.source, PacketSource::kStream);
  EXPECT_NE(a1.flow_id, 0u);
  EXPECT_EQ(a1.src_port, 40000);
  EXPECT_EQ(a1.dst_port, 2575);
  EXPECT_TRUE(RaisedOn(a1, adt));
  EXPECT_NE(a1.payload.find("ADT^A01"), std::string::npos);

  // The server's acknowledgement: the other direction of the same flow.
  const Frame ack = c.Send(false, "\x0bMSH|^~\\&|LAB|HOSP|EPIC|ER|20260101||ACK|43|P|2.5\rMSA|AA|42\r\x1c\r");
  o = FromServer(ack);
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 1002u);
  EXPECT_EQ(o.alerts[0].source, PacketSource::kStream);
  EXPECT_EQ(o.alerts[0].flow_id, a1.flow_id) << "both directions belong to one flow";
  EXPECT_EQ(o.alerts[0].src_port, 2575);

  // Pure ACKs and a further message without the pattern: forwarded, nothing more.
  EXPECT_TRUE(FromClient(c.Ack()).alerts.empty());
  o = FromClient(c.Send(true, "\x0bMSH|^~\\&|EPIC|ER|LAB|HOSP|20260101||ORM^O01|44|P|2.5\r\x1c\r"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{});

  EXPECT_EQ(flows_->size(), 1u);
  flow::Flow* f = FindFlow(adt);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->flow_id, a1.flow_id);
  EXPECT_EQ(f->state(), flow::TcpState::kEstablished);
  for (size_t r = 0; r < worker::kDropReasonCount; ++r) EXPECT_EQ(counters_->drops[r].Load(), 0u) << r;
  EXPECT_EQ(inspector_->counters().alerts, 2u);
}

// ------------------------------------------------------------------ 2. across segments

TEST_F(IpsPipeline, ContentSpanningTwoSegmentsFiresOnceOnTheSecondAsAStreamAlert) {
  Configure("alert tcp any any -> any any (msg:\"evil\"; content:\"EVIL\"; sid:2001; rev:1;)\n");
  TcpConn c;
  Handshake(c);
  const Frame first = c.Send(true, "xxEV");
  const Frame second = c.Send(true, "ILyy");
  auto o = FromClient(first);
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{}) << "half a pattern must not fire";

  o = FromClient(second);
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 2001u);
  EXPECT_EQ(o.alerts[0].source, PacketSource::kStream);
  EXPECT_NE(o.alerts[0].flow_id, 0u);
  EXPECT_TRUE(RaisedOn(o.alerts[0], second));

  // Retransmissions of either segment: forwarded, never scanned again.
  const uint64_t retrans_before = streams_->counters().retransmissions;
  o = FromClient(second);
  EXPECT_TRUE(o.forwarded[0]) << "an identical retransmission must be forwarded";
  EXPECT_EQ(Sids(o.alerts), Sid{}) << "retransmitted data alerted again";
  o = FromClient(first);
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{});
  EXPECT_EQ(streams_->counters().retransmissions, retrans_before + 2);

  // The server's reply and more client data without the pattern: quiet.
  EXPECT_EQ(Sids(FromServer(c.Send(false, "OK")).alerts), Sid{});
  EXPECT_EQ(Sids(FromClient(c.Send(true, "zz")).alerts), Sid{});
  EXPECT_EQ(inspector_->counters().alerts, 1u);
  EXPECT_EQ(Drops(DropReason::kRule) + Drops(DropReason::kStreamConflict), 0u);
}

// ------------------------------------------------------------------ 3. drop

constexpr const char* kDropRules =
    "drop tcp any any -> any any (msg:\"evil command\"; content:\"EVILCMD\"; sid:3001; rev:1;)\n"
    "alert udp any any -> any any (msg:\"udp marker\"; content:\"MARK\"; sid:3002; rev:1;)\n";

TEST_F(IpsPipeline, DropRuleDropsTheMatchingPacketThenEveryPacketOfTheFlowBothWays) {
  Configure(kDropRules);
  TcpConn c;
  Handshake(c);
  EXPECT_TRUE(FromClient(c.Send(true, "hello ")).forwarded[0]);
  EXPECT_TRUE(FromServer(c.Send(false, "ready")).forwarded[0]);

  const Frame evil = c.Send(true, "run EVILCMD now");
  auto o = FromClient(evil);
  EXPECT_TRUE(o.dropped[0]) << "the packet that completes the match must be dropped";
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 3001u);
  EXPECT_TRUE(o.alerts[0].blocked);
  EXPECT_EQ(o.alerts[0].source, PacketSource::kStream);
  EXPECT_TRUE(RaisedOn(o.alerts[0], evil));
  EXPECT_EQ(Drops(DropReason::kRule), 1u);
  EXPECT_TRUE(o.replies.empty() && o.injected.empty()) << "drop sends nothing";

  // Every later packet of the flow, either direction, with or without data.
  o = FromClient(evil);  // the sender retransmits it
  EXPECT_TRUE(o.dropped[0]);
  o = FromClient(c.Send(true, "harmless"));
  EXPECT_TRUE(o.dropped[0]);
  o = FromServer(c.Send(false, "reply"));
  EXPECT_TRUE(o.dropped[0]);
  o = FromServer(c.ServerAck());
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_EQ(Drops(DropReason::kRule), 5u);
  EXPECT_EQ(Sids(DrainAlerts()), Sid{}) << "later drops of the flow raise no further alerts";

  // One burst mixing the dropped flow with other flows: only the dropped flow's frames go.
  TcpConn other(Client(40001));
  o = Run(kDev, {c.Send(true, "more"), other.Syn(), c.Ack(),
                 UdpDatagram(Client(5353), Server(53), "MARK"), c.Send(true, "EVILCMD")});
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_TRUE(o.forwarded[1]) << "another flow must not be affected";
  EXPECT_TRUE(o.dropped[2]);
  EXPECT_TRUE(o.forwarded[3]);
  EXPECT_TRUE(o.dropped[4]);
  EXPECT_EQ(Sids(o.alerts), (Sid{3002u}));
  EXPECT_EQ(Drops(DropReason::kRule), 8u);

  // The other connection carries data normally.
  EXPECT_TRUE(FromServer(other.SynAck()).forwarded[0]);
  EXPECT_TRUE(FromClient(other.Ack()).forwarded[0]);
  o = FromClient(other.Send(true, "hello"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{});
  EXPECT_EQ(Drops(DropReason::kStreamConflict), 0u);
  EXPECT_EQ(inspector_->counters().rule_drops, 1u) << "the rule itself fired once";
}

TEST_F(IpsPipeline, DropRuleSpanningSegmentsDropsTheCompletingSegmentOnly) {
  Configure(kDropRules);
  TcpConn c;
  Handshake(c);
  const Frame first = c.Send(true, "xxEVIL");
  const Frame second = c.Send(true, "CMDyy");
  auto o = FromClient(first);
  EXPECT_TRUE(o.forwarded[0]) << "the first part alone does not match";
  EXPECT_EQ(Sids(o.alerts), Sid{});
  o = FromClient(second);
  EXPECT_TRUE(o.dropped[0]) << "the completing segment must be dropped";
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 3001u);
  EXPECT_TRUE(o.alerts[0].blocked);
  EXPECT_EQ(o.alerts[0].source, PacketSource::kStream);
  EXPECT_TRUE(RaisedOn(o.alerts[0], second));

  o = FromServer(c.ServerAck());
  EXPECT_TRUE(o.dropped[0]) << "the flow is dropped in the other direction too";
  o = FromClient(first);
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_EQ(Drops(DropReason::kRule), 3u);
  flow::Flow* f = FindFlow(first);
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->flags & flow::kDropFlow);
}

// ------------------------------------------------------------------ 4. reject

TEST_F(IpsPipeline, RejectTcpDropsThePacketAndResetsBothEnds) {
  Configure("reject tcp any any -> any any (msg:\"reject\"; content:\"EVILCMD\"; sid:4001; rev:1;)\n");
  TcpConn c;
  Handshake(c);
  EXPECT_TRUE(FromClient(c.Send(true, "hello")).forwarded[0]);
  const Frame evil = c.Send(true, "EVILCMD");
  parse::PacketView ev;
  ASSERT_EQ(parse::ParsePacket(evil, ev), parse::ParseError::kNone);

  auto o = FromClient(evil);
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_EQ(Drops(DropReason::kRule), 1u);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 4001u);
  EXPECT_TRUE(o.alerts[0].blocked);

  // Back to the sender: addresses and ports swapped, seq = the segment's ack.
  ASSERT_EQ(o.replies.size(), 1u);
  parse::PacketView rv;
  ASSERT_EQ(parse::ParsePacket(o.replies[0], rv), parse::ParseError::kNone);
  EXPECT_EQ(rv.ip_proto, parse::kProtoTcp);
  EXPECT_TRUE(rv.tcp_flags & kRst);
  EXPECT_EQ(rv.src_port, ev.dst_port);
  EXPECT_EQ(rv.dst_port, ev.src_port);
  EXPECT_EQ(rv.src_addr, ev.dst_addr);
  EXPECT_EQ(rv.dst_addr, ev.src_addr);
  EXPECT_EQ(rv.tcp_seq, ev.tcp_ack);
  EXPECT_TRUE(std::equal(c.client().mac.begin(), c.client().mac.end(), o.replies[0].begin()))
      << "the reply is addressed to the sender's MAC";

  // On to the receiver in the sender's name, at the sequence number it expects.
  ASSERT_EQ(o.injected.size(), 1u);
  parse::PacketView fv;
  ASSERT_EQ(parse::ParsePacket(o.injected[0], fv), parse::ParseError::kNone);
  EXPECT_TRUE(fv.tcp_flags & kRst);
  EXPECT_EQ(fv.src_port, ev.src_port);
  EXPECT_EQ(fv.dst_port, ev.dst_port);
  EXPECT_EQ(fv.src_addr, ev.src_addr);
  EXPECT_EQ(fv.dst_addr, ev.dst_addr);
  EXPECT_EQ(fv.tcp_seq, ev.tcp_seq);

  // The flow stays dropped; later packets are dropped silently (no new resets).
  o = FromServer(c.Send(false, "late reply"));
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_TRUE(o.replies.empty() && o.injected.empty());
  EXPECT_EQ(Drops(DropReason::kRule), 2u);
}

TEST_F(IpsPipeline, RejectUdpAnswersTheSenderWithPortUnreachable) {
  Configure("reject udp any any -> any 53 (msg:\"reject dns\"; content:\"evil\"; sid:4002; rev:1;)\n");
  const Host cl = Client(5353), sv = Server(53);
  const Frame q = UdpDatagram(cl, sv, "query evil.example");
  auto o = FromClient(q);
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_TRUE(o.injected.empty()) << "nothing goes on to the receiver for UDP";
  ASSERT_EQ(o.replies.size(), 1u);
  parse::PacketView rv;
  ASSERT_EQ(parse::ParsePacket(o.replies[0], rv), parse::ParseError::kNone);
  EXPECT_EQ(rv.ip_proto, parse::kProtoIcmp);
  EXPECT_EQ(rv.icmp_type, 3);
  EXPECT_EQ(rv.icmp_code, 3);
  EXPECT_TRUE(std::equal(sv.ip.begin(), sv.ip.end(), rv.src_addr.begin()));
  EXPECT_TRUE(std::equal(cl.ip.begin(), cl.ip.end(), rv.dst_addr.begin()));
  EXPECT_TRUE(std::equal(cl.mac.begin(), cl.mac.end(), o.replies[0].begin()))
      << "the ICMP error is addressed to the sender's MAC";
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 4002u);
  EXPECT_TRUE(o.alerts[0].blocked);
  EXPECT_NE(o.alerts[0].flow_id, 0u);
  EXPECT_EQ(Drops(DropReason::kRule), 1u);

  // The UDP flow is dropped from now on, silently.
  o = FromServer(UdpDatagram(sv, cl, "answer"));
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_TRUE(o.replies.empty());
  EXPECT_EQ(Drops(DropReason::kRule), 2u);
}

// ------------------------------------------------------------------ 5. first data wins

constexpr const char* kConflictRules =
    "alert tcp-stream any any -> any any (msg:\"stream evil\"; content:\"EVIL\"; sid:5001; rev:1;)\n"
    "alert tcp-pkt any any -> any any (msg:\"packet evil\"; content:\"EVIL\"; sid:5002; rev:1;)\n"
    "alert tcp any any -> any any (msg:\"good\"; content:\"GOOD\"; sid:5003; rev:1;)\n";

TEST_F(IpsPipeline, FirstDataWinsConflictingRetransmissionIsDroppedAndNeverReachesTheStream) {
  Configure(kConflictRules);
  TcpConn c;
  Handshake(c);
  const Frame good = c.Data(true, 0, "GOOD");
  auto o = FromClient(good);
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), (Sid{5003u}));

  const Frame evil = c.Data(true, 0, "EVIL");  // same sequence number, other bytes
  o = FromClient(evil);
  EXPECT_TRUE(o.dropped[0]) << "the conflicting packet must never be forwarded";
  EXPECT_FALSE(o.forwarded[0]);
  EXPECT_EQ(Drops(DropReason::kStreamConflict), 1u);
  EXPECT_EQ(Drops(DropReason::kRule), 0u);
  for (const auto& a : o.alerts) EXPECT_NE(a.sid, 5001u) << "the stream never holds the conflicting bytes";
  EXPECT_EQ(streams_->counters().overlap_conflicts, 1u);

  // Again (and in a burst with an identical retransmission): still dropped, still quiet.
  o = Run(kDev, {evil, good});
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_TRUE(o.forwarded[1]) << "an identical retransmission is fine";
  for (const auto& a : o.alerts) EXPECT_NE(a.sid, 5001u);
  EXPECT_EQ(Drops(DropReason::kStreamConflict), 2u);

  // The flow itself is not dropped: the connection goes on with the first data.
  o = FromClient(c.Data(true, 4, "MORE"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{});
  o = FromServer(c.Send(false, "ok"));
  EXPECT_TRUE(o.forwarded[0]);
  // A later EVIL in new data is seen on the stream as usual.
  o = FromClient(c.Send(true, "EVIL"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), (Sid{5001u, 5002u}));
  flow::Flow* f = FindFlow(good);
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->flags & flow::kDropFlow);
}

TEST_F(IpsPipeline, FirstDataWinsPacketRulesStillSeeTheConflictingPacket) {
  Configure(kConflictRules);
  TcpConn c;
  Handshake(c);
  EXPECT_TRUE(FromClient(c.Data(true, 0, "GOOD")).forwarded[0]);
  const Frame evil = c.Data(true, 0, "EVIL");
  const auto o = FromClient(evil);
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_EQ(Drops(DropReason::kStreamConflict), 1u);
  ASSERT_EQ(o.alerts.size(), 1u) << "expected the packet rule, and only it";
  EXPECT_EQ(o.alerts[0].sid, 5002u);
  EXPECT_EQ(o.alerts[0].source, PacketSource::kWire);
  EXPECT_TRUE(RaisedOn(o.alerts[0], evil));
}

TEST_F(IpsPipeline, FirstDataWinsInIdsModeForwardsAndOnlyPacketRulesSeeTheConflict) {
  Configure(kConflictRules, {.blocking = false});
  TcpConn c;
  Handshake(c);
  EXPECT_TRUE(FromClient(c.Data(true, 0, "GOOD")).forwarded[0]);
  const Frame evil = c.Data(true, 0, "EVIL");
  const auto o = FromClient(evil);
  EXPECT_TRUE(o.forwarded[0]) << "a passive inspector cannot drop";
  EXPECT_EQ(Drops(DropReason::kStreamConflict), 0u);
  EXPECT_EQ(Sids(o.alerts), (Sid{5002u}));
  EXPECT_EQ(o.alerts[0].source, PacketSource::kWire);
  EXPECT_FALSE(o.alerts[0].blocked);
  EXPECT_EQ(streams_->counters().overlap_conflicts, 1u);
}

// ------------------------------------------------------------------ 6. out of order

TEST_F(IpsPipeline, OutOfOrderSegmentsAreInspectedInOrderWhenTheHoleFills) {
  Configure("alert tcp any any -> any any (msg:\"evil\"; content:\"EVIL\"; sid:6001; rev:1;)\n");
  TcpConn c;
  Handshake(c);
  const Frame seg1 = c.Data(true, 0, "xxEV");
  const Frame seg2 = c.Data(true, 4, "ILyy");
  auto o = FromClient(seg2);
  EXPECT_TRUE(o.forwarded[0]) << "out-of-order data is held as a copy, the packet goes on";
  EXPECT_EQ(Sids(o.alerts), Sid{});
  flow::Flow* f = FindFlow(seg1);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->stream[flow::kToServer].held_chunks(), 1u);
  EXPECT_EQ(f->stream[flow::kToServer].offset(), 0u);

  // Other bytes for the held range: first data wins against held data too.
  o = FromClient(c.Data(true, 4, "XXyy"));
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_EQ(Drops(DropReason::kStreamConflict), 1u);

  o = FromClient(seg1);
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 6001u);
  EXPECT_EQ(o.alerts[0].source, PacketSource::kStream);
  EXPECT_TRUE(RaisedOn(o.alerts[0], seg1)) << "the alert belongs to the packet that filled the hole";
  EXPECT_EQ(o.alerts[0].payload, "xxEVILyy") << "both segments delivered in order";
  f = FindFlow(seg1);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->stream[flow::kToServer].held_chunks(), 0u);
  EXPECT_EQ(f->stream[flow::kToServer].offset(), 8u);

  // Retransmissions of both, then the next in-order data: no second alert.
  EXPECT_EQ(Sids(FromClient(seg2).alerts), Sid{});
  EXPECT_EQ(Sids(FromClient(seg1).alerts), Sid{});
  o = FromClient(c.Data(true, 8, "zz"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{});
  EXPECT_EQ(inspector_->counters().alerts, 1u);
}

TEST_F(IpsPipeline, OutOfOrderDropRuleDropsThePacketThatCompletesTheStream) {
  Configure(kDropRules);
  TcpConn c;
  Handshake(c);
  const Frame seg1 = c.Data(true, 0, "xxEVI");
  const Frame seg2 = c.Data(true, 5, "LCMD");
  auto o = Run(kDev, {seg2, seg1});  // reordered within one burst
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_TRUE(o.dropped[1]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_TRUE(o.alerts[0].blocked);
  EXPECT_TRUE(RaisedOn(o.alerts[0], seg1));
  EXPECT_EQ(Drops(DropReason::kRule), 1u);
  EXPECT_TRUE(FromServer(c.ServerAck()).dropped[0]);
}

// ------------------------------------------------------------------ 7. pass

TEST_F(IpsPipeline, PassRuleEndsInspectionOfTheFlow) {
  Configure(
      "pass tcp any any -> any any (msg:\"trusted\"; content:\"trusted\"; sid:7001; rev:1;)\n"
      "alert tcp any any -> any any (msg:\"evil\"; content:\"EVIL\"; sid:7002; rev:1;)\n"
      "drop tcp any any -> any any (msg:\"bad\"; content:\"BADCMD\"; sid:7003; rev:1;)\n");
  TcpConn c;
  Handshake(c);
  auto o = FromClient(c.Send(true, "hello, trusted peer"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{}) << "pass rules do not alert";
  o = FromClient(c.Send(true, "EVIL"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{}) << "inspection stopped for the flow";
  o = FromServer(c.Send(false, "EVIL BADCMD"));
  EXPECT_TRUE(o.forwarded[0]) << "pass covers both directions";
  EXPECT_EQ(Sids(o.alerts), Sid{});
  EXPECT_EQ(Drops(DropReason::kRule), 0u);
  flow::Flow* f = FindFlow(c.Ack());
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->flags & flow::kPassFlow);

  // Control: the same data on a flow without the pass rule alerts and drops.
  TcpConn other(Client(40001));
  Handshake(other);
  EXPECT_EQ(Sids(FromClient(other.Send(true, "EVIL")).alerts), (Sid{7002u}));
  o = FromClient(other.Send(true, "BADCMD"));
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_EQ(Sids(o.alerts), (Sid{7003u}));
}

// ------------------------------------------------------------------ 8. IDS mode

TEST_F(IpsPipeline, NonBlockingInspectorAlertsOnDropRulesAndForwards) {
  Configure(
      "drop tcp any any -> any any (msg:\"evil command\"; content:\"EVILCMD\"; sid:8001; rev:1;)\n"
      "reject udp any any -> any 53 (msg:\"reject dns\"; content:\"evil\"; sid:8002; rev:1;)\n",
      {.blocking = false});
  TcpConn c;
  Handshake(c);
  auto o = FromClient(c.Send(true, "run EVILCMD"));
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 8001u);
  EXPECT_FALSE(o.alerts[0].blocked);
  EXPECT_EQ(o.alerts[0].source, PacketSource::kStream);
  // The flow is not dropped: later packets go on.
  EXPECT_TRUE(FromServer(c.Send(false, "done")).forwarded[0]);
  EXPECT_TRUE(FromClient(c.Send(true, "more")).forwarded[0]);

  o = FromClient(UdpDatagram(Client(5353), Server(53), "evil.example"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_TRUE(o.replies.empty() && o.injected.empty()) << "no reject frames in IDS mode";
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 8002u);
  EXPECT_FALSE(o.alerts[0].blocked);
  for (size_t r = 0; r < worker::kDropReasonCount; ++r) EXPECT_EQ(counters_->drops[r].Load(), 0u) << r;
  EXPECT_EQ(inspector_->counters().rule_drops, 0u);
}

// ------------------------------------------------------------------ 9. midstream

constexpr const char* kMidstreamRules =
    "alert tcp any any -> any any (msg:\"plain\"; content:\"PLAIN\"; sid:9001; rev:1;)\n"
    "alert tcp any any -> any any (msg:\"established\"; flow:established; content:\"ESTAB\"; sid:9002; rev:1;)\n"
    "alert tcp-stream any any -> any any (msg:\"stream only\"; content:\"PLAIN\"; sid:9003; rev:1;)\n"
    "alert tcp any any -> any any (msg:\"to server\"; flow:established,to_server; content:\"ESTAB\"; sid:9004; rev:1;)\n";

TEST_F(IpsPipeline, MidstreamOffDataWithoutHandshakeIsInspectedStatelessly) {
  Configure(kMidstreamRules);
  TcpConn c;
  const Frame data = c.Data(true, 0, "PLAIN ESTAB");
  auto o = FromClient(data);
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(flows_->size(), 0u) << "no flow without a SYN";
  EXPECT_EQ(flows_->counters().midstream_refused, 1u);
  ASSERT_EQ(o.alerts.size(), 1u) << "packet inspection only; flow:established rules need a flow";
  EXPECT_EQ(o.alerts[0].sid, 9001u);
  EXPECT_EQ(o.alerts[0].source, PacketSource::kWire);
  EXPECT_EQ(o.alerts[0].flow_id, 0u);
  // Every such packet is inspected on its own: a repeat alerts again.
  o = FromServer(c.Data(false, 0, "PLAIN ESTAB"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), (Sid{9001u}));
  EXPECT_EQ(flows_->size(), 0u);
  EXPECT_EQ(flows_->counters().midstream_refused, 2u);
}

TEST_F(IpsPipeline, MidstreamOnPicksUpTheFlow) {
  Configure(kMidstreamRules, {.midstream = true});
  TcpConn c;
  const Frame data = c.Data(true, 0, "PLAIN ESTAB");
  auto o = FromClient(data);
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(flows_->size(), 1u);
  EXPECT_EQ(flows_->counters().midstream_picked_up, 1u);
  EXPECT_EQ(Sids(o.alerts), (Sid{9001u, 9002u, 9003u, 9004u}));
  uint64_t id = 0;
  for (const auto& a : o.alerts) {
    EXPECT_EQ(a.source, PacketSource::kStream) << a.sid;
    EXPECT_NE(a.flow_id, 0u);
    id = a.flow_id;
  }
  // The reply belongs to the same flow; the lower port is taken as the server's.
  o = FromServer(c.Data(false, 0, "ESTAB"));
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 9002u) << "to_server must not fire on the server's data";
  EXPECT_EQ(o.alerts[0].flow_id, id);
  EXPECT_EQ(flows_->size(), 1u);
  // The stream continues from where it was picked up.
  EXPECT_EQ(Sids(FromClient(c.Data(true, 11, "xx")).alerts), Sid{});
  EXPECT_EQ(Sids(FromClient(c.Data(true, 13, "PLAIN")).alerts), (Sid{9001u, 9003u}));
}

// ------------------------------------------------------------------ 10. UDP, ICMP

TEST_F(IpsPipeline, UdpAndIcmpFlowsGetIdsAndDirectionFromTheFirstPacket) {
  Configure(
      "alert udp any any -> any any (msg:\"ping to server\"; flow:to_server; content:\"PING\"; sid:10001; rev:1;)\n"
      "alert udp any any -> any any (msg:\"pong to client\"; flow:to_client; content:\"PONG\"; sid:10002; rev:1;)\n"
      "alert udp any any -> any any (msg:\"ping to client\"; flow:to_client; content:\"PING\"; sid:10003; rev:1;)\n"
      "alert udp any any -> any any (msg:\"established\"; flow:established; content:\"PONG\"; sid:10004; rev:1;)\n"
      "alert icmp any any -> any any (msg:\"echo out\"; flow:to_server; content:\"echo-req\"; sid:10005; rev:1;)\n"
      "alert icmp any any -> any any (msg:\"echo back\"; flow:to_client; content:\"echo-rep\"; sid:10006; rev:1;)\n"
      "alert icmp any any -> any any (msg:\"echo wrong way\"; flow:to_client; content:\"echo-req\"; sid:10007; rev:1;)\n");
  // The first datagram comes from port 53 on the server's side: the direction follows
  // who spoke first, not the port numbers.
  const Host a = Server(53), b = Client(5353);
  auto o = FromServer(UdpDatagram(a, b, "PING"));
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 10001u);
  EXPECT_EQ(o.alerts[0].ip_proto, parse::kProtoUdp);
  const uint64_t udp_id = o.alerts[0].flow_id;
  EXPECT_NE(udp_id, 0u);

  o = FromClient(UdpDatagram(b, a, "PONG"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), (Sid{10002u, 10004u}));
  for (const auto& al : o.alerts) EXPECT_EQ(al.flow_id, udp_id);
  // The responder saying PING is to_client.
  o = FromClient(UdpDatagram(b, a, "PING"));
  EXPECT_EQ(Sids(o.alerts), (Sid{10003u}));
  EXPECT_EQ(o.alerts[0].flow_id, udp_id);

  // ICMP echo: keyed on addresses, both directions in one flow.
  const Host x = Client(0), y = Server(0);
  o = FromClient(IcmpEcho(x, y, 8, "echo-req"));
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 10005u);
  EXPECT_EQ(o.alerts[0].ip_proto, parse::kProtoIcmp);
  const uint64_t icmp_id = o.alerts[0].flow_id;
  EXPECT_NE(icmp_id, 0u);
  EXPECT_NE(icmp_id, udp_id);
  o = FromServer(IcmpEcho(y, x, 0, "echo-rep"));
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].sid, 10006u);
  EXPECT_EQ(o.alerts[0].flow_id, icmp_id);
  EXPECT_EQ(flows_->size(), 2u);
  flow::Flow* f = FindFlow(IcmpEcho(x, y, 8, ""));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->flow_id, icmp_id);
  EXPECT_TRUE(f->Established());
  EXPECT_EQ(f->packets[flow::kToServer], 1u);
  EXPECT_EQ(f->packets[flow::kToClient], 1u);
}


// ------------------------------------------------------------------ rule sets

TEST_F(IpsPipeline, FlowbitsCarryAcrossPacketsOfOneFlowOnly) {
  Configure(
      "alert tcp any any -> any any (msg:\"login\"; content:\"USER \"; flowbits:set,ftp.login; flowbits:noalert; sid:11001;)\n"
      "alert tcp any any -> any any (msg:\"pass after user\"; content:\"PASS \"; flowbits:isset,ftp.login; sid:11002;)\n"
      "alert tcp any any -> any any (msg:\"pass alone\"; content:\"PASS \"; flowbits:isnotset,ftp.login; sid:11003;)\n");
  TcpConn c;
  Handshake(c);
  auto o = FromClient(c.Send(true, "USER bob\r\n"));
  EXPECT_EQ(Sids(o.alerts), Sid{}) << "noalert: the rule sets its bit silently";
  o = FromClient(c.Send(true, "PASS secret\r\n"));
  EXPECT_EQ(Sids(o.alerts), (Sid{11002u}));
  // Another connection has its own bits.
  TcpConn other(Client(40001), Server(21), 5000, 9000);
  Handshake(other);
  o = FromClient(other.Send(true, "PASS secret\r\n"));
  EXPECT_EQ(Sids(o.alerts), (Sid{11003u}));
  EXPECT_EQ(flows_->counters().flowbits_exhausted, 0u);
}

TEST_F(IpsPipeline, ThresholdLimitsAlertsPerSource) {
  Configure("alert tcp any any -> any any (msg:\"ping\"; content:\"PING\"; "
            "threshold:type limit, track by_src, count 2, seconds 60; sid:11101;)\n");
  TcpConn c;
  Handshake(c);
  size_t alerts = 0;
  for (int i = 0; i < 5; ++i) {
    const auto o = FromClient(c.Send(true, "PING " + std::to_string(i)));
    EXPECT_TRUE(o.forwarded[0]);
    alerts += o.alerts.size();
  }
  EXPECT_EQ(alerts, 2u);
  EXPECT_EQ(inspector_->counters().threshold_silenced, 3u);
}

TEST_F(IpsPipeline, SuppressedDropRuleStillDropsAndLogsOnlyTheDrop) {
  config::RulesConfig rc = NoCache();
  rc.threshold_file = WriteFile("threshold.config", "suppress gen_id 1, sig_id 11201, track by_src, ip 10.0.0.1\n");
  Configure("drop tcp any any -> any any (msg:\"evil\"; content:\"EVIL\"; sid:11201;)\n", {}, rc);
  TcpConn c;
  Handshake(c);
  const auto o = FromClient(c.Send(true, "EVIL"));
  EXPECT_TRUE(o.dropped[0]) << "suppress silences the alert, not the drop";
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_TRUE(o.alerts[0].blocked);
  EXPECT_FALSE(o.alerts[0].log_alert);
}

TEST_F(IpsPipeline, RateFilterTurnsAnAlertRuleIntoDrop) {
  config::RulesConfig rc = NoCache();
  rc.threshold_file = WriteFile("threshold.config",
                                "rate_filter gen_id 1, sig_id 11301, track by_src, count 2, seconds 60, "
                                "new_action drop, timeout 30\n");
  Configure("alert tcp any any -> any any (msg:\"login attempt\"; content:\"LOGIN\"; sid:11301;)\n", {}, rc);
  TcpConn c;
  Handshake(c);
  EXPECT_TRUE(FromClient(c.Send(true, "LOGIN 1")).forwarded[0]);
  EXPECT_TRUE(FromClient(c.Send(true, "LOGIN 2")).forwarded[0]);
  const auto o = FromClient(c.Send(true, "LOGIN 3"));
  EXPECT_TRUE(o.dropped[0]) << "the third hit within 60 s exceeds the rate";
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_TRUE(o.alerts[0].blocked);
  EXPECT_EQ(inspector_->counters().rate_filtered, 1u);
}

TEST_F(IpsPipeline, OverridesChangeActionsAndEnableDisabledRules) {
  config::RulesConfig rc = NoCache();
  rc.overrides.push_back(WriteFile("site.yaml",
                                   "overrides:\n"
                                   "  - sid: 11401\n    action: drop\n"
                                   "  - metadata: \"tier policy\"\n    enable: true\n"));
  Configure(
      "alert tcp any any -> any any (msg:\"bad\"; content:\"BAD\"; sid:11401;)\n"
      "# alert tcp any any -> any any (msg:\"policy\"; content:\"TELNET\"; metadata:tier policy; sid:11402;)\n"
      "# alert tcp any any -> any any (msg:\"left off\"; content:\"TELNET\"; sid:11403;)\n",
      {}, rc);
  TcpConn c;
  Handshake(c);
  auto o = FromClient(c.Send(true, "TELNET"));
  EXPECT_EQ(Sids(o.alerts), (Sid{11402u})) << "enabled by metadata; 11403 stays disabled";
  o = FromClient(c.Send(true, "BAD"));
  EXPECT_TRUE(o.dropped[0]) << "alert turned into drop by the overrides";
}

TEST_F(IpsPipeline, ActionOrderIsConfigurable) {
  const char* rules =
      "pass tcp any any -> any any (msg:\"allow\"; content:\"wo\"; sid:11501;)\n"
      "drop tcp any any -> any any (msg:\"block\"; content:\"wo\"; sid:11502;)\n";
  Configure(rules);  // Suricata's default: pass first
  TcpConn c;
  Handshake(c);
  EXPECT_TRUE(FromClient(c.Send(true, "hello world")).forwarded[0]);
  config::RulesConfig rc = NoCache();
  rc.action_order = {"drop", "pass", "reject", "alert"};
  Configure(rules, {}, rc);
  TcpConn d;
  Handshake(d);
  EXPECT_TRUE(FromClient(d.Send(true, "hello world")).dropped[0]);
}

// ------------------------------------------------------------------ stack hygiene

// `f` (an Ipv4Frame) with a 4-byte IPv4 option (Router Alert) after its header.
Frame WithIpOption(Frame f) {
  constexpr size_t ip = 14;
  const uint8_t option[4] = {0x94, 0x04, 0x00, 0x00};
  f.insert(f.begin() + ip + 20, option, option + 4);
  f[ip] = 0x46;  // IHL 6
  const uint16_t total = uint16_t((f[ip + 2] << 8 | f[ip + 3]) + 4);
  f[ip + 2] = uint8_t(total >> 8);
  f[ip + 3] = uint8_t(total);
  f[ip + 10] = f[ip + 11] = 0;
  const uint16_t c = testsupport::Ipv4Checksum(&f[ip], 24);
  f[ip + 10] = uint8_t(c >> 8);
  f[ip + 11] = uint8_t(c);
  return f;
}

TEST_F(IpsPipeline, HygieneDropsWhatDeviceStacksChokeOnTowardTheDevicesOnly) {
  Configure("alert tcp any any -> any any (msg:\"x\"; content:\"zz\"; sid:12001;)\n");
  gen_->toward_devices[kDev] = true;  // frames received on kNet leave toward the devices
  gen_->hygiene = generation::kHygieneIpOptions | generation::kHygieneTunnels | generation::kHygieneIcmpProbes;
  const Host outside = Server(0), device = Client(0);
  const Frame inner = IcmpEcho(outside, device, 8, "inner");
  const Frame tunnel = Ipv4Frame(outside, device, 4, Frame(inner.begin() + 14, inner.end()));
  const Frame gre = Ipv4Frame(outside, device, 47, Frame(8, 0));
  const Frame probe = IcmpEcho(outside, device, 165, "treck");
  const Frame options = WithIpOption(IcmpEcho(outside, device, 8, "opt"));

  EXPECT_TRUE(FromServer(probe).dropped[0]);
  EXPECT_TRUE(FromServer(tunnel).dropped[0]);
  EXPECT_TRUE(FromServer(gre).dropped[0]);
  EXPECT_TRUE(FromServer(options).dropped[0]);
  EXPECT_TRUE(FromServer(IcmpEcho(outside, device, 8, "ping")).forwarded[0]) << "ordinary ICMP passes";
  EXPECT_EQ(Drops(DropReason::kHygieneIcmpProbe), 1u);
  EXPECT_EQ(Drops(DropReason::kHygieneTunnel), 2u);
  EXPECT_EQ(Drops(DropReason::kHygieneIpOptions), 1u);
  EXPECT_EQ(Drops(DropReason::kNoPeer) + Drops(DropReason::kRule), 0u);

  // Away from the devices, nothing is filtered.
  EXPECT_TRUE(FromClient(IcmpEcho(device, outside, 165, "x")).forwarded[0]);
  EXPECT_TRUE(FromClient(WithIpOption(IcmpEcho(device, outside, 8, "y"))).forwarded[0]);
  // Each check can be switched off.
  gen_->hygiene = generation::kHygieneIpOptions;
  EXPECT_TRUE(FromServer(probe).forwarded[0]);
  EXPECT_TRUE(FromServer(tunnel).forwarded[0]);
  EXPECT_TRUE(FromServer(options).dropped[0]);
  EXPECT_EQ(Drops(DropReason::kHygieneIpOptions), 2u);
}

// ------------------------------------------------------------------ more

// Sequence numbers wrap past 2^32 inside the connection (and inside the pattern).
TEST_F(IpsPipeline, ContentAcrossTheSequenceNumberWrapFiresOnce) {
  Configure("drop tcp any any -> any any (msg:\"evil command\"; content:\"EVILCMD\"; sid:3001; rev:1;)\n");
  TcpConn c(Client(), Server(), 0xfffffff9u, 0xfffffff0u);
  Handshake(c);
  const Frame first = c.Send(true, "xxEVI");  // seq 0xfffffffa..0xfffffffe
  const Frame second = c.Send(true, "LCMD");  // seq 0xffffffff, 0, 1, 2
  parse::PacketView pv;
  ASSERT_EQ(parse::ParsePacket(second, pv), parse::ParseError::kNone);
  ASSERT_EQ(pv.tcp_seq, 0xffffffffu);
  EXPECT_TRUE(FromServer(c.Send(false, "hi")).forwarded[0]);  // server data wraps too
  auto o = FromClient(first);
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{});
  o = FromClient(second);
  EXPECT_TRUE(o.dropped[0]);
  EXPECT_EQ(Sids(o.alerts), (Sid{3001u}));
  EXPECT_EQ(Drops(DropReason::kRule), 1u);
}

// A flow dropped under one generation stays dropped under a generation without rules
// (a reload must not reopen it); other flows are forwarded.
TEST_F(IpsPipeline, DropFlowOutlivesAReloadToNoRules) {
  Configure(kDropRules);
  TcpConn c;
  Handshake(c);
  EXPECT_TRUE(FromClient(c.Send(true, "EVILCMD")).dropped[0]);
  auto bare = std::make_unique<generation::Generation>();
  bare->peer[kDev] = kNet;
  bare->peer[kNet] = kDev;
  gen_ = std::move(bare);
  EXPECT_TRUE(FromClient(c.Send(true, "again")).dropped[0]);
  EXPECT_TRUE(FromServer(c.ServerAck()).dropped[0]);
  TcpConn other(Client(40001));
  Handshake(other);
  EXPECT_TRUE(FromClient(other.Send(true, "EVILCMD")).forwarded[0]) << "no rules: nothing new is dropped";
  EXPECT_EQ(Drops(DropReason::kRule), 3u);
}

// Suricata's action order puts pass before drop for the whole packet: a pass rule that
// fires on the stream and a drop rule that fires on the packet's own payload (or the
// other way round) should give the same verdict as when both fire on one buffer.
TEST_F(IpsPipeline, PassOnTheStreamAndDropOnThePacketFollowTheActionOrder) {
  Configure(
      "pass tcp any any -> any any (msg:\"trusted\"; content:\"trusted\"; sid:7101; rev:1;)\n"
      "drop tcp-pkt any any -> any any (msg:\"bad\"; content:\"BADCMD\"; sid:7102; rev:1;)\n");
  TcpConn c;
  Handshake(c);
  auto o = FromClient(c.Send(true, "trusted BADCMD"));
  EXPECT_TRUE(o.forwarded[0]) << "pass applies first";
  EXPECT_EQ(Sids(o.alerts), Sid{});
  EXPECT_TRUE(FromClient(c.Send(true, "BADCMD")).forwarded[0]) << "the flow is passed";
}

// The same two rules on one buffer: pass wins (the Inspector's order).
TEST_F(IpsPipeline, PassAndDropOnThePacketBufferPass) {
  Configure(
      "pass tcp-pkt any any -> any any (msg:\"trusted\"; content:\"trusted\"; sid:7201; rev:1;)\n"
      "drop tcp-pkt any any -> any any (msg:\"bad\"; content:\"BADCMD\"; sid:7202; rev:1;)\n");
  TcpConn c;
  Handshake(c);
  auto o = FromClient(c.Send(true, "trusted BADCMD"));
  EXPECT_TRUE(o.forwarded[0]);
  EXPECT_EQ(Sids(o.alerts), Sid{});
  EXPECT_TRUE(FromClient(c.Send(true, "BADCMD")).forwarded[0]) << "the flow is passed";
  EXPECT_EQ(Drops(DropReason::kRule), 0u);
}

// A stream limit: inspection of the flow stops at stream.depth, the traffic keeps
// flowing (clinical default), and an anomaly event says so once.
TEST_F(IpsPipeline, StreamDepthStopsInspectionKeepsForwardingAndEmitsAnAnomaly) {
  Configure("alert tcp any any -> any any (msg:\"late\"; content:\"LATE\"; sid:9001; rev:1;)\n",
            Options{.depth = 16});
  TcpConn c;
  Handshake(c);
  auto o = FromClient(c.Send(true, "0123456789abcdefXYZ"));  // crosses the 16-byte depth
  EXPECT_TRUE(o.forwarded[0]);
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].anomaly, "stream.depth_reached");
  EXPECT_NE(o.alerts[0].flow_id, 0u);
  o = FromClient(c.Send(true, "LATE data beyond the depth"));
  EXPECT_TRUE(o.forwarded[0]) << "never cut the feed at a limit";
  for (const auto& a : o.alerts) EXPECT_NE(a.sid, 9001u) << "the stream is no longer inspected";
  auto* f = FindFlow(c.Send(true, ""));
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->flags & flow::kNoInspect);
}

// stream.on_limit: drop fails closed: from the packet that hits the limit on, the flow
// is dropped (and an anomaly event says why).
TEST_F(IpsPipeline, OnLimitDropFailsClosed) {
  Configure("alert tcp any any -> any any (msg:\"x\"; content:\"never\"; sid:9101; rev:1;)\n",
            Options{.depth = 16, .drop_on_limit = true});
  TcpConn c;
  Handshake(c);
  auto o = FromClient(c.Send(true, "0123456789abcdefXYZ"));
  ASSERT_EQ(o.alerts.size(), 1u);
  EXPECT_EQ(o.alerts[0].anomaly, "stream.depth_reached");
  EXPECT_TRUE(FromClient(c.Send(true, "more")).dropped[0]);
  EXPECT_TRUE(FromServer(c.Send(false, "reply")).dropped[0]);
}

}  // namespace
}  // namespace wardgate

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string prefix = "wg-ips-" + std::to_string(getpid());
  const char* eal_argv[] = {"ips_pipeline_test", "-l", "0", "--no-huge", "-m", "256", "--no-shconf", "--no-pci",
                            "--file-prefix", prefix.c_str(), "--no-telemetry", "--log-level", "lib.eal:error"};
  if (rte_eal_init(int(std::size(eal_argv)), const_cast<char**>(eal_argv)) < 0) return 1;
  wardgate::g_pool = rte_pktmbuf_pool_create("ips_pool", 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (!wardgate::g_pool) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_mempool_free(wardgate::g_pool);
  rte_eal_cleanup();
  return rc;
}
