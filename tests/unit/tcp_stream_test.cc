// TCP reassembly of one direction: what inspection sees for each segment an end host
// (or an attacker) may send, and what the worker must drop.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/stream/tcp_stream.h"

namespace wardgate::stream {
namespace {

constexpr uint8_t kSyn = 0x02, kAck = 0x10;

std::span<const uint8_t> Bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
std::string Str(std::span<const uint8_t> b) { return std::string(b.begin(), b.end()); }

StreamConfig SmallConfig() {
  StreamConfig c;
  c.window_bytes = 8;
  c.depth = 0;
  c.max_held_per_stream = 8;
  c.segment_pool = 32;
  c.chunk_bytes = 64;
  c.window_pool = 4;
  return c;
}

struct StreamFixture : ::testing::Test {
  Reassembler r{SmallConfig()};
  TcpStream s;
  StreamResult Feed(uint32_t seq, std::string_view data, ReceiverWindow w = {}) { return s.Feed(r, seq, Bytes(data), kAck, w); }
};

TEST_F(StreamFixture, InOrderSegmentsAreDeliveredOnceWithTheWindowInFront) {
  EXPECT_EQ(s.Feed(r, 1000, {}, kSyn).cls, SegmentClass::kNoPayload);
  EXPECT_EQ(s.next_seq(), 1001u);

  auto a = Feed(1001, "hello");
  ASSERT_EQ(a.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(a.data), "hello");
  EXPECT_EQ(a.new_from, 0u);
  EXPECT_EQ(a.data_offset, 0u);

  auto b = Feed(1006, "world!");
  ASSERT_EQ(b.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(b.data), "helloworld!");
  EXPECT_EQ(b.new_from, 5u);
  EXPECT_EQ(Str(b.NewBytes()), "world!");
  EXPECT_EQ(b.data_offset, 0u);

  // The window keeps the last W = 8 bytes.
  auto c = Feed(1012, "xyz");
  EXPECT_EQ(Str(c.data), "loworld!xyz");
  EXPECT_EQ(c.new_from, 8u);
  EXPECT_EQ(c.data_offset, 3u);
  EXPECT_EQ(s.offset(), 14u);
  EXPECT_EQ(r.counters().bytes_delivered, 14u);
  EXPECT_EQ(r.counters().segments, 3u);
}

TEST_F(StreamFixture, ContentSpanningTwoSegmentsIsContiguousAndMatchedOnce) {
  s.Feed(r, 0, {}, kSyn);
  // A matcher that, as the worker's will, reports only matches ending in the new bytes.
  auto matches = [](const StreamResult& res, std::string_view pat) {
    int n = 0;
    const std::string d = Str(res.data);
    for (size_t p = d.find(pat); p != std::string::npos; p = d.find(pat, p + 1)) {
      if (p + pat.size() > res.new_from) ++n;
    }
    return n;
  };
  // (A result's data lives in the Reassembler's scratch: scan it before the next Feed.)
  EXPECT_EQ(matches(Feed(1, "GET /cgi-bin/ev"), "evil.sh"), 0);
  auto b = Feed(16, "il.sh HTTP/1.1");
  EXPECT_EQ(Str(b.data), "i-bin/evil.sh HTTP/1.1");  // W = 8
  EXPECT_EQ(matches(b, "evil.sh"), 1);
  EXPECT_EQ(matches(Feed(30, "\r\n"), "evil.sh"), 0) << "already reported with the previous segment";
}

TEST_F(StreamFixture, OutOfOrderIsHeldThenDeliveredOnceInOrder) {
  s.Feed(r, 100, {}, kSyn);
  auto held = Feed(106, "world");
  EXPECT_EQ(held.cls, SegmentClass::kHeld);
  EXPECT_TRUE(held.data.empty());
  EXPECT_EQ(s.held_chunks(), 1u);
  EXPECT_EQ(r.segments().available(), 31u);

  auto later = Feed(111, "!!");
  EXPECT_EQ(later.cls, SegmentClass::kHeld);

  auto fill = Feed(101, "hello");
  ASSERT_EQ(fill.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(fill.NewBytes()), "helloworld!!");
  EXPECT_EQ(s.held_chunks(), 0u);
  EXPECT_EQ(r.segments().available(), 32u);
  EXPECT_EQ(r.counters().out_of_order_held, 2u);

  // The held segment arriving again is a retransmission, not new data.
  EXPECT_EQ(Feed(106, "world").cls, SegmentClass::kRetransmission);
  EXPECT_EQ(r.counters().bytes_delivered, 12u);
}

TEST_F(StreamFixture, RetransmissionIsNotDeliveredAgain) {
  s.Feed(r, 0, {}, kSyn);
  Feed(1, "abcdef");
  auto again = Feed(1, "abcdef");
  EXPECT_EQ(again.cls, SegmentClass::kRetransmission);
  EXPECT_TRUE(again.data.empty());
  EXPECT_EQ(r.counters().retransmissions, 1u);
  EXPECT_EQ(r.counters().overlap_conflicts, 0u);
  // A held segment sent twice is also a retransmission.
  EXPECT_EQ(Feed(20, "zz").cls, SegmentClass::kHeld);
  EXPECT_EQ(Feed(20, "zz").cls, SegmentClass::kRetransmission);
  EXPECT_EQ(s.held_chunks(), 1u);
}

TEST_F(StreamFixture, IdenticalOverlapDeliversOnlyTheNewTail) {
  s.Feed(r, 0, {}, kSyn);
  Feed(1, "0123456789");
  auto o = Feed(6, "56789ABCDE");
  ASSERT_EQ(o.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(o.NewBytes()), "ABCDE");
  EXPECT_TRUE(o.notes & kNoteOverlap);
  EXPECT_EQ(r.counters().overlaps, 1u);
}

TEST_F(StreamFixture, ConflictingOverlapFirstDataWinsAndStreamDoesNotMove) {
  s.Feed(r, 0, {}, kSyn);
  Feed(1, "0123456789");
  const uint64_t before = s.offset();
  auto bad = Feed(6, "56X89ABCDE");  // '7' replaced: Ptacek & Newsham overlap evasion
  EXPECT_EQ(bad.cls, SegmentClass::kConflict);
  EXPECT_TRUE(bad.data.empty());
  EXPECT_EQ(s.offset(), before);
  EXPECT_EQ(r.counters().overlap_conflicts, 1u);
  // The honest retransmission (after the worker dropped the bad one) goes on.
  auto good = Feed(6, "56789ABCDE");
  ASSERT_EQ(good.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(good.NewBytes()), "ABCDE");
}

TEST_F(StreamFixture, ConflictWithHeldDataFirstDataWins) {
  s.Feed(r, 0, {}, kSyn);
  ASSERT_EQ(Feed(11, "ABCDE").cls, SegmentClass::kHeld);
  auto bad = Feed(1, "0123456789ABXDE");
  EXPECT_EQ(bad.cls, SegmentClass::kConflict);
  EXPECT_EQ(s.offset(), 0u);
  auto bad_ooo = Feed(13, "XDEFG");  // also out of order, against held bytes
  EXPECT_EQ(bad_ooo.cls, SegmentClass::kConflict);
  auto good = Feed(1, "0123456789ABC");
  ASSERT_EQ(good.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(good.NewBytes()), "0123456789ABCDE");
  EXPECT_EQ(r.counters().overlap_conflicts, 2u);
}

TEST_F(StreamFixture, OverlapOutOfOrderKeepsOnlyTheUncoveredPart) {
  s.Feed(r, 0, {}, kSyn);
  Feed(11, "ABCDE");                 // [10,15)
  Feed(21, "KLMNO");                 // [20,25)
  auto mid = Feed(13, "CDEFGHIJKLM");  // [12,23): overlaps both, identical
  EXPECT_EQ(mid.cls, SegmentClass::kHeld);
  EXPECT_TRUE(mid.notes & kNoteOverlap);
  auto all = Feed(1, "0123456789");
  EXPECT_EQ(Str(all.NewBytes()), "0123456789ABCDEFGHIJKLMNO");
}

TEST_F(StreamFixture, OverlapOlderThanTheWindowIsCountedUnverifiable) {
  s.Feed(r, 0, {}, kSyn);
  Feed(1, "0123456789abcdef");  // window keeps "89abcdef"
  auto old = Feed(1, "0123");
  EXPECT_EQ(old.cls, SegmentClass::kRetransmission);
  EXPECT_TRUE(old.notes & kNoteUnverifiable);
  EXPECT_EQ(r.counters().overlap_unverifiable, 1u);
  // Within the window a difference is still caught.
  EXPECT_EQ(Feed(13, "cXef").cls, SegmentClass::kConflict);
}

TEST_F(StreamFixture, SequenceWrapsAround) {
  const uint32_t isn = 0xfffffff0u;
  s.Feed(r, isn, {}, kSyn);
  std::string all;
  for (char c = 'a'; c < 'a' + 26; ++c) all += std::string(3, c);  // 78 bytes crossing 2^32
  // Out of order across the wrap: the second half first.
  auto h = s.Feed(r, isn + 1 + 40, Bytes(std::string_view(all).substr(40)), kAck);
  EXPECT_EQ(h.cls, SegmentClass::kHeld);
  auto d = s.Feed(r, isn + 1, Bytes(std::string_view(all).substr(0, 40)), kAck);
  ASSERT_EQ(d.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(d.NewBytes()), all);
  EXPECT_EQ(s.next_seq(), isn + 1 + 78);  // wrapped past zero
  EXPECT_LT(s.next_seq(), isn);
  EXPECT_EQ(s.Feed(r, isn + 1 + 10, Bytes(std::string_view(all).substr(10, 5)), kAck).cls,
            SegmentClass::kRetransmission);
}

TEST_F(StreamFixture, MidstreamStartsAtTheFirstDataSeen) {
  auto a = Feed(5000, "abc");
  ASSERT_EQ(a.cls, SegmentClass::kDelivered);
  EXPECT_TRUE(a.notes & kNoteStarted);
  EXPECT_EQ(a.data_offset, 0u);
  auto before = Feed(4990, "0123456789");  // before our first byte: cannot compare
  EXPECT_EQ(before.cls, SegmentClass::kRetransmission);
  EXPECT_TRUE(before.notes & kNoteUnverifiable);
}

TEST_F(StreamFixture, SynDataStartsAfterTheIsn) {
  auto a = s.Feed(r, 700, Bytes("tfo"), kSyn);
  ASSERT_EQ(a.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(a.NewBytes()), "tfo");
  EXPECT_EQ(s.next_seq(), 704u);
  EXPECT_EQ(Feed(704, "x").cls, SegmentClass::kDelivered);
}

TEST_F(StreamFixture, SegmentLargerThanAChunkIsHeldInSeveralChunks) {
  s.Feed(r, 0, {}, kSyn);
  std::string big(200, 'q');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char('a' + i % 26);
  EXPECT_EQ(Feed(11, big).cls, SegmentClass::kHeld);
  EXPECT_EQ(s.held_chunks(), 4u);  // 64-byte chunks
  auto d = Feed(1, "0123456789");
  EXPECT_EQ(Str(d.NewBytes()), "0123456789" + big);
  EXPECT_EQ(r.segments().available(), r.segments().capacity());
}

TEST_F(StreamFixture, SegmentPoolExhaustionSaysResourceLimitAndLeavesTheStream) {
  StreamConfig c = SmallConfig();
  c.segment_pool = 2;
  Reassembler small(c);
  TcpStream a, b;
  a.Feed(small, 0, {}, kSyn);
  b.Feed(small, 0, {}, kSyn);
  EXPECT_EQ(a.Feed(small, 10, Bytes("x"), kAck).cls, SegmentClass::kHeld);
  EXPECT_EQ(a.Feed(small, 20, Bytes("y"), kAck).cls, SegmentClass::kHeld);
  auto full = b.Feed(small, 10, Bytes("z"), kAck);
  EXPECT_EQ(full.cls, SegmentClass::kResourceLimit);
  EXPECT_EQ(small.counters().segment_pool_exhausted, 1u);
  EXPECT_TRUE(b.inspecting());
  EXPECT_EQ(b.held_chunks(), 0u);
  // In-order data needs no chunk.
  EXPECT_EQ(b.Feed(small, 1, Bytes("ok"), kAck).cls, SegmentClass::kDelivered);
  // Worker's default action: stop inspecting; resources come back.
  a.Stop(small);
  EXPECT_EQ(small.segments().available(), 2u);
  EXPECT_EQ(a.Feed(small, 1, Bytes("123456789"), kAck).cls, SegmentClass::kNotInspected);
}

TEST_F(StreamFixture, WindowPoolExhaustionSaysResourceLimit) {
  StreamConfig c = SmallConfig();
  c.window_pool = 1;
  Reassembler small(c);
  TcpStream a, b;
  EXPECT_EQ(a.Feed(small, 1, Bytes("a"), kAck).cls, SegmentClass::kDelivered);
  EXPECT_EQ(b.Feed(small, 1, Bytes("b"), kAck).cls, SegmentClass::kResourceLimit);
  EXPECT_EQ(small.counters().window_pool_exhausted, 1u);
  a.Reset(small);
  EXPECT_EQ(b.Feed(small, 1, Bytes("b"), kAck).cls, SegmentClass::kDelivered);
}

TEST_F(StreamFixture, TooMuchHeldDataIsAGapAndTheStreamIsGivenUp) {
  s.Feed(r, 0, {}, kSyn);
  for (uint32_t i = 0; i < 8; ++i) ASSERT_EQ(Feed(10 + 10 * i, "x").cls, SegmentClass::kHeld);
  auto gap = Feed(200, "y");
  EXPECT_EQ(gap.cls, SegmentClass::kGap);
  EXPECT_EQ(s.state(), StreamState::kGaveUp);
  EXPECT_EQ(r.counters().gaps, 1u);
  EXPECT_EQ(r.segments().available(), r.segments().capacity());
  EXPECT_EQ(Feed(1, "abc").cls, SegmentClass::kNotInspected);
}

TEST(TcpStream, LongLossEpisodeHoldsManySegmentsAndDeliversThemInOrder) {
  StreamConfig c;
  c.max_held_per_stream = 1000;
  c.segment_pool = 1000;
  c.chunk_bytes = 64;
  c.depth = 0;
  Reassembler r(c);
  TcpStream s;
  s.Feed(r, 0, {}, kSyn);
  std::string all;
  for (int i = 0; i < 600; ++i) all += std::string(50, char('A' + i % 26));
  // Segment 0 lost before us; 599 more arrive (appended in O(1) each), then the resend.
  for (int i = 1; i < 600; ++i) {
    ASSERT_EQ(s.Feed(r, 1 + 50 * i, Bytes(std::string_view(all).substr(50 * i, 50)), kAck).cls,
              SegmentClass::kHeld);
  }
  EXPECT_EQ(s.held_chunks(), 599u);
  auto d = s.Feed(r, 1, Bytes(std::string_view(all).substr(0, 50)), kAck);
  ASSERT_EQ(d.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(d.NewBytes()), all);
  EXPECT_EQ(r.segments().available(), 1000u);
}

TEST_F(StreamFixture, DepthLimitTruncatesThenStopsInspection) {
  StreamConfig c = SmallConfig();
  c.depth = 10;
  Reassembler d(c);
  s.Feed(d, 0, {}, kSyn);
  EXPECT_EQ(Str(s.Feed(d, 1, Bytes("012345"), kAck).NewBytes()), "012345");
  auto last = s.Feed(d, 7, Bytes("6789AB"), kAck);
  ASSERT_EQ(last.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(last.NewBytes()), "6789");
  EXPECT_TRUE(last.notes & kNoteDepthReached);
  EXPECT_EQ(s.state(), StreamState::kDepthReached);
  EXPECT_EQ(d.counters().depth_reached, 1u);
  EXPECT_EQ(d.windows().available(), d.windows().capacity());
  EXPECT_EQ(s.Feed(d, 13, Bytes("CD"), kAck).cls, SegmentClass::kNotInspected);
  EXPECT_EQ(s.Feed(d, 13, {}, kAck).cls, SegmentClass::kNoPayload);
}

TEST_F(StreamFixture, BytesBeyondTheReceiverWindowAreNotAccepted) {
  s.Feed(r, 0, {}, kSyn);
  const ReceiverWindow w{1 + 10, true};  // receiver acked 1, window 10
  auto part = Feed(1, "0123456789ABCDEF", w);
  ASSERT_EQ(part.cls, SegmentClass::kDelivered);
  EXPECT_EQ(Str(part.NewBytes()), "0123456789");
  EXPECT_TRUE(part.notes & kNoteWindowOverrun);
  auto beyond = Feed(12, "XYZ", w);  // wholly beyond: a zero-window probe or an evasion
  EXPECT_EQ(beyond.cls, SegmentClass::kWindowOverrun);
  EXPECT_EQ(r.counters().window_overruns, 2u);
  // When the window opens, the same range may come with other bytes: they are new.
  auto later = Feed(11, "abc", ReceiverWindow{1 + 100, true});
  EXPECT_EQ(Str(later.NewBytes()), "abc");
}

TEST_F(StreamFixture, NewIsnBeforeAnyDataRestartsTheStream) {
  s.Feed(r, 100, {}, kSyn);
  s.Feed(r, 100, {}, kSyn);  // retransmitted SYN: same ISN
  EXPECT_EQ(s.next_seq(), 101u);
  s.Feed(r, 900, {}, kSyn);  // client retried with a new ISN
  EXPECT_EQ(s.next_seq(), 901u);
  EXPECT_EQ(Feed(901, "a").cls, SegmentClass::kDelivered);
}

// Property: whatever the segmentation, reordering and duplication, the new bytes of
// all deliveries concatenate to the stream, each byte exactly once.
TEST(TcpStreamProperty, RandomSegmentationReorderingAndDuplicatesDeliverTheStreamOnce) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    StreamConfig c;
    c.window_bytes = 16;
    c.depth = 0;
    c.max_held_per_stream = 255;
    c.segment_pool = 4096;
    c.chunk_bytes = 64;
    c.window_pool = 2;
    Reassembler r(c);
    TcpStream s;
    std::string data(1 + rng() % 3000, '\0');
    for (auto& ch : data) ch = char('A' + rng() % 26);
    const uint32_t isn = rng() % 4 == 0 ? 0xffffffffu - uint32_t(rng() % 2000) : uint32_t(rng());
    struct Seg {
      uint32_t off, len;
    };
    std::vector<Seg> segs;
    for (uint32_t off = 0; off < data.size();) {
      const uint32_t len = std::min<uint32_t>(1 + rng() % 200, uint32_t(data.size()) - off);
      segs.push_back({off, len});
      if (rng() % 5 == 0) segs.push_back({off, len});  // duplicate
      if (rng() % 7 == 0 && off + len < data.size()) {  // overlapping resend
        const uint32_t o2 = off + len / 2;
        segs.push_back({o2, std::min<uint32_t>(len, uint32_t(data.size()) - o2)});
      }
      off += len;
    }
    // Local reordering: shuffle within windows of 6 segments.
    for (size_t i = 0; i < segs.size(); i += 6) {
      std::shuffle(segs.begin() + i, segs.begin() + std::min(segs.size(), i + 6), rng);
    }
    s.Feed(r, isn, {}, kSyn);
    std::string got;
    for (const Seg& g : segs) {
      auto res = s.Feed(r, isn + 1 + g.off, Bytes(std::string_view(data).substr(g.off, g.len)), kAck);
      ASSERT_NE(res.cls, SegmentClass::kConflict);
      ASSERT_NE(res.cls, SegmentClass::kGap);
      ASSERT_NE(res.cls, SegmentClass::kResourceLimit);
      if (res.cls == SegmentClass::kDelivered) {
        ASSERT_EQ(res.data_offset + res.new_from, got.size());
        // The window part is what was delivered just before.
        ASSERT_EQ(Str(res.data.first(res.new_from)), got.substr(got.size() - res.new_from));
        got += Str(res.NewBytes());
      }
    }
    ASSERT_EQ(got, data) << "round " << round;
    EXPECT_EQ(s.held_chunks(), 0u);
    EXPECT_EQ(r.segments().available(), r.segments().capacity());
  }
}

// Property: a resent byte that differs from the first copy is a conflict whenever the
// first copy is still there to compare (held, or within the window); otherwise it is
// never delivered. The inspected stream is always the first copy.
TEST(TcpStreamProperty, DifferingResendsAreConflictsOrNeverDelivered) {
  std::mt19937 rng(777);
  uint64_t conflicts = 0, unverifiable = 0;
  for (int round = 0; round < 200; ++round) {
    StreamConfig c;
    c.window_bytes = 32;
    c.depth = 0;
    c.max_held_per_stream = 4096;
    c.segment_pool = 8192;
    c.chunk_bytes = 64;
    c.window_pool = 2;
    Reassembler r(c);
    TcpStream s;
    std::string data(1 + rng() % 4000, '\0');
    for (auto& ch : data) ch = char('a' + rng() % 26);
    const uint32_t isn = uint32_t(rng());
    std::vector<std::pair<uint32_t, uint32_t>> segs;
    for (uint32_t off = 0; off < data.size();) {
      const uint32_t len = std::min<uint32_t>(1 + rng() % 150, uint32_t(data.size()) - off);
      segs.push_back({off, len});
      if (rng() % 3 == 0) segs.push_back({off - std::min<uint32_t>(off, rng() % 40), len});
      off += len;
    }
    std::shuffle(segs.begin(), segs.end(), rng);  // any order at all
    std::vector<bool> seen(data.size());
    s.Feed(r, isn, {}, kSyn);
    std::string got;
    auto feed = [&](uint32_t off, std::string_view bytes) {
      auto res = s.Feed(r, isn + 1 + off, Bytes(bytes), kAck);
      if (res.cls == SegmentClass::kDelivered) got += Str(res.NewBytes());
      return res;
    };
    for (auto [off, len] : segs) {
      const uint32_t m = off + uint32_t(rng() % len);
      if (rng() % 3 == 0 && seen[m]) {
        std::string bad = data.substr(off, len);
        bad[m - off] = char(bad[m - off] ^ 0x20);
        const bool comparable = m >= got.size() || m + c.window_bytes >= got.size();
        const auto res = feed(off, bad);
        if (comparable) {
          ASSERT_EQ(res.cls, SegmentClass::kConflict) << "round " << round << " byte " << m;
          ++conflicts;
        } else {
          ASSERT_NE(res.cls, SegmentClass::kConflict);
          ASSERT_TRUE(res.notes & kNoteUnverifiable);
          ++unverifiable;
        }
        ASSERT_EQ(got, data.substr(0, got.size())) << "round " << round;
      }
      const auto res = feed(off, std::string_view(data).substr(off, len));
      ASSERT_NE(res.cls, SegmentClass::kConflict);
      for (uint32_t i = off; i < off + len; ++i) seen[i] = true;
    }
    ASSERT_EQ(got, data) << "round " << round;
    EXPECT_EQ(r.segments().available(), r.segments().capacity());
  }
  EXPECT_GT(conflicts, 50u);     // both branches were exercised
  EXPECT_GT(unverifiable, 50u);
}

}  // namespace
}  // namespace wardgate::stream
