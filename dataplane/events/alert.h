// What a worker records when a rule fires, for the control thread to turn into an
// EVE JSON line. Plain data: fixed-size copies of the payload and packet so the
// record owns everything but the rule, which stays alive until the control thread
// has drained the rings of the generation that produced it.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "rules/rule.h"

namespace wardgate::events {

enum class PacketSource : uint8_t { kWire, kStream, kStreamFlowTimeout };

struct AlertRecord {
  // kAnomaly: a flow or stream limit was hit (rule is null, `anomaly` names it).
  // kPolicy: the zone policy denied or reported a new flow (policy_* below).
  enum class Kind : uint8_t { kAlert, kAnomaly, kPolicy } kind = Kind::kAlert;
  const char* anomaly = nullptr;  // static string: "stream.gap", "stream.depth_reached", ...
  uint64_t ts_ns = 0;          // packet time (wall clock live, capture time offline)
  uint64_t flow_id = 0;        // 0: no flow
  uint64_t pcap_cnt = 0;       // offline: 1-based packet number; 0 live
  const rules::Rule* rule = nullptr;
  bool blocked = false;        // the packet was dropped (drop/reject rule, inline or simulated)
  bool log_alert = true;       // false: only the drop is logged (a suppressed or noalert rule dropped it)
  PacketSource source = PacketSource::kWire;
  bool v6 = false;
  uint8_t ip_proto = 0;
  std::array<uint8_t, 16> src_addr{}, dst_addr{};
  uint16_t src_port = 0, dst_port = 0;
  // The frame's Ethernet addresses, and whether it came from the device segment (so
  // the control thread knows which end is the device: a rule's `quarantine` option).
  std::array<uint8_t, 6> src_mac{}, dst_mac{};
  bool from_device = false;
  // kPolicy: the decision; zone names point into the generation's segmentation, which
  // outlives the record (drained before the generation is freed, like `rule`).
  uint8_t policy_action = 0;   // policy::Action
  bool policy_enforced = false;
  int32_t policy_rule = -1;    // index in the policy (-1: the zones' default)
  const char* from_zone = "";
  const char* to_zone = "";
  const char* policy_where = "";  // "policy[3]" or ""
  const char* app = "";         // the application that decided (app rules)
  uint16_t payload_len = 0;    // bytes kept in payload (the inspected buffer's tail)
  uint16_t packet_len = 0;     // bytes kept in packet (the frame's head)
  std::array<uint8_t, 512> payload;
  std::array<uint8_t, 256> packet;
};

// EVE JSON (Suricata-compatible fields) for one alert, without a trailing newline.
// `with_payload`/`with_packet`: include payload, payload_printable / packet (base64).
// A blocked packet also gets a "drop" record (DropJson).
std::string AlertJson(const AlertRecord& r, bool with_payload, bool with_packet);
std::string DropJson(const AlertRecord& r);
// Suricata's anomaly record: {"event_type":"anomaly","anomaly":{"type":"stream","event":...}}
// plus wardgate's "action" (what happened to the flow).
std::string AnomalyJson(const AlertRecord& r);
// wardgate's policy record: {"event_type":"policy","policy":{"action":"deny","enforced":true,
// "rule":"policy[3]","from_zone":"pumps","to_zone":"workstations"}} plus the 5-tuple.
std::string PolicyJson(const AlertRecord& r);

// "2026-11-30T06:13:20.123456+0000" (UTC), as Suricata writes it.
std::string EveTimestamp(uint64_t ts_ns);

}  // namespace wardgate::events
