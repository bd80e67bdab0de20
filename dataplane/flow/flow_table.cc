#include "dataplane/flow/flow_table.h"

#include <algorithm>
#include <bit>
#include <cstddef>

namespace wardgate::flow {

static_assert(sizeof(Flow) == 192, "Flow is three cache lines; keep it so");
static_assert(offsetof(Flow, flow_id) + sizeof(uint64_t) <= 64, "lookup/expiry fields in the first line");

using stream::kNil;
using stream::SeqGeq;
using stream::SeqGt;
using stream::SeqLeq;

namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;
constexpr int kIdCounterBits = 45;  // worker id above: ids stay below 2^53 (exact in JSON doubles)

// 64x64->128 multiply folded to 64 bits (the wyhash mixer).
inline uint64_t Mix(uint64_t a, uint64_t b) {
  const __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

inline int CompareEnds(const parse::PacketView& pv) {
  const int c = std::memcmp(pv.src_addr.data(), pv.dst_addr.data(), 16);
  if (c != 0) return c;
  return int(pv.src_port) - int(pv.dst_port);
}

enum TimeoutClass { kTNew = 0, kTEstablished, kTClosed, kTUdp, kTIcmp, kTOther };

// Eviction preference, lowest first: a flood of half-open connections must not push
// out established clinical sessions (README: eviction).
inline int EvictRank(const Flow& f) {
  const bool both_ways = f.packets[kToServer] && f.packets[kToClient];
  if (f.key.ip_proto != parse::kProtoTcp) return both_ways ? 2 : 1;
  switch (f.state()) {
    case TcpState::kClosed: return 0;
    case TcpState::kEstablished: return both_ways ? 3 : 1;
    default: return 1;
  }
}

inline bool EvictBefore(const Flow& a, const Flow& b) {
  const int ra = EvictRank(a), rb = EvictRank(b);
  return ra != rb ? ra < rb : a.last_seen_ns < b.last_seen_ns;
}

}  // namespace

std::string_view TcpStateName(TcpState s) {
  switch (s) {
    case TcpState::kNone: return "none";
    case TcpState::kSynSent: return "syn_sent";
    case TcpState::kSynRecv: return "syn_recv";
    case TcpState::kEstablished: return "established";
    case TcpState::kFinWait: return "fin_wait";
    case TcpState::kClosing: return "closing";
    case TcpState::kClosed: return "closed";
  }
  return "unknown";
}

KeyStatus MakeFlowKey(const parse::PacketView& pv, FlowKey& key, bool& src_is_first) {
  if (pv.l3 != parse::L3::kIpv4 && pv.l3 != parse::L3::kIpv6) return KeyStatus::kNotIp;
  if (pv.is_fragment && !pv.is_first_fragment) return KeyStatus::kFragment;
  src_is_first = CompareEnds(pv) <= 0;
  const int s = src_is_first ? 0 : 1;
  std::memcpy(key.addr[s], pv.src_addr.data(), 16);
  std::memcpy(key.addr[1 - s], pv.dst_addr.data(), 16);
  const bool ports = pv.ip_proto == parse::kProtoTcp || pv.ip_proto == parse::kProtoUdp;
  key.port[s] = ports ? pv.src_port : 0;
  key.port[1 - s] = ports ? pv.dst_port : 0;
  key.vlan[0] = pv.vlan_count > 0 ? pv.vlan_ids[0] : 0;
  key.vlan[1] = pv.vlan_count > 1 ? pv.vlan_ids[1] : 0;
  key.ip_proto = pv.ip_proto;
  key.family = pv.l3 == parse::L3::kIpv4 ? 4 : 6;
  key.pad[0] = key.pad[1] = 0;
  return KeyStatus::kOk;
}

bool Flow::Established() const {
  if (key.ip_proto == parse::kProtoTcp) return state() == TcpState::kEstablished;
  return packets[kToServer] && packets[kToClient];
}

stream::ReceiverWindow Flow::ReceiverWindowOf(Dir sender) const {
  const TcpEndpoint& r = tcp[sender ^ 1];
  constexpr uint8_t need = kEpAckKnown | kEpWinKnown;
  if ((r.bits & need) != need) return {};
  return {r.ack + r.window, true};
}

// ------------------------------------------------------------------------ the table

FlowTable::FlowTable(const FlowTableConfig& config, stream::Reassembler* streams)
    : config_(config),
      capacity_(std::clamp<uint32_t>(config.capacity, 1, kNil - 1)),
      streams_(streams) {
  // Index: two bucket choices, 8 slots each, at least 2 slots per flow: with the table
  // full the index is at most half full, and both buckets of a key are rarely full.
  const uint64_t want = std::max<uint64_t>(2, (uint64_t(capacity_) * 2 + kBucketSlots - 1) / kBucketSlots);
  const uint64_t n_buckets = std::bit_ceil(want);
  bucket_mask_ = uint32_t(n_buckets - 1);
  bucket_bits_ = uint32_t(std::countr_zero(n_buckets));
  flows_ = memory::HugeArray<Flow>(capacity_);
  free_ = memory::HugeArray<uint32_t>(capacity_);
  // Free stack popped from the end: low indices first, so a lightly loaded table stays dense.
  for (uint32_t i = 0; i < capacity_; ++i) free_[i] = capacity_ - 1 - i;
  n_free_ = capacity_;
  buckets_ = memory::HugeArray<Bucket>(n_buckets);
  bit_slot_of_ = memory::HugeArray<uint32_t>(capacity_);
  const uint32_t bit_slots = std::min(config.flowbits_capacity, capacity_);
  bit_slots_ = memory::HugeArray<BitSlot>(bit_slots);
  free_bit_slots_ = memory::HugeArray<uint32_t>(bit_slots);
  for (uint32_t i = 0; i < bit_slots; ++i) free_bit_slots_[i] = bit_slots - 1 - i;
  n_free_bit_slots_ = bit_slots;
  for (uint64_t b = 0; b < n_buckets; ++b) {
    for (uint32_t s = 0; s < kBucketSlots; ++s) {
      buckets_[b].sig[s] = 0;
      buckets_[b].idx[s] = kNil;
    }
  }
  next_counter_ = config.first_id;
  const FlowTimeouts& t = config.timeouts;
  timeout_ns_[kTNew] = t.new_s * kNsPerSec;
  timeout_ns_[kTEstablished] = t.established_s * kNsPerSec;
  timeout_ns_[kTClosed] = t.closed_s * kNsPerSec;
  timeout_ns_[kTUdp] = t.udp_s * kNsPerSec;
  timeout_ns_[kTIcmp] = t.icmp_s * kNsPerSec;
  timeout_ns_[kTOther] = t.other_s * kNsPerSec;
  uint64_t s = config.hash_seed ^ 0x243f6a8885a308d3ull;
  for (auto& v : seed_) {
    s = Mix(s ^ 0xa0761d6478bd642full, 0xe7037ed1a0b428dbull);
    v = s | 1;
  }
}

size_t FlowTable::MemoryBytes() const {
  return size_t(capacity_) * (sizeof(Flow) + sizeof(uint32_t)) + size_t(bucket_mask_ + 1) * sizeof(Bucket);
}

uint64_t FlowTable::Hash(const FlowKey& key) const {
  uint64_t w[5];
  uint32_t tail;
  std::memcpy(w, &key, sizeof(w));
  std::memcpy(&tail, reinterpret_cast<const uint8_t*>(&key) + sizeof(w), sizeof(tail));
  const uint64_t h = Mix(w[0] ^ seed_[0], w[1] ^ seed_[1]) ^ Mix(w[2] ^ seed_[2], w[3] ^ seed_[3]) ^
                     Mix(w[4] ^ seed_[1], uint64_t(tail) ^ seed_[0]);
  return Mix(h ^ seed_[2], 0x9fb21c651e98df25ull);
}

// The alternative bucket is b ^ AltMask(sig), from either bucket of the pair (as in
// rte_hash), so an entry can move to its other bucket without its key.
uint32_t FlowTable::AltMask(uint32_t sig) const {
  const uint32_t m = (sig * 0x9e3779b1u) >> (32 - bucket_bits_);  // Fibonacci hashing
  return m ? m : 1;
}

void FlowTable::Buckets(uint64_t hash, uint32_t& b1, uint32_t& b2, uint32_t& sig) const {
  sig = uint32_t(hash >> 32);
  b1 = uint32_t(hash) & bucket_mask_;
  b2 = b1 ^ AltMask(sig);
}

void FlowTable::PrefetchFlow(uint64_t hash) const {
  const Bucket& bk = buckets_[uint32_t(hash) & bucket_mask_];
  const uint32_t sig = uint32_t(hash >> 32);
  for (uint32_t s = 0; s < kBucketSlots; ++s) {
    if (bk.sig[s] == sig && bk.idx[s] != kNil) {
      const char* f = reinterpret_cast<const char*>(&flows_[bk.idx[s]]);
      __builtin_prefetch(f, 1);
      __builtin_prefetch(f + 64, 1);
      __builtin_prefetch(f + 128, 1);
    }
  }
}

Flow* FlowTable::Find(const FlowKey& key, uint64_t hash) {
  uint32_t b[2], sig;
  Buckets(hash, b[0], b[1], sig);
  for (uint32_t k = 0; k < 2; ++k) {
    const Bucket& bk = buckets_[b[k]];
    uint32_t hits = 0;
    for (uint32_t s = 0; s < kBucketSlots; ++s) hits |= uint32_t(bk.sig[s] == sig) << s;
    while (hits) {
      const uint32_t s = uint32_t(std::countr_zero(hits));
      hits &= hits - 1;
      const uint32_t i = bk.idx[s];
      if (i == kNil) continue;
      // The counters' line is written right after a hit: fetch it alongside the key's.
      __builtin_prefetch(reinterpret_cast<const char*>(&flows_[i]) + 64, 1);
      if (flows_[i].key == key) return &flows_[i];
    }
  }
  return nullptr;
}

uint64_t FlowTable::NextId() {
  const uint64_t id = (uint64_t(config_.worker_id & 0xff) << kIdCounterBits) |
                      (next_counter_ & ((uint64_t(1) << kIdCounterBits) - 1));
  ++next_counter_;
  return id;
}

uint64_t FlowTable::TimeoutNs(const Flow& f) const {
  switch (f.key.ip_proto) {
    case parse::kProtoTcp:
      switch (f.state()) {
        case TcpState::kEstablished:
          // A midstream pickup that never saw the other side (an ACK scan) must not
          // hold a slot for an hour.
          return (f.packets[kToServer] && f.packets[kToClient]) ? timeout_ns_[kTEstablished] : timeout_ns_[kTNew];
        case TcpState::kFinWait:
        case TcpState::kClosing:
        case TcpState::kClosed: return timeout_ns_[kTClosed];
        default: return timeout_ns_[kTNew];
      }
    case parse::kProtoUdp: return timeout_ns_[kTUdp];
    case parse::kProtoIcmp:
    case parse::kProtoIcmpv6: return timeout_ns_[kTIcmp];
    default: return timeout_ns_[kTOther];
  }
}

void FlowTable::RemoveAt(uint32_t idx, FlowEndReason reason) {
  Flow& f = flows_[idx];
  if (end_fn_) end_fn_(end_ctx_, f, reason);
  ReleaseBits(idx);
  if (streams_) {
    f.stream[0].Reset(*streams_);
    f.stream[1].Reset(*streams_);
  } else {
    f.stream[0] = stream::TcpStream{};
    f.stream[1] = stream::TcpStream{};
  }
  uint32_t b[2], sig;
  Buckets(Hash(f.key), b[0], b[1], sig);
  for (uint32_t k = 0; k < 2; ++k) {
    Bucket& bk = buckets_[b[k]];
    for (uint32_t s = 0; s < kBucketSlots; ++s) {
      if (bk.idx[s] == idx) {
        bk.idx[s] = kNil;
        bk.sig[s] = 0;
        k = 2;
        break;
      }
    }
  }
  f.key.family = 0;
  free_[n_free_++] = idx;
}

bool FlowTable::BitIsSet(const Flow& f, uint32_t bit) const {
  const uint32_t slot = bit_slot_of_[Index(f)];
  return slot && bit < kFlowBits && (bit_slots_[slot - 1].w[bit / 64] >> (bit % 64) & 1);
}

void FlowTable::SetBit(Flow& f, uint32_t bit) {
  if (bit >= kFlowBits) return;
  uint32_t& slot = bit_slot_of_[Index(f)];
  if (!slot) {
    if (n_free_bit_slots_ == 0) {
      ++counters_.flowbits_exhausted;
      return;
    }
    slot = free_bit_slots_[--n_free_bit_slots_] + 1;
    bit_slots_[slot - 1] = BitSlot{};
  }
  bit_slots_[slot - 1].w[bit / 64] |= uint64_t(1) << (bit % 64);
}

void FlowTable::ClearBit(Flow& f, uint32_t bit) {
  const uint32_t slot = bit_slot_of_[Index(f)];
  if (slot && bit < kFlowBits) bit_slots_[slot - 1].w[bit / 64] &= ~(uint64_t(1) << (bit % 64));
}

void FlowTable::ReleaseBits(uint32_t idx) {
  uint32_t& slot = bit_slot_of_[idx];
  if (!slot) return;
  free_bit_slots_[n_free_bit_slots_++] = slot - 1;
  slot = 0;
}

void FlowTable::Remove(Flow& flow) {
  ++counters_.removed;
  RemoveAt(uint32_t(&flow - flows_.get()), FlowEndReason::kRemoved);
}

void FlowTable::Clear() {
  for (uint32_t i = 0; i < capacity_; ++i) {
    if (flows_[i].in_use()) {
      ++counters_.removed;
      RemoveAt(i, FlowEndReason::kRemoved);
    }
  }
  expire_hand_ = evict_hand_ = 0;
}

uint32_t FlowTable::EvictFromBuckets(uint32_t b1, uint32_t b2) {
  uint32_t victim = kNil;
  for (uint32_t b : {b1, b2}) {
    for (uint32_t s = 0; s < kBucketSlots; ++s) {
      const uint32_t i = buckets_[b].idx[s];
      if (i != kNil && (victim == kNil || EvictBefore(flows_[i], flows_[victim]))) victim = i;
    }
  }
  return victim;
}

uint32_t FlowTable::EvictSample() {
  // Approximate LRU: the next kEvictSample slots of a clock hand, all in use when the
  // free list is empty. Sequential slots: the hardware prefetcher streams them.
  uint32_t victim = kNil;
  for (uint32_t n = 0; n < kEvictSample; ++n) {
    const uint32_t i = evict_hand_;
    if (++evict_hand_ == capacity_) evict_hand_ = 0;
    if (flows_[i].in_use() && (victim == kNil || EvictBefore(flows_[i], flows_[victim]))) victim = i;
  }
  return victim;
}

bool FlowTable::Displace(uint32_t b1, uint32_t b2, uint32_t& bucket, uint32_t& slot) {
  // One cuckoo step: move an entry of a full bucket to its alternative bucket. Slow
  // path (up to 16 more bucket lines), taken only when both buckets are full.
  for (uint32_t b : {b1, b2}) {
    Bucket& from = buckets_[b];
    for (uint32_t s = 0; s < kBucketSlots; ++s) {
      Bucket& to = buckets_[b ^ AltMask(from.sig[s])];
      for (uint32_t t = 0; t < kBucketSlots; ++t) {
        if (to.idx[t] == kNil) {
          to.sig[t] = from.sig[s];
          to.idx[t] = from.idx[s];
          from.idx[s] = kNil;
          from.sig[s] = 0;
          ++counters_.index_displacements;
          bucket = b;
          slot = s;
          return true;
        }
      }
    }
  }
  return false;
}

uint32_t FlowTable::Insert(const FlowKey& key, uint64_t hash) {
  uint32_t b1, b2, sig;
  Buckets(hash, b1, b2, sig);
  auto empty_slot = [&](uint32_t& bucket, uint32_t& slot) {
    for (uint32_t b : {b1, b2}) {
      for (uint32_t s = 0; s < kBucketSlots; ++s) {
        if (buckets_[b].idx[s] == kNil) {
          bucket = b;
          slot = s;
          return true;
        }
      }
    }
    return false;
  };
  uint32_t bucket = 0, slot = 0;
  if (!empty_slot(bucket, slot) && !Displace(b1, b2, bucket, slot)) {
    // Both buckets and every alternative full: evict within them.
    const uint32_t victim = EvictFromBuckets(b1, b2);
    ++counters_.evictions;
    ++counters_.evictions_bucket_full;
    RemoveAt(victim, FlowEndReason::kEvicted);
    empty_slot(bucket, slot);
  }
  if (n_free_ == 0) {
    uint32_t victim = EvictSample();
    if (victim == kNil) victim = EvictFromBuckets(b1, b2);  // unreachable with all slots in use
    ++counters_.evictions;
    RemoveAt(victim, FlowEndReason::kEvicted);
  }
  const uint32_t idx = free_[--n_free_];
  buckets_[bucket].sig[slot] = sig;
  buckets_[bucket].idx[slot] = idx;
  flows_[idx].key = key;
  return idx;
}

Flow& FlowTable::Begin(uint32_t idx, const FlowKey& key, bool src_is_first, bool sender_is_client,
                       uint64_t now_ns) {
  ReleaseBits(idx);  // a reused slot (TCP port reuse) starts without the old flow's bits
  Flow& f = flows_[idx];
  f.key = key;
  f.tcp_state = 0;
  f.flags = 0;
  f.info = (src_is_first == sender_is_client) ? kInfoClientFirst : 0;
  f.app_proto = 0;
  f.first_seen_ns = f.last_seen_ns = now_ns;
  f.flow_id = NextId();
  f.packets[0] = f.packets[1] = 0;
  f.bytes[0] = f.bytes[1] = 0;
  f.tcp[0] = f.tcp[1] = TcpEndpoint{};
  ++counters_.created;
  return f;
}

FlowResult FlowTable::Create(const parse::PacketView& pv, const FlowKey& key, bool src_is_first, uint64_t hash,
                             uint64_t now_ns) {
  FlowResult res;
  bool sender_is_client = true;
  bool midstream = false;
  if (key.ip_proto == parse::kProtoTcp) {
    const uint8_t fl = pv.tcp_flags;
    if (fl & parse::kTcpRst) {
      ++counters_.rst_without_flow;
      res.status = FlowStatus::kRstWithoutFlow;
      return res;
    }
    if ((fl & (parse::kTcpSyn | parse::kTcpAck)) != parse::kTcpSyn) {
      if (!config_.midstream) {
        ++counters_.midstream_refused;
        res.status = FlowStatus::kMidstreamRefused;
        return res;
      }
      midstream = true;
      ++counters_.midstream_picked_up;
      if (fl & parse::kTcpSyn) {
        sender_is_client = false;  // SYN-ACK: its sender is the server
      } else {
        // Suricata's heuristic: the lower port is the service.
        sender_is_client = pv.src_port >= pv.dst_port;
      }
    }
  }
  const uint32_t idx = Insert(key, hash);
  Flow& f = Begin(idx, key, src_is_first, sender_is_client, now_ns);
  const Dir d = sender_is_client ? kToServer : kToClient;
  if (key.ip_proto == parse::kProtoTcp) {
    if (midstream) {
      f.info |= kInfoMidstream;
      if (pv.tcp_flags & parse::kTcpSyn) {
        // We missed the client's SYN; the SYN-ACK tells its ISN (ack - 1) but not its options.
        TcpEndpoint& c = f.tcp[kToServer];
        c.isn = pv.tcp_ack - 1;
        c.next_seq = pv.tcp_ack;
        c.bits = kEpSynSeen | kEpSeqKnown;
        f.tcp_state = uint8_t(TcpState::kSynSent);
      } else {
        f.tcp_state = uint8_t(TcpState::kEstablished);
      }
    }
    TrackTcp(f, d, pv, res.tcp_notes);
  }
  f.packets[d] = 1;
  f.bytes[d] = pv.frame_len;
  res.flow = &f;
  res.status = FlowStatus::kCreated;
  res.to_server = d == kToServer;
  return res;
}

FlowResult FlowTable::LookupOrCreate(const parse::PacketView& pv, uint64_t now_ns) {
  FlowKey key;
  bool src_is_first = true;
  switch (MakeFlowKey(pv, key, src_is_first)) {
    case KeyStatus::kOk: break;
    case KeyStatus::kNotIp: {
      ++counters_.not_tracked_non_ip;
      return FlowResult{};
    }
    case KeyStatus::kFragment: {
      ++counters_.not_tracked_fragments;
      FlowResult r;
      r.status = FlowStatus::kFragment;
      return r;
    }
  }
  return LookupOrCreate(pv, key, src_is_first, Hash(key), now_ns);
}

FlowResult FlowTable::LookupOrCreate(const parse::PacketView& pv, const FlowKey& key, bool src_is_first,
                                     uint64_t hash, uint64_t now_ns) {
  Flow* f = Find(key, hash);
  if (!f) return Create(pv, key, src_is_first, hash, now_ns);
  FlowResult res;
  const bool tcp = key.ip_proto == parse::kProtoTcp;
  if (tcp && f->state() == TcpState::kClosed &&
      (pv.tcp_flags & (parse::kTcpSyn | parse::kTcpAck | parse::kTcpRst)) == parse::kTcpSyn) {
    // RFC 9293 3.6.1 (TIME-WAIT reuse): a new connection on the same ports. End the
    // old flow and begin a new one in place, with the SYN's sender as client.
    ++counters_.tcp_reused;
    const uint32_t idx = uint32_t(f - flows_.get());
    if (end_fn_) end_fn_(end_ctx_, *f, FlowEndReason::kReused);
    if (streams_) {
      f->stream[0].Reset(*streams_);
      f->stream[1].Reset(*streams_);
    } else {
      f->stream[0] = stream::TcpStream{};
      f->stream[1] = stream::TcpStream{};
    }
    Begin(idx, key, src_is_first, true, now_ns);
    res.tcp_notes |= kTcpNoteReused;
    TrackTcp(*f, kToServer, pv, res.tcp_notes);
    f->packets[kToServer] = 1;
    f->bytes[kToServer] = pv.frame_len;
    res.flow = f;
    res.status = FlowStatus::kCreated;
    res.to_server = true;
    return res;
  }
  const Dir d = (src_is_first == bool(f->info & kInfoClientFirst)) ? kToServer : kToClient;
  if (now_ns > f->last_seen_ns) f->last_seen_ns = now_ns;
  ++f->packets[d];
  f->bytes[d] += pv.frame_len;
  if (tcp) TrackTcp(*f, d, pv, res.tcp_notes);
  res.flow = f;
  res.status = FlowStatus::kFound;
  res.to_server = d == kToServer;
  return res;
}

// RFC 9293 as an observer of both ends tracks it. Lenient where a real stack would be
// strict (an IPS must not break connections the end hosts accept), strict where it
// matters for evasion: RSTs must fall within the window to close a flow.
void FlowTable::TrackTcp(Flow& f, Dir d, const parse::PacketView& pv, uint8_t& notes) {
  TcpEndpoint& s = f.tcp[d];
  TcpEndpoint& r = f.tcp[d ^ 1];
  const uint8_t fl = pv.tcp_flags;
  const uint32_t seq = pv.tcp_seq;
  const uint32_t ack = pv.tcp_ack;
  const bool has_ack = fl & parse::kTcpAck;
  auto covers_syn = [&](const TcpEndpoint& e) {  // `ack` acknowledges e's SYN
    return (e.bits & kEpSynSeen) && SeqGt(ack, e.isn) && (!(e.bits & kEpSeqKnown) || SeqLeq(ack, e.next_seq));
  };

  if (fl & parse::kTcpRst) {
    bool ok;
    if (s.bits & kEpSeqKnown) {
      // RFC 9293 3.10.7: acceptable within the receive window; loosely, within the
      // larger of the receiver's window and 64 KiB either side of the sender's position.
      const uint32_t win = std::max<uint32_t>((r.bits & kEpWinKnown) ? r.window : 0, 65535);
      ok = SeqGeq(seq, s.next_seq - win) && SeqLeq(seq, s.next_seq + win);
    } else {
      // The sender never spoke: only a refusal of the peer's SYN (RFC 9293 3.10.7.3).
      ok = has_ack && covers_syn(r);
    }
    if (!ok) {
      ++counters_.tcp_rst_invalid;
      notes |= kTcpNoteRstInvalid;
      return;
    }
    f.tcp_state = uint8_t(TcpState::kClosed);
    f.info |= kInfoRst;
    return;
  }
  if (f.state() == TcpState::kClosed) return;

  const bool handshake = f.state() < TcpState::kEstablished;
  if ((fl & parse::kTcpSyn) && handshake) {
    if (has_ack && !covers_syn(r)) {  // SYN-ACK for a SYN we never saw
      ++counters_.tcp_handshake_invalid;
      notes |= kTcpNoteHandshakeInvalid;
      return;
    }
    if (!(s.bits & kEpSynSeen) || s.isn != seq) {  // first SYN, or a new ISN: start over
      s.isn = seq;
      s.next_seq = seq + 1;
      s.bits = uint8_t((s.bits & ~(kEpSynAcked | kEpFinSent | kEpFinAcked)) | kEpSynSeen | kEpSeqKnown);
    }
    s.bits |= kEpSynOpts;
    s.wscale = pv.tcp_wscale;
  }
  // Sequence space this segment occupies (SYN and FIN count one each).
  const uint32_t end = seq + pv.payload_len + ((fl & parse::kTcpSyn) ? 1 : 0) + ((fl & parse::kTcpFin) ? 1 : 0);
  if (!(s.bits & kEpSeqKnown)) {
    s.next_seq = end;
    s.bits |= kEpSeqKnown;
  } else if (SeqGt(end, s.next_seq)) {
    s.next_seq = end;
  }
  // Right edge of the window s offered so far (RFC 9293 3.8.6.2.1: a receiver should
  // not shrink it, and one that does may still accept up to the old edge).
  const bool had_edge = (s.bits & (kEpAckKnown | kEpWinKnown)) == (kEpAckKnown | kEpWinKnown);
  const uint32_t old_edge = s.ack + s.window;
  if (has_ack) {
    if (handshake && (r.bits & kEpSynSeen) && covers_syn(r)) r.bits |= kEpSynAcked;
    if (!(s.bits & kEpAckKnown) || SeqGt(ack, s.ack)) s.ack = ack;
    s.bits |= kEpAckKnown;
    if (!(r.bits & kEpSeqKnown)) {  // midstream: the peer has sent up to what we acknowledge
      r.next_seq = ack;
      r.bits |= kEpSeqKnown;
    }
    if ((r.bits & kEpFinSent) && SeqGeq(ack, r.next_seq)) r.bits |= kEpFinAcked;
  }
  // RFC 7323 2.2: a SYN's window is never scaled; later windows are scaled by the
  // sender's shift when both SYNs carried the option. Without both SYNs, unknown.
  if (fl & parse::kTcpSyn) {
    s.window = pv.tcp_window;
    s.bits |= kEpWinKnown;
  } else if ((s.bits & kEpSynOpts) && (r.bits & kEpSynOpts)) {
    const bool scaled = s.wscale != 0xff && r.wscale != 0xff;
    s.window = uint32_t(pv.tcp_window) << (scaled ? std::min<uint8_t>(s.wscale, 14) : 0);
    s.bits |= kEpWinKnown;
  } else {
    s.bits &= uint8_t(~kEpWinKnown);
  }
  if (had_edge && (s.bits & kEpWinKnown) && stream::SeqLt(s.ack + s.window, old_edge)) s.window = old_edge - s.ack;
  if (fl & parse::kTcpFin) s.bits |= kEpFinSent;

  const TcpEndpoint& c = f.tcp[kToServer];
  const TcpEndpoint& sv = f.tcp[kToClient];
  TcpState st = f.state();
  if (st < TcpState::kEstablished) {
    if ((c.bits & kEpSynAcked) && (sv.bits & kEpSynAcked)) {
      st = TcpState::kEstablished;
    } else if ((c.bits | sv.bits) & kEpSynAcked) {
      st = TcpState::kSynRecv;
    } else if ((c.bits | sv.bits) & kEpSynSeen) {
      st = TcpState::kSynSent;
    }
  }
  if ((c.bits | sv.bits) & kEpFinSent) {
    TcpState fin = TcpState::kFinWait;
    if ((c.bits & sv.bits) & kEpFinAcked) {
      fin = TcpState::kClosed;
    } else if ((c.bits & sv.bits) & kEpFinSent) {
      fin = TcpState::kClosing;
    }
    st = std::max(st, fin);
  }
  f.tcp_state = uint8_t(st);
}

uint32_t FlowTable::Expire(uint64_t now_ns, uint32_t budget) {
  uint32_t removed = 0;
  budget = std::min(budget, capacity_);
  for (uint32_t n = 0; n < budget; ++n) {
    const uint32_t i = expire_hand_;
    if (++expire_hand_ == capacity_) expire_hand_ = 0;
    const Flow& f = flows_[i];
    if (!f.in_use()) continue;
    if (now_ns > f.last_seen_ns && now_ns - f.last_seen_ns > TimeoutNs(f)) {
      ++counters_.expired;
      RemoveAt(i, FlowEndReason::kTimeout);
      ++removed;
    }
  }
  return removed;
}

}  // namespace wardgate::flow
