// Segmentation as the workers apply it: zones resolved per flow end, the zone policy
// decided once per new flow (then cached on the flow), and the quarantine gate.
// Built from config::SegmentationConfig on the control thread into immutable objects
// that belong to a configuration generation (DESIGN.md "Generations").
//
// Threads: Build*() on the control thread (the policy classifier allocates from the
// DPDK heap, so after rte_eal_init). Everything const is read by any number of
// workers at once and never allocates.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dataplane/config/segmentation.h"
#include "dataplane/parse/packet.h"
#include "dataplane/policy/classifier.h"

namespace wardgate::segment {

inline constexpr uint16_t kNoZone = 0;  // zone ids are 1..n in file order; 0: in no zone
inline constexpr int16_t kNoPair = -1;

using Mac = std::array<uint8_t, 6>;
inline uint64_t MacKey(const uint8_t* m) {
  return uint64_t(m[0]) << 40 | uint64_t(m[1]) << 32 | uint64_t(m[2]) << 24 | uint64_t(m[3]) << 16 |
         uint64_t(m[4]) << 8 | uint64_t(m[5]);
}
inline bool IsUnicast(const uint8_t* mac) { return (mac[0] & 1) == 0; }

// A 16-byte address as a hash key (no allocation on lookup).
struct AddrKey {
  uint64_t hi = 0, lo = 0;
  static AddrKey Of(const uint8_t* a) {
    AddrKey k;
    std::memcpy(&k.hi, a, 8);
    std::memcpy(&k.lo, a + 8, 8);
    return k;
  }
  bool operator==(const AddrKey&) const = default;
};
struct AddrKeyHash {
  size_t operator()(const AddrKey& k) const { return std::hash<uint64_t>()(k.hi * 0x9e3779b97f4a7c15ull ^ k.lo); }
};

// Application protocols a policy rule may require (`app:`), recognised on the first
// bytes the client sends. Values are stable (kept on the flow).
enum class App : uint8_t { kUnknown = 0, kHl7 = 1, kDicom = 2 };
App DetectApp(const uint8_t* data, size_t len);
const char* AppName(App a);
bool ParseApp(const std::string& name, App* out);

// One end of a flow as zone resolution sees it.
struct End {
  const uint8_t* mac = nullptr;   // Ethernet address of this end (null: unknown)
  const uint8_t* addr = nullptr;  // 16 bytes, IPv4 in the first 4
  bool v6 = false;
  uint16_t vlan = 0;              // innermost VLAN id of the frame, 0 untagged
  int16_t pair = kNoPair;         // the pair whose device side this end is on
};

struct Zone {
  std::string name;
  policy::Action default_action = policy::Action::kAllow;
  bool monitor = false;
};

struct StaticDevice {
  Mac mac{};
  std::string name, device_class;
  config::Criticality criticality = config::Criticality::kGeneral;
  uint16_t zone = kNoZone;        // explicit zone, or resolved from the class
};

// The policy decision of one flow.
struct Decision {
  policy::Action action = policy::Action::kAllow;
  int32_t rule = -1;              // policy rule index (config order); -1: the zones' default
  bool explicit_allow = false;    // an allow/alert rule matched (contain keeps such peers)
  bool monitor = false;           // a zone of the flow is in monitor mode: report, never drop
  bool app_check = false;         // the rule requires an app: confirm on the first client bytes
  uint16_t src_zone = kNoZone, dst_zone = kNoZone;
  bool enforced_deny() const { return action == policy::Action::kDeny && !monitor; }
  bool reported() const { return action != policy::Action::kAllow; }
};

class Segmentation {
 public:
  // pair_names: the configured pairs in order (a zone's `pairs` name them). nullptr and
  // *error when the policy does not compile; nothing is half-built.
  static std::unique_ptr<Segmentation> Build(const config::SegmentationConfig& cfg,
                                             const std::vector<std::string>& pair_names, std::string* error,
                                             const policy::BuildOptions& options = {});

  // Zone of one end: a static device's zone first, then the zones in file order (pair,
  // VLAN, address, device class: any criterion puts the end in the zone).
  uint16_t ZoneOf(const End& e) const;
  // The policy for a flow from `client` to `server` (the flow's first packet direction).
  // `app`: the application recognised in the client's first bytes; nullopt before
  // any data (a rule with `app:` then decides provisionally: Decision::app_check).
  Decision Decide(const End& client, const End& server, uint8_t proto, uint16_t sport, uint16_t dport,
                  std::optional<App> app = std::nullopt) const;

  const StaticDevice* DeviceByMac(const uint8_t* mac) const;
  const StaticDevice* DeviceByIp(const std::array<uint8_t, 16>& addr) const;
  const Zone& zone(uint16_t id) const { return zones_[id]; }  // id 0: the unnamed "no zone"
  const char* ZoneName(uint16_t id) const { return id == kNoZone ? "" : zones_[id].name.c_str(); }
  size_t zone_count() const { return zones_.size() - 1; }
  const std::vector<StaticDevice>& devices() const { return devices_; }
  const config::PolicyRuleConfig& rule(uint32_t i) const { return rules_[i]; }
  size_t rule_count() const { return rules_.size(); }
  bool has_policy() const { return active_; }
  const policy::ClassifierStats& classifier_stats() const;

  // Isolate: may a quarantined device exchange this packet with `peer`? (remediation
  // addresses, DHCP, DNS). device_sent: the device is the packet's source.
  bool Remediation(const parse::PacketView& v, const uint8_t* peer_addr, bool device_sent) const;

 private:
  Segmentation() = default;
  std::optional<uint32_t> ClassifyWith(const policy::PolicyClassifier* c, const policy::FlowTuple& t) const;

  std::vector<Zone> zones_;                     // [0] = no zone
  std::vector<config::ZoneConfig> zone_cfg_;    // [0] unused
  std::vector<config::PolicyRuleConfig> rules_;
  std::vector<App> rule_app_;                   // by rule
  std::vector<StaticDevice> devices_;
  std::unordered_map<uint64_t, uint32_t> device_by_mac_;
  std::unordered_map<AddrKey, uint32_t, AddrKeyHash> device_by_ip_;
  std::vector<std::vector<int16_t>> zone_pair_ids_;          // by zone: pair indexes
  std::vector<std::pair<uint16_t, uint16_t>> rule_zones_;   // by rule: from, to zone (kNoZone: any)
  std::unique_ptr<policy::PolicyClassifier> classifier_;     // every rule: the provisional decision
  // By App: the rules without `app:` plus those naming it (null: the same as classifier_).
  std::array<std::unique_ptr<policy::PolicyClassifier>, 3> by_app_;
  std::vector<config::Prefix> remediation_;
  bool remediation_dhcp_ = true, remediation_dns_ = true;
  bool active_ = false;                         // zones or policy configured
};

// The quarantines in force, as the workers see them: by device MAC and by address.
struct Quarantined {
  config::QuarantineLevel level = config::QuarantineLevel::kIsolate;
  uint64_t since_ns = 0;  // flows first seen before this are "established before" (contain)
};

// Built by the control thread, then read-only: the MAC index is a flat open-addressing
// table (a multiply and a mask instead of a division, one cache line per probe), since
// every frame asks it twice while any quarantine is in force.
class QuarantineSet {
 public:
  void AddMac(const Mac& mac, Quarantined q);
  void AddIp(const std::array<uint8_t, 16>& addr, Quarantined q) { by_ip_[AddrKey::Of(addr.data())] = q; }
  bool empty() const { return n_macs_ == 0 && by_ip_.empty(); }
  size_t size() const { return n_macs_ + by_ip_.size(); }

  const Quarantined* FindMac(const uint8_t* mac) const {
    if (n_macs_ == 0) return nullptr;
    const uint64_t key = MacKey(mac) + 1;  // +1: 0 marks an empty slot
    for (size_t i = Slot(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].q;
      if (slots_[i].key == 0) return nullptr;
    }
  }
  const Quarantined* FindIp(const uint8_t* addr16) const {
    if (by_ip_.empty()) return nullptr;
    auto it = by_ip_.find(AddrKey::Of(addr16));
    return it == by_ip_.end() ? nullptr : &it->second;
  }

 private:
  struct Entry {
    uint64_t key = 0;
    Quarantined q;
  };
  size_t Slot(uint64_t key) const { return size_t((key * 0x9e3779b97f4a7c15ull) >> 32) & mask_; }
  std::vector<Entry> slots_;  // size a power of two, at most half full
  size_t mask_ = 0;
  size_t n_macs_ = 0;
  std::unordered_map<AddrKey, Quarantined, AddrKeyHash> by_ip_;
};

}  // namespace wardgate::segment
