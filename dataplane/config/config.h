// wardgate-dp configuration: the YAML file given with --config, loaded into plain
// structs before EAL or any port is touched. Pure library (yaml-cpp), no DPDK.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/config/segmentation.h"

namespace wardgate::config {

// A configuration problem, naming the key path (e.g. "pairs[1].network.vdev").
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string key, const std::string& problem)
      : std::runtime_error(key + ": " + problem), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

enum class Hugepages { kAuto, kOn, kOff };

struct EalConfig {
  std::string lcores = "0-1";        // EAL -l; the first lcore is the main (control) lcore
  Hugepages hugepages = Hugepages::kAuto;
  uint32_t memory_mb = 512;          // -m when running without hugepages
  std::string file_prefix = "wardgate";
  std::vector<std::string> args;     // passed to EAL verbatim, after ours
};

// One side of a port pair: a virtual device (DPDK devargs) or a PCI NIC.
struct PortConfig {
  std::string vdev;  // e.g. "net_af_packet0,iface=wg-dev0"
  std::string pci;   // e.g. "0000:03:00.0"
  // Name DPDK gives the ethdev: the vdev driver instance or the PCI address.
  std::string EthdevName() const;
};

// A bump in the wire: frames from `device` go out `network` and back.
struct PairConfig {
  std::string name;
  PortConfig device;   // faces the clinical segment
  PortConfig network;  // faces the hospital network
};

struct IdleConfig {
  uint32_t spin_polls = 64;      // empty polls before the worker starts sleeping
  uint32_t min_sleep_us = 1;     // first sleep; doubles on each further empty poll
  uint32_t max_sleep_us = 100;   // cap: bounds the latency a sleeping worker adds
};

struct RulesConfig {
  std::vector<std::string> files;            // loaded at start
  bool lenient = false;                      // skip rules with unsupported keywords
  std::map<std::string, std::string> variables;  // HOME_NET etc., without `$`
  std::vector<std::string> overrides;        // local overrides (YAML), applied in order, re-read on every load
  std::string threshold_file;                // Suricata threshold.config, re-read on every load ("" none)
  uint32_t threshold_capacity = 65536;       // tracked threshold/rate entries
  std::string cache_dir = "/var/cache/wardgate/rules";  // compiled Hyperscan databases ("" off)
  // Which action decides when rules with different actions fire on one packet, first
  // wins; Suricata's default. Names: pass, drop, reject, alert (all four, once each).
  std::vector<std::string> action_order = {"pass", "drop", "reject", "alert"};
};

// What happens to a flow when one of its inspection limits is hit (stream depth,
// out-of-order data beyond the limit, an exhausted pool).
enum class LimitAction {
  kBypass,  // clinical default: keep forwarding the flow uninspected, count, event
  kDrop,    // fail closed: drop the flow from that packet on (for segments where that is safe)
};

struct StreamConfig {
  bool midstream = false;          // pick up TCP flows whose handshake was not seen
  LimitAction on_limit = LimitAction::kBypass;
  uint32_t window_bytes = 512;     // inspected bytes kept per direction, for content across segments
  // Bytes inspected per stream direction, then the flow is forwarded uninspected.
  // 0: no limit. The default is none: HL7 and DICOM sessions live for days, and the
  // fixed inspection window makes an unlimited depth cost no memory.
  uint32_t depth = 0;
  uint32_t max_held_per_stream = 256;  // out-of-order chunks held per stream
  uint32_t segment_pool = 16384;   // out-of-order chunks per worker
  uint32_t window_pool = 65536;    // stream windows per worker
};

// Per-worker flow table. When a limit is hit the flow is still forwarded, its
// inspection stops, and the event is counted (clinical default: never cut a feed).
struct FlowsConfig {
  uint32_t capacity = 131072;      // flows per worker, preallocated
  uint32_t flowbits_capacity = 16384;  // flows holding flowbits at once, per worker (64 bytes each)
  uint32_t timeout_new_s = 30;
  uint32_t timeout_established_s = 3600;
  uint32_t timeout_closed_s = 60;
  uint32_t timeout_udp_s = 120;
  uint32_t timeout_icmp_s = 30;
  uint32_t timeout_other_s = 120;
};

struct EveConfig {
  std::string file;         // EVE JSON log; empty: events only on WatchEvents
  bool payload = true;      // alert.payload / payload_printable (base64 / text)
  bool packet = true;       // alert.packet (base64 of the frame's head)
};

struct Config {
  EalConfig eal;
  uint32_t workers = 1;
  uint32_t mtu = 1500;           // largest L3 packet; frame = mtu + 14 + 2 VLAN tags
  std::vector<PairConfig> pairs;
  uint32_t mbufs = 8191;         // per NUMA socket mempool
  uint32_t mbuf_cache = 256;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  uint16_t burst = 32;
  IdleConfig idle;
  uint32_t link_wait_ms = 3000;  // wait this long for link up at start, then go on
  std::string control_socket = "/run/wardgate/dp.sock";
  RulesConfig rules;
  FlowsConfig flows;
  StreamConfig stream;
  EveConfig eve;
  SegmentationConfig segmentation;  // zones, policy, devices, hygiene, quarantine

  // Largest Ethernet frame accepted, without FCS: header + QinQ + MTU.
  uint32_t MaxFrameLen() const { return mtu + 14 + 8; }
};

// Loads and validates; throws ConfigError naming the key. Unknown keys are errors
// (a typo must not silently fall back to a default on a clinical network).
// offline: for --pcap runs, where `pairs` and the EAL/port keys may be absent.
Config LoadFile(const std::string& path, bool offline = false);
Config LoadString(const std::string& yaml_text, bool offline = false);

// Parses an EAL core list such as "0-3", "1,3,5" or "0,2-4" (sorted, unique).
std::vector<unsigned> ParseLcoreList(const std::string& list);

// Configuration used by the offline mode when no --config is given.
Config OfflineDefaults();

}  // namespace wardgate::config
