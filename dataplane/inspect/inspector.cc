#include "dataplane/inspect/inspector.h"

#include <algorithm>
#include <cstring>

namespace wardgate::inspect {

Inspector::Inspector(uint32_t worker_id, events::EventRing<events::AlertRecord>* ring, bool blocking)
    : worker_id_(worker_id), ring_(ring), blocking_(blocking) {
  fired_.reserve(4096);  // grow only past 4096 rules firing on one packet
  hits_.reserve(4096);
}

void Inspector::Begin() {
  hits_.clear();
  quarantine_hit_ = false;
}

void Inspector::Scan(const generation::Generation& gen, const parse::PacketView& view, const rules::Buffer& buf,
                     const FlowContext& flow, events::PacketSource source) {
  if (!gen.rules || !gen.scratch || worker_id_ >= gen.scratch->size()) return;
  rules::InspectContext ctx;
  ctx.ip_proto = view.ip_proto;
  ctx.v6 = view.l3 == parse::L3::kIpv6;
  ctx.src_addr = view.src_addr;
  ctx.dst_addr = view.dst_addr;
  ctx.src_port = view.src_port;
  ctx.dst_port = view.dst_port;
  ctx.to_server = flow.to_server;
  ctx.established = flow.established;
  ctx.stateless = flow.stateless;
  ctx.dsize = view.payload_len;
  ctx.ttl = view.ttl;
  ctx.tcp_flags = view.tcp_flags;
  ctx.icmp_type = view.icmp_type;
  ctx.icmp_code = view.icmp_code;
  ctx.icmp_echo = view.icmp_echo;
  ctx.icmp_id = view.icmp_id;
  ctx.icmp_seq = view.icmp_seq;
  ctx.flowbits = flow.bits;
  fired_.clear();
  gen.rules->Match(*(*gen.scratch)[worker_id_], ctx, buf, fired_);
  for (uint32_t idx : fired_) hits_.push_back({idx, buf.data, buf.new_from, buf.len, source});
}

Verdict Inspector::Finish(const generation::Generation& gen, const parse::PacketView& view, const uint8_t* frame,
                          uint32_t frame_len, const FlowContext& flow, uint64_t ts_ns, uint64_t pcap_cnt) {
  if (hits_.empty()) return Verdict::kForward;
  const auto& rules = gen.rules->rules();
  // Thresholds, suppressions and rate filters decide, per hit, whether its action
  // applies, whether its alert is logged, and (rate_filter) which action it has.
  rules::AlertSubject subject;
  subject.src = view.src_addr;
  subject.dst = view.dst_addr;
  subject.v6 = view.l3 == parse::L3::kIpv6;
  subject.flow_id = flow.flow_id;
  const Hit* decisive = nullptr;
  for (Hit& h : hits_) {
    const rules::Rule& r = rules[h.rule];
    h.action = r.header.action;
    h.apply = true;
    h.log = !r.noalert;
    if (gen.thresholds && gen.thresholds->Applies(r)) {
      const rules::ThresholdDecision d = gen.thresholds->Check(r, subject, ts_ns);
      h.apply = d.apply_action;
      if (!d.apply_action) ++counters_.threshold_no_action;
      if (!d.log_alert && h.log) ++counters_.threshold_silenced;
      h.log = h.log && d.log_alert && d.apply_action;
      if (d.new_action && *d.new_action != h.action) {
        h.action = *d.new_action;
        ++counters_.rate_filtered;
      }
    }
    if (!h.apply) continue;
    // The strongest action among the hits that apply decides (Suricata's order by default).
    if (!decisive || gen.action_rank[static_cast<size_t>(h.action)] < gen.action_rank[static_cast<size_t>(decisive->action)]) {
      decisive = &h;
    }
  }
  if (!decisive) return Verdict::kForward;
  switch (decisive->action) {
    case rules::Action::kPass:
      // A pass rule silences the packet and ends inspection of the flow.
      ++counters_.rule_passes;
      return Verdict::kPass;
    case rules::Action::kDrop:
    case rules::Action::kReject: {
      const bool reject = decisive->action == rules::Action::kReject;
      for (const Hit& h : hits_) {
        if (!h.apply) continue;
        const bool blocks = blocking_ && h.action != rules::Action::kAlert && h.action != rules::Action::kPass;
        if (h.log || blocks) Record(rules[h.rule], blocks, h.log, view, frame, frame_len, h, flow, ts_ns, pcap_cnt);
      }
      if (!blocking_) return Verdict::kForward;
      ++counters_.rule_drops;
      if (reject) ++counters_.rule_rejects;
      return reject ? Verdict::kReject : Verdict::kDrop;
    }
    case rules::Action::kAlert:
      for (const Hit& h : hits_) {
        if (h.apply && h.log) Record(rules[h.rule], false, true, view, frame, frame_len, h, flow, ts_ns, pcap_cnt);
      }
      return Verdict::kForward;
  }
  return Verdict::kForward;
}

Verdict Inspector::Inspect(const generation::Generation& gen, const parse::PacketView& view,
                           const uint8_t* frame, uint32_t frame_len, const rules::Buffer& buf,
                           const FlowContext& flow, uint64_t ts_ns, uint64_t pcap_cnt,
                           events::PacketSource source) {
  Begin();
  Scan(gen, view, buf, flow, source);
  return Finish(gen, view, frame, frame_len, flow, ts_ns, pcap_cnt);
}

namespace {

// The fields every event record of a packet carries.
void FillPacketFields(events::AlertRecord& r, const parse::PacketView& view, const FlowContext& flow,
                      uint64_t ts_ns, uint64_t pcap_cnt) {
  r.ts_ns = ts_ns;
  r.flow_id = flow.flow_id;
  r.pcap_cnt = pcap_cnt;
  r.v6 = view.l3 == parse::L3::kIpv6;
  r.ip_proto = view.ip_proto;
  r.src_addr = view.src_addr;
  r.dst_addr = view.dst_addr;
  r.src_port = view.src_port;
  r.dst_port = view.dst_port;
  r.from_device = flow.from_device;
}

}  // namespace

void Inspector::Anomaly(const char* name, const parse::PacketView& view, const FlowContext& flow,
                        uint64_t ts_ns, uint64_t pcap_cnt) {
  events::AlertRecord* r = ring_->Reserve();
  if (!r) {
    ++counters_.events_lost;
    return;
  }
  FillPacketFields(*r, view, flow, ts_ns, pcap_cnt);
  r->kind = events::AlertRecord::Kind::kAnomaly;
  r->anomaly = name;
  r->rule = nullptr;
  r->blocked = false;
  r->log_alert = true;
  r->source = events::PacketSource::kStream;
  r->payload_len = r->packet_len = 0;
  ring_->Commit();
}

void Inspector::Policy(const segment::Segmentation& seg, const segment::Decision& d, const parse::PacketView& view,
                       const uint8_t* frame, const FlowContext& flow, uint64_t ts_ns) {
  // A flood of denied flows (a scan) must not crowd out alerts, which may carry a
  // rule's quarantine request: policy records leave a quarter of the ring free.
  events::AlertRecord* r = ring_->Reserve(ring_->capacity() / 4);
  if (!r) {
    ++counters_.events_lost;
    return;
  }
  FillPacketFields(*r, view, flow, ts_ns, 0);
  r->kind = events::AlertRecord::Kind::kPolicy;
  r->rule = nullptr;
  r->anomaly = nullptr;
  r->blocked = d.enforced_deny();
  r->log_alert = true;
  r->source = events::PacketSource::kWire;
  r->payload_len = r->packet_len = 0;
  std::memcpy(r->dst_mac.data(), frame, 6);
  std::memcpy(r->src_mac.data(), frame + 6, 6);
  r->policy_action = static_cast<uint8_t>(d.action);
  r->policy_enforced = d.enforced_deny();
  r->policy_rule = d.rule;
  r->from_zone = seg.ZoneName(d.src_zone);
  r->to_zone = seg.ZoneName(d.dst_zone);
  r->policy_where = d.rule >= 0 ? seg.rule(uint32_t(d.rule)).where.c_str() : "";
  r->app = "";
  ring_->Commit();
}

void Inspector::Record(const rules::Rule& rule, bool blocked, bool log_alert, const parse::PacketView& view,
                       const uint8_t* frame, uint32_t frame_len, const Hit& hit, const FlowContext& flow,
                       uint64_t ts_ns, uint64_t pcap_cnt) {
  events::AlertRecord* r = ring_->Reserve();
  if (!r) {
    ++counters_.events_lost;
    return;
  }
  FillPacketFields(*r, view, flow, ts_ns, pcap_cnt);
  r->kind = events::AlertRecord::Kind::kAlert;
  r->rule = &rule;
  if (rule.quarantine != rules::Rule::Quarantine::kNone && flow.from_device) quarantine_hit_ = true;
  if (frame_len >= 12) {
    std::memcpy(r->dst_mac.data(), frame, 6);
    std::memcpy(r->src_mac.data(), frame + 6, 6);
  }
  r->blocked = blocked;
  r->log_alert = log_alert;
  r->source = hit.source;
  // The payload: the new part of the inspected buffer (capped), as Suricata logs it.
  const size_t from = std::min(hit.new_from, hit.len);
  r->payload_len = static_cast<uint16_t>(std::min(hit.len - from, r->payload.size()));
  if (r->payload_len) std::memcpy(r->payload.data(), hit.data + from, r->payload_len);
  r->packet_len = static_cast<uint16_t>(std::min<size_t>(frame_len, r->packet.size()));
  if (r->packet_len) std::memcpy(r->packet.data(), frame, r->packet_len);
  ring_->Commit();
  ++counters_.alerts;
}

}  // namespace wardgate::inspect
