// Per-worker device table: what the bridge learns about each device on the clinical
// segment (MAC, VLAN, addresses, traffic each way, services, peers, app protocols) from
// the frames it forwards. Pure library: no DPDK, no allocation after construction, no
// exceptions, no clock (time is passed in).
//
// Threads: one DeviceTable per worker, written only by that worker. The control thread
// may call Snapshot()/size()/capacity() at any time: every record has a sequence
// counter (a seqlock) and every shared field is an atomic accessed relaxed, so a reader
// never blocks the worker and never sees a half-written record. counters() is plain
// and for the owning worker only (it mirrors them into its WorkerCounters).
//
// No eviction: devices are few and long-lived; when the table is full a new device is
// not learned (counted in table_full) and its frames are still forwarded.
// What is learned from which frames, and the limits: dataplane/device/README.md.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/memory/huge_array.h"
#include "dataplane/parse/packet.h"

namespace wardgate::device {

using Mac = std::array<uint8_t, 6>;

// "02:77:00:00:00:11" (lower case).
std::string MacText(const Mac& mac);
// Accepts "aa:bb:cc:dd:ee:ff" and "aa-bb-cc-dd-ee-ff", any case; nothing else.
bool ParseMac(std::string_view text, Mac* out);

inline constexpr uint32_t kNoDevice = 0xffffffff;

inline constexpr int kMaxIpv4 = 4, kMaxIpv6 = 4, kMaxServices = 16, kMaxPeers = 32;

struct Service {  // a port the device answered on (it was the server of a flow)
  uint8_t proto = 0;
  uint16_t port = 0;
  bool operator==(const Service&) const = default;
};

struct Peer {  // an address the device talked to; IPv4 in the first 4 bytes, rest zero
  std::array<uint8_t, 16> addr{};
  bool v6 = false;
  bool operator==(const Peer&) const = default;
};

// DeviceRecord::apps: application protocols seen (more come later).
inline constexpr uint32_t kAppHl7 = 1, kAppDicom = 2;

// DeviceRecord::overflow: which lists were full when something new came (the record
// is incomplete there).
inline constexpr uint32_t kOverflowIpv4 = 1, kOverflowIpv6 = 2, kOverflowServices = 4, kOverflowPeers = 8;

struct DeviceRecord {  // a consistent copy of one device's learned facts
  Mac mac{};
  uint16_t vlan = 0;   // innermost VID of its latest frame, 0 untagged
  uint16_t port = 0;   // the device-facing port it was latest seen on
  std::array<std::array<uint8_t, 4>, kMaxIpv4> ipv4{};
  uint8_t n_ipv4 = 0;
  std::array<std::array<uint8_t, 16>, kMaxIpv6> ipv6{};
  uint8_t n_ipv6 = 0;
  uint64_t first_seen_ns = 0, last_seen_ns = 0;
  uint64_t packets_from = 0, bytes_from = 0, packets_to = 0, bytes_to = 0;  // from = sent by the device
  Service services[kMaxServices];
  uint8_t n_services = 0;
  Peer peers[kMaxPeers];
  uint8_t n_peers = 0;
  uint32_t apps = 0;      // kApp* bits
  uint32_t overflow = 0;  // kOverflow* bits
};

struct DeviceTableCounters {  // single writer: the owning worker
  uint64_t learned = 0;       // devices added
  uint64_t table_full = 0;    // frames of a new device not learned because the table was full
  uint64_t ip_learned = 0;    // addresses added to devices (IPv4 and IPv6)
};

class DeviceTable {
 public:
  // Preallocates and touches everything: `capacity` records and an index of at least
  // twice as many entries (power of two), so probes stay short even when full.
  // `hash_seed`: pass a random value, so MACs chosen to collide cannot be precomputed.
  explicit DeviceTable(uint32_t capacity, uint64_t hash_seed = 0);
  DeviceTable(const DeviceTable&) = delete;
  DeviceTable& operator=(const DeviceTable&) = delete;

  // Every bridged frame that parsed. `from_device`: received on a device-facing port
  // (`port` is that port; for frames from the network side pass the pair's device
  // port). Learns the device end (source MAC when from_device, destination MAC when
  // not and unicast), counts its traffic each way and learns its addresses (README).
  // Returns the device end's slot, or kNoDevice (no device end, or the table is full:
  // then counted in table_full).
  uint32_t Observe(const parse::PacketView& v, const uint8_t* frame, uint32_t frame_len, bool from_device,
                   uint16_t port, uint64_t now_ns);

  // Slot of a MAC, or kNoDevice. One index probe on average.
  uint32_t Find(const Mac& mac) const { return FindKey(MacKey(mac)); }

  // Called by the worker when a new flow is seen (never per packet). A slot of
  // kNoDevice is ignored. Each adds once; a full list sets its kOverflow* bit.
  void NoteService(uint32_t slot, uint8_t proto, uint16_t port);  // the device was the server
  void NotePeer(uint32_t slot, const std::array<uint8_t, 16>& addr, bool v6);
  void NoteApp(uint32_t slot, uint32_t app_bits);

  // Control thread: replaces *out with a consistent copy of every device, in slot order.
  // Never blocks the worker (retries a record the worker is writing).
  void Snapshot(std::vector<DeviceRecord>* out) const;

  const DeviceTableCounters& counters() const { return counters_; }
  uint32_t size() const { return size_.load(std::memory_order_acquire); }
  uint32_t capacity() const { return capacity_; }

 private:
  // One device as shared with the reader: every field the reader copies is an atomic,
  // written relaxed between the two seq stores. 768 bytes; the first cache line holds
  // all a known device's frame touches (IPv4, nothing new).
  struct alignas(64) Record {
    std::atomic<uint32_t> seq{0};    // odd while the worker writes
    std::atomic<uint32_t> where{0};  // vlan << 16 | port
    std::atomic<uint64_t> mac{0};    // MacKey()
    std::atomic<uint64_t> last_seen_ns{0};
    std::atomic<uint64_t> packets_from{0}, bytes_from{0}, packets_to{0}, bytes_to{0};
    uint32_t last_ipv4 = 0;          // worker only: the IPv4 source last matched or added, 0 none
    // Second line on.
    alignas(64) std::array<uint8_t, 16> last_ipv6{};  // worker only: the same for IPv6, zero none
    std::atomic<uint64_t> first_seen_ns{0};
    std::atomic<uint32_t> apps{0}, overflow{0};
    std::atomic<uint8_t> n_ipv4{0}, n_ipv6{0}, n_services{0}, n_peers{0};
    std::atomic<uint32_t> peers_v6{0};    // bit i: peers[i] is IPv6
    std::atomic<uint32_t> ipv4[kMaxIpv4]{};          // as loaded from the wire (byte order kept)
    std::atomic<uint64_t> ipv6[kMaxIpv6][2]{};
    std::atomic<uint32_t> services[kMaxServices]{};  // proto << 16 | port
    std::atomic<uint64_t> peers[kMaxPeers][2]{};
  };

  // The index: open addressing, linear probing, never deleted from. key 0 is empty.
  struct IndexEntry {
    uint64_t key = 0;  // MacKey()
    uint32_t slot = 0;
  };

  // The per-frame path, inline. A key is the MAC's 48 bits plus bit 48, so no key is 0.
  // Loaded as 4 + 2 bytes straight from the frame (one 6-byte copy to the stack and an
  // 8-byte load back would defeat store forwarding: a stall per frame).
  static uint64_t KeyAt(const uint8_t* mac) {
    uint32_t lo;
    uint16_t hi;
    std::memcpy(&lo, mac, 4);
    std::memcpy(&hi, mac + 4, 2);
    return lo | uint64_t(hi) << 32 | uint64_t(1) << 48;
  }
  static uint64_t MacKey(const Mac& mac) { return KeyAt(mac.data()); }
  static Mac KeyMac(uint64_t key) {  // the inverse
    const uint32_t lo = uint32_t(key);
    const uint16_t hi = uint16_t(key >> 32);
    Mac m;
    std::memcpy(m.data(), &lo, 4);
    std::memcpy(m.data() + 4, &hi, 2);
    return m;
  }
  uint64_t Hash(uint64_t key) const {  // murmur3 finaliser: every MAC bit moves the low bits
    uint64_t h = key ^ seed_;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
  }
  uint32_t FindKey(uint64_t key) const {
    for (uint64_t i = Hash(key) & index_mask_;; i = (i + 1) & index_mask_) {
      const IndexEntry& e = index_[i];
      if (e.key == key) return e.slot;
      if (e.key == 0) return kNoDevice;  // at most half full: an empty entry always ends the probe
    }
  }
  uint32_t Learn(uint64_t key, uint32_t where, uint64_t now_ns);  // new slot (unpublished), or kNoDevice when full

  // Writer side of the seqlock: every change to a published record is inside one.
  // BeginWrite returns the odd value it stored, for EndWrite (no reload of seq).
  [[nodiscard]] static uint32_t BeginWrite(Record& r) {
    const uint32_t odd = r.seq.load(std::memory_order_relaxed) + 1;
    r.seq.store(odd, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);  // the odd seq is seen before any new field
    return odd;
  }
  static void EndWrite(Record& r, uint32_t odd) { r.seq.store(odd + 1, std::memory_order_release); }
  // Inside a write: add an address unless listed (a full list sets its overflow bit);
  // true if added. Also remembers it as the last address, for the per-frame check.
  bool AddIpv4(Record& r, uint32_t addr);
  bool AddIpv6(Record& r, const std::array<uint8_t, 16>& addr);

  static void Copy(const Record& r, DeviceRecord* out);  // relaxed loads, counts clamped

  uint32_t capacity_;
  uint64_t index_mask_;
  uint64_t seed_;
  std::atomic<uint32_t> size_{0};  // records [0, size_) are published
  memory::HugeArray<Record> records_;
  memory::HugeArray<IndexEntry> index_;
  DeviceTableCounters counters_;
};

}  // namespace wardgate::device
