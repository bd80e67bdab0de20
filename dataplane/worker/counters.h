// Per-worker counters. Single writer (the worker that owns them), read at any time by
// the control thread: relaxed atomics, which compile to plain loads/stores on x86,
// so the hot path takes no lock and no locked instruction.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "dataplane/generation/generation.h"
#include "dataplane/parse/packet.h"

namespace wardgate::worker {

class Counter {
 public:
  // Writer: the owning worker only.
  void Add(uint64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  // Writer only: mirrors a plain counter the worker keeps elsewhere (flow table).
  void Set(uint64_t v) { v_.store(v, std::memory_order_relaxed); }
  // Reader: any thread.
  uint64_t Load() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Why the dataplane dropped a frame. Names are stable: they appear in status and JSON.
enum class DropReason : uint8_t {
  kTxFull = 0,       // peer port's tx queue was full
  kNoPeer,           // received on a port that is in no pair of the generation
  kFrameTooLong,     // longer than the configured MTU allows
  kRule,             // a drop or reject rule matched (the packet, or its flow earlier)
  kStreamConflict,   // TCP data overlapping earlier bytes with different content (first wins)
  // Stack hygiene toward the device segment (devices' TCP/IP stacks are old and fragile):
  kHygieneIpOptions,  // IPv4 options (URGENT/11 and similar stack bugs)
  kHygieneTunnel,     // IP-in-IP, IPv6-in-IPv4, GRE
  kHygieneIcmpProbe,  // ICMP types 165/166 (Treck stack probes, Ripple20)
  kHygieneTcpOptions, // malformed or crash-pattern TCP options, URG with pointer 0 (URGENT/11)
  kHygieneFragmentOverlap,  // an IP fragment overlapping an earlier one of its packet
  kPolicy,            // the zone policy denies the flow (enforce mode)
  kQuarantine,        // the device is quarantined and the packet is not allowed by its level
  kCount
};
inline constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::kCount);

constexpr std::string_view DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kTxFull: return "tx_full";
    case DropReason::kNoPeer: return "no_peer";
    case DropReason::kFrameTooLong: return "frame_too_long";
    case DropReason::kRule: return "rule";
    case DropReason::kStreamConflict: return "stream_conflict";
    case DropReason::kHygieneIpOptions: return "hygiene_ip_options";
    case DropReason::kHygieneTunnel: return "hygiene_tunnel";
    case DropReason::kHygieneIcmpProbe: return "hygiene_icmp_probe";
    case DropReason::kHygieneTcpOptions: return "hygiene_tcp_options";
    case DropReason::kHygieneFragmentOverlap: return "hygiene_fragment_overlap";
    case DropReason::kPolicy: return "policy";
    case DropReason::kQuarantine: return "quarantine";
    case DropReason::kCount: break;
  }
  return "unknown";
}

// Traffic of one worker on one port.
struct PortCounters {
  Counter rx_packets, rx_bytes, tx_packets, tx_bytes, tx_full;
};

// Everything one worker counts. Written by that worker only; read by the control thread.
struct alignas(64) WorkerCounters {
  Counter busy_polls;   // loop iterations that received at least one frame
  Counter idle_polls;   // iterations that received nothing
  Counter sleeps;       // back-off sleeps taken
  std::array<Counter, parse::kParseErrorCount> malformed;  // by parse error; index 0 unused
  std::array<Counter, kDropReasonCount> drops;
  std::array<PortCounters, generation::kMaxPorts> ports;
  // Flow and stream stages (mirrored after each burst from their plain counters).
  Counter flows_active, flows_created, flow_evictions, flows_expired, midstream_refused, flowbits_exhausted;
  // Zone policy: new flows by decision (monitor: would have been denied, forwarded).
  Counter policy_flows_allowed, policy_flows_denied, policy_flows_alerted, policy_flows_monitored,
      policy_app_checked, policy_stateless_denied;
  // Device inventory (mirrored from the worker's device table).
  Counter devices_known, devices_table_full;
  Counter fragments_untracked;  // fragments toward the devices not checked for overlap (guard full)
  Counter stream_bytes, stream_retransmissions, stream_overlaps, stream_conflicts, stream_gaps,
      stream_out_of_order, stream_pool_exhausted, stream_depth_reached, stream_window_overruns;
};

}  // namespace wardgate::worker
