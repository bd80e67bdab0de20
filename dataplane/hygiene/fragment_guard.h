// Stack hygiene toward the device segment: overlapping IP fragments (teardrop, and the
// overlap-based evasions whose outcome depends on the receiver's reassembly policy).
// Pure library: no DPDK, no allocation after construction, no exceptions in Check(),
// no clock (time is passed in).
//
// Threads: one FragmentGuard per worker, used only by that worker. Both fragments of a
// datagram reach the same worker only if the port hashes on addresses alone for
// fragments (RSS does: fragments carry no ports), so a train split across workers is
// checked in parts; DESIGN.md's symmetric RSS gives that.
//
// The guard does not reassemble and keeps no data: per train (datagram being
// fragmented) it records the byte ranges [frag_offset, frag_offset + frag_len) it has
// let through, and where the datagram ends once the last fragment was seen, and flags a
// fragment whose data a receiver would have to merge with data it already holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dataplane/memory/huge_array.h"
#include "dataplane/parse/packet.h"

namespace wardgate::hygiene {

struct FragmentGuardConfig {
  uint32_t capacity = 4096;     // fragment trains tracked at once (rounded up to a power of two, >= 8)
  uint32_t timeout_ms = 30000;  // a train is forgotten this long after its first fragment (RFC 791's 15 s
                                // upper bound doubled; Linux ipfrag_time is 30 s)
  uint64_t hash_seed = 0;       // pass a random value: keeps bucket collisions unpredictable
};

class FragmentGuard {
 public:
  static constexpr uint32_t kMaxRanges = 16;  // fragments recorded per train
  static constexpr uint32_t kWays = 8;        // trains per hash bucket; a train may sit in either
                                              // of two buckets: 16 tags are the bound on work per Check

  // Preallocates and touches the whole table.
  explicit FragmentGuard(const FragmentGuardConfig& config);
  FragmentGuard(const FragmentGuard&) = delete;
  FragmentGuard& operator=(const FragmentGuard&) = delete;

  enum class Result : uint8_t {
    kOk,
    kOverlap,    // drop: overlaps data already let through, contradicts the train's end, or > 64 KiB
    kUntracked,  // allowed, counted: both buckets are full of live trains, or the train has more
                 // than kMaxRanges fragments (no longer recorded; known ranges still checked)
  };
  static std::string_view ResultName(Result r);  // "ok", "overlap", "untracked"

  // Every IPv4/IPv6 fragment (view.is_fragment, as parsed) heading to the device segment.
  // Trains are keyed by (family, src, dst, id, and for IPv4 the protocol: RFC 791 3.2;
  // IPv6 reassembles by addresses and id alone, RFC 8200 4.5, so the next header is not
  // part of the key there). Returns kOverlap when the fragment
  //  - overlaps a range already let through (an exact duplicate, same offset and length,
  //    is a retransmission: kOk, not recorded again);
  //  - ends past the end set by the train's last fragment (MF clear), or is a second last
  //    fragment with another end, or is a last fragment ending before data already seen
  //    (the checks Linux ip_frag_queue makes);
  //  - makes the datagram exceed 65535 bytes (IPv4 header included: ping of death).
  // A fragment returning kOverlap is not recorded (the worker drops it). A train whose
  // ranges cover [0, end) is complete and its slot freed at once, as the receiver frees
  // its queue; a later fragment with the same key starts a new train, as it does there.
  // IPv6 atomic fragments (offset 0, M clear: RFC 6946) and non-fragments: kOk, untouched.
  Result Check(const parse::PacketView& v, uint64_t now_ns) noexcept;

  // Single writer: the owning worker.
  struct Counters {
    uint64_t trains = 0;     // trains started
    uint64_t overlaps = 0;   // kOverlap results
    uint64_t untracked = 0;  // kUntracked results
    uint64_t expired = 0;    // slots reclaimed from trains older than the timeout
    uint64_t completed = 0;  // trains whose every byte was seen (slot freed)
  };
  const Counters& counters() const { return counters_; }

  uint32_t capacity() const { return (bucket_mask_ + 1) * kWays; }
  size_t MemoryBytes() const { return size_t(bucket_mask_ + 1) * sizeof(Bucket); }

 private:
  static constexpr uint8_t kHasLast = 0x01;  // the last fragment (MF clear) was seen: last_end is set

  // 128 bytes: the lookup reads only the first line (key, age); the ranges are the second.
  struct alignas(64) Train {
    uint8_t src[16];
    uint8_t dst[16];
    uint32_t id;
    uint8_t proto;   // IPv4 protocol; 0 for IPv6
    uint8_t family;  // 4 or 6
    uint8_t n;       // ranges recorded; at kMaxRanges the train is no longer recorded
    uint8_t flags;   // kHasLast
    uint64_t first_ns;
    uint32_t last_end;  // end of the datagram's data (kHasLast)
    uint32_t max_end;   // highest end recorded
    uint32_t covered;   // bytes recorded (ranges are disjoint)
    // second line
    alignas(64) uint16_t start[kMaxRanges];
    uint16_t end[kMaxRanges];
  };
  // tag 0: way empty; else the hash's high bits | 1.
  struct alignas(64) Bucket {
    uint32_t tag[kWays];
    Train train[kWays];
  };

  struct Key {
    uint64_t w[4];  // src, dst (IPv4 in the first 4 bytes of each 16, rest zero)
    uint64_t tail;  // id | proto << 32 | family << 40
  };
  static Key MakeKey(const parse::PacketView& v);
  uint64_t Hash(const Key& k) const;
  static bool SameKey(const Train& t, const Key& k);
  bool Expired(const Train& t, uint64_t now_ns) const {
    return now_ns >= t.first_ns && now_ns - t.first_ns >= timeout_ns_;
  }
  static void Start(Train& t, const Key& k, uint64_t now_ns);
  Result Add(Bucket& b, uint32_t way, uint32_t s, uint32_t e, bool more);

  memory::HugeArray<Bucket> buckets_;
  uint32_t bucket_mask_ = 0;
  uint64_t timeout_ns_ = 0;
  uint64_t seed_[4] = {};
  Counters counters_;
};

}  // namespace wardgate::hygiene
