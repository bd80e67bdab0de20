// Segmentation configuration (the devices, zones and quarantine issue): zones, the
// zone policy, static device records, stack hygiene and the quarantine defaults, as
// plain structs loaded with the rest of the dataplane configuration and validated
// before anything starts. A policy whose rules contradict or shadow each other is
// refused as a whole, naming both rules: on a clinical network an allow rule that can
// never apply is a silent outage waiting to happen.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

namespace wardgate::config {

struct Prefix {  // an IPv4 or IPv6 prefix; addresses in network order, IPv4 in the first 4 bytes
  bool v6 = false;
  std::array<uint8_t, 16> addr{};
  uint8_t len = 0;
  bool Covers(const Prefix& inner) const;  // same family, len <= inner.len, same leading bits
  bool Contains(const uint8_t* addr16, bool is_v6) const;  // the address (16 bytes, IPv4 in the first 4) is in it
  bool operator==(const Prefix&) const = default;
};
// "10.77.0.0/24", "fd77::/64", "10.77.0.5" (host); false, with *why, if it is not
// one. Host bits beyond the length are refused ("10.1.2.3/8": did the author mean the
// host or the network? we cannot tell).
bool ParsePrefix(const std::string& text, Prefix* out, std::string* why = nullptr);

// A zone or device class name: 1 to 64 of a-z, 0-9, - and _.
bool ValidName(const std::string& name);

enum class PolicyAction : uint8_t { kAllow, kDeny, kAlert };
const char* PolicyActionName(PolicyAction a);

struct PortSpan {
  uint16_t lo = 0, hi = 65535;
  bool operator==(const PortSpan&) const = default;
};

// A zone: where a device belongs, by the port pair it sits behind, its VLAN, its
// address or its device class (any listed criterion puts a device in the zone; zones
// are tried in file order).
struct ZoneConfig {
  std::string name;
  std::vector<std::string> pairs;        // PairConfig names
  std::vector<uint16_t> vlans;
  std::vector<Prefix> cidrs;
  std::vector<std::string> classes;      // device classes, e.g. infusion-pump
  PolicyAction default_action = PolicyAction::kAllow;
  bool monitor = false;                  // verdicts only reported, everything forwarded
};

// One policy rule: traffic from a zone (or addresses) to a zone (or addresses).
// Empty lists mean any; zone "" means any zone.
struct PolicyRuleConfig {
  std::string from_zone, to_zone;
  std::vector<Prefix> from_cidrs, to_cidrs;
  uint8_t proto = 0;                     // 0 any, 6 tcp, 17 udp, 1 icmp, 58 icmpv6, or a number
  std::vector<PortSpan> ports;           // destination ports (tcp/udp)
  std::string app;                       // application protocol (hl7, dicom, ...), "" any
  PolicyAction action = PolicyAction::kAllow;
  std::string where;                     // "policy[3]" for messages
};

enum class Criticality : uint8_t { kGeneral, kClinical, kLifeCritical };

struct DeviceConfig {
  std::string mac;                       // "02:77:00:00:00:11", lower case
  std::string name;
  std::string device_class;
  Criticality criticality = Criticality::kGeneral;
  std::string zone;                      // "" from the zone criteria
  std::vector<Prefix> ips;               // known addresses (hosts)
};

struct HygieneConfig {                   // drops toward the device segment, each counted by reason
  bool ip_options = true;                // IPv4 options (URGENT/11)
  bool bad_tcp_options = true;
  bool tunnels = true;                   // IP-in-IP, GRE, 6in4 ...
  bool treck_icmp = true;                // ICMP types 165/166 (Ripple20 probes)
  bool overlapping_fragments = true;
};

enum class QuarantineLevel : uint8_t { kIsolate, kContain };
// The most a rule's `quarantine:` option may do to a device of a class: only alert,
// contain, or isolate (what the rule asks, if no less).
enum class RuleResponse : uint8_t { kAlert, kContain, kIsolate };

struct QuarantineConfig {
  std::vector<Prefix> remediation;       // isolate: the only addresses a device may still reach
  bool remediation_dhcp = true;
  bool remediation_dns = true;
  QuarantineLevel life_critical_default = QuarantineLevel::kContain;
  QuarantineLevel default_level = QuarantineLevel::kIsolate;
  std::string snapshot = "/var/lib/wardgate/state.json";
  // By device class; classes not listed take what the rule asks, except life-critical
  // devices, which never go beyond life_critical_default.
  std::map<std::string, RuleResponse> rule_response;
};

struct SegmentationConfig {
  std::vector<ZoneConfig> zones;
  std::vector<PolicyRuleConfig> policy;
  std::vector<DeviceConfig> devices;
  HygieneConfig hygiene;
  QuarantineConfig quarantine;
  uint32_t device_capacity = 4096;       // inventory.capacity: devices per worker's table
  std::string policy_version;            // set by the loader from the zones/policy/devices text
};

// Loads the `zones`, `policy`, `devices`, `hygiene` and `quarantine` sections of the
// configuration root; throws ConfigError naming the key. pair_names: the configured
// port pairs, which zones may name.
SegmentationConfig LoadSegmentation(const YAML::Node& root, const std::vector<std::string>& pair_names);

}  // namespace wardgate::config
