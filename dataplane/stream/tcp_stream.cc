#include "dataplane/stream/tcp_stream.h"

#include <algorithm>
#include <cstring>

namespace wardgate::stream {

namespace {

constexpr uint8_t kSyn = 0x02;  // RFC 9293 3.1 (same bit as parse::kTcpSyn)

uint32_t ChunksFor(int64_t bytes, uint32_t chunk_bytes) {
  return static_cast<uint32_t>((bytes + chunk_bytes - 1) / chunk_bytes);
}

}  // namespace

// ---------------------------------------------------------------------------- pools

SegmentPool::SegmentPool(uint32_t capacity, uint32_t chunk_bytes)
    : capacity_(capacity),
      chunk_bytes_(chunk_bytes),
      available_(capacity),
      headers_(capacity),
      data_(size_t(capacity) * chunk_bytes) {
  for (uint32_t i = 0; i < capacity; ++i) {
    headers_[i] = Header{0, i + 1 < capacity ? i + 1 : kNil, kNil, 0};
  }
  free_ = capacity ? 0 : kNil;
}

uint32_t SegmentPool::Alloc() {
  const uint32_t c = free_;
  if (c == kNil) return kNil;
  free_ = headers_[c].next;
  headers_[c].next = headers_[c].prev = kNil;
  --available_;
  return c;
}

void SegmentPool::Free(uint32_t c) {
  headers_[c].next = free_;
  free_ = c;
  ++available_;
}

WindowPool::WindowPool(uint32_t capacity, uint32_t window_bytes)
    : capacity_(capacity),
      bytes_(window_bytes),
      available_(capacity),
      next_(capacity),
      data_(size_t(capacity) * window_bytes) {
  for (uint32_t i = 0; i < capacity; ++i) next_[i] = i + 1 < capacity ? i + 1 : kNil;
  free_ = capacity ? 0 : kNil;
}

uint32_t WindowPool::Alloc() {
  const uint32_t w = free_;
  if (w == kNil) return kNil;
  free_ = next_[w];
  --available_;
  return w;
}

void WindowPool::Free(uint32_t w) {
  next_[w] = free_;
  free_ = w;
  ++available_;
}

// ---------------------------------------------------------------------- reassembler

StreamConfig Reassembler::Clamp(StreamConfig c) {
  c.window_bytes = std::min<uint32_t>(c.window_bytes, 65535);
  c.max_held_per_stream = std::clamp<uint32_t>(c.max_held_per_stream, 1, 4096);  // bounds the scratch
  c.chunk_bytes = std::clamp<uint32_t>(c.chunk_bytes, 64, 65535);               // chunk len is 16-bit
  if (c.window_bytes == 0) c.window_pool = 0;
  return c;
}

Reassembler::Reassembler(const StreamConfig& config)
    : config_(Clamp(config)),
      segments_(config_.segment_pool, config_.chunk_bytes),
      windows_(config_.window_pool, config_.window_bytes),
      // Largest delivery: the window, one segment, then every chunk the stream may hold.
      scratch_size_(size_t(config_.window_bytes) + kMaxSegmentPayload +
                    size_t(config_.max_held_per_stream) * config_.chunk_bytes),
      scratch_(new uint8_t[scratch_size_]()) {}

// ----------------------------------------------------------------------- the stream

void TcpStream::Start(uint32_t first_seq) {
  next_seq_ = first_seq;
  offset_ = 0;
  state_ = static_cast<uint8_t>(StreamState::kActive);
}

uint32_t TcpStream::WindowLen(const Reassembler& r) const {
  return window_ == kNil ? 0 : uint32_t(std::min<uint64_t>(offset_, r.config_.window_bytes));
}

uint32_t TcpStream::NextHeld(Reassembler& r, uint32_t c) const {
  const uint32_t n = r.segments_.next(c);
  return n == held_ ? kNil : n;
}

int64_t TcpStream::HeldEnd(Reassembler& r) const {
  const uint32_t tail = r.segments_.prev(held_);
  return int64_t(SeqDiff(r.segments_.seq(tail), next_seq_)) + r.segments_.len(tail);
}

void TcpStream::Release(Reassembler& r) {
  for (uint32_t c = held_; c != kNil;) {
    const uint32_t next = NextHeld(r, c);
    r.segments_.Free(c);
    c = next;
  }
  held_ = kNil;
  held_count_ = 0;
  if (window_ != kNil) r.windows_.Free(window_);
  window_ = kNil;
}

void TcpStream::Stop(Reassembler& r) {
  Release(r);
  state_ = static_cast<uint8_t>(StreamState::kStopped);
}

void TcpStream::Reset(Reassembler& r) {
  Release(r);
  *this = TcpStream{};
}

void TcpStream::LinkAfter(Reassembler& r, uint32_t prev, uint32_t k) {
  SegmentPool& pool = r.segments_;
  if (held_ == kNil) {
    pool.next(k) = pool.prev(k) = k;
    held_ = k;
  } else {
    const uint32_t before = prev == kNil ? pool.prev(held_) : prev;  // front: after the tail
    const uint32_t after = pool.next(before);
    pool.prev(k) = before;
    pool.next(k) = after;
    pool.next(before) = k;
    pool.prev(after) = k;
    if (prev == kNil) held_ = k;
  }
  ++held_count_;
}

void TcpStream::Unlink(Reassembler& r, uint32_t c) {
  SegmentPool& pool = r.segments_;
  const uint32_t n = pool.next(c);
  if (n == c) {
    held_ = kNil;
  } else {
    const uint32_t pv = pool.prev(c);
    pool.next(pv) = n;
    pool.prev(n) = pv;
    if (held_ == c) held_ = n;
  }
  --held_count_;
}

bool TcpStream::Verify(Reassembler& r, int64_t rel, int64_t rel_end, const uint8_t* p, uint8_t& notes,
                       uint32_t& chunks_needed, bool& fully_covered) {
  // Bytes before next_seq_ were delivered; the window holds the last `wl` of them.
  const int64_t wl = WindowLen(r);
  if (rel < 0) {
    const int64_t old_end = std::min<int64_t>(rel_end, 0);
    const int64_t from = std::max<int64_t>(rel, -wl);
    if (from < old_end) {
      const uint8_t* w = r.windows_.data(window_) + wl + from;
      if (std::memcmp(p + (from - rel), w, size_t(old_end - from)) != 0) return false;
    }
    if (rel < -wl) {
      notes |= kNoteUnverifiable;
      ++r.counters_.overlap_unverifiable;
    }
    notes |= kNoteOverlap;
  }
  // Bytes from next_seq_ on: compare with what is held; count chunks for the rest.
  const uint32_t chunk = r.segments_.chunk_bytes();
  int64_t cur = std::max<int64_t>(rel, 0);
  uint32_t chunks = 0;
  // Common case during a loss episode: the segment lies after everything held.
  const uint32_t first = (held_ != kNil && HeldEnd(r) > cur) ? held_ : kNil;
  for (uint32_t c = first; c != kNil && cur < rel_end; c = NextHeld(r, c)) {
    const int64_t hs = SeqDiff(r.segments_.seq(c), next_seq_);
    const int64_t he = hs + r.segments_.len(c);
    if (he <= cur) continue;
    if (hs >= rel_end) break;
    if (hs > cur) {
      chunks += ChunksFor(hs - cur, chunk);
      cur = hs;
    }
    const int64_t oe = std::min(he, rel_end);
    if (std::memcmp(p + (cur - rel), r.segments_.data(c) + (cur - hs), size_t(oe - cur)) != 0) return false;
    notes |= kNoteOverlap;
    cur = oe;
  }
  if (cur < rel_end) chunks += ChunksFor(rel_end - cur, chunk);
  chunks_needed = chunks;
  fully_covered = chunks == 0;
  return true;
}

StreamResult TcpStream::Deliver(Reassembler& r, int64_t rel, int64_t rel_end, const uint8_t* p, uint8_t notes) {
  const StreamConfig& cfg = r.config_;
  uint8_t* out = r.scratch_.get();
  const uint32_t wl = WindowLen(r);
  if (wl) std::memcpy(out, r.windows_.data(window_), wl);
  size_t pos = wl;
  std::memcpy(out + pos, p - rel, size_t(rel_end));  // rel <= 0: skip the old prefix
  pos += size_t(rel_end);
  // Held chunks that are now contiguous; they were compared with the segment already.
  int64_t cur = rel_end;
  while (held_ != kNil) {
    const uint32_t c = held_;
    const int64_t hs = SeqDiff(r.segments_.seq(c), next_seq_);
    if (hs > cur) break;
    const int64_t he = hs + r.segments_.len(c);
    if (he > cur) {
      std::memcpy(out + pos, r.segments_.data(c) + (cur - hs), size_t(he - cur));
      pos += size_t(he - cur);
      cur = he;
    }
    Unlink(r, c);
    r.segments_.Free(c);
  }
  uint64_t fresh = uint64_t(cur);
  const bool depth = cfg.depth && offset_ + fresh >= cfg.depth;
  if (depth) {
    fresh = cfg.depth - offset_;
    notes |= kNoteDepthReached;
  }
  StreamResult res;
  res.cls = SegmentClass::kDelivered;
  res.notes = notes;
  res.data = std::span<const uint8_t>(out, wl + fresh);
  res.new_from = wl;
  res.data_offset = offset_ - wl;
  r.counters_.bytes_delivered += fresh;
  offset_ += fresh;
  next_seq_ += static_cast<uint32_t>(cur);
  if (depth) {
    ++r.counters_.depth_reached;
    Release(r);  // the delivery stays valid: it lives in the scratch
    state_ = static_cast<uint8_t>(StreamState::kDepthReached);
  } else if (window_ != kNil) {
    const size_t total = wl + fresh;
    const size_t keep = std::min<size_t>(cfg.window_bytes, total);  // == WindowLen(r) now
    std::memcpy(r.windows_.data(window_), out + total - keep, keep);
  }
  return res;
}

void TcpStream::Hold(Reassembler& r, int64_t rel, int64_t rel_end, const uint8_t* p) {
  SegmentPool& pool = r.segments_;
  const uint32_t chunk = pool.chunk_bytes();
  uint32_t prev = kNil;
  // Inserts [a, b) as chunks after `prev` (kNil: at the front), keeping the list sorted
  // and non-overlapping.
  auto emit = [&](int64_t a, int64_t b) {
    while (a < b) {
      const uint32_t n = static_cast<uint32_t>(std::min<int64_t>(b - a, chunk));
      const uint32_t k = pool.Alloc();  // availability checked by the caller
      pool.seq(k) = next_seq_ + static_cast<uint32_t>(a);
      pool.len(k) = static_cast<uint16_t>(n);
      std::memcpy(pool.data(k), p + (a - rel), n);
      LinkAfter(r, prev, k);
      prev = k;
      a += n;
    }
  };
  int64_t cur = rel;
  uint32_t c = held_;
  if (c != kNil && HeldEnd(r) <= rel) {  // after everything held: append
    prev = pool.prev(held_);
    c = kNil;
  }
  while (cur < rel_end) {
    if (c == kNil) {
      emit(cur, rel_end);
      break;
    }
    const int64_t hs = SeqDiff(pool.seq(c), next_seq_);
    const int64_t he = hs + pool.len(c);
    if (he <= cur) {
      prev = c;
      c = NextHeld(r, c);
      continue;
    }
    if (hs >= rel_end) {
      emit(cur, rel_end);
      break;
    }
    if (hs > cur) emit(cur, hs);
    cur = std::max(cur, he);
    prev = c;
    c = NextHeld(r, c);
  }
}

StreamResult TcpStream::Feed(Reassembler& r, uint32_t seq, std::span<const uint8_t> payload, uint8_t tcp_flags,
                             ReceiverWindow window) {
  StreamResult res;
  StreamCounters& ctr = r.counters_;
  if (!inspecting()) {
    if (!payload.empty()) res.cls = SegmentClass::kNotInspected;
    return res;
  }
  if (tcp_flags & kSyn) {
    // The SYN occupies the ISN; its data (TCP Fast Open) starts at ISN + 1. A SYN with
    // another ISN before anything was delivered or held restarts the stream.
    const uint32_t first = seq + 1;
    if (state() == StreamState::kUnstarted || (offset_ == 0 && held_ == kNil && next_seq_ != first)) {
      Start(first);
      res.notes |= kNoteStarted;
    }
    seq = first;
  }
  if (payload.empty()) return res;
  if (state() == StreamState::kUnstarted) {  // midstream: the first data seen starts the stream
    Start(seq);
    res.notes |= kNoteStarted;
  }
  ++ctr.segments;
  const uint8_t* p = payload.data();
  const int64_t len = int64_t(std::min<size_t>(payload.size(), kMaxSegmentPayload));
  const int64_t rel = SeqDiff(seq, next_seq_);
  int64_t rel_end = rel + len;

  // The receiver drops bytes beyond its window (RFC 9293 3.10.7.4), so they must not
  // be inspected as if it got them: the same sequence range may come again with other
  // bytes once the window opens.
  if (window.known) {
    const int64_t wend = SeqDiff(window.end, next_seq_);
    if (rel_end > wend && rel_end > 0) {
      ++ctr.window_overruns;
      res.notes |= kNoteWindowOverrun;
      const int64_t cut = std::max<int64_t>(wend, 0);
      if (cut <= rel) {
        res.cls = SegmentClass::kWindowOverrun;
        return res;
      }
      rel_end = cut;
    }
  }

  uint32_t chunks = 0;
  bool covered = false;
  if (!Verify(r, rel, rel_end, p, res.notes, chunks, covered)) {
    ++ctr.overlap_conflicts;
    res.cls = SegmentClass::kConflict;
    return res;
  }
  if (rel_end <= 0 || covered) {
    ++ctr.retransmissions;
    res.cls = SegmentClass::kRetransmission;
    return res;
  }
  if (rel <= 0) {
    if (window_ == kNil && r.config_.window_bytes) {
      window_ = r.windows_.Alloc();
      if (window_ == kNil) {
        ++ctr.window_pool_exhausted;
        res.cls = SegmentClass::kResourceLimit;
        return res;
      }
    }
    if (res.notes & kNoteOverlap) ++ctr.overlaps;
    return Deliver(r, rel, rel_end, p, res.notes);
  }
  // Out of order: hold a copy of what is not held yet.
  if (held_count_ + chunks > r.config_.max_held_per_stream) {
    ++ctr.gaps;
    Release(r);
    state_ = static_cast<uint8_t>(StreamState::kGaveUp);
    res.cls = SegmentClass::kGap;
    return res;
  }
  if (r.segments_.available() < chunks) {
    ++ctr.segment_pool_exhausted;
    res.cls = SegmentClass::kResourceLimit;
    return res;
  }
  if (res.notes & kNoteOverlap) ++ctr.overlaps;
  Hold(r, rel, rel_end, p);
  ++ctr.out_of_order_held;
  res.cls = SegmentClass::kHeld;
  return res;
}

}  // namespace wardgate::stream
