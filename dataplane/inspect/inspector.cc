#include "dataplane/inspect/inspector.h"

#include <algorithm>
#include <cstring>

namespace wardgate::inspect {

Inspector::Inspector(uint32_t worker_id, events::EventRing<events::AlertRecord>* ring, bool blocking)
    : worker_id_(worker_id), ring_(ring), blocking_(blocking) {
  fired_.reserve(4096);  // grow only past 4096 rules firing on one packet
  hits_.reserve(4096);
}

void Inspector::Begin() { hits_.clear(); }

void Inspector::Scan(const generation::Generation& gen, const parse::PacketView& view, const rules::Buffer& buf,
                     const FlowContext& flow, events::PacketSource source) {
  if (!gen.rules || worker_id_ >= gen.scratch.size()) return;
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
  fired_.clear();
  gen.rules->Match(*gen.scratch[worker_id_], ctx, buf, fired_);
  for (uint32_t idx : fired_) hits_.push_back({idx, buf.data, buf.new_from, buf.len, source});
}

Verdict Inspector::Finish(const generation::Generation& gen, const parse::PacketView& view, const uint8_t* frame,
                          uint32_t frame_len, const FlowContext& flow, uint64_t ts_ns, uint64_t pcap_cnt) {
  if (hits_.empty()) return Verdict::kForward;
  const auto& rules = gen.rules->rules();
  // Suricata's action order: the strongest action among the rules that fired decides.
  const rules::Rule* decisive = &rules[hits_[0].rule];
  for (const Hit& h : hits_) {
    if (rules::ActionOrder(rules[h.rule].header.action) < rules::ActionOrder(decisive->header.action)) {
      decisive = &rules[h.rule];
    }
  }
  switch (decisive->header.action) {
    case rules::Action::kPass:
      // A pass rule silences the packet and ends inspection of the flow.
      ++counters_.rule_passes;
      return Verdict::kPass;
    case rules::Action::kDrop:
    case rules::Action::kReject: {
      const bool reject = decisive->header.action == rules::Action::kReject;
      for (const Hit& h : hits_) {
        const auto& r = rules[h.rule];
        const bool blocks = blocking_ && r.header.action != rules::Action::kAlert;
        Record(r, blocks, view, frame, frame_len, h, flow, ts_ns, pcap_cnt);
      }
      if (!blocking_) return Verdict::kForward;
      ++counters_.rule_drops;
      if (reject) ++counters_.rule_rejects;
      return reject ? Verdict::kReject : Verdict::kDrop;
    }
    case rules::Action::kAlert:
      for (const Hit& h : hits_) Record(rules[h.rule], false, view, frame, frame_len, h, flow, ts_ns, pcap_cnt);
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
  r->source = events::PacketSource::kStream;
  r->payload_len = r->packet_len = 0;
  ring_->Commit();
}

void Inspector::Record(const rules::Rule& rule, bool blocked, const parse::PacketView& view,
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
  r->blocked = blocked;
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
