// The device inventory: every worker's DeviceTable merged by MAC (a device's flows are
// spread over the workers by RSS, so each worker sees part of its traffic), joined with
// the static device records of the configuration, under ids that stay the same for the
// life of the process. Also where IP address conflicts are found.
//
// Threads: the control thread calls Update(); any thread may read (List, By*). One
// mutex inside; no method is on a worker's path. Allocates freely.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/device/device_table.h"

namespace wardgate::device {

struct IpAddress {  // network order; IPv4 in the first 4 bytes, rest zero
  std::array<uint8_t, 16> addr{};
  bool v6 = false;
  auto operator<=>(const IpAddress&) const = default;
};

struct StaticDevice {  // from the configuration's `devices:`
  Mac mac{};
  std::string name, device_class, zone;
  std::string criticality;  // "life-critical" | "clinical" | "general"
  std::vector<IpAddress> ips;  // declared addresses: this device owns them
};

struct DeviceInfo {
  uint64_t id = 0;         // >= 1, stable for the process lifetime (see Inventory)
  DeviceRecord learned;    // merged over the workers; only .mac set if never seen
  bool seen = false;       // some worker has seen its traffic
  std::string name, device_class, zone, criticality;  // from its static record, "" if none
};

struct IpConflict {  // `claimant` used an address that `owner` holds
  std::array<uint8_t, 16> addr{};
  bool v6 = false;
  Mac owner{};
  Mac claimant{};
  uint64_t ts_ns = 0;  // the claimant's last_seen_ns when the conflict was found
};

class Inventory {
 public:
  // Replaces the static records. Ids: a MAC keeps the id it has; MACs new to the
  // inventory get the next ids in configuration order (so before any Update, static
  // devices are 1..N in configuration order). A device dropped from the
  // configuration stays listed, as learned, if it was seen.
  void SetStatic(std::vector<StaticDevice> devices);

  // Merges every worker's snapshot: counters summed, addresses, services, peers and
  // apps united, earliest first_seen, latest last_seen (vlan and port from the worker
  // that saw it last). New MACs get the next ids in order of first_seen.
  // Returns the IP conflicts found since the last call, each (address, claimant) once:
  // an address claimed by a MAC other than its owner. The owner is the static record
  // that declares it, else the first MAC the inventory saw holding it (the earliest
  // first_seen when several appear in one Update); ownership is never handed over, so
  // a DHCP lease moving to another device is reported too.
  std::vector<IpConflict> Update(const std::vector<const DeviceTable*>& tables);

  std::vector<DeviceInfo> List() const;  // by id
  std::optional<DeviceInfo> ById(uint64_t id) const;
  std::optional<DeviceInfo> ByMac(const Mac& mac) const;
  std::optional<DeviceInfo> ByIp(const std::array<uint8_t, 16>& addr, bool v6) const;  // the address's owner

 private:
  struct Entry {
    uint64_t id = 0;
    DeviceRecord learned;
    bool seen = false;
    int static_index = -1;  // into statics_
    bool listed() const { return seen || static_index >= 0; }
  };

  Entry& EntryFor(const Mac& mac);  // creates it with the next id
  std::optional<Mac> OwnerOf(const IpAddress& a) const;
  std::optional<DeviceInfo> Info(const Mac& mac) const;

  mutable std::mutex mu_;
  std::vector<StaticDevice> statics_;
  std::map<Mac, Entry> by_mac_;  // every MAC ever given an id (kept, so the id never changes)
  std::map<uint64_t, Mac> by_id_;
  std::map<IpAddress, Mac> static_owner_;   // rebuilt by SetStatic
  std::map<IpAddress, Mac> learned_owner_;  // first holder seen, never changed
  std::set<std::pair<IpAddress, Mac>> reported_;  // conflicts already returned
  uint64_t next_id_ = 1;
  std::vector<DeviceRecord> scratch_;
};

}  // namespace wardgate::device
