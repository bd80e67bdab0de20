#include "dataplane/worker/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <array>
#include <optional>
#include <ctime>
#include <cstring>
#include <span>

#include "dataplane/hygiene/tcp_options.h"
#include "dataplane/inspect/reject.h"
#include "dataplane/parse/packet.h"

namespace wardgate::worker {

namespace {

// A flow's flowbits for the matcher, kept in the worker's flow table.
class TableFlowBits final : public rules::FlowBits {
 public:
  TableFlowBits(flow::FlowTable& table, flow::Flow& f) : table_(table), flow_(f) {}
  bool IsSet(uint32_t bit) const override { return table_.BitIsSet(flow_, bit); }
  void Set(uint32_t bit) override { table_.SetBit(flow_, bit); }
  void Unset(uint32_t bit) override { table_.ClearBit(flow_, bit); }

 private:
  flow::FlowTable& table_;
  flow::Flow& flow_;
};

// Bytes of the frame's L4 payload held in the first segment (chained frames: the rest
// sits in later segments).
uint32_t PayloadInFrame(const parse::PacketView& v, uint32_t frame_len) {
  return v.payload_offset < frame_len ? std::min<uint32_t>(v.payload_len, frame_len - v.payload_offset) : 0;
}

// Address resolution and link management (ARP; on IPv6, MLD and router/neighbour
// discovery as RFC 4861 sends them: hop limit 255, never routed): never subject to
// zones or quarantine, or nothing on the link works. Such frames get no flow either,
// so they cannot open one that later traffic would ride on undecided.
bool LinkControl(const parse::PacketView& v) {
  if (v.l3 == parse::L3::kArp) return true;
  if (v.l3 != parse::L3::kIpv6 || v.ip_proto != parse::kProtoIcmpv6) return false;
  const uint8_t t = v.icmp_type;
  if (t == 130 || t == 131 || t == 132 || t == 143) return v.dst_addr[0] == 0xff || v.dst_addr[0] == 0xfe;  // MLD
  return t >= 133 && t <= 136 && v.ttl == 255;
}

// The two ends of a frame for zone resolution: the end on the device side of the
// pair is the source of a frame received on a device-facing port, else the destination.
void FrameEnds(const generation::Generation& gen, uint16_t rx_port, const parse::PacketView& v, const uint8_t* frame,
               segment::End& src, segment::End& dst) {
  const bool from_device = gen.toward_devices[rx_port];
  const int16_t pair = gen.pair_of_port[rx_port];
  const uint16_t vlan = v.vlan_count ? v.vlan_ids[v.vlan_count - 1] : 0;
  const bool v6 = v.l3 == parse::L3::kIpv6;
  // The VLAN and the pair describe the device side only: the far end (the EHR, a
  // router) is placed by its address.
  src = {frame + 6, v.src_addr.data(), v6, uint16_t(from_device ? vlan : 0), from_device ? pair : segment::kNoPair};
  dst = {frame, v.dst_addr.data(), v6, uint16_t(from_device ? 0 : vlan), from_device ? segment::kNoPair : pair};
}

// The zone policy for the frame's flow: decided on its first packet (and, for rules
// naming an app, confirmed on the client's first bytes), then cached in the flow's
// flags so an established flow costs one flag test. Frames without a flow (non-first
// fragments, TCP without a handshake) are decided on their own. Returns whether the
// frame is denied.
bool PolicyStage(const generation::Generation& gen, Stages& stages, WorkerCounters& counters, uint16_t rx_port,
                 const parse::PacketView& view, const uint8_t* frame, uint32_t frame_len, flow::Flow* f,
                 const flow::FlowResult& fr, const inspect::FlowContext& fc, uint64_t ts) {
  const segment::Segmentation& seg = *gen.segmentation;
  if (f && fr.status == flow::FlowStatus::kFound && !(f->flags & flow::kPolicyAppCheck)) {
    return f->flags & flow::kPolicyDeny;
  }
  segment::End src, dst;
  FrameEnds(gen, rx_port, view, frame, src, dst);
  const bool to_server = f ? fr.to_server : true;
  const segment::End& client = to_server ? src : dst;
  const segment::End& server = to_server ? dst : src;
  const uint16_t sport = to_server ? view.src_port : view.dst_port;
  const uint16_t dport = to_server ? view.dst_port : view.src_port;
  std::optional<segment::App> app;
  if (f && fr.status == flow::FlowStatus::kFound) {
    // Waiting for the app: decide again once the flow carries data.
    const uint32_t len = PayloadInFrame(view, frame_len);
    if (len == 0) return f->flags & flow::kPolicyDeny;
    app = to_server ? segment::DetectApp(frame + view.payload_offset, len) : segment::App::kUnknown;
  }
  const segment::Decision d = seg.Decide(client, server, view.ip_proto, sport, dport, app);
  const bool deny = d.enforced_deny();
  if (!f) {
    if (deny) counters.policy_stateless_denied.Add(1);
    return deny;
  }
  const bool confirming = fr.status == flow::FlowStatus::kFound;
  f->flags &= uint8_t(~(flow::kPolicyDeny | flow::kPolicyAllowed | flow::kPolicyAppCheck));
  if (deny) f->flags |= flow::kPolicyDeny;
  if (d.explicit_allow) f->flags |= flow::kPolicyAllowed;
  if (d.app_check) f->flags |= flow::kPolicyAppCheck;
  if (confirming) counters.policy_app_checked.Add(1);
  if (confirming && !d.reported()) return false;  // confirmed as allowed: nothing to say
  if (d.action == policy::Action::kDeny) {
    (d.monitor ? counters.policy_flows_monitored : counters.policy_flows_denied).Add(1);
  } else if (d.action == policy::Action::kAlert) {
    counters.policy_flows_alerted.Add(1);
  } else {
    counters.policy_flows_allowed.Add(1);
  }
  if (d.reported() && stages.inspector) stages.inspector->Policy(seg, d, view, frame, fc, ts);
  return deny;
}

// The quarantines a frame touches: by source MAC, destination MAC, source address,
// destination address (null where none). Looked up once per frame.
struct QuarantineMatches {
  const segment::Quarantined* match[4] = {};
  bool any() const { return match[0] || match[1] || match[2] || match[3]; }
};

QuarantineMatches FindQuarantines(const generation::Generation& gen, const parse::PacketView& view,
                                  const uint8_t* frame) {
  QuarantineMatches m;
  if (!gen.quarantines || gen.quarantines->empty()) return m;
  const segment::QuarantineSet& qs = *gen.quarantines;
  const bool ip = view.l3 == parse::L3::kIpv4 || view.l3 == parse::L3::kIpv6;
  m.match[0] = qs.FindMac(frame + 6);
  m.match[1] = qs.FindMac(frame);
  if (ip) {
    m.match[2] = qs.FindIp(view.src_addr.data());
    m.match[3] = qs.FindIp(view.dst_addr.data());
  }
  return m;
}

// The quarantine gate: is this frame of a quarantined device allowed by its level?
// isolate: only address resolution and the remediation list (DHCP, DNS, management);
// contain: address resolution, flows first seen before the quarantine, and flows to
// peers an allow rule of the policy names. Returns whether the frame is dropped.
//
// Every quarantine the frame touches is checked (its source and destination, by MAC and
// by address) and any one that forbids it drops it: the strictest level wins.
// before_flow: called before the flow stage, only isolation can be judged (so an
// isolated device cannot fill the flow table with flows it will never use).
bool QuarantineGate(const generation::Generation& gen, const parse::PacketView& view, const QuarantineMatches& m,
                    const flow::Flow* f, bool before_flow = false) {
  if (!m.any()) return false;
  // Address resolution keeps the device reachable for what it may still do.
  if (LinkControl(view)) return false;
  if (view.l3 != parse::L3::kIpv4 && view.l3 != parse::L3::kIpv6) return true;
  for (int i = 0; i < 4; ++i) {
    const segment::Quarantined* q = m.match[i];
    if (!q) continue;
    const bool device_sent = i == 0 || i == 2;
    if (q->level == config::QuarantineLevel::kIsolate) {
      const uint8_t* peer = device_sent ? view.dst_addr.data() : view.src_addr.data();
      if (!(gen.segmentation && gen.segmentation->Remediation(view, peer, device_sent))) return true;
    } else if (!before_flow && !(f && (f->first_seen_ns < q->since_ns || (f->flags & flow::kPolicyAllowed)))) {
      return true;
    }
  }
  return false;
}

// Flow tracking, segmentation, TCP stream reassembly and signature inspection of one
// parsed frame. A drop names its reason in `why` (rule, stream conflict, policy,
// quarantine).
inspect::Verdict InspectFrame(const generation::Generation& gen, Stages& stages, WorkerCounters& counters,
                              BurstVerdict& bv, rte_mbuf* m, uint16_t i, DropReason& why) {
  const parse::PacketView& view = bv.views[i];
  const auto* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t frame_len = rte_pktmbuf_data_len(m);
  const uint64_t ts = stages.packet_ts_ns ? stages.packet_ts_ns[i] : stages.burst_ts_ns;
  const uint64_t pcap_cnt = stages.pcap_cnt_base ? stages.pcap_cnt_base + i : 0;
  const bool blocking = stages.inspector->blocking();
  why = DropReason::kRule;
  bool stream_conflict = false;

  inspect::FlowContext fc;
  fc.from_device = gen.toward_devices[bv.in_port];
  const QuarantineMatches quarantined = FindQuarantines(gen, view, frame);
  if (QuarantineGate(gen, view, quarantined, nullptr, /*before_flow=*/true)) {
    why = DropReason::kQuarantine;
    return inspect::Verdict::kDrop;
  }
  const bool link_control = LinkControl(view);
  flow::Flow* f = nullptr;
  flow::FlowResult fr;
  flow::Dir dir = flow::kToServer;
  if (stages.flows && !link_control) {
    fr = bv.keyed[i] ? stages.flows->LookupOrCreate(view, bv.keys[i], bv.src_is_first[i], bv.hashes[i], ts)
                     : stages.flows->LookupOrCreate(view, ts);
    f = fr.flow;
    if (f) {
      dir = fr.dir();
      fc.flow_id = f->flow_id;
      fc.to_server = fr.to_server;
      fc.established = f->Established();
      fc.stateless = false;
    }
  }
  // Devices: learned from every frame; a new flow adds a peer, a device answering
  // adds a service, the client's first bytes the application.
  if (stages.devices) {
    const uint16_t device_port = fc.from_device ? bv.in_port : bv.out_port;
    const uint32_t slot = stages.devices->Observe(view, frame, frame_len, fc.from_device, device_port, ts);
    if (slot != device::kNoDevice && f) {
      const bool device_is_client = fc.from_device == fr.to_server;
      if (fr.status == flow::FlowStatus::kCreated) {
        stages.devices->NotePeer(slot, fc.from_device ? view.dst_addr : view.src_addr,
                                 view.l3 == parse::L3::kIpv6);
      }
      if (!device_is_client && fc.from_device &&
          ((view.ip_proto == parse::kProtoTcp && (view.tcp_flags & (parse::kTcpSyn | parse::kTcpAck)) ==
                                                      (parse::kTcpSyn | parse::kTcpAck)) ||
           (view.ip_proto == parse::kProtoUdp && f->packets[flow::kToClient] == 1))) {
        stages.devices->NoteService(slot, view.ip_proto, view.src_port);
      }
      if (f->app_proto == 0 && fr.to_server && PayloadInFrame(view, frame_len) > 0) {
        const auto app = segment::DetectApp(frame + view.payload_offset, PayloadInFrame(view, frame_len));
        f->app_proto = app == segment::App::kUnknown ? 0xff : uint8_t(app);
        if (app == segment::App::kHl7) stages.devices->NoteApp(slot, device::kAppHl7);
        if (app == segment::App::kDicom) stages.devices->NoteApp(slot, device::kAppDicom);
      }
    }
  }
  // Segmentation before inspection: a denied or quarantined frame is not inspected.
  if (gen.segmentation && gen.segmentation->has_policy() && !link_control && view.l3 != parse::L3::kOther &&
      PolicyStage(gen, stages, counters, bv.in_port, view, frame, frame_len, f, fr, fc, ts)) {
    why = DropReason::kPolicy;
    return inspect::Verdict::kDrop;
  }
  if (QuarantineGate(gen, view, quarantined, f)) {
    why = DropReason::kQuarantine;
    return inspect::Verdict::kDrop;
  }
  if (f) {
    // A drop verdict holds for every later packet of the flow; pass ends inspection.
    if (f->flags & flow::kDropFlow) return inspect::Verdict::kDrop;
    if (f->flags & (flow::kPassFlow | flow::kNoInspect)) return inspect::Verdict::kForward;
  }
  if (!gen.rules) return inspect::Verdict::kForward;
  std::optional<TableFlowBits> bits;
  if (f) fc.bits = &bits.emplace(*stages.flows, *f);

  const bool payload_ok = view.payload_offset + view.payload_len <= frame_len;
  const std::span<const uint8_t> payload(frame + view.payload_offset, payload_ok ? view.payload_len : 0);
  bool covered = false;
  inspect::Inspector& insp = *stages.inspector;
  insp.Begin();
  if (f && view.ip_proto == parse::kProtoTcp && stages.streams) {
    auto& st = f->stream[dir];
    const auto sr = st.Feed(*stages.streams, view.tcp_seq, payload, view.tcp_flags, f->ReceiverWindowOf(dir));
    switch (sr.cls) {
      case stream::SegmentClass::kDelivered: {
        rules::Buffer sb;
        sb.data = sr.data.data();
        sb.len = sr.data.size();
        sb.stream_offset = sr.data_offset;
        sb.new_from = sr.new_from;
        sb.is_stream = true;
        insp.Scan(gen, view, sb, fc, events::PacketSource::kStream);
        covered = true;
        if (sr.notes & stream::kNoteDepthReached) {
          // The configured depth ends inspection of the whole flow, not just of this
          // direction's stream; the flow keeps flowing unless on_limit says drop.
          f->flags |= stages.drop_on_limit ? flow::kDropFlow : flow::kNoInspect;
          insp.Anomaly("stream.depth_reached", view, fc, ts, pcap_cnt);
        }
        break;
      }
      case stream::SegmentClass::kRetransmission:
      case stream::SegmentClass::kHeld:
        covered = true;  // inspected already, or when the gap before it fills
        break;
      case stream::SegmentClass::kConflict:
        // Inline normalisation: the receiver must never get bytes that differ from
        // what was inspected (first data wins), so the packet goes no further; packet
        // rules still see it below.
        covered = true;
        if (blocking) stream_conflict = true;
        break;
      case stream::SegmentClass::kResourceLimit:
        // Default for clinical traffic: keep forwarding, stop inspecting the flow,
        // count it and say so.
        f->stream[flow::kToServer].Stop(*stages.streams);
        f->stream[flow::kToClient].Stop(*stages.streams);
        f->flags |= stages.drop_on_limit ? flow::kDropFlow : flow::kNoInspect;
        insp.Anomaly("stream.resource_limit", view, fc, ts, pcap_cnt);
        if (stages.drop_on_limit) return inspect::Verdict::kDrop;
        break;
      case stream::SegmentClass::kGap:
        insp.Anomaly("stream.gap", view, fc, ts, pcap_cnt);
        if (stages.drop_on_limit) {
          f->flags |= flow::kDropFlow;
          return inspect::Verdict::kDrop;
        }
        break;
      default:
        break;
    }
  }
  // The packet's own payload: tcp-pkt rules (and header-only rules) always; tcp/ip
  // payload rules only when the stream did not inspect these bytes.
  rules::Buffer pb;
  pb.data = payload.data();
  pb.len = payload.size();
  pb.stream_covered = covered;
  insp.Scan(gen, view, pb, fc, events::PacketSource::kWire);
  const inspect::Verdict verdict = insp.Finish(gen, view, frame, frame_len, fc, ts, pcap_cnt);
  if (insp.quarantine_hit() && blocking) {
    // The flow that earned its device a quarantine does not go on (under contain it
    // would count as established before): it ends here, before the control thread
    // has even published the quarantine.
    if (f) f->flags |= flow::kDropFlow;
    why = DropReason::kQuarantine;
    return inspect::Verdict::kDrop;
  }
  if (stream_conflict) {
    // The rules' verdict still marks the flow; the packet is dropped either way.
    if (verdict == inspect::Verdict::kDrop || verdict == inspect::Verdict::kReject) {
      f->flags |= flow::kDropFlow;
      return verdict;  // counted as a rule drop
    }
    why = DropReason::kStreamConflict;
    return inspect::Verdict::kDrop;
  }
  if (f && blocking && (verdict == inspect::Verdict::kDrop || verdict == inspect::Verdict::kReject)) {
    f->flags |= flow::kDropFlow;
  } else if (f && verdict == inspect::Verdict::kPass) {
    f->flags |= flow::kPassFlow;
  }
  return verdict;
}

// What a frame toward the device segment carries that device stacks choke on, or
// kCount. Each check is switchable (hygiene: kHygiene* bits).
DropReason HygieneViolation(uint8_t checks, parse::ParseError err, const parse::PacketView& v,
                            hygiene::FragmentGuard* fragments, uint64_t now_ns) {
  if ((checks & generation::kHygieneTcpOptions) && v.ip_proto == parse::kProtoTcp && hygiene::BadTcpOptions(err, v)) {
    return DropReason::kHygieneTcpOptions;
  }
  if (err != parse::ParseError::kNone && v.l3 != parse::L3::kIpv4 && v.l3 != parse::L3::kIpv6) return DropReason::kCount;
  if ((checks & generation::kHygieneIpOptions) && v.l3 == parse::L3::kIpv4 && v.ipv4_has_options) {
    return DropReason::kHygieneIpOptions;
  }
  if ((checks & generation::kHygieneTunnels) && (v.ip_proto == 4 || v.ip_proto == 41 || v.ip_proto == 47)) {
    return DropReason::kHygieneTunnel;
  }
  if ((checks & generation::kHygieneIcmpProbes) && v.ip_proto == parse::kProtoIcmp &&
      (v.icmp_type == 165 || v.icmp_type == 166)) {
    return DropReason::kHygieneIcmpProbe;
  }
  if ((checks & generation::kHygieneFragments) && v.is_fragment && fragments &&
      fragments->Check(v, now_ns) == hygiene::FragmentGuard::Result::kOverlap) {
    return DropReason::kHygieneFragmentOverlap;
  }
  return DropReason::kCount;
}

// Segmentation of a frame that did not parse completely: no flow, so the quarantine
// gate and the policy decide on what did parse (a malformed frame must not be a way
// past default-deny or a quarantine).
DropReason SegmentUnparsed(const generation::Generation& gen, Stages& stages, WorkerCounters& counters,
                           uint16_t rx_port, parse::ParseError err, const parse::PacketView& view, rte_mbuf* m) {
  const auto* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  if (rte_pktmbuf_data_len(m) < 14) return DropReason::kCount;
  if (QuarantineGate(gen, view, FindQuarantines(gen, view, frame), nullptr)) {
    return DropReason::kQuarantine;
  }
  if (!gen.segmentation->has_policy()) return DropReason::kCount;
  const bool ip = view.l3 == parse::L3::kIpv4 || view.l3 == parse::L3::kIpv6;
  // What cannot be classified is not forwarded past a policy: IP whose transport header
  // was not reached (too many extension headers, broken options), a first fragment too
  // short for its ports (RFC 1858), a frame with more VLAN tags than we read.
  const bool l4_cut = view.ip_proto == parse::kProtoTcp || view.ip_proto == parse::kProtoUdp
                          ? err == parse::ParseError::kTcpTruncated || err == parse::ParseError::kUdpTruncated
                          : false;
  if ((ip && (view.l4_offset == 0 || l4_cut)) || err == parse::ParseError::kVlanTooManyTags) {
    return DropReason::kPolicy;
  }
  if (ip) {
    inspect::FlowContext fc;
    fc.from_device = gen.toward_devices[rx_port];
    if (PolicyStage(gen, stages, counters, rx_port, view, frame, rte_pktmbuf_data_len(m), nullptr, flow::FlowResult{}, fc,
                    stages.burst_ts_ns)) {
      return DropReason::kPolicy;
    }
  }
  return DropReason::kCount;
}

// A reject frame (RST or ICMP unreachable) in a fresh mbuf from the frame's pool, or
// nullptr (not applicable, or no mbuf: counted by the caller as a plain drop).
rte_mbuf* RejectFrame(rte_mbuf* m, const parse::PacketView& view, bool to_sender) {
  uint8_t buf[inspect::kMaxRejectFrame];
  const std::span<const uint8_t> frame(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
  const size_t len = view.ip_proto == parse::kProtoTcp
                         ? inspect::BuildTcpReset(frame, view, to_sender, buf)
                         : (to_sender ? inspect::BuildPortUnreachable(frame, view, buf) : 0);
  if (len == 0) return nullptr;
  rte_mbuf* r = rte_pktmbuf_alloc(m->pool);
  if (!r) return nullptr;
  char* p = rte_pktmbuf_append(r, static_cast<uint16_t>(len));
  if (!p) {
    rte_pktmbuf_free(r);
    return nullptr;
  }
  std::memcpy(p, buf, len);
  return r;
}

}  // namespace

void ProcessBurst(const generation::Generation& gen, WorkerCounters& counters, uint16_t rx_port,
                  rte_mbuf* const* pkts, uint16_t n, BurstVerdict& verdict, Stages* stages) {
  verdict.in_port = rx_port;
  verdict.out_port = gen.peer[rx_port];
  verdict.n_forward = 0;
  verdict.n_drop = 0;
  verdict.n_reply = 0;
  uint64_t rx_bytes = 0;
  // With a flow table every packet goes through the flow stage (drop-flow verdicts
  // outlive a reload); without one, only when rules are loaded.
  const bool inspecting = stages && stages->inspector && (gen.rules || stages->flows);
  const bool has_peer = verdict.out_port != generation::kNoPeer;

  // l3fwd habit: prefetch the first frames' headers, then one ahead while working.
  constexpr uint16_t kPrefetchAhead = 3;
  for (uint16_t i = 0; i < n && i < kPrefetchAhead; ++i) {
    rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  }
  inspect::Verdict v = inspect::Verdict::kForward;
  // Pass 1: parse every frame (headers prefetched a few frames ahead).
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchAhead], void*));
    rte_mbuf* m = pkts[i];
    rx_bytes += m->pkt_len;
    // Headers sit in the first segment; chained jumbo frames are parsed from it.
    // ParsePacket resets the view itself, so the scratch is not cleared here.
    const auto err = parse::ParsePacket(
        std::span<const uint8_t>(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)),
        verdict.views[i]);
    verdict.errors[i] = err;
    if (err != parse::ParseError::kNone) [[unlikely]] {
      counters.malformed[static_cast<size_t>(err)].Add(1);
    }
  }
  // Passes 2 and 3: flow keys and hashes, bucket prefetch, then flow prefetch, so the
  // lookups below find their lines in cache instead of paying two misses each.
  if (inspecting && stages->flows) {
    flow::FlowTable& table = *stages->flows;
    for (uint16_t i = 0; i < n; ++i) {
      verdict.keyed[i] = verdict.errors[i] == parse::ParseError::kNone &&
                         flow::MakeFlowKey(verdict.views[i], verdict.keys[i], verdict.src_is_first[i]) ==
                             flow::KeyStatus::kOk;
      if (verdict.keyed[i]) {
        verdict.hashes[i] = table.Hash(verdict.keys[i]);
        table.Prefetch(verdict.hashes[i]);
      }
    }
    for (uint16_t i = 0; i < n; ++i) {
      if (verdict.keyed[i]) table.PrefetchFlow(verdict.hashes[i]);
    }
  } else {
    for (uint16_t i = 0; i < n; ++i) verdict.keyed[i] = false;
  }
  // Pass 4: flow, stream, inspection and the verdict, frame by frame in order.
  const bool hygiene = gen.hygiene && has_peer && gen.toward_devices[verdict.out_port];
  const bool segmenting = inspecting && gen.segmentation && (gen.segmentation->has_policy() || gen.quarantines);
  std::array<uint64_t, kDropReasonCount> dropped{};
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    const auto err = verdict.errors[i];
    DropReason why = DropReason::kCount;
    if (m->pkt_len > gen.max_frame_len) [[unlikely]] {
      why = DropReason::kFrameTooLong;
    } else if (hygiene && (why = HygieneViolation(gen.hygiene, err, verdict.views[i], stages ? stages->fragments : nullptr,
                                                  stages ? stages->burst_ts_ns : 0)) != DropReason::kCount)
        [[unlikely]] {
    } else if (err != parse::ParseError::kNone) [[unlikely]] {
      // Malformed frames are forwarded (counted), but never past the segmentation.
      if (segmenting) why = SegmentUnparsed(gen, *stages, counters, rx_port, err, verdict.views[i], m);
    } else if (inspecting &&
               (v = InspectFrame(gen, *stages, counters, verdict, m, i, why)) != inspect::Verdict::kForward &&
               v != inspect::Verdict::kPass) {
      if (v == inspect::Verdict::kReject) {
        // Reset both ends: one frame back to the sender, one on to the receiver.
        if (rte_mbuf* r = RejectFrame(m, verdict.views[i], true)) verdict.reply[verdict.n_reply++] = r;
        if (has_peer) {
          if (rte_mbuf* r = RejectFrame(m, verdict.views[i], false)) verdict.forward[verdict.n_forward++] = r;
        }
      }
    } else {
      why = DropReason::kCount;
    }
    if (why != DropReason::kCount) [[unlikely]] {
      ++dropped[static_cast<size_t>(why)];
      verdict.drop[verdict.n_drop++] = m;
    } else if (has_peer) [[likely]] {
      verdict.forward[verdict.n_forward++] = m;
    } else {
      ++dropped[static_cast<size_t>(DropReason::kNoPeer)];
      verdict.drop[verdict.n_drop++] = m;
    }
  }
  auto& port = counters.ports[rx_port];
  port.rx_packets.Add(n);
  port.rx_bytes.Add(rx_bytes);
  if (verdict.n_drop) [[unlikely]] {
    for (size_t r = 0; r < kDropReasonCount; ++r) {
      if (dropped[r]) counters.drops[r].Add(dropped[r]);
    }
  }
}

void TransmitBurst(WorkerCounters& counters, uint16_t tx_queue, BurstVerdict& verdict) {
  if (verdict.n_forward > 0) {
    const uint16_t sent = rte_eth_tx_burst(verdict.out_port, tx_queue, verdict.forward, verdict.n_forward);
    uint64_t tx_bytes = 0;
    for (uint16_t i = 0; i < sent; ++i) tx_bytes += verdict.forward[i]->pkt_len;
    auto& port = counters.ports[verdict.out_port];
    port.tx_packets.Add(sent);
    port.tx_bytes.Add(tx_bytes);
    if (sent < verdict.n_forward) [[unlikely]] {
      const uint16_t refused = verdict.n_forward - sent;
      port.tx_full.Add(refused);
      counters.drops[static_cast<size_t>(DropReason::kTxFull)].Add(refused);
      rte_pktmbuf_free_bulk(verdict.forward + sent, refused);
    }
  }
  if (verdict.n_reply > 0) {
    const uint16_t sent = rte_eth_tx_burst(verdict.in_port, tx_queue, verdict.reply, verdict.n_reply);
    auto& port = counters.ports[verdict.in_port];
    port.tx_packets.Add(sent);
    for (uint16_t i = 0; i < sent; ++i) port.tx_bytes.Add(verdict.reply[i]->pkt_len);
    if (sent < verdict.n_reply) {
      port.tx_full.Add(verdict.n_reply - sent);
      counters.drops[static_cast<size_t>(DropReason::kTxFull)].Add(verdict.n_reply - sent);
      rte_pktmbuf_free_bulk(verdict.reply + sent, verdict.n_reply - sent);
    }
  }
  if (verdict.n_drop > 0) rte_pktmbuf_free_bulk(verdict.drop, verdict.n_drop);
  verdict.n_forward = verdict.n_drop = verdict.n_reply = 0;
}

void FlowHousekeeping(Stages& stages, WorkerCounters& c, uint64_t now_ns, uint32_t budget) {
  if (stages.devices) {
    c.devices_known.Set(stages.devices->size());
    c.devices_table_full.Set(stages.devices->counters().table_full);
  }
  if (stages.fragments) c.fragments_untracked.Set(stages.fragments->counters().untracked);
  if (!stages.flows) return;
  stages.flows->Expire(now_ns, budget);
  const auto& fc = stages.flows->counters();
  c.flows_active.Set(stages.flows->size());
  c.flows_created.Set(fc.created);
  c.flow_evictions.Set(fc.evictions);
  c.flows_expired.Set(fc.expired);
  c.midstream_refused.Set(fc.midstream_refused);
  c.flowbits_exhausted.Set(fc.flowbits_exhausted);
  if (!stages.streams) return;
  const auto& sc = stages.streams->counters();
  c.stream_bytes.Set(sc.bytes_delivered);
  c.stream_retransmissions.Set(sc.retransmissions);
  c.stream_overlaps.Set(sc.overlaps);
  c.stream_conflicts.Set(sc.overlap_conflicts);
  c.stream_gaps.Set(sc.gaps);
  c.stream_out_of_order.Set(sc.out_of_order_held);
  c.stream_pool_exhausted.Set(sc.segment_pool_exhausted + sc.window_pool_exhausted);
  c.stream_depth_reached.Set(sc.depth_reached);
  c.stream_window_overruns.Set(sc.window_overruns);
}

void DiscardBurst(BurstVerdict& verdict) {
  if (verdict.n_forward > 0) rte_pktmbuf_free_bulk(verdict.forward, verdict.n_forward);
  if (verdict.n_drop > 0) rte_pktmbuf_free_bulk(verdict.drop, verdict.n_drop);
  if (verdict.n_reply > 0) rte_pktmbuf_free_bulk(verdict.reply, verdict.n_reply);
  verdict.n_forward = verdict.n_drop = verdict.n_reply = 0;
}

namespace {

// One pass over the worker's queues; returns the number of frames received.
uint64_t WallClockNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);  // vDSO: no system call
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint32_t PollOnce(WorkerContext& ctx, const generation::Generation& gen, BurstVerdict& verdict) {
  rte_mbuf* pkts[kMaxBurst];
  uint32_t received = 0;
  Stages stages;
  stages.inspector = ctx.inspector;
  stages.flows = ctx.flows;
  stages.streams = ctx.streams;
  stages.devices = ctx.devices;
  stages.fragments = ctx.fragments;
  stages.drop_on_limit = ctx.drop_on_limit;
  for (const RxQueue& q : ctx.queues) {
    const uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, ctx.burst);
    if (n == 0) continue;
    received += n;
    if ((gen.rules || stages.flows) && stages.burst_ts_ns == 0) stages.burst_ts_ns = WallClockNs();
    ProcessBurst(gen, *ctx.counters, q.port, pkts, n, verdict, &stages);
    TransmitBurst(*ctx.counters, q.queue, verdict);
  }
  if (stages.flows && (received > 0 || ++ctx.idle_passes_since_expire >= 1024)) {
    ctx.idle_passes_since_expire = 0;
    FlowHousekeeping(stages, *ctx.counters, stages.burst_ts_ns ? stages.burst_ts_ns : WallClockNs());
  }
  return received;
}

}  // namespace

int RunWorker(void* arg) {
  auto& ctx = *static_cast<WorkerContext*>(arg);
  ctx.burst = std::clamp<uint16_t>(ctx.burst, 1, kMaxBurst);
  BurstVerdict verdict;
  ctx.store->ReaderOnline(ctx.id);

  uint32_t idle_polls = 0;
  uint32_t sleep_us = ctx.idle.min_sleep_us;
  while (!ctx.stop->load(std::memory_order_relaxed)) {
    // Read the generation once per pass and hold no reference past Quiescent().
    const uint32_t received = PollOnce(ctx, *ctx.store->Current(), verdict);
    ctx.store->Quiescent(ctx.id);
    if (received > 0) [[likely]] {
      ctx.counters->busy_polls.Add(1);
      idle_polls = 0;
      sleep_us = ctx.idle.min_sleep_us;
      continue;
    }
    ctx.counters->idle_polls.Add(1);
    // Adaptive back-off: spin a while (latency), then sleep in doubling steps up to
    // max_sleep_us so an idle appliance, or a 2-core test machine, keeps its CPU.
    if (++idle_polls <= ctx.idle.spin_polls) {
      rte_pause();
      continue;
    }
    if (sleep_us > 0) {
      rte_delay_us_sleep(sleep_us);
      ctx.counters->sleeps.Add(1);
      sleep_us = std::min(sleep_us * 2, ctx.idle.max_sleep_us);
    }
  }

  // Drain: forward what the receive queues already hold, bounded so a flood cannot
  // keep a stopping worker alive.
  for (int pass = 0; pass < 64; ++pass) {
    if (PollOnce(ctx, *ctx.store->Current(), verdict) == 0) break;
    ctx.store->Quiescent(ctx.id);
  }
  ctx.store->ReaderOffline(ctx.id);
  return 0;
}

}  // namespace wardgate::worker
