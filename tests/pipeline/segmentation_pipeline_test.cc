// Pipeline tests of segmentation: zone resolution, the zone policy decided on a new
// flow and cached on it (stateful return traffic, monitor mode, alert, app-confirmed
// rules, frames without a flow), and the quarantine gate at both levels, driven through
// worker::ProcessBurst with hand-made bursts (EAL --no-huge; no ports).
//
// The ward: port kDev faces the devices (pump 10.77.0.11, monitor .12), kNet the
// hospital (ehr .21, workstation .23, dns .53, mgmt .99).
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/config/segmentation.h"
#include "dataplane/control/controller.h"
#include "dataplane/events/eve_sink.h"
#include "dataplane/inspect/rules_loader.h"
#include "dataplane/events/event_ring.h"
#include "dataplane/flow/flow_table.h"
#include "dataplane/generation/generation.h"
#include "dataplane/hygiene/fragment_guard.h"
#include "dataplane/inspect/inspector.h"
#include "dataplane/segment/segmentation.h"
#include "dataplane/worker/worker.h"
#include "tests/support/frames.h"
#include "tests/support/ip_frames.h"
#include "tests/support/ring_ports.h"

namespace wardgate {
namespace {

using testsupport::Frame;
using testsupport::Host;
using testsupport::TcpConn;
using worker::DropReason;

rte_mempool* g_pool = nullptr;
constexpr uint16_t kDev = 0, kNet = 1;

Host Dev(uint8_t id, uint16_t port = 40000) { return {{0x02, 0x77, 0, 0, 0, id}, {10, 77, 0, id}, port}; }
Host Pump(uint16_t port = 40000) { return Dev(11, port); }
Host Monitor(uint16_t port = 40000) { return Dev(12, port); }
Host Ehr(uint16_t port = 2575) { return Dev(21, port); }
Host Workstation(uint16_t port = 22) { return Dev(23, port); }
Host Dns(uint16_t port = 53) { return Dev(53, port); }
Host Mgmt(uint16_t port = 443) { return Dev(99, port); }

constexpr const char* kWard = R"(
zones:
  - name: pumps
    classes: [infusion-pump]
    default: deny
  - name: monitors
    cidrs: [10.77.0.12/32]
    default: deny
    mode: monitor
  - name: clinical
    cidrs: [10.77.0.21/32]
    default: allow
  - name: office
    cidrs: [10.77.0.23/32]
    default: allow
  - name: ward-vlan
    vlans: [300]
policy:
  - { from: pumps, to: clinical, proto: tcp, ports: [2575], app: hl7, action: allow }
  - { from: pumps, to: clinical, proto: tcp, ports: [8443], action: alert }
  - { from: monitors, to: clinical, proto: tcp, ports: [2575], action: allow }
  - { from: office, to: pumps, proto: tcp, ports: [80], action: allow }
)";
constexpr const char* kWardRest = R"(
devices:
  - { mac: "02:77:00:00:00:0b", name: pump-1, class: infusion-pump, criticality: life-critical }
quarantine:
  remediation: [10.77.0.99/32]
)";

// The ward with `extra` policy rules after the four above.
std::string Ward(const std::string& extra = "") { return std::string(kWard) + extra + kWardRest; }

class Segmentation : public ::testing::Test {
 protected:
  void SetUp() override { Configure(Ward()); }
  void TearDown() override { EXPECT_EQ(rte_mempool_in_use_count(g_pool), 0u) << "mbufs leaked"; }

  void Configure(const std::string& yaml) {
    cfg_ = config::LoadSegmentation(YAML::Load(yaml), {"ward"});
    std::string error;
    seg_ = segment::Segmentation::Build(cfg_, {"ward"}, &error);
    ASSERT_TRUE(seg_) << error;
    gen_ = std::make_unique<generation::Generation>();
    gen_->peer[kDev] = kNet;
    gen_->peer[kNet] = kDev;
    gen_->toward_devices[kDev] = true;
    gen_->pair_of_port[kDev] = gen_->pair_of_port[kNet] = 0;
    gen_->segmentation = seg_;
    ring_ = std::make_unique<events::EventRing<events::AlertRecord>>(256);
    inspector_ = std::make_unique<inspect::Inspector>(0, ring_.get(), true);
    streams_ = std::make_unique<stream::Reassembler>(stream::StreamConfig{});
    flow::FlowTableConfig fc;
    fc.capacity = 1024;
    flows_ = std::make_unique<flow::FlowTable>(fc, streams_.get());
    counters_ = std::make_unique<worker::WorkerCounters>();
    verdict_ = std::make_unique<worker::BurstVerdict>();
  }

  // The quarantines in force from now on (a new generation, as the controller does).
  void Quarantine(std::vector<std::pair<Host, config::QuarantineLevel>> macs,
                  std::vector<std::pair<Host, config::QuarantineLevel>> ips = {}) {
    auto set = std::make_shared<segment::QuarantineSet>();
    for (auto& [h, level] : macs) set->AddMac(h.mac, {level, now_ns_ + 1});
    for (auto& [h, level] : ips) {
      std::array<uint8_t, 16> a{};
      std::copy(h.ip.begin(), h.ip.end(), a.begin());
      set->AddIp(a, {level, now_ns_ + 1});
    }
    gen_->quarantines = set;
  }

  // One frame received on rx_port; true if it was forwarded.
  bool Pass(uint16_t rx_port, const Frame& f) {
    rte_mbuf* m = testsupport::MbufFrom(g_pool, f);
    EXPECT_NE(m, nullptr);
    worker::Stages stages;
    stages.inspector = inspector_.get();
    stages.flows = flows_.get();
    stages.streams = streams_.get();
    stages.fragments = &fragments_;
    stages.burst_ts_ns = (now_ns_ += 1000000);
    worker::ProcessBurst(*gen_, *counters_, rx_port, &m, 1, *verdict_, &stages);
    const bool forwarded = verdict_->n_forward == 1 && verdict_->forward[0] == m;
    EXPECT_TRUE(forwarded || (verdict_->n_drop == 1 && verdict_->drop[0] == m));
    worker::DiscardBurst(*verdict_);
    return forwarded;
  }
  bool FromDevice(const Frame& f) { return Pass(kDev, f); }
  bool FromNetwork(const Frame& f) { return Pass(kNet, f); }

  // A full handshake of c (client on the device side when client_on_dev); true if
  // every segment crossed.
  bool Connect(TcpConn& c, bool client_on_dev) {
    const uint16_t cp = client_on_dev ? kDev : kNet, sp = client_on_dev ? kNet : kDev;
    return Pass(cp, c.Syn()) && Pass(sp, c.SynAck()) && Pass(cp, c.Ack());
  }

  struct PolicyEvent {
    std::string action, from_zone, to_zone, rule;
    bool enforced;
  };
  std::vector<PolicyEvent> Events() {
    std::vector<PolicyEvent> out;
    while (const events::AlertRecord* r = ring_->Peek()) {
      if (r->kind == events::AlertRecord::Kind::kPolicy) {
        out.push_back({policy::ActionName(policy::Action(r->policy_action)), r->from_zone, r->to_zone,
                       r->policy_rule >= 0 ? r->policy_where : "default", r->policy_enforced});
      }
      ring_->Release();
    }
    return out;
  }

  uint64_t Drops(DropReason r) const { return counters_->drops[size_t(r)].Load(); }

  config::SegmentationConfig cfg_;
  std::shared_ptr<const segment::Segmentation> seg_;
  std::unique_ptr<generation::Generation> gen_;
  std::unique_ptr<events::EventRing<events::AlertRecord>> ring_;
  std::unique_ptr<inspect::Inspector> inspector_;
  std::unique_ptr<stream::Reassembler> streams_;
  std::unique_ptr<flow::FlowTable> flows_;
  std::unique_ptr<worker::WorkerCounters> counters_;
  std::unique_ptr<worker::BurstVerdict> verdict_;
  uint64_t now_ns_ = 1'000'000'000;
  hygiene::FragmentGuard fragments_{hygiene::FragmentGuardConfig{}};
};

// "who has to.ip? tell from": broadcast, sent by `from`.
Frame ArpRequest(const Host& from, const Host& to) {
  Frame f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  f.insert(f.end(), from.mac.begin(), from.mac.end());
  for (uint8_t b : {0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1}) f.push_back(b);
  f.insert(f.end(), from.mac.begin(), from.mac.end());
  f.insert(f.end(), from.ip.begin(), from.ip.end());
  for (int i = 0; i < 6; ++i) f.push_back(0);
  f.insert(f.end(), to.ip.begin(), to.ip.end());
  return f;
}

const std::string kHl7 = "\x0bMSH|^~\\&|PUMP|WARD|EHR|HOSP|20261130||ORU^R01|1|P|2.5\r\x1c\r";

// ------------------------------------------------------------------ zone resolution

TEST_F(Segmentation, ZonesResolveByDeviceClassAddressVlanAndNothing) {
  const auto pump = Pump(), monitor = Monitor(), ehr = Ehr(), ws = Workstation();
  auto end = [](const Host& h, std::array<uint8_t, 16>& a, uint16_t vlan = 0, int16_t pair = segment::kNoPair) {
    a = {};
    std::copy(h.ip.begin(), h.ip.end(), a.begin());
    return segment::End{h.mac.data(), a.data(), false, vlan, pair};
  };
  std::array<uint8_t, 16> a{};
  EXPECT_STREQ(seg_->ZoneName(seg_->ZoneOf(end(pump, a))), "pumps") << "by the static record's class";
  EXPECT_STREQ(seg_->ZoneName(seg_->ZoneOf(end(monitor, a))), "monitors") << "by address";
  EXPECT_STREQ(seg_->ZoneName(seg_->ZoneOf(end(ehr, a))), "clinical");
  EXPECT_STREQ(seg_->ZoneName(seg_->ZoneOf(end(ws, a))), "office");
  EXPECT_STREQ(seg_->ZoneName(seg_->ZoneOf(end(Dev(77), a, 300))), "ward-vlan") << "by VLAN";
  EXPECT_EQ(seg_->ZoneOf(end(Dev(77), a)), segment::kNoZone);
  EXPECT_EQ(seg_->DeviceByMac(pump.mac.data())->criticality, config::Criticality::kLifeCritical);
}

TEST_F(Segmentation, ZoneByPairAndExplicitDeviceZone) {
  Configure(R"(
zones:
  - { name: ward-devices, pairs: [ward], default: deny }
  - { name: lab, cidrs: [10.77.0.0/24] }
devices:
  - { mac: "02:77:00:00:00:0c", zone: lab }
)");
  std::array<uint8_t, 16> a{10, 77, 0, 40};
  const auto h = Dev(40);
  EXPECT_STREQ(seg_->ZoneName(seg_->ZoneOf({h.mac.data(), a.data(), false, 0, 0})), "ward-devices")
      << "device side of pair 0";
  EXPECT_STREQ(seg_->ZoneName(seg_->ZoneOf({h.mac.data(), a.data(), false, 0, segment::kNoPair})), "lab");
  const auto m = Monitor();
  EXPECT_STREQ(seg_->ZoneName(seg_->ZoneOf({m.mac.data(), a.data(), false, 0, 0})), "lab")
      << "a device's explicit zone wins over every criterion";
}

// ------------------------------------------------------------------ policy

TEST_F(Segmentation, AllowedFlowAndItsReturnTrafficCross) {
  TcpConn c(Pump(), Ehr(2575));
  ASSERT_TRUE(Connect(c, true)) << "pump -> ehr 2575 is allowed (provisionally: the rule names hl7)";
  EXPECT_TRUE(FromDevice(c.Send(true, kHl7))) << "HL7 confirms the rule";
  EXPECT_TRUE(FromNetwork(c.Send(false, "\x0bMSH|^~\\&|EHR|HOSP|||||ACK|1|P|2.5\r\x1c\r")));
  EXPECT_TRUE(FromDevice(c.Send(true, kHl7)));
  EXPECT_EQ(Drops(DropReason::kPolicy), 0u);
  EXPECT_TRUE(Events().empty()) << "an allowed flow is not reported";
  EXPECT_EQ(counters_->policy_flows_allowed.Load(), 1u);
}

TEST_F(Segmentation, DefaultDenyDropsTheFlowBothWaysAndReportsItOnce) {
  TcpConn c(Pump(), Workstation(22));
  EXPECT_FALSE(FromDevice(c.Syn())) << "pump -> workstation ssh: pumps default deny";
  EXPECT_FALSE(FromNetwork(c.SynAck())) << "nothing comes back on a denied flow";
  EXPECT_FALSE(FromDevice(c.Syn()));
  EXPECT_EQ(Drops(DropReason::kPolicy), 3u);
  const auto ev = Events();
  ASSERT_EQ(ev.size(), 1u) << "one event per flow, not per packet";
  EXPECT_EQ(ev[0].action, "deny");
  EXPECT_TRUE(ev[0].enforced);
  EXPECT_EQ(ev[0].from_zone, "pumps");
  EXPECT_EQ(ev[0].to_zone, "office");
  EXPECT_EQ(ev[0].rule, "default");
  EXPECT_EQ(counters_->policy_flows_denied.Load(), 1u);
}

TEST_F(Segmentation, InboundToADefaultDenyZoneIsDeniedUnlessARuleAllows) {
  TcpConn telnet(Workstation(50000), Pump(23));
  EXPECT_FALSE(FromNetwork(telnet.Syn())) << "workstation -> pump telnet";
  TcpConn web(Workstation(50001), Pump(80));
  EXPECT_TRUE(Connect(web, false)) << "office -> pumps tcp/80 is allowed by policy[3]";
  const auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].from_zone, "office");
  EXPECT_EQ(ev[0].to_zone, "pumps");
}

TEST_F(Segmentation, AlertRuleForwardsAndReports) {
  TcpConn c(Pump(), Ehr(8443));
  EXPECT_TRUE(Connect(c, true));
  const auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].action, "alert");
  EXPECT_EQ(ev[0].rule, "policy[1]");
  EXPECT_EQ(counters_->policy_flows_alerted.Load(), 1u);
}

TEST_F(Segmentation, MonitorZoneForwardsWhatItWouldDenyAndSaysSo) {
  TcpConn c(Monitor(), Workstation(22));
  EXPECT_TRUE(Connect(c, true)) << "monitors are in monitor mode";
  const auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].action, "deny");
  EXPECT_FALSE(ev[0].enforced);
  EXPECT_EQ(counters_->policy_flows_monitored.Load(), 1u);
  EXPECT_EQ(Drops(DropReason::kPolicy), 0u);
}

TEST_F(Segmentation, AppRuleThatSeesAnotherProtocolFallsBackAndDrops) {
  TcpConn c(Pump(), Ehr(2575));
  ASSERT_TRUE(Connect(c, true));
  EXPECT_FALSE(FromDevice(c.Send(true, "GET / HTTP/1.1\r\n\r\n"))) << "not HL7: the hl7 rule does not apply";
  EXPECT_FALSE(FromNetwork(c.Send(false, "HTTP/1.1 200 OK\r\n\r\n")));
  EXPECT_EQ(counters_->policy_app_checked.Load(), 1u);
  const auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].action, "deny");
  EXPECT_EQ(ev[0].rule, "default");
}

TEST_F(Segmentation, FramesWithoutAFlowAreDecidedOnTheirOwn) {
  // A bare ACK (no handshake seen, midstream off) to a pump's telnet: no flow, still denied.
  const auto ack = testsupport::TcpSegment(Workstation(50000), Pump(23), 1, 1, testsupport::kAck, "x");
  EXPECT_FALSE(FromNetwork(ack));
  EXPECT_EQ(counters_->policy_stateless_denied.Load(), 1u);
  // ARP is never subject to the zone policy.
  EXPECT_TRUE(FromDevice(ArpRequest(Workstation(), Pump())));
}

TEST_F(Segmentation, MalformedFramesDoNotSlipPastDefaultDeny) {
  auto f = testsupport::TcpSegment(Workstation(50000), Pump(23), 1, 0, testsupport::kSyn, "");
  f[14 + 20 + 12] = 0x60;  // data offset 6: a 4-byte option area the frame does not have
  f.resize(14 + 20 + 20);
  EXPECT_FALSE(FromNetwork(f));
  EXPECT_EQ(Drops(DropReason::kPolicy) + Drops(DropReason::kHygieneTcpOptions), 1u);
}

// ------------------------------------------------------------------ quarantine

TEST_F(Segmentation, IsolateStopsAnEstablishedFlowOnTheVeryNextPacket) {
  // The policy lets pumps use DNS and reach the management host; isolation then
  // leaves exactly what its remediation list names.
  Configure(Ward("  - { from: pumps, proto: udp, ports: [53], action: allow }\n"
                 "  - { from: pumps, to_cidrs: [10.77.0.99/32], action: allow }\n"
                 "  - { from: pumps, to: clinical, proto: tcp, ports: [8080], action: allow }\n"));
  TcpConn c(Pump(), Ehr(2575));
  ASSERT_TRUE(Connect(c, true));
  ASSERT_TRUE(FromDevice(c.Send(true, kHl7)));
  TcpConn web(Pump(40002), Ehr(8080));
  ASSERT_TRUE(Connect(web, true));
  Quarantine({{Pump(), config::QuarantineLevel::kIsolate}});
  EXPECT_FALSE(FromDevice(c.Send(true, kHl7))) << "from the device";
  EXPECT_FALSE(FromNetwork(c.Send(false, "ack"))) << "to the device";
  EXPECT_FALSE(FromDevice(web.Send(true, "GET /"))) << "every flow, explicitly allowed or not";
  EXPECT_EQ(Drops(DropReason::kQuarantine), 3u);
  // What isolation leaves: DNS, the remediation host, address resolution.
  EXPECT_TRUE(FromDevice(testsupport::UdpDatagram(Pump(5353), Dns(53), "q")));
  EXPECT_TRUE(FromNetwork(testsupport::UdpDatagram(Dns(53), Pump(5353), "a")));
  TcpConn mgmt(Pump(40001), Mgmt(443));
  EXPECT_TRUE(Connect(mgmt, true)) << "the remediation host stays reachable";
  // Other devices are not affected.
  TcpConn other(Monitor(), Ehr(2575));
  EXPECT_TRUE(Connect(other, true));
  EXPECT_EQ(Drops(DropReason::kQuarantine), 3u);
}

TEST_F(Segmentation, WithoutARemediationListIsolationLeavesOnlyAddressResolution) {
  Configure(Ward("  - { from: pumps, proto: udp, ports: [53], action: allow }\n"));
  gen_->segmentation = nullptr;  // no segmentation object: no remediation list either
  Quarantine({{Pump(), config::QuarantineLevel::kIsolate}});
  EXPECT_FALSE(FromDevice(testsupport::UdpDatagram(Pump(5353), Dns(53), "q")));
  EXPECT_TRUE(FromDevice(ArpRequest(Pump(), Ehr()))) << "the pump may still resolve addresses";
  EXPECT_EQ(Drops(DropReason::kQuarantine), 1u);
}

TEST_F(Segmentation, ContainKeepsEstablishedFlowsAndExplicitlyAllowedPeersOnly) {
  Configure(Ward("  - { from: pumps, to: office, proto: tcp, ports: [9000], action: allow }\n"));
  TcpConn before(Pump(), Ehr(2575));
  ASSERT_TRUE(Connect(before, true));
  ASSERT_TRUE(FromDevice(before.Send(true, kHl7)));
  Quarantine({{Pump(), config::QuarantineLevel::kContain}});
  EXPECT_TRUE(FromDevice(before.Send(true, kHl7))) << "established before the quarantine";
  EXPECT_TRUE(FromNetwork(before.Send(false, "ack")));
  TcpConn again(Pump(40001), Ehr(2575));
  EXPECT_TRUE(Connect(again, true)) << "a new flow to a peer an allow rule names";
  // The monitor zone allows by nothing explicit: a contained monitor loses new flows.
  Quarantine({{Monitor(), config::QuarantineLevel::kContain}});
  TcpConn mon(Monitor(), Workstation(22));
  EXPECT_FALSE(FromDevice(mon.Syn())) << "new flow, no explicit allow rule";
  TcpConn mgmt(Monitor(40003), Mgmt(443));
  EXPECT_FALSE(FromDevice(mgmt.Syn())) << "the remediation list is isolation's, not containment's";
  EXPECT_EQ(Drops(DropReason::kQuarantine), 2u);
}

TEST_F(Segmentation, QuarantineByAddressAndReleaseRestoresEverything) {
  TcpConn c(Pump(), Ehr(2575));
  ASSERT_TRUE(Connect(c, true));
  Quarantine({}, {{Pump(), config::QuarantineLevel::kIsolate}});
  EXPECT_FALSE(FromDevice(c.Send(true, kHl7)));
  EXPECT_FALSE(FromNetwork(c.Send(false, "x")));
  gen_->quarantines = nullptr;  // released
  EXPECT_TRUE(FromDevice(c.Send(true, kHl7)));
  EXPECT_TRUE(FromNetwork(c.Send(false, "ack")));
}

TEST_F(Segmentation, MalformedFramesOfAQuarantinedDeviceAreDropped) {
  Quarantine({{Pump(), config::QuarantineLevel::kContain}});
  auto f = testsupport::TcpSegment(Pump(), Ehr(2575), 1, 0, testsupport::kSyn, "");
  f.resize(14 + 20 + 10);  // TCP header cut short
  f[17] = 30;              // IPv4 total length to match
  EXPECT_FALSE(FromDevice(f));
  EXPECT_EQ(Drops(DropReason::kQuarantine), 1u);
}

// Every case of the gate: both levels x flows from before / new x explicitly allowed
// peer / allowed by zone default / remediation host / DNS, both directions. The device
// (10.77.0.40) sits in a default-allow zone so the policy itself lets everything by.
TEST_F(Segmentation, QuarantineMatrix) {
  struct Case {
    const char* what;
    bool isolate_passes, contain_passes;
  };
  for (const auto level : {config::QuarantineLevel::kIsolate, config::QuarantineLevel::kContain}) {
    const bool iso = level == config::QuarantineLevel::kIsolate;
    SCOPED_TRACE(iso ? "isolate" : "contain");
    std::string ward = Ward("  - { from: lab, to: clinical, proto: tcp, ports: [2575], action: allow }\n");
    const std::string zones = "zones:\n";
    ward.insert(ward.find(zones) + zones.size(), "  - { name: lab, cidrs: [10.77.0.40/32], default: allow }\n");
    Configure(ward);
    const Host dev = Dev(40);
    TcpConn old_explicit(Dev(40, 41000), Ehr(2575)), old_default(Dev(40, 41001), Workstation(8080));
    ASSERT_TRUE(Connect(old_explicit, true));
    ASSERT_TRUE(Connect(old_default, true));
    ASSERT_TRUE(FromDevice(old_explicit.Send(true, kHl7)));
    ASSERT_TRUE(FromDevice(old_default.Send(true, "x")));
    Quarantine({{dev, level}});
    const std::vector<std::pair<Case, bool>> outcomes = {
        {{"flow from before, explicit peer, from the device", false, true}, FromDevice(old_explicit.Send(true, kHl7))},
        {{"flow from before, explicit peer, to the device", false, true}, FromNetwork(old_explicit.Send(false, "a"))},
        {{"flow from before, default peer, from the device", false, true}, FromDevice(old_default.Send(true, "y"))},
        {{"flow from before, default peer, to the device", false, true}, FromNetwork(old_default.Send(false, "b"))},
        {{"new flow, explicit peer", false, true}, FromDevice(TcpConn(Dev(40, 42000), Ehr(2575)).Syn())},
        {{"new flow, default peer", false, false}, FromDevice(TcpConn(Dev(40, 42001), Workstation(8080)).Syn())},
        {{"new flow in, from a default peer", false, false}, FromNetwork(TcpConn(Workstation(50000), Dev(40, 22)).Syn())},
        {{"new flow, remediation host", true, false}, FromDevice(TcpConn(Dev(40, 42002), Mgmt(443)).Syn())},
        {{"DNS query", true, false}, FromDevice(testsupport::UdpDatagram(Dev(40, 5353), Dns(53), "q"))},
        {{"ARP request", true, true}, FromDevice(ArpRequest(dev, Ehr()))},
    };
    for (const auto& [c, passed] : outcomes) {
      EXPECT_EQ(passed, iso ? c.isolate_passes : c.contain_passes) << c.what;
    }
  }
}

// A rule's quarantine option: the worker stops the flow on the matching frame at once
// (when the device sent it), the control thread quarantines the device.
TEST_F(Segmentation, RuleWithQuarantineOptionStopsTheFlowItMatched) {
  Configure(Ward("  - { from: office, to: pumps, proto: tcp, ports: [4444], action: allow }\n"
                 "  - { from: pumps, to: office, proto: tcp, ports: [4444], action: allow }\n"));
  config::RulesConfig rc;
  rc.cache_dir.clear();
  const auto load = inspect::LoadRuleText(
      "alert tcp any any -> any 4444 (msg:\"backdoor\"; flags:S; sid:7001; rev:1; quarantine:isolate;)\n", "t.rules", rc);
  ASSERT_TRUE(load.compiled);
  inspect::AttachRules(*gen_, load, "t", 1);
  TcpConn out(Pump(41000), Workstation(4444));
  EXPECT_FALSE(FromDevice(out.Syn())) << "the device's own frame: stopped on the spot";
  EXPECT_EQ(Drops(DropReason::kQuarantine), 1u);
  EXPECT_FALSE(FromDevice(out.Syn())) << "and its flow stays stopped";
  TcpConn in(Workstation(41001), Pump(4444));
  EXPECT_TRUE(FromNetwork(in.Syn())) << "toward a device: alerted, not a reason to cut the target";
}

// A scan of denied flows fills the event ring with policy records, but not the last
// quarter: the alert that asks for a quarantine still gets through.
TEST_F(Segmentation, APolicyFloodLeavesRoomForAlerts) {
  Configure(Ward("  - { from: pumps, to: office, proto: tcp, ports: [4444], action: allow }\n"));
  config::RulesConfig rc;
  rc.cache_dir.clear();
  const auto load = inspect::LoadRuleText(
      "alert tcp any any -> any 4444 (msg:\"backdoor\"; flags:S; sid:7004; rev:1; quarantine:isolate;)\n", "t.rules", rc);
  ASSERT_TRUE(load.compiled);
  inspect::AttachRules(*gen_, load, "t", 1);
  for (uint16_t p = 0; p < 300; ++p) {  // 300 denied flows, nobody drains the ring
    FromNetwork(TcpConn(Workstation(uint16_t(20000 + p)), Pump(23)).Syn());
  }
  EXPECT_EQ(counters_->policy_flows_denied.Load(), 300u);
  EXPECT_FALSE(FromDevice(TcpConn(Pump(41000), Workstation(4444)).Syn()));
  bool alert = false;
  size_t policy_records = 0;
  while (const events::AlertRecord* r = ring_->Peek()) {
    alert |= r->kind == events::AlertRecord::Kind::kAlert && r->rule && r->rule->sid == 7004;
    policy_records += r->kind == events::AlertRecord::Kind::kPolicy;
    ring_->Release();
  }
  EXPECT_EQ(policy_records, ring_->capacity() * 3 / 4);
  EXPECT_TRUE(alert) << "the quarantine request was not crowded out";
}

// The control thread's side: levels, TTL on a fake clock, rule requests, bad devices,
// release by another name, the snapshot across a restart.
class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wg-ctl-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    cfg_ = config::LoadSegmentation(YAML::Load(Ward()), {"ward"});
    cfg_.quarantine.snapshot = dir_ + "/state.json";
    Start();
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  void Start() {
    controller_.reset();
    sink_.reset();
    store_ = std::make_unique<generation::GenerationStore>(1);
    std::string error;
    auto gen = std::make_unique<generation::Generation>();
    gen->segmentation = segment::Segmentation::Build(cfg_, {"ward"}, &error);
    ASSERT_TRUE(gen->segmentation) << error;
    store_->Publish(std::move(gen));
    sink_ = std::make_unique<events::EveSink>(dir_ + "/eve.json", false, false);
    controller_ = std::make_unique<control::Controller>(*store_, std::vector{&ring_}, *sink_, config::RulesConfig{}, 1);
    controller_->SetClock([this] { return now_; });
    controller_->SetSegmentation(cfg_, {}, "test-boot");
  }
  const segment::Quarantined* Enforced(const Host& h) {
    const auto& q = store_->Current()->quarantines;
    return q ? q->FindMac(h.mac.data()) : nullptr;
  }
  std::string Eve() {
    sink_->Flush();
    std::ifstream in(dir_ + "/eve.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  control::QuarantineOutcome Q(const std::string& device, const std::string& level = "", const std::string& ttl = "") {
    return controller_->Quarantine({device, level, "test", ttl, "tester"});
  }

  std::string dir_;
  config::SegmentationConfig cfg_;
  std::unique_ptr<generation::GenerationStore> store_;
  events::EventRing<events::AlertRecord> ring_{64};
  std::unique_ptr<events::EveSink> sink_;
  std::unique_ptr<control::Controller> controller_;
  uint64_t now_ = 1'800'000'000'000'000'000ull;
};

TEST_F(ControllerTest, LevelsDefaultsAndWhatIsNotADevice) {
  const auto pump = Q("02:77:00:00:00:0b");  // life-critical static record
  ASSERT_EQ(pump.error, control::QuarantineOutcome::Error::kNone) << pump.message;
  EXPECT_EQ(pump.entry.level, "contain") << "life-critical devices default to contain";
  ASSERT_NE(Enforced(Pump()), nullptr) << "enforced when the call returns";
  EXPECT_EQ(Q("02:77:00:00:00:0b", "isolate").entry.level, "isolate");
  EXPECT_EQ(Q("02:77:00:00:00:0b", "", "1h").entry.level, "isolate") << "asked again without a level: it stays";
  EXPECT_EQ(Q("02:77:00:00:00:0c").entry.level, "isolate") << "other devices: the default level";
  for (const char* bad : {"ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "00:00:00:00:00:00", "255.255.255.255", "0.0.0.0",
                          "ff02::1"}) {
    EXPECT_EQ(Q(bad).error, control::QuarantineOutcome::Error::kInvalid) << bad;
  }
  EXPECT_EQ(Q("02:77:00:00:00").error, control::QuarantineOutcome::Error::kInvalid);
  EXPECT_EQ(Q("02:77:00:00:00:0d", "lockdown").error, control::QuarantineOutcome::Error::kInvalid);
  EXPECT_EQ(Q("02:77:00:00:00:0d", "", "30").error, control::QuarantineOutcome::Error::kInvalid);
  EXPECT_EQ(Q("id:99").error, control::QuarantineOutcome::Error::kNotFound);
  EXPECT_EQ(controller_->Quarantines().size(), 2u) << "refused calls change nothing";
  EXPECT_EQ(controller_->Release("02:77:00:00:00:0d", "", "t").error, control::QuarantineOutcome::Error::kNotFound);
}

TEST_F(ControllerTest, TimeToLiveExpiresOnTheClock) {
  ASSERT_EQ(Q("02:77:00:00:00:0c", "isolate", "10s").error, control::QuarantineOutcome::Error::kNone);
  now_ += 9'999'999'999ull;
  controller_->Tick();
  EXPECT_NE(Enforced(Monitor()), nullptr) << "1 ns before the end";
  now_ += 1;
  controller_->Tick();
  EXPECT_EQ(Enforced(Monitor()), nullptr) << "released at the instant the TTL ends";
  EXPECT_NE(Eve().find("\"action\":\"expire\""), std::string::npos);
}

TEST_F(ControllerTest, RuleRequestsQuarantineTheDeviceThatSentTheFrame) {
  rules::Rule rule;
  rule.sid = 7002;
  rule.msg = "bad \xff bytes";  // not UTF-8: must not break the API's strings
  rule.quarantine = rules::Rule::Quarantine::kIsolate;
  auto push = [&](const Host& src, const Host& dst, bool from_device) {
    events::AlertRecord* r = ring_.Reserve();
    ASSERT_NE(r, nullptr);
    r->kind = events::AlertRecord::Kind::kAlert;
    r->rule = &rule;
    r->src_mac = src.mac;
    r->dst_mac = dst.mac;
    r->from_device = from_device;
    r->ts_ns = now_;
    ring_.Commit();
  };
  push(Workstation(), Monitor(), false);  // toward the monitor: not applied
  controller_->Drain();
  EXPECT_EQ(Enforced(Monitor()), nullptr);
  EXPECT_NE(Eve().find("not_applied"), std::string::npos);
  push(Pump(), Workstation(), true);  // the pump sent it; its class... life-critical: contain
  push(Monitor(), Workstation(), true);
  controller_->Drain();
  ASSERT_NE(Enforced(Pump()), nullptr);
  EXPECT_EQ(Enforced(Pump())->level, config::QuarantineLevel::kContain) << "life-critical: never beyond contain";
  ASSERT_NE(Enforced(Monitor()), nullptr);
  EXPECT_EQ(Enforced(Monitor())->level, config::QuarantineLevel::kIsolate);
  for (const auto& q : controller_->Quarantines()) {
    EXPECT_EQ(q.reason.find('\xff'), std::string::npos) << "reasons are UTF-8";
    EXPECT_EQ(q.actor, "rule:7002");
  }
  EXPECT_NE(Eve().find("latency_us"), std::string::npos);
}

TEST_F(ControllerTest, SnapshotKeepsQuarantinesAcrossARestart) {
  ASSERT_EQ(Q("02:77:00:00:00:0c", "isolate").error, control::QuarantineOutcome::Error::kNone);
  ASSERT_EQ(Q("10.77.0.50", "contain").error, control::QuarantineOutcome::Error::kNone) << "an address not seen yet";
  Start();  // a new process: nothing enforced until restored
  std::string why;
  ASSERT_TRUE(controller_->Restore(&why)) << why;
  const auto set = controller_->QuarantineSetNow();
  EXPECT_NE(set->FindMac(Monitor().mac.data()), nullptr);
  std::array<uint8_t, 16> a{10, 77, 0, 50};
  ASSERT_NE(set->FindIp(a.data()), nullptr);
  EXPECT_EQ(set->FindIp(a.data())->level, config::QuarantineLevel::kContain);
  EXPECT_NE(Eve().find("\"action\":\"restore\""), std::string::npos);
  EXPECT_EQ(controller_->Release("10.77.0.50", "", "t").error, control::QuarantineOutcome::Error::kNone);
}

TEST_F(ControllerTest, DeviceClassCanLimitARuleToAnAlert) {
  cfg_.quarantine.rule_response["lab-analyser"] = config::RuleResponse::kAlert;
  cfg_.quarantine.rule_response["imaging"] = config::RuleResponse::kContain;
  Start();
  ASSERT_EQ(controller_->SetDevice({"02:77:00:00:00:0c", "", "lab-analyser", "", ""}).error,
            control::QuarantineOutcome::Error::kNone);
  ASSERT_EQ(controller_->SetDevice({"02:77:00:00:00:15", "", "imaging", "", ""}).error,
            control::QuarantineOutcome::Error::kNone);
  rules::Rule rule;
  rule.sid = 7003;
  rule.msg = "beacon";
  rule.quarantine = rules::Rule::Quarantine::kIsolate;
  for (const Host& h : {Monitor(), Ehr()}) {  // .12 is the lab analyser now, .21 (MAC ..:15) imaging
    events::AlertRecord* r = ring_.Reserve();
    ASSERT_NE(r, nullptr);
    r->kind = events::AlertRecord::Kind::kAlert;
    r->rule = &rule;
    r->src_mac = h.mac;
    r->dst_mac = Workstation().mac;
    r->from_device = true;
    r->ts_ns = now_;
    ring_.Commit();
  }
  controller_->Drain();
  EXPECT_EQ(Enforced(Monitor()), nullptr) << "its class allows a rule only an alert";
  EXPECT_NE(Eve().find("alert only"), std::string::npos);
  ASSERT_NE(Enforced(Ehr()), nullptr);
  EXPECT_EQ(Enforced(Ehr())->level, config::QuarantineLevel::kContain) << "its class caps rules at contain";
}

TEST_F(ControllerTest, SetDeviceGivesANewDeviceItsClassZoneAndDefaultLevel) {
  const Host dev = Dev(60);
  std::array<uint8_t, 16> a{10, 77, 0, 60};
  const segment::End end{dev.mac.data(), a.data(), false, 0, segment::kNoPair};
  EXPECT_EQ(store_->Current()->segmentation->ZoneOf(end), segment::kNoZone);
  const auto r = controller_->SetDevice({"02:77:00:00:00:3C", "pump-2", "infusion-pump", "life-critical", ""});
  ASSERT_EQ(r.error, control::QuarantineOutcome::Error::kNone) << r.message;
  EXPECT_STREQ(store_->Current()->segmentation->ZoneName(store_->Current()->segmentation->ZoneOf(end)), "pumps")
      << "the workers resolve its zone from its class when the call returns";
  bool listed = false;
  for (const auto& d : controller_->Devices()) listed |= d.mac == "02:77:00:00:00:3c" && d.name == "pump-2";
  EXPECT_TRUE(listed);
  EXPECT_EQ(Q("02:77:00:00:00:3c").entry.level, "contain") << "life-critical now";
  using E = control::QuarantineOutcome::Error;
  EXPECT_EQ(controller_->SetDevice({"02:77:00:00:00:3c", "", "pump", "vital", ""}).error, E::kInvalid);
  EXPECT_EQ(controller_->SetDevice({"02:77:00:00:00:3c", "", "pump", "", "nowhere"}).error, E::kInvalid);
  EXPECT_EQ(controller_->SetDevice({"ff:ff:ff:ff:ff:ff", "", "pump", "", ""}).error, E::kInvalid);
  EXPECT_EQ(controller_->SetDevice({"02:77:00:00:00:3c", "", "Infusion Pump", "", ""}).error, E::kInvalid);
}

TEST(QuarantineSet, FindsEveryDeviceAddedAndNoOther) {
  segment::QuarantineSet set;
  EXPECT_TRUE(set.empty());
  const uint8_t none[6] = {2, 0x77, 0, 0, 0, 1};
  EXPECT_EQ(set.FindMac(none), nullptr);
  for (uint32_t i = 0; i < 1000; ++i) {  // grows several times on the way
    set.AddMac({2, 0x77, 0, 0, uint8_t(i >> 8), uint8_t(i)}, {config::QuarantineLevel::kIsolate, i});
  }
  set.AddMac({2, 0x77, 0, 0, 0, 7}, {config::QuarantineLevel::kContain, 7});  // again: updated, not added
  EXPECT_EQ(set.size(), 1000u);
  for (uint32_t i = 0; i < 1000; ++i) {
    const uint8_t m[6] = {2, 0x77, 0, 0, uint8_t(i >> 8), uint8_t(i)};
    const auto* q = set.FindMac(m);
    ASSERT_NE(q, nullptr) << i;
    EXPECT_EQ(q->since_ns, i);
    EXPECT_EQ(q->level, i == 7 ? config::QuarantineLevel::kContain : config::QuarantineLevel::kIsolate);
    const uint8_t other[6] = {2, 0x78, 0, 0, uint8_t(i >> 8), uint8_t(i)};
    EXPECT_EQ(set.FindMac(other), nullptr) << i;
  }
  const uint8_t zero[6] = {};
  EXPECT_EQ(set.FindMac(zero), nullptr) << "the all-zero MAC is not the empty-slot marker";
}

// ------------------------------------------------------------------ stack hygiene

// `frame` (an IPv4 TCP segment without options) with `opts` (a multiple of 4 bytes)
// as its TCP option area.
Frame WithTcpOptions(Frame f, const Frame& opts) {
  const size_t tcp = 14 + 20;
  f.insert(f.begin() + tcp + 20, opts.begin(), opts.end());
  f[tcp + 12] = uint8_t((5 + opts.size() / 4) << 4);
  const uint16_t total = uint16_t(f.size() - 14);
  f[16] = uint8_t(total >> 8);
  f[17] = uint8_t(total);
  return f;
}

// One IPv4 fragment of a UDP datagram (id 7): `data` at byte `offset` of the IP payload.
Frame Fragment(const Host& src, const Host& dst, uint16_t offset, bool more, size_t len) {
  Frame f = testsupport::Ipv4Frame(src, dst, parse::kProtoUdp, Frame(len, 0xab));
  f[18] = 0;
  f[19] = 7;  // id
  const uint16_t flags = uint16_t((more ? 0x2000 : 0) | (offset / 8));
  f[20] = uint8_t(flags >> 8);
  f[21] = uint8_t(flags);
  return f;
}

TEST_F(Segmentation, HygieneDropsBadTcpOptionsAndOverlappingFragmentsTowardTheDevices) {
  Configure(Ward("  - { from: office, to: pumps, proto: tcp, ports: [81], action: allow }\n"
                 "  - { to: pumps, proto: udp, action: allow }\n"
                 "  - { from: pumps, proto: udp, action: allow }\n"));
  gen_->hygiene = generation::kHygieneTcpOptions | generation::kHygieneFragments;
  const Frame ws15 = WithTcpOptions(testsupport::TcpSegment(Workstation(50000), Pump(80), 1, 0, testsupport::kSyn, ""),
                                    {3, 3, 15, 1});  // window scale shift 15 (> 14)
  EXPECT_FALSE(FromNetwork(ws15)) << "toward the devices";
  EXPECT_EQ(Drops(DropReason::kHygieneTcpOptions), 1u);
  const Frame ws7 = WithTcpOptions(testsupport::TcpSegment(Workstation(50001), Pump(80), 1, 0, testsupport::kSyn, ""),
                                   {3, 3, 7, 1});
  EXPECT_TRUE(FromNetwork(ws7)) << "a sane window scale crosses";
  auto urg = testsupport::TcpSegment(Workstation(50002), Pump(81), 1, 0, testsupport::kSyn | parse::kTcpUrg, "");
  EXPECT_FALSE(FromNetwork(urg)) << "URG with urgent pointer 0 (URGENT/11)";
  EXPECT_EQ(Drops(DropReason::kHygieneTcpOptions), 2u);
  const Frame from_dev = WithTcpOptions(testsupport::TcpSegment(Pump(40000), Ehr(2575), 1, 0, testsupport::kSyn, ""),
                                        {3, 3, 15, 1});
  EXPECT_TRUE(FromDevice(from_dev)) << "hygiene protects the devices; their own frames are not checked";

  EXPECT_TRUE(FromNetwork(Fragment(Dns(53), Pump(5353), 0, true, 24)));
  EXPECT_FALSE(FromNetwork(Fragment(Dns(53), Pump(5353), 16, false, 16))) << "overlaps bytes 16..23";
  EXPECT_EQ(Drops(DropReason::kHygieneFragmentOverlap), 1u);
  EXPECT_TRUE(FromNetwork(Fragment(Dns(53), Pump(5353), 24, false, 16))) << "the honest last fragment";

  gen_->hygiene = 0;  // each check can be switched off
  EXPECT_TRUE(FromNetwork(ws15));
}

}  // namespace
}  // namespace wardgate

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string prefix = "wg-seg-" + std::to_string(getpid());
  const char* eal_argv[] = {"segmentation_pipeline_test", "-l", "0", "--no-huge", "-m", "256", "--no-shconf",
                            "--no-pci", "--file-prefix", prefix.c_str(), "--no-telemetry", "--log-level",
                            "lib.eal:error"};
  if (rte_eal_init(int(std::size(eal_argv)), const_cast<char**>(eal_argv)) < 0) return 1;
  wardgate::g_pool = rte_pktmbuf_pool_create("seg_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (!wardgate::g_pool) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_mempool_free(wardgate::g_pool);
  rte_eal_cleanup();
  return rc;
}
