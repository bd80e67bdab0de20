#include "dataplane/device/device_table.h"

#include <algorithm>
#include <cstring>
#include <thread>

namespace wardgate::device {
namespace {

constexpr uint32_t kEthAddrsLen = 12;  // destination and source MAC

// BOOTP (RFC 951) / DHCP (RFC 2131) fixed fields, from the start of the UDP payload.
constexpr size_t kBootpYiaddr = 16;
constexpr size_t kBootpChaddr = 28;
constexpr size_t kBootpCookie = 236;
constexpr size_t kBootpOptions = 240;
constexpr uint8_t kBootReply = 2;
constexpr uint8_t kDhcpOptPad = 0, kDhcpOptEnd = 255, kDhcpOptMessageType = 53;
constexpr uint8_t kDhcpAck = 5;
constexpr uint16_t kBootpServerPort = 67, kBootpClientPort = 68;

constexpr uint8_t kIcmpv6NeighborAdvert = 136;
constexpr size_t kNaTargetOffset = 8;  // RFC 4861 4.4: type, code, checksum, flags+reserved, target

bool IsGroup(const uint8_t* mac) { return mac[0] & 0x01; }  // multicast, broadcast included
constexpr Mac kZeroMac{};  // not an address: no device

// An address a device can hold as its own: not unspecified, loopback, multicast,
// broadcast or reserved.
bool UsableIpv4(uint32_t raw) {  // as loaded from the wire
  uint8_t a[4];
  std::memcpy(a, &raw, 4);
  return a[0] != 0 && a[0] != 127 && a[0] < 224;
}
bool UsableIpv6(const std::array<uint8_t, 16>& a) {
  if (a[0] == 0xff) return false;  // multicast
  const bool high_zero = std::all_of(a.begin(), a.end() - 1, [](uint8_t b) { return b == 0; });
  return !(high_zero && a[15] <= 1);  // :: and ::1
}

uint32_t Load32Raw(const uint8_t* p) {  // wire byte order kept
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The single writer's read-modify-write: no locked instruction needed.
void Add(std::atomic<uint64_t>& a, uint64_t d) {
  a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}
void SetBits(std::atomic<uint32_t>& a, uint32_t bits) {
  a.store(a.load(std::memory_order_relaxed) | bits, std::memory_order_relaxed);
}

// A DHCP ACK (UDP 67 -> 68) in the frame: the client's hardware address and the
// address the server gave it. Every offset is checked against the UDP payload and the
// frame, so truncated or bogus messages are refused, never read past.
bool ParseDhcpAck(const parse::PacketView& v, const uint8_t* frame, uint32_t frame_len, Mac* chaddr,
                  uint32_t* yiaddr) {
  if (v.l3 != parse::L3::kIpv4 || v.ip_proto != parse::kProtoUdp || v.src_port != kBootpServerPort ||
      v.dst_port != kBootpClientPort || (v.is_fragment && !v.is_first_fragment))
    return false;
  const size_t begin = v.payload_offset, end = begin + v.payload_len;
  if (begin == 0 || end > frame_len || end - begin < kBootpOptions) return false;
  const uint8_t* m = frame + begin;
  const size_t len = end - begin;
  if (m[0] != kBootReply || m[1] != 1 || m[2] != 6) return false;  // Ethernet, 6-byte hardware address
  static constexpr uint8_t kCookie[4] = {99, 130, 83, 99};
  if (std::memcmp(m + kBootpCookie, kCookie, 4) != 0) return false;
  int type = -1;
  for (size_t i = kBootpOptions; i < len;) {
    const uint8_t code = m[i];
    if (code == kDhcpOptEnd) break;
    if (code == kDhcpOptPad) {
      ++i;
      continue;
    }
    if (len - i < 2 || m[i + 1] > len - i - 2) return false;  // option runs past the message
    if (code == kDhcpOptMessageType && m[i + 1] == 1) type = m[i + 2];
    i += 2 + size_t(m[i + 1]);
  }
  if (type != kDhcpAck) return false;
  std::memcpy(chaddr->data(), m + kBootpChaddr, 6);
  *yiaddr = Load32Raw(m + kBootpYiaddr);
  return true;
}

}  // namespace

std::string MacText(const Mac& mac) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(17, ':');
  for (int i = 0; i < 6; ++i) {
    s[size_t(i * 3)] = kHex[mac[size_t(i)] >> 4];
    s[size_t(i * 3 + 1)] = kHex[mac[size_t(i)] & 0xf];
  }
  return s;
}

bool ParseMac(std::string_view text, Mac* out) {
  if (text.size() != 17) return false;
  const char sep = text[2];
  if (sep != ':' && sep != '-') return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Mac m;
  for (size_t i = 0; i < 6; ++i) {
    const int hi = nibble(text[i * 3]), lo = nibble(text[i * 3 + 1]);
    if (hi < 0 || lo < 0) return false;
    if (i < 5 && text[i * 3 + 2] != sep) return false;  // one separator throughout
    m[i] = uint8_t(hi << 4 | lo);
  }
  *out = m;
  return true;
}

DeviceTable::DeviceTable(uint32_t capacity, uint64_t hash_seed)
    : capacity_(capacity), seed_(hash_seed), records_(capacity) {
  uint64_t entries = 2;
  while (entries < 2 * uint64_t(capacity)) entries <<= 1;
  index_mask_ = entries - 1;
  index_ = memory::HugeArray<IndexEntry>(entries);
}

uint32_t DeviceTable::Learn(uint64_t key, uint32_t where, uint64_t now_ns) {
  const uint32_t slot = size_.load(std::memory_order_relaxed);
  if (slot == capacity_) {
    ++counters_.table_full;
    return kNoDevice;
  }
  // Not published here: Observe() releases size_ once the first frame is recorded, so
  // a reader never sees a device with nothing counted.
  Record& r = records_[slot];
  r.mac.store(key, std::memory_order_relaxed);
  r.where.store(where, std::memory_order_relaxed);
  r.first_seen_ns.store(now_ns, std::memory_order_relaxed);
  r.last_seen_ns.store(now_ns, std::memory_order_relaxed);
  uint64_t i = Hash(key) & index_mask_;
  while (index_[i].key != 0) i = (i + 1) & index_mask_;
  index_[i] = {key, slot};
  ++counters_.learned;
  return slot;
}

bool DeviceTable::AddIpv4(Record& r, uint32_t addr) {
  r.last_ipv4 = addr;
  const uint8_t n = r.n_ipv4.load(std::memory_order_relaxed);
  for (uint8_t i = 0; i < n; ++i)
    if (r.ipv4[i].load(std::memory_order_relaxed) == addr) return false;
  if (n == kMaxIpv4) {
    SetBits(r.overflow, kOverflowIpv4);
    return false;
  }
  r.ipv4[n].store(addr, std::memory_order_relaxed);
  r.n_ipv4.store(uint8_t(n + 1), std::memory_order_relaxed);
  ++counters_.ip_learned;
  return true;
}

bool DeviceTable::AddIpv6(Record& r, const std::array<uint8_t, 16>& addr) {
  r.last_ipv6 = addr;
  uint64_t w[2];
  std::memcpy(w, addr.data(), 16);
  const uint8_t n = r.n_ipv6.load(std::memory_order_relaxed);
  for (uint8_t i = 0; i < n; ++i)
    if (r.ipv6[i][0].load(std::memory_order_relaxed) == w[0] && r.ipv6[i][1].load(std::memory_order_relaxed) == w[1])
      return false;
  if (n == kMaxIpv6) {
    SetBits(r.overflow, kOverflowIpv6);
    return false;
  }
  r.ipv6[n][0].store(w[0], std::memory_order_relaxed);
  r.ipv6[n][1].store(w[1], std::memory_order_relaxed);
  r.n_ipv6.store(uint8_t(n + 1), std::memory_order_relaxed);
  ++counters_.ip_learned;
  return true;
}

uint32_t DeviceTable::Observe(const parse::PacketView& v, const uint8_t* frame, uint32_t frame_len, bool from_device,
                              uint16_t port, uint64_t now_ns) {
  if (frame == nullptr || frame_len < kEthAddrsLen) return kNoDevice;
  const uint8_t* dst = frame;
  const uint8_t* src = frame + 6;
  const uint8_t* end_mac = from_device ? src : dst;  // the device end of the frame
  const uint64_t key = KeyAt(end_mac);
  if (key == KeyAt(kZeroMac.data())) return kNoDevice;
  if (IsGroup(end_mac)) {
    // No device end. One exception: a DHCP ACK broadcast to a client (broadcast flag,
    // RFC 2131 4.1) still teaches the address of a device already known by chaddr.
    Mac chaddr;
    uint32_t yiaddr;
    if (!from_device && ParseDhcpAck(v, frame, frame_len, &chaddr, &yiaddr) &&
        UsableIpv4(yiaddr)) {
      const uint32_t slot = Find(chaddr);
      if (slot != kNoDevice && records_[slot].last_ipv4 != yiaddr) {
        Record& r = records_[slot];
        const uint32_t odd = BeginWrite(r);
        AddIpv4(r, yiaddr);
        EndWrite(r, odd);
      }
    }
    return kNoDevice;
  }

  const uint8_t tags = std::min<uint8_t>(v.vlan_count, parse::kMaxVlanTags);
  const uint16_t vlan = tags ? v.vlan_ids[tags - 1] : 0;
  const uint32_t where = uint32_t(vlan) << 16 | port;
  uint32_t slot = FindKey(key);
  const bool fresh = slot == kNoDevice;
  if (fresh) {
    slot = Learn(key, where, now_ns);
    if (slot == kNoDevice) return kNoDevice;
  }

  Record& r = records_[slot];
  const uint32_t odd = BeginWrite(r);
  r.last_seen_ns.store(now_ns, std::memory_order_relaxed);
  if (r.where.load(std::memory_order_relaxed) != where) r.where.store(where, std::memory_order_relaxed);
  if (from_device) {
    Add(r.packets_from, 1);
    Add(r.bytes_from, frame_len);
    // Addresses the device uses as its own. The last-address checks keep a known
    // device's frames from scanning the address lists.
    if (v.l3 == parse::L3::kIpv4) {
      const uint32_t a = Load32Raw(v.src_addr.data());
      if (a != r.last_ipv4 && UsableIpv4(a)) AddIpv4(r, a);
    } else if (v.l3 == parse::L3::kIpv6) {
      if (v.src_addr != r.last_ipv6 && UsableIpv6(v.src_addr)) AddIpv6(r, v.src_addr);
      if (v.ip_proto == parse::kProtoIcmpv6 && v.icmp_type == kIcmpv6NeighborAdvert && v.icmp_code == 0) {
        // The target of an advertisement the device sends is an address it claims
        // (RFC 4861 7.2.4), even before it sources traffic from it.
        const size_t target = size_t(v.l4_offset) + kNaTargetOffset;
        const size_t end = std::min<size_t>(size_t(v.payload_offset) + v.payload_len, frame_len);
        if (v.l4_offset != 0 && target + 16 <= end) {
          std::array<uint8_t, 16> t;
          std::memcpy(t.data(), frame + target, 16);
          if (t != r.last_ipv6 && UsableIpv6(t)) AddIpv6(r, t);
        }
      }
    } else if (v.l3 == parse::L3::kArp && (v.arp_op == 1 || v.arp_op == 2)) {
      // Sender protocol address, when the sender hardware address is the frame's
      // source (not a proxy or a forged reply for someone else).
      const size_t sha = size_t(v.l3_offset) + 8;
      const uint32_t a = Load32Raw(v.src_addr.data());
      if (sha + 6 <= frame_len && std::memcmp(frame + sha, src, 6) == 0 && a != r.last_ipv4 &&
          UsableIpv4(a))
        AddIpv4(r, a);
    }
  } else {
    Add(r.packets_to, 1);
    Add(r.bytes_to, frame_len);
    // A network-side source address is not the device's. The one address learned
    // from this side is the one a DHCP server hands to the device.
    Mac chaddr;
    uint32_t yiaddr;
    if (v.dst_port == kBootpClientPort && ParseDhcpAck(v, frame, frame_len, &chaddr, &yiaddr) &&
        std::memcmp(chaddr.data(), end_mac, 6) == 0 &&
        yiaddr != r.last_ipv4 && UsableIpv4(yiaddr))
      AddIpv4(r, yiaddr);
  }
  EndWrite(r, odd);
  if (fresh) size_.store(slot + 1, std::memory_order_release);
  return slot;
}

void DeviceTable::NoteService(uint32_t slot, uint8_t proto, uint16_t port) {
  if (slot >= size_.load(std::memory_order_relaxed)) return;
  Record& r = records_[slot];
  const uint32_t s = uint32_t(proto) << 16 | port;
  const uint8_t n = r.n_services.load(std::memory_order_relaxed);
  for (uint8_t i = 0; i < n; ++i)
    if (r.services[i].load(std::memory_order_relaxed) == s) return;
  if (n == kMaxServices && (r.overflow.load(std::memory_order_relaxed) & kOverflowServices)) return;
  const uint32_t odd = BeginWrite(r);
  if (n == kMaxServices) {
    SetBits(r.overflow, kOverflowServices);
  } else {
    r.services[n].store(s, std::memory_order_relaxed);
    r.n_services.store(uint8_t(n + 1), std::memory_order_relaxed);
  }
  EndWrite(r, odd);
}

void DeviceTable::NotePeer(uint32_t slot, const std::array<uint8_t, 16>& addr, bool v6) {
  if (slot >= size_.load(std::memory_order_relaxed)) return;
  Record& r = records_[slot];
  uint64_t w[2] = {0, 0};
  std::memcpy(w, addr.data(), v6 ? 16 : 4);  // IPv4: the rest stays zero, whatever the caller left there
  const uint32_t v6_bits = r.peers_v6.load(std::memory_order_relaxed);
  const uint8_t n = r.n_peers.load(std::memory_order_relaxed);
  for (uint8_t i = 0; i < n; ++i)
    if (r.peers[i][0].load(std::memory_order_relaxed) == w[0] &&
        r.peers[i][1].load(std::memory_order_relaxed) == w[1] && bool(v6_bits >> i & 1) == v6)
      return;
  if (n == kMaxPeers && (r.overflow.load(std::memory_order_relaxed) & kOverflowPeers)) return;
  const uint32_t odd = BeginWrite(r);
  if (n == kMaxPeers) {
    SetBits(r.overflow, kOverflowPeers);
  } else {
    r.peers[n][0].store(w[0], std::memory_order_relaxed);
    r.peers[n][1].store(w[1], std::memory_order_relaxed);
    if (v6) r.peers_v6.store(v6_bits | 1u << n, std::memory_order_relaxed);
    r.n_peers.store(uint8_t(n + 1), std::memory_order_relaxed);
  }
  EndWrite(r, odd);
}

void DeviceTable::NoteApp(uint32_t slot, uint32_t app_bits) {
  if (slot >= size_.load(std::memory_order_relaxed)) return;
  Record& r = records_[slot];
  if ((r.apps.load(std::memory_order_relaxed) & app_bits) == app_bits) return;
  const uint32_t odd = BeginWrite(r);
  SetBits(r.apps, app_bits);
  EndWrite(r, odd);
}

void DeviceTable::Copy(const Record& r, DeviceRecord* d) {
  constexpr auto kR = std::memory_order_relaxed;
  d->mac = KeyMac(r.mac.load(kR));
  const uint32_t where = r.where.load(kR);
  d->vlan = uint16_t(where >> 16);
  d->port = uint16_t(where);
  // Counts are clamped: a torn copy is discarded by the caller, but must not index out of range first.
  d->n_ipv4 = std::min<uint8_t>(r.n_ipv4.load(kR), kMaxIpv4);
  for (int i = 0; i < d->n_ipv4; ++i) {
    const uint32_t a = r.ipv4[i].load(kR);
    std::memcpy(d->ipv4[size_t(i)].data(), &a, 4);
  }
  d->n_ipv6 = std::min<uint8_t>(r.n_ipv6.load(kR), kMaxIpv6);
  for (int i = 0; i < d->n_ipv6; ++i) {
    const uint64_t w[2] = {r.ipv6[i][0].load(kR), r.ipv6[i][1].load(kR)};
    std::memcpy(d->ipv6[size_t(i)].data(), w, 16);
  }
  d->first_seen_ns = r.first_seen_ns.load(kR);
  d->last_seen_ns = r.last_seen_ns.load(kR);
  d->packets_from = r.packets_from.load(kR);
  d->bytes_from = r.bytes_from.load(kR);
  d->packets_to = r.packets_to.load(kR);
  d->bytes_to = r.bytes_to.load(kR);
  d->n_services = std::min<uint8_t>(r.n_services.load(kR), kMaxServices);
  for (int i = 0; i < d->n_services; ++i) {
    const uint32_t s = r.services[i].load(kR);
    d->services[i] = {uint8_t(s >> 16), uint16_t(s)};
  }
  d->n_peers = std::min<uint8_t>(r.n_peers.load(kR), kMaxPeers);
  const uint32_t v6_bits = r.peers_v6.load(kR);
  for (int i = 0; i < d->n_peers; ++i) {
    const uint64_t w[2] = {r.peers[i][0].load(kR), r.peers[i][1].load(kR)};
    std::memcpy(d->peers[i].addr.data(), w, 16);
    d->peers[i].v6 = v6_bits >> i & 1;
  }
  d->apps = r.apps.load(kR);
  d->overflow = r.overflow.load(kR);
}

void DeviceTable::Snapshot(std::vector<DeviceRecord>* out) const {
  const uint32_t n = size_.load(std::memory_order_acquire);
  out->assign(n, DeviceRecord{});
  for (uint32_t i = 0; i < n; ++i) {
    const Record& r = records_[i];
    DeviceRecord& d = (*out)[i];
    for (uint32_t attempt = 0;; ++attempt) {
      const uint32_t s = r.seq.load(std::memory_order_acquire);
      if ((s & 1) == 0) {
        Copy(r, &d);
        std::atomic_thread_fence(std::memory_order_acquire);  // the copy is complete before seq is read again
        if (r.seq.load(std::memory_order_relaxed) == s) break;
        d = DeviceRecord{};  // entries past the final counts must stay zero
      }
      // The worker holds a record odd for a few ns; if this thread is preempted
      // against a busy writer, give up the CPU now and then rather than spin.
      if (attempt % 64 == 63) std::this_thread::yield();
    }
  }
}

}  // namespace wardgate::device
