// Per-worker bidirectional flow table with TCP connection tracking. Pure library: no
// DPDK, no allocation after construction, no exceptions, no clock (time is passed in).
//
// Threads: one FlowTable per worker, used only by that worker (both directions of a
// flow reach the same worker: DESIGN.md). The control thread never reads it; the
// worker copies counters() into its WorkerCounters.
//
// A Flow* returned by LookupOrCreate/Find stays valid until the next LookupOrCreate,
// Expire, Remove or Clear on the same table (creating a flow may evict another).
// Policy decisions (eviction order, midstream, timeouts) and their reasons:
// dataplane/flow/README.md.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "dataplane/memory/huge_array.h"
#include "dataplane/parse/packet.h"
#include "dataplane/stream/tcp_stream.h"

namespace wardgate::flow {

// Direction of a packet in its flow. Arrays in Flow are indexed by it: packets[kToServer]
// are the client's packets, tcp[kToServer] is the client's endpoint, stream[kToServer]
// the bytes the client sends.
enum Dir : uint8_t { kToServer = 0, kToClient = 1 };

// Canonical (direction-independent) flow key: the lower (address, port) end first.
// 44 bytes; `family` 0 marks an empty table slot. Padding is always zero so keys
// compare and hash as bytes.
struct FlowKey {
  uint8_t addr[2][16];   // network byte order; IPv4 in the first 4 bytes, rest zero
  uint16_t port[2];      // TCP/UDP ports (host order); 0 for ICMP and other protocols
  uint16_t vlan[2];      // 802.1ad outer and 802.1Q inner VID as parsed (0 if untagged)
  uint8_t ip_proto;
  uint8_t family;        // 4 or 6
  uint8_t pad[2];
};
static_assert(sizeof(FlowKey) == 44);

inline bool operator==(const FlowKey& a, const FlowKey& b) { return std::memcmp(&a, &b, sizeof(FlowKey)) == 0; }

enum class KeyStatus : uint8_t {
  kOk = 0,
  kNotIp,      // ARP, unknown EtherType: no flow
  kFragment,   // IPv4/IPv6 non-first fragment: no L4 header, cannot be keyed (no defrag here)
};

// Builds the canonical key of a parsed packet; src_is_first says whether the packet's
// source is key side 0. ICMP/ICMPv6 and other protocols key on addresses + protocol
// (type, code and echo id are not in the key: PacketView does not carry the id).
KeyStatus MakeFlowKey(const parse::PacketView& pv, FlowKey& key, bool& src_is_first);

// TCP connection state as an inline observer tracks it (RFC 9293 3.3.2, both ends).
enum class TcpState : uint8_t {
  kNone = 0,      // not TCP
  kSynSent,       // a SYN seen, no SYN acknowledged yet
  kSynRecv,       // one SYN acknowledged (SYN-ACK, or split/simultaneous handshake half done)
  kEstablished,   // both SYNs acknowledged, or picked up midstream
  kFinWait,       // one side sent FIN
  kClosing,       // both sides sent FIN, not both acknowledged
  kClosed,        // both FINs acknowledged, or a valid RST
};
std::string_view TcpStateName(TcpState s);

// Flow::flags: verdict bits set by later stages (policy, match); the table only clears
// them when a flow is created. Stable values: stages test them per packet.
inline constexpr uint8_t kDropFlow = 0x01;   // drop every further packet of the flow
inline constexpr uint8_t kPassFlow = 0x02;   // forward without further inspection
inline constexpr uint8_t kNoInspect = 0x04;  // forward, no signature/stream inspection (e.g. resource limit)
// Zone policy, decided on the flow's first packet (dataplane/segment):
inline constexpr uint8_t kPolicyDeny = 0x08;      // denied (enforced): every packet dropped
inline constexpr uint8_t kPolicyAllowed = 0x10;   // an explicit allow/alert rule matched (contain keeps it)
inline constexpr uint8_t kPolicyAppCheck = 0x20;  // the rule needs an app: confirm on the client's first bytes

// Flow::info: what the tracker knows about the flow.
inline constexpr uint8_t kInfoClientFirst = 0x01;  // the client is key side 0
inline constexpr uint8_t kInfoMidstream = 0x02;    // picked up without a SYN: the client is a guess
inline constexpr uint8_t kInfoRst = 0x04;          // closed by RST

// One TCP end as seen on the wire. bits: kEp* below.
struct TcpEndpoint {
  uint32_t isn = 0;       // sequence number of its SYN
  uint32_t next_seq = 0;  // highest sequence number it has sent + 1 (SYN and FIN count)
  uint32_t ack = 0;       // highest acknowledgement it has sent
  uint32_t window = 0;    // receive window it last advertised, in bytes (scaled)
  uint8_t wscale = 0xff;  // window scale option of its SYN, 0xff absent
  uint8_t bits = 0;
};
inline constexpr uint8_t kEpSynSeen = 0x01;   // its ISN is known (SYN seen, or inferred from a SYN-ACK)
inline constexpr uint8_t kEpSynOpts = 0x02;   // its SYN itself was seen (window scale known)
inline constexpr uint8_t kEpSynAcked = 0x04;  // the peer acknowledged its SYN
inline constexpr uint8_t kEpSeqKnown = 0x08;  // next_seq is meaningful
inline constexpr uint8_t kEpAckKnown = 0x10;  // ack is meaningful
inline constexpr uint8_t kEpWinKnown = 0x20;  // window is meaningful (scaling known)
inline constexpr uint8_t kEpFinSent = 0x40;
inline constexpr uint8_t kEpFinAcked = 0x80;

// One flow, both directions. 192 bytes, three cache lines: the first holds what the
// lookup and Expire() read (key, state, last_seen), so misses touch one line.
struct Flow {
  FlowKey key;
  uint8_t tcp_state = 0;   // TcpState
  uint8_t flags = 0;       // kDropFlow, kPassFlow, kNoInspect (later stages)
  uint8_t info = 0;        // kInfo*
  uint8_t app_proto = 0;   // for the app-layer stage; 0 = unknown
  uint64_t last_seen_ns = 0;
  uint64_t flow_id = 0;
  // second line
  uint64_t first_seen_ns = 0;
  uint64_t packets[2] = {0, 0};   // by Dir
  uint64_t bytes[2] = {0, 0};     // frame bytes, by Dir
  TcpEndpoint tcp[2];             // by Dir of what the endpoint sends
  stream::TcpStream stream[2];    // by Dir

  bool in_use() const { return key.family != 0; }
  TcpState state() const { return static_cast<TcpState>(tcp_state); }
  // TCP: state ESTABLISHED. Other protocols: packets seen in both directions.
  bool Established() const;
  // The window of the receiver of what `sender` sends (for TcpStream::Feed).
  stream::ReceiverWindow ReceiverWindowOf(Dir sender) const;
  // Key side (0 or 1) of the client.
  int client_side() const { return (info & kInfoClientFirst) ? 0 : 1; }
};

struct FlowTimeouts {  // idle seconds before Expire() reclaims a flow
  uint32_t new_s = 30;            // TCP before ESTABLISHED; TCP picked up midstream, one way only
  uint32_t established_s = 3600;  // TCP ESTABLISHED (HL7/DICOM sessions idle for long)
  uint32_t closed_s = 60;         // TCP FIN_WAIT, CLOSING, CLOSED
  uint32_t udp_s = 120;
  uint32_t icmp_s = 30;
  uint32_t other_s = 120;
};

struct FlowTableConfig {
  uint32_t capacity = 131072;     // flows, all preallocated
  uint32_t worker_id = 0;         // bits 45..52 of flow_id
  uint64_t first_id = 1;          // first value of the per-worker flow counter (bits 0..44)
  uint64_t hash_seed = 0;         // pass a random value: keeps bucket collisions unpredictable
  bool midstream = false;         // create TCP flows whose first packet is not a SYN
  FlowTimeouts timeouts;
  uint32_t flowbits_capacity = 16384;  // flows holding flowbits at once (64 bytes each)
};

// Copied by the worker into its WorkerCounters. Single writer: the owning worker.
struct FlowCounters {
  uint64_t created = 0;
  uint64_t evictions = 0;              // flows removed to make room (all causes)
  uint64_t evictions_bucket_full = 0;  // ... of which because both hash buckets were full
  uint64_t index_displacements = 0;    // index entries moved to their other bucket (no eviction)
  uint64_t expired = 0;                // removed by Expire()
  uint64_t removed = 0;                // removed by Remove()/Clear()
  uint64_t flowbits_exhausted = 0;     // a flowbit not set: every flowbits slot in use
  uint64_t tcp_reused = 0;             // SYN on a CLOSED connection: old flow ended, new one begun
  uint64_t midstream_picked_up = 0;
  uint64_t midstream_refused = 0;      // first packet not a SYN and midstream off: no flow
  uint64_t rst_without_flow = 0;       // RST as a first packet: no flow
  uint64_t not_tracked_fragments = 0;  // non-first fragments
  uint64_t not_tracked_non_ip = 0;
  uint64_t tcp_rst_invalid = 0;        // RST outside the window: ignored
  uint64_t tcp_handshake_invalid = 0;  // SYN-ACK acknowledging no SYN: ignored
};

enum class FlowStatus : uint8_t {
  kFound = 0,
  kCreated,            // new flow (also after TCP reuse: see kTcpNoteReused)
  kNotIp,              // no flow: not IPv4/IPv6
  kFragment,           // no flow: non-first fragment
  kMidstreamRefused,   // no flow: TCP without SYN, midstream off
  kRstWithoutFlow,     // no flow: RST for an unknown connection
};

// FlowResult::tcp_notes
inline constexpr uint8_t kTcpNoteRstInvalid = 0x01;        // RST outside the window, ignored
inline constexpr uint8_t kTcpNoteHandshakeInvalid = 0x02;  // SYN-ACK acknowledging no SYN, ignored
inline constexpr uint8_t kTcpNoteReused = 0x04;            // SYN on a closed connection started a new flow

struct FlowResult {
  Flow* flow = nullptr;
  FlowStatus status = FlowStatus::kNotIp;
  bool to_server = true;   // packet sent by the client
  uint8_t tcp_notes = 0;
  Dir dir() const { return to_server ? kToServer : kToClient; }
};

enum class FlowEndReason : uint8_t { kTimeout = 0, kEvicted, kReused, kRemoved };

class FlowTable {
 public:
  // Called for every flow that ends (timeout, eviction, reuse, Remove, Clear), before
  // its slot is reused: the place for flow-end events. Plain function pointer, called
  // per flow end, never per packet.
  using EndFn = void (*)(void* ctx, const Flow& flow, FlowEndReason reason);

  // Preallocates and touches everything. `streams` is the worker's Reassembler whose
  // pools the flows' TcpStreams use (nullptr if streams are never fed).
  explicit FlowTable(const FlowTableConfig& config, stream::Reassembler* streams = nullptr);
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // Flowbits (the rules' flowbits keyword): kFlowBits bits per flow, kept in a pool
  // slot taken at the first set bit and returned when the flow ends. Without a free
  // slot the bit is not set and flowbits_exhausted counts it.
  static constexpr uint32_t kFlowBits = 512;
  bool BitIsSet(const Flow& f, uint32_t bit) const;
  void SetBit(Flow& f, uint32_t bit);
  void ClearBit(Flow& f, uint32_t bit);

  void SetEndHandler(EndFn fn, void* ctx) {
    end_fn_ = fn;
    end_ctx_ = ctx;
  }

  // Multi-pass burst use (VPP habit): pass 1 MakeFlowKey + Hash + Prefetch for every
  // packet, [pass 2 PrefetchFlow,] last pass LookupOrCreate with the key and hash.
  uint64_t Hash(const FlowKey& key) const;
  void Prefetch(uint64_t hash) const { __builtin_prefetch(&buckets_[uint32_t(hash) & bucket_mask_]); }
  // Optional middle pass, once the bucket line has arrived: prefetch the flows whose
  // signature matches, so the lookup itself hits the cache (memory-level parallelism
  // over the burst instead of two dependent misses per packet).
  void PrefetchFlow(uint64_t hash) const;

  // Finds the packet's flow or creates it; updates last_seen, per-direction packets and
  // bytes and the TCP state. `pv` must have parsed without error.
  FlowResult LookupOrCreate(const parse::PacketView& pv, uint64_t now_ns);
  FlowResult LookupOrCreate(const parse::PacketView& pv, const FlowKey& key, bool src_is_first, uint64_t hash,
                            uint64_t now_ns);

  // Lookup without side effects.
  Flow* Find(const FlowKey& key) { return Find(key, Hash(key)); }
  Flow* Find(const FlowKey& key, uint64_t hash);

  // Examines the next `budget` slots of a round-robin sweep and removes flows idle for
  // longer than their state's timeout. Returns the number removed.
  uint32_t Expire(uint64_t now_ns, uint32_t budget);

  void Remove(Flow& flow);
  void Clear();  // removes every flow (control path: O(capacity))

  template <class Fn>
  void ForEach(Fn&& fn) const {
    for (uint32_t i = 0; i < capacity_; ++i)
      if (flows_[i].in_use()) fn(flows_[i]);
  }

  uint32_t size() const { return capacity_ - n_free_; }
  uint32_t capacity() const { return capacity_; }
  const FlowCounters& counters() const { return counters_; }
  const FlowTableConfig& config() const { return config_; }
  // Index memory and flow memory, for status and the report.
  size_t MemoryBytes() const;
  uint64_t TimeoutNs(const Flow& f) const;
  // The two index buckets a hash may live in (tests, diagnostics).
  void CandidateBuckets(uint64_t hash, uint32_t& b1, uint32_t& b2) const {
    uint32_t sig;
    Buckets(hash, b1, b2, sig);
  }
  uint32_t bucket_count() const { return bucket_mask_ + 1; }

  static constexpr uint32_t kBucketSlots = 8;
  static constexpr uint32_t kEvictSample = 8;

 private:
  struct alignas(64) Bucket {  // one cache line
    uint32_t sig[kBucketSlots];
    uint32_t idx[kBucketSlots];  // flow index, stream::kNil when empty
  };

  uint32_t AltMask(uint32_t sig) const;
  void Buckets(uint64_t hash, uint32_t& b1, uint32_t& b2, uint32_t& sig) const;
  bool Displace(uint32_t b1, uint32_t b2, uint32_t& bucket, uint32_t& slot);
  uint32_t Insert(const FlowKey& key, uint64_t hash);  // returns the flow index
  void RemoveAt(uint32_t idx, FlowEndReason reason);
  uint32_t EvictFromBuckets(uint32_t b1, uint32_t b2);
  uint32_t EvictSample();
  Flow& Begin(uint32_t idx, const FlowKey& key, bool src_is_first, bool sender_is_client, uint64_t now_ns);
  FlowResult Create(const parse::PacketView& pv, const FlowKey& key, bool src_is_first, uint64_t hash,
                    uint64_t now_ns);
  void TrackTcp(Flow& f, Dir d, const parse::PacketView& pv, uint8_t& notes);
  uint64_t NextId();

  FlowTableConfig config_;
  uint32_t capacity_;
  uint32_t bucket_mask_;
  uint32_t bucket_bits_;
  uint32_t n_free_;
  uint32_t expire_hand_ = 0;
  uint32_t evict_hand_ = 0;
  uint64_t next_counter_;
  uint64_t timeout_ns_[6];
  uint64_t seed_[4];
  memory::HugeArray<Flow> flows_;
  memory::HugeArray<uint32_t> free_;
  memory::HugeArray<Bucket> buckets_;
  struct BitSlot {
    uint64_t w[kFlowBits / 64];
  };
  uint32_t Index(const Flow& f) const { return uint32_t(&f - flows_.get()); }
  void ReleaseBits(uint32_t idx);
  memory::HugeArray<uint32_t> bit_slot_of_;  // by flow index: slot + 1, 0 none
  memory::HugeArray<BitSlot> bit_slots_;
  memory::HugeArray<uint32_t> free_bit_slots_;
  uint32_t n_free_bit_slots_ = 0;
  stream::Reassembler* streams_;
  EndFn end_fn_ = nullptr;
  void* end_ctx_ = nullptr;
  FlowCounters counters_;
};

}  // namespace wardgate::flow
