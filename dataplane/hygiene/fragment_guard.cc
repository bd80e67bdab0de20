#include "dataplane/hygiene/fragment_guard.h"

#include <algorithm>
#include <bit>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace wardgate::hygiene {

static_assert(sizeof(FragmentGuard::Counters) == 5 * sizeof(uint64_t));

namespace {

constexpr size_t kMaxDatagram = 65535;  // IPv4 total length / IPv6 payload length field

// 64x64->128 multiply folded to 64 bits (the wyhash mixer, as in the flow table).
inline uint64_t Mix(uint64_t a, uint64_t b) {
  const __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// Bit w set where tags[w] == x (tags: kWays = 8 values, 16-byte aligned).
inline uint32_t TagMask(const uint32_t* tags, uint32_t x) {
#if defined(__SSE2__)
  const __m128i k = _mm_set1_epi32(static_cast<int>(x));
  const __m128i lo = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(tags)), k);
  const __m128i hi = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(tags + 4)), k);
  return static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(lo))) |
         static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(hi))) << 4;
#else
  uint32_t m = 0;
  for (uint32_t w = 0; w < 8; ++w) m |= uint32_t{tags[w] == x} << w;
  return m;
#endif
}

}  // namespace

FragmentGuard::FragmentGuard(const FragmentGuardConfig& config) {
  static_assert(sizeof(Train) == 128, "Train is two cache lines; keep it so");
  static_assert(offsetof(Train, start) == 64, "key and age in the first line");
  static_assert(kWays == 8 && offsetof(Bucket, tag) == 0 && alignof(Bucket) >= 16, "TagMask loads");
  const uint32_t cap = std::max<uint32_t>(config.capacity, kWays);
  const uint32_t buckets = std::bit_ceil(std::min<uint32_t>(cap, 1u << 30)) / kWays;
  buckets_ = memory::HugeArray<Bucket>(buckets);
  bucket_mask_ = buckets - 1;
  timeout_ns_ = uint64_t{config.timeout_ms} * 1'000'000ull;
  uint64_t s = config.hash_seed ^ 0x243f6a8885a308d3ull;
  for (auto& v : seed_) {
    s = Mix(s ^ 0xa0761d6478bd642full, 0xe7037ed1a0b428dbull);
    v = s | 1;
  }
}

std::string_view FragmentGuard::ResultName(Result r) {
  switch (r) {
    case Result::kOk:
      return "ok";
    case Result::kOverlap:
      return "overlap";
    case Result::kUntracked:
      return "untracked";
  }
  return "unknown";
}

FragmentGuard::Key FragmentGuard::MakeKey(const parse::PacketView& v) {
  Key k;
  std::memcpy(k.w, v.src_addr.data(), 16);
  std::memcpy(k.w + 2, v.dst_addr.data(), 16);
  const bool v4 = v.l3 == parse::L3::kIpv4;
  k.tail = uint64_t{v.frag_id} | uint64_t{v4 ? v.ip_proto : uint8_t{0}} << 32 | uint64_t{v4 ? 4u : 6u} << 40;
  return k;
}

uint64_t FragmentGuard::Hash(const Key& k) const {
  const uint64_t h = Mix(k.w[0] ^ seed_[0], k.w[1] ^ seed_[1]) ^ Mix(k.w[2] ^ seed_[2], k.w[3] ^ seed_[3]) ^
                     Mix(k.tail ^ seed_[1], seed_[2]);
  return Mix(h ^ seed_[3], 0x9fb21c651e98df25ull);
}

inline bool FragmentGuard::SameKey(const Train& t, const Key& k) {
  uint64_t w[4];
  std::memcpy(w, t.src, 16);
  std::memcpy(w + 2, t.dst, 16);
  const uint64_t tail = uint64_t{t.id} | uint64_t{t.proto} << 32 | uint64_t{t.family} << 40;
  return ((w[0] ^ k.w[0]) | (w[1] ^ k.w[1]) | (w[2] ^ k.w[2]) | (w[3] ^ k.w[3]) | (tail ^ k.tail)) == 0;
}

void FragmentGuard::Start(Train& t, const Key& k, uint64_t now_ns) {
  std::memcpy(t.src, k.w, 16);
  std::memcpy(t.dst, k.w + 2, 16);
  t.id = static_cast<uint32_t>(k.tail);
  t.proto = static_cast<uint8_t>(k.tail >> 32);
  t.family = static_cast<uint8_t>(k.tail >> 40);
  t.n = 0;
  t.flags = 0;
  t.first_ns = now_ns;
  t.last_end = 0;
  t.max_end = 0;
  t.covered = 0;
}

FragmentGuard::Result FragmentGuard::Check(const parse::PacketView& v, uint64_t now_ns) noexcept {
  if (!v.is_fragment || (v.l3 != parse::L3::kIpv4 && v.l3 != parse::L3::kIpv6)) return Result::kOk;
  if (v.frag_offset == 0 && !v.frag_more) return Result::kOk;  // IPv6 atomic fragment: nothing to reassemble

  const uint32_t s = v.frag_offset;
  const uint32_t e = s + v.frag_len;
  // Reassembled size: IPv4 counts its header in the total length; IPv6's payload length
  // also counts extension headers before the Fragment header (not subtracted: lenient).
  const size_t header = v.l3 == parse::L3::kIpv4 ? size_t{v.l4_offset} - v.l3_offset : 0;
  if (e + header > kMaxDatagram) {
    ++counters_.overlaps;
    return Result::kOverlap;
  }

  const Key key = MakeKey(v);
  const uint64_t h = Hash(key);
  const uint32_t tag = uint32_t(h >> 32) | 1;
  // Two candidate buckets (two-choice hashing): a new train goes to the emptier one, so
  // a table 75% full still places every train (one 8-way bucket overflowed from
  // ~25%; at 87% about 1 new train in 400 finds both buckets full).
  const uint32_t b1 = uint32_t(h) & bucket_mask_;
  uint32_t b2 = uint32_t(h >> 44) & bucket_mask_;
  if (b2 == b1) b2 = b1 ^ 1;
  Bucket* const bk[2] = {&buckets_[b1], &buckets_[b2 & bucket_mask_]};
  const uint32_t nb = bucket_mask_ == 0 ? 1 : 2;
  __builtin_prefetch(bk[1]);

  uint32_t empty[2] = {0, 0};  // empty ways, per bucket
  for (uint32_t i = 0; i < nb; ++i) {
    Bucket& b = *bk[i];
    for (uint32_t m = TagMask(b.tag, tag); m != 0; m &= m - 1) {
      const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
      if (!SameKey(b.train[w], key)) continue;
      if (Expired(b.train[w], now_ns)) {  // the receiver dropped that queue long ago: start over
        ++counters_.expired;
        ++counters_.trains;
        Start(b.train[w], key, now_ns);
      }
      return Add(b, w, s, e, v.frag_more);
    }
    empty[i] = TagMask(b.tag, 0);
  }

  // New train: an empty way in the emptier bucket, else a way whose train is older than
  // the timeout.
  Bucket* b = nullptr;
  uint32_t way = 0;
  const uint32_t pick = std::popcount(empty[1]) > std::popcount(empty[0]) ? 1 : 0;
  if (empty[pick] != 0) {
    b = bk[pick];
    way = static_cast<uint32_t>(std::countr_zero(empty[pick]));
  }
  for (uint32_t i = 0; i < nb && b == nullptr; ++i) {
    for (uint32_t w = 0; w < kWays; ++w) {
      if (Expired(bk[i]->train[w], now_ns)) {
        ++counters_.expired;
        b = bk[i];
        way = w;
        break;
      }
    }
  }
  if (b == nullptr) {
    ++counters_.untracked;
    return Result::kUntracked;
  }
  b->tag[way] = tag;
  Start(b->train[way], key, now_ns);
  ++counters_.trains;
  return Add(*b, way, s, e, v.frag_more);
}

FragmentGuard::Result FragmentGuard::Add(Bucket& b, uint32_t way, uint32_t s, uint32_t e, bool more) {
  Train& t = b.train[way];
  // Where the datagram ends, once its last fragment was seen (RFC 791 / RFC 8200 4.5).
  const bool bad_end = (t.flags & kHasLast) ? (more ? e > t.last_end : e != t.last_end)
                                            : (!more && t.max_end > e);
  if (bad_end) {
    ++counters_.overlaps;
    return Result::kOverlap;
  }
  for (uint32_t i = 0; i < t.n; ++i) {
    if (t.start[i] == s && t.end[i] == e) return Result::kOk;  // retransmission (ranges are disjoint)
    if (s < t.end[i] && t.start[i] < e) {
      ++counters_.overlaps;
      return Result::kOverlap;
    }
  }
  if (!more) {
    t.flags |= kHasLast;
    t.last_end = e;
  }
  if (e > s) {  // an empty fragment adds no data (its end, if last, is recorded above)
    if (t.n == kMaxRanges) {  // no longer recorded (what was recorded is still checked above)
      ++counters_.untracked;
      return Result::kUntracked;
    }
    t.start[t.n] = static_cast<uint16_t>(s);
    t.end[t.n] = static_cast<uint16_t>(e);
    ++t.n;
    t.covered += e - s;
    t.max_end = std::max(t.max_end, e);
  }
  if ((t.flags & kHasLast) && t.covered == t.last_end) {
    b.tag[way] = 0;  // complete: the receiver has delivered it and forgotten the train
    ++counters_.completed;
  }
  return Result::kOk;
}

}  // namespace wardgate::hygiene
