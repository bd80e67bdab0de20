// TCP reassembly of ONE direction of a connection, for inline inspection. Pure
// library: no DPDK, no allocation after construction, no exceptions.
//
// Threads: a Reassembler (pools, scratch, counters) belongs to one worker; every
// TcpStream fed through it belongs to a flow of that worker's FlowTable. Nothing is
// shared, nothing locks.
//
// Model (an inline IPS sees every byte before the receiver does):
// - Bytes are delivered to inspection once, in sequence order. Each delivery is one
//   contiguous buffer: the last W already-inspected bytes ("window") followed by the
//   new bytes, so a pattern that spans a segment boundary is found in the delivery that
//   completes it; the matcher reports only matches that end at or after `new_from`.
// - First data wins: a segment whose bytes differ from bytes already delivered (checked
//   against the window) or already held is a conflict. The stream does not move and the
//   worker drops the packet, so the receiver never gets the conflicting bytes.
// - Out-of-order segments are copied into the worker's SegmentPool (the packet itself is
//   forwarded) and delivered when the hole before them fills.
// See dataplane/stream/README.md for the policy decisions and their reasons.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "dataplane/memory/huge_array.h"

namespace wardgate::stream {

inline constexpr uint32_t kNil = 0xffffffffu;
inline constexpr uint32_t kMaxSegmentPayload = 65535;  // PacketView::payload_len is 16-bit

// RFC 9293 3.4 / RFC 1982: sequence numbers compare modulo 2^32, valid while the two
// numbers are less than 2^31 apart.
constexpr int32_t SeqDiff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }
constexpr bool SeqLt(uint32_t a, uint32_t b) { return SeqDiff(a, b) < 0; }
constexpr bool SeqLeq(uint32_t a, uint32_t b) { return SeqDiff(a, b) <= 0; }
constexpr bool SeqGt(uint32_t a, uint32_t b) { return SeqDiff(a, b) > 0; }
constexpr bool SeqGeq(uint32_t a, uint32_t b) { return SeqDiff(a, b) >= 0; }

struct StreamConfig {
  uint32_t window_bytes = 512;          // W; at most 65535; 0 = no window (no cross-segment view)
  uint32_t depth = 1u << 20;            // bytes inspected per stream direction; 0 = unlimited
  uint32_t max_held_per_stream = 256;   // held chunks per stream (1..4096); one more = gap, give up
  uint32_t segment_pool = 16384;        // held chunks per worker
  uint32_t chunk_bytes = 2048;          // bytes per held chunk (64..65535); larger segments use several
  uint32_t window_pool = 65536;         // windows per worker: one per stream direction that carried data
};

// Copied by the worker into its WorkerCounters. Single writer: the owning worker.
struct StreamCounters {
  uint64_t segments = 0;                // payload-carrying segments fed
  uint64_t bytes_delivered = 0;         // new bytes handed to inspection
  uint64_t retransmissions = 0;         // segments wholly already delivered or held
  uint64_t overlaps = 0;                // segments partly overlapping earlier bytes, identical
  uint64_t overlap_conflicts = 0;       // overlapping bytes differ (first wins; packet to drop)
  uint64_t overlap_unverifiable = 0;    // overlap older than the window: could not compare
  uint64_t out_of_order_held = 0;       // segments copied into the pool
  uint64_t gaps = 0;                    // streams given up: held data over the per-stream limit
  uint64_t segment_pool_exhausted = 0;  // segment could not be held: pool empty
  uint64_t window_pool_exhausted = 0;   // stream could not get a window buffer
  uint64_t depth_reached = 0;           // streams that reached the inspection depth
  uint64_t window_overruns = 0;         // segments (partly) beyond the receiver's advertised window
};

// Fixed-capacity pool of chunk buffers for held (out-of-order) data. A chunk carries
// its sequence number, its length and its neighbours in its stream's list (circular,
// doubly linked: the head's prev is the tail, so appending in order is O(1)).
class SegmentPool {
 public:
  SegmentPool(uint32_t capacity, uint32_t chunk_bytes);

  uint32_t Alloc();            // kNil when empty
  void Free(uint32_t chunk);
  uint32_t capacity() const { return capacity_; }
  uint32_t available() const { return available_; }
  uint32_t chunk_bytes() const { return chunk_bytes_; }

  uint32_t& seq(uint32_t c) { return headers_[c].seq; }
  uint32_t& next(uint32_t c) { return headers_[c].next; }
  uint32_t& prev(uint32_t c) { return headers_[c].prev; }
  uint16_t& len(uint32_t c) { return headers_[c].len; }
  uint8_t* data(uint32_t c) { return data_.get() + size_t(c) * chunk_bytes_; }

 private:
  struct Header {
    uint32_t seq;
    uint32_t next;  // next chunk of the stream, or next free chunk
    uint32_t prev;
    uint16_t len;
  };
  uint32_t capacity_;
  uint32_t chunk_bytes_;
  uint32_t available_;
  uint32_t free_ = kNil;
  memory::HugeArray<Header> headers_;
  memory::HugeArray<uint8_t> data_;
};

// Fixed-capacity pool of W-byte windows (the last inspected bytes of a stream).
class WindowPool {
 public:
  WindowPool(uint32_t capacity, uint32_t window_bytes);

  uint32_t Alloc();            // kNil when empty
  void Free(uint32_t w);
  uint32_t capacity() const { return capacity_; }
  uint32_t available() const { return available_; }
  uint8_t* data(uint32_t w) { return data_.get() + size_t(w) * bytes_; }

 private:
  uint32_t capacity_;
  uint32_t bytes_;
  uint32_t available_;
  uint32_t free_ = kNil;
  memory::HugeArray<uint32_t> next_;
  memory::HugeArray<uint8_t> data_;
};

// Per-worker reassembly state: configuration, both pools, the delivery scratch buffer
// (W + one segment + a stream's held chunks) and counters. Built once, before the
// worker starts; all memory is allocated and touched here.
class Reassembler {
 public:
  explicit Reassembler(const StreamConfig& config);

  const StreamConfig& config() const { return config_; }
  StreamCounters& counters() { return counters_; }
  const StreamCounters& counters() const { return counters_; }
  SegmentPool& segments() { return segments_; }
  WindowPool& windows() { return windows_; }

 private:
  friend class TcpStream;
  static StreamConfig Clamp(StreamConfig c);
  StreamConfig config_;
  SegmentPool segments_;
  WindowPool windows_;
  size_t scratch_size_;
  std::unique_ptr<uint8_t[]> scratch_;
  StreamCounters counters_;
};

// What one segment was. Exactly one per Feed.
enum class SegmentClass : uint8_t {
  kNoPayload = 0,   // SYN, ACK, FIN without data: nothing to inspect
  kDelivered,       // new in-order bytes (and any held bytes they made contiguous) in `data`
  kHeld,            // out of order: copied to the pool, forward the packet, inspected later
  kRetransmission,  // every byte already delivered or held; identical where verifiable
  kConflict,        // differs from bytes seen first: DROP this packet (stream unchanged)
  kWindowOverrun,   // entirely beyond the receiver's advertised window: not accepted
  kGap,             // held data went over the per-stream limit: stream given up now
  kResourceLimit,   // a pool is empty: not held/delivered; stream unchanged (see README)
  kNotInspected,    // the stream stopped earlier (depth, gap, Stop())
};

// Notes that may accompany a class (bit set).
inline constexpr uint8_t kNoteOverlap = 0x01;        // overlapped earlier bytes, identical
inline constexpr uint8_t kNoteUnverifiable = 0x02;   // part of the overlap was older than the window
inline constexpr uint8_t kNoteWindowOverrun = 0x04;  // trimmed at the receiver's window end
inline constexpr uint8_t kNoteDepthReached = 0x08;   // delivery truncated at depth; stream stops
inline constexpr uint8_t kNoteStarted = 0x10;        // this segment started the stream (SYN or midstream)

struct StreamResult {
  SegmentClass cls = SegmentClass::kNoPayload;
  uint8_t notes = 0;
  // kDelivered only: window bytes then new bytes, in the Reassembler's scratch; valid
  // until the next Feed on any stream of the same Reassembler.
  std::span<const uint8_t> data;
  uint32_t new_from = 0;      // data[new_from..] are new; data[..new_from] already inspected
  uint64_t data_offset = 0;   // stream offset of data[0] (0 = first byte after the SYN)

  std::span<const uint8_t> NewBytes() const { return data.subspan(new_from); }
};

// The receiver's advertised window (RFC 9293 3.8.6): it accepts bytes up to `end`
// (its last ACK + scaled window). Supplied by the flow tracker, which sees the ACKs.
struct ReceiverWindow {
  uint32_t end = 0;
  bool known = false;
};

enum class StreamState : uint8_t {
  kUnstarted = 0,   // no SYN and no data seen yet
  kActive,
  kDepthReached,
  kGaveUp,          // gap: held data over the limit
  kStopped,         // Stop(): resource limit action, or a later stage said so
};

// One direction of a TCP connection. 24 bytes; lives inside the Flow. Holds pool
// indices, so it must be Reset() (the FlowTable does) before its flow is reused.
class TcpStream {
 public:
  // Feeds one segment sent in this direction: its sequence number, its TCP payload
  // and its TCP flags (SYN sets the ISN; the payload of a SYN starts at seq + 1). The
  // first segment of a stream without a SYN starts it there (midstream pickup).
  StreamResult Feed(Reassembler& r, uint32_t seq, std::span<const uint8_t> payload, uint8_t tcp_flags,
                    ReceiverWindow window = {});

  // Stops inspecting (frees held chunks and the window). Later segments: kNotInspected.
  void Stop(Reassembler& r);
  // Back to the unstarted state, returning every pool entry (flow end or reuse).
  void Reset(Reassembler& r);

  StreamState state() const { return static_cast<StreamState>(state_); }
  bool inspecting() const { return state_ <= static_cast<uint8_t>(StreamState::kActive); }
  uint64_t offset() const { return offset_; }      // stream offset of the next byte to deliver
  uint32_t next_seq() const { return next_seq_; }  // its sequence number
  uint32_t held_chunks() const { return held_count_; }

 private:
  void Release(Reassembler& r);
  void Start(uint32_t first_seq);
  // Compares [rel, rel_end) (relative to next_seq_) of `p` with the window and the
  // held chunks; counts how many chunks its uncovered part needs.
  bool Verify(Reassembler& r, int64_t rel, int64_t rel_end, const uint8_t* p, uint8_t& notes, uint32_t& chunks_needed,
              bool& fully_covered);
  StreamResult Deliver(Reassembler& r, int64_t rel, int64_t rel_end, const uint8_t* p, uint8_t notes);
  void Hold(Reassembler& r, int64_t rel, int64_t rel_end, const uint8_t* p);
  // Bytes in the window: the last min(offset_, W) delivered bytes, while it exists.
  uint32_t WindowLen(const Reassembler& r) const;
  int64_t HeldEnd(Reassembler& r) const;  // end of the last held chunk, relative to next_seq_
  uint32_t NextHeld(Reassembler& r, uint32_t c) const;  // kNil after the tail
  void LinkAfter(Reassembler& r, uint32_t prev, uint32_t k);  // prev kNil: at the front
  void Unlink(Reassembler& r, uint32_t c);

  uint64_t offset_ = 0;
  uint32_t next_seq_ = 0;
  uint32_t window_ = kNil;     // WindowPool index
  uint32_t held_ = kNil;       // first held chunk (lowest sequence), SegmentPool index
  uint16_t held_count_ = 0;
  uint8_t state_ = 0;
};

}  // namespace wardgate::stream
