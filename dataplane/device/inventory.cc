#include "dataplane/device/inventory.h"

#include <algorithm>
#include <cstring>
#include <tuple>

namespace wardgate::device {
namespace {

// Appends `value` to items[0, *n) unless present; a full list sets `overflow_bit`.
template <class T, size_t N>
void Unite(T (&items)[N], uint8_t* n, const T& value, uint32_t* overflow, uint32_t overflow_bit) {
  if (std::find(items, items + *n, value) != items + *n) return;
  if (*n == N) {
    *overflow |= overflow_bit;
    return;
  }
  items[(*n)++] = value;
}
template <class T, size_t N>
void Unite(std::array<T, N>& items, uint8_t* n, const T& value, uint32_t* overflow, uint32_t overflow_bit) {
  if (std::find(items.begin(), items.begin() + *n, value) != items.begin() + *n) return;
  if (*n == N) {
    *overflow |= overflow_bit;
    return;
  }
  items[(*n)++] = value;
}

// Folds another worker's copy of the same device into `into`.
void Merge(DeviceRecord& into, const DeviceRecord& from) {
  if (from.last_seen_ns > into.last_seen_ns) {
    into.vlan = from.vlan;
    into.port = from.port;
    into.last_seen_ns = from.last_seen_ns;
  }
  into.first_seen_ns = std::min(into.first_seen_ns, from.first_seen_ns);
  into.packets_from += from.packets_from;
  into.bytes_from += from.bytes_from;
  into.packets_to += from.packets_to;
  into.bytes_to += from.bytes_to;
  into.apps |= from.apps;
  into.overflow |= from.overflow;
  uint32_t* of = &into.overflow;
  for (int i = 0; i < from.n_ipv4; ++i) Unite(into.ipv4, &into.n_ipv4, from.ipv4[size_t(i)], of, kOverflowIpv4);
  for (int i = 0; i < from.n_ipv6; ++i) Unite(into.ipv6, &into.n_ipv6, from.ipv6[size_t(i)], of, kOverflowIpv6);
  for (int i = 0; i < from.n_services; ++i)
    Unite(into.services, &into.n_services, from.services[i], of, kOverflowServices);
  for (int i = 0; i < from.n_peers; ++i) Unite(into.peers, &into.n_peers, from.peers[i], of, kOverflowPeers);
}

std::vector<IpAddress> AddressesOf(const DeviceRecord& r) {
  std::vector<IpAddress> out;
  for (int i = 0; i < r.n_ipv4; ++i) {
    IpAddress a;
    std::memcpy(a.addr.data(), r.ipv4[size_t(i)].data(), 4);
    out.push_back(a);
  }
  for (int i = 0; i < r.n_ipv6; ++i) out.push_back({r.ipv6[size_t(i)], true});
  return out;
}

}  // namespace

Inventory::Entry& Inventory::EntryFor(const Mac& mac) {
  auto [it, fresh] = by_mac_.try_emplace(mac);
  if (fresh) {
    it->second.id = next_id_++;
    it->second.learned.mac = mac;
    by_id_[it->second.id] = mac;
  }
  return it->second;
}

std::optional<Mac> Inventory::OwnerOf(const IpAddress& a) const {
  if (auto it = static_owner_.find(a); it != static_owner_.end()) return it->second;
  if (auto it = learned_owner_.find(a); it != learned_owner_.end()) return it->second;
  return std::nullopt;
}

void Inventory::SetStatic(std::vector<StaticDevice> devices) {
  std::lock_guard lock(mu_);
  statics_ = std::move(devices);
  for (auto& [mac, e] : by_mac_) e.static_index = -1;
  static_owner_.clear();
  for (size_t i = 0; i < statics_.size(); ++i) {
    const StaticDevice& s = statics_[i];
    Entry& e = EntryFor(s.mac);
    if (e.static_index < 0) e.static_index = int(i);  // a MAC listed twice: the first record counts
    for (IpAddress a : s.ips) {
      if (!a.v6) std::fill(a.addr.begin() + 4, a.addr.end(), 0);
      static_owner_.try_emplace(a, s.mac);  // an address declared twice: the first device owns it
    }
  }
}

std::vector<IpConflict> Inventory::Update(const std::vector<const DeviceTable*>& tables) {
  std::lock_guard lock(mu_);
  // Merge by MAC. Each table's counters are totals since it started, so the merge is
  // recomputed from the snapshots every time, never accumulated.
  std::map<Mac, DeviceRecord> merged;
  for (const DeviceTable* t : tables) {
    if (t == nullptr) continue;
    t->Snapshot(&scratch_);
    for (const DeviceRecord& r : scratch_) {
      auto [it, fresh] = merged.try_emplace(r.mac, r);
      if (!fresh) Merge(it->second, r);
    }
  }

  // Ids for MACs new to the inventory, in order of first appearance on the wire.
  std::vector<std::pair<uint64_t, Mac>> fresh;
  for (const auto& [mac, r] : merged)
    if (!by_mac_.contains(mac)) fresh.emplace_back(r.first_seen_ns, mac);
  std::sort(fresh.begin(), fresh.end());
  for (const auto& [first_seen, mac] : fresh) EntryFor(mac);
  for (const auto& [mac, r] : merged) {
    Entry& e = by_mac_[mac];
    e.learned = r;
    e.seen = true;
  }

  // Conflicts. Addresses nobody owned yet go to the earliest of their claimants.
  std::vector<IpConflict> out;
  auto report = [&](const IpAddress& a, const Mac& owner, const Mac& claimant, uint64_t ts) {
    if (reported_.emplace(a, claimant).second) out.push_back({a.addr, a.v6, owner, claimant, ts});
  };
  struct Claim {
    uint64_t first_seen, last_seen;
    Mac mac;
  };
  std::map<IpAddress, std::vector<Claim>> unowned;
  for (const auto& [mac, r] : merged) {
    for (const IpAddress& a : AddressesOf(r)) {
      if (auto owner = OwnerOf(a)) {
        if (*owner != mac) report(a, *owner, mac, r.last_seen_ns);
      } else {
        unowned[a].push_back({r.first_seen_ns, r.last_seen_ns, mac});
      }
    }
  }
  for (auto& [a, claims] : unowned) {
    std::sort(claims.begin(), claims.end(), [](const Claim& x, const Claim& y) {
      return std::tie(x.first_seen, x.mac) < std::tie(y.first_seen, y.mac);
    });
    learned_owner_[a] = claims[0].mac;
    for (size_t i = 1; i < claims.size(); ++i) report(a, claims[0].mac, claims[i].mac, claims[i].last_seen);
  }
  return out;
}

std::optional<DeviceInfo> Inventory::Info(const Mac& mac) const {
  auto it = by_mac_.find(mac);
  if (it == by_mac_.end() || !it->second.listed()) return std::nullopt;
  const Entry& e = it->second;
  DeviceInfo d;
  d.id = e.id;
  d.learned = e.learned;
  d.seen = e.seen;
  if (e.static_index >= 0) {
    const StaticDevice& s = statics_[size_t(e.static_index)];
    d.name = s.name;
    d.device_class = s.device_class;
    d.zone = s.zone;
    d.criticality = s.criticality;
  }
  return d;
}

std::vector<DeviceInfo> Inventory::List() const {
  std::lock_guard lock(mu_);
  std::vector<DeviceInfo> out;
  for (const auto& [id, mac] : by_id_)
    if (auto d = Info(mac)) out.push_back(std::move(*d));
  return out;
}

std::optional<DeviceInfo> Inventory::ById(uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return Info(it->second);
}

std::optional<DeviceInfo> Inventory::ByMac(const Mac& mac) const {
  std::lock_guard lock(mu_);
  return Info(mac);
}

std::optional<DeviceInfo> Inventory::ByIp(const std::array<uint8_t, 16>& addr, bool v6) const {
  std::lock_guard lock(mu_);
  IpAddress a{addr, v6};
  if (!v6) std::fill(a.addr.begin() + 4, a.addr.end(), 0);
  auto owner = OwnerOf(a);
  if (!owner) return std::nullopt;
  return Info(*owner);
}

}  // namespace wardgate::device
