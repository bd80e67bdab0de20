// The signature stage of the pipeline: runs the generation's compiled rules over a
// buffer (a packet's payload, or in-order TCP stream data), resolves the actions of
// the rules that fired in Suricata's order (pass, drop, reject, alert) and records
// alerts in the worker's event ring.
// Threads: one Inspector per worker, used by that worker only; no allocation after
// construction, no exceptions.
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/events/alert.h"
#include "dataplane/events/event_ring.h"
#include "dataplane/generation/generation.h"
#include "dataplane/parse/packet.h"
#include "rules/matcher.h"

namespace wardgate::inspect {

enum class Verdict : uint8_t { kForward, kDrop, kReject, kPass };

// What the flow stage knows of the packet's flow (all defaults: no flow).
struct FlowContext {
  uint64_t flow_id = 0;
  bool to_server = true;
  bool established = false;
  bool stateless = true;
  rules::FlowBits* bits = nullptr;  // the flow's flowbits (null: none kept)
  bool from_device = false;         // received on a port facing the clinical devices
};

struct InspectCounters {
  uint64_t alerts = 0;          // alert records produced
  uint64_t events_lost = 0;     // ring full (also counted by the ring)
  uint64_t rule_drops = 0;      // packets dropped by drop/reject rules
  uint64_t rule_rejects = 0;
  uint64_t rule_passes = 0;
  uint64_t threshold_silenced = 0;   // hits whose alert a threshold/suppress did not log
  uint64_t threshold_no_action = 0;  // hits whose action a threshold/detection_filter withheld
  uint64_t rate_filtered = 0;        // hits whose action a rate_filter changed
};

class Inspector {
 public:
  // blocking: drop/reject rules drop packets (inline, or offline --simulate-ips);
  // otherwise they only alert, as Suricata does in IDS mode.
  Inspector(uint32_t worker_id, events::EventRing<events::AlertRecord>* ring, bool blocking);

  // A packet may be inspected in two buffers (its stream data, its own payload); the
  // actions of every rule that fired in either are resolved together, in Suricata's
  // order, so a pass on one silences a drop on the other: Begin(), Scan() each
  // buffer, then Finish() decides and records the alerts.
  void Begin();
  void Scan(const generation::Generation& gen, const parse::PacketView& view, const rules::Buffer& buf,
            const FlowContext& flow, events::PacketSource source);
  Verdict Finish(const generation::Generation& gen, const parse::PacketView& view, const uint8_t* frame,
                 uint32_t frame_len, const FlowContext& flow, uint64_t ts_ns, uint64_t pcap_cnt);

  // One buffer on its own: Begin + Scan + Finish. `frame` is the whole frame (EVE `packet`).
  Verdict Inspect(const generation::Generation& gen, const parse::PacketView& view, const uint8_t* frame,
                  uint32_t frame_len, const rules::Buffer& buf, const FlowContext& flow, uint64_t ts_ns,
                  uint64_t pcap_cnt, events::PacketSource source);

  // Records that a flow or stream limit stopped inspection of the packet's flow.
  void Anomaly(const char* name, const parse::PacketView& view, const FlowContext& flow, uint64_t ts_ns,
               uint64_t pcap_cnt);

  // Records the zone policy's decision on a new flow (deny or alert, enforced or not).
  void Policy(const segment::Segmentation& seg, const segment::Decision& d, const parse::PacketView& view,
              const uint8_t* frame, const FlowContext& flow, uint64_t ts_ns);

  // After Finish: a rule with a `quarantine:` option fired on a frame its device sent
  // (the control thread quarantines the device; the worker stops the flow at once).
  bool quarantine_hit() const { return quarantine_hit_; }

  const InspectCounters& counters() const { return counters_; }
  bool blocking() const { return blocking_; }

 private:
  // A rule that fired, and the buffer it fired on (for the EVE payload).
  struct Hit {
    uint32_t rule;
    const uint8_t* data;
    size_t new_from;
    size_t len;
    events::PacketSource source;
    // Decided in Finish: thresholds, suppressions, rate filters, noalert.
    rules::Action action = rules::Action::kAlert;
    bool apply = true;
    bool log = true;
  };

  void Record(const rules::Rule& rule, bool blocked, bool log_alert, const parse::PacketView& view, const uint8_t* frame,
              uint32_t frame_len, const Hit& hit, const FlowContext& flow, uint64_t ts_ns, uint64_t pcap_cnt);

  uint32_t worker_id_;
  events::EventRing<events::AlertRecord>* ring_;
  bool blocking_;
  std::vector<uint32_t> fired_;
  std::vector<Hit> hits_;
  InspectCounters counters_;
  bool quarantine_hit_ = false;
};

}  // namespace wardgate::inspect
