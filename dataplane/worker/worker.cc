#include "dataplane/worker/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <ctime>
#include <cstring>
#include <span>

#include "dataplane/inspect/reject.h"
#include "dataplane/parse/packet.h"

namespace wardgate::worker {

namespace {

// Signature inspection of one parsed frame.
inspect::Verdict InspectFrame(const generation::Generation& gen, Stages& stages, const parse::PacketView& view,
                              rte_mbuf* m, uint16_t i) {
  // Packet-level inspection of the payload; TCP streams come with the flow stage.
  const auto* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t frame_len = rte_pktmbuf_data_len(m);
  rules::Buffer buf;
  buf.data = frame + view.payload_offset;
  buf.len = view.payload_offset + view.payload_len <= frame_len ? view.payload_len : 0;
  const uint64_t ts = stages.packet_ts_ns ? stages.packet_ts_ns[i] : stages.burst_ts_ns;
  const uint64_t pcap_cnt = stages.pcap_cnt_base ? stages.pcap_cnt_base + i : 0;
  return stages.inspector->Inspect(gen, view, frame, frame_len, buf, inspect::FlowContext{}, ts, pcap_cnt,
                                   events::PacketSource::kWire);
}

// A reject frame (RST or ICMP unreachable) in a fresh mbuf from the frame's pool, or
// nullptr (not applicable, or no mbuf: counted by the caller as a plain drop).
rte_mbuf* RejectFrame(rte_mbuf* m, const parse::PacketView& view, bool to_sender) {
  uint8_t buf[inspect::kMaxRejectFrame];
  const std::span<const uint8_t> frame(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
  const size_t len = view.ip_proto == parse::kProtoTcp
                         ? inspect::BuildTcpReset(frame, view, to_sender, buf)
                         : (to_sender ? inspect::BuildPortUnreachable(frame, view, buf) : 0);
  if (len == 0) return nullptr;
  rte_mbuf* r = rte_pktmbuf_alloc(m->pool);
  if (!r) return nullptr;
  char* p = rte_pktmbuf_append(r, static_cast<uint16_t>(len));
  if (!p) {
    rte_pktmbuf_free(r);
    return nullptr;
  }
  std::memcpy(p, buf, len);
  return r;
}

}  // namespace

void ProcessBurst(const generation::Generation& gen, WorkerCounters& counters, uint16_t rx_port,
                  rte_mbuf* const* pkts, uint16_t n, BurstVerdict& verdict, Stages* stages) {
  verdict.in_port = rx_port;
  verdict.out_port = gen.peer[rx_port];
  verdict.n_forward = 0;
  verdict.n_drop = 0;
  verdict.n_reply = 0;
  uint64_t rx_bytes = 0;
  uint64_t too_long = 0;
  uint64_t rule_drops = 0;
  const bool inspecting = stages && stages->inspector && gen.rules;
  const bool has_peer = verdict.out_port != generation::kNoPeer;

  // l3fwd habit: prefetch the first frames' headers, then one ahead while working.
  constexpr uint16_t kPrefetchAhead = 3;
  for (uint16_t i = 0; i < n && i < kPrefetchAhead; ++i) {
    rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  }
  inspect::Verdict v = inspect::Verdict::kForward;
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchAhead], void*));
    rte_mbuf* m = pkts[i];
    rx_bytes += m->pkt_len;

    // Headers sit in the first segment; chained jumbo frames are parsed from it.
    // ParsePacket resets the view itself, so the scratch is not cleared here.
    const auto err = parse::ParsePacket(
        std::span<const uint8_t>(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)),
        verdict.views[i]);
    if (err != parse::ParseError::kNone) [[unlikely]] {
      counters.malformed[static_cast<size_t>(err)].Add(1);
    }
    if (m->pkt_len > gen.max_frame_len) [[unlikely]] {
      ++too_long;
      verdict.drop[verdict.n_drop++] = m;
    } else if (inspecting && err == parse::ParseError::kNone &&
               (v = InspectFrame(gen, *stages, verdict.views[i], m, i)) != inspect::Verdict::kForward &&
               v != inspect::Verdict::kPass) {
      ++rule_drops;
      if (v == inspect::Verdict::kReject) {
        // Reset both ends: one frame back to the sender, one on to the receiver.
        if (rte_mbuf* r = RejectFrame(m, verdict.views[i], true)) verdict.reply[verdict.n_reply++] = r;
        if (has_peer) {
          if (rte_mbuf* r = RejectFrame(m, verdict.views[i], false)) verdict.forward[verdict.n_forward++] = r;
        }
      }
      verdict.drop[verdict.n_drop++] = m;
    } else if (has_peer) [[likely]] {
      verdict.forward[verdict.n_forward++] = m;
    } else {
      verdict.drop[verdict.n_drop++] = m;
    }
  }
  auto& port = counters.ports[rx_port];
  port.rx_packets.Add(n);
  port.rx_bytes.Add(rx_bytes);
  if (too_long) counters.drops[static_cast<size_t>(DropReason::kFrameTooLong)].Add(too_long);
  if (rule_drops) counters.drops[static_cast<size_t>(DropReason::kRule)].Add(rule_drops);
  if (!has_peer) {
    const uint64_t no_peer = n - too_long - rule_drops;
    if (no_peer) counters.drops[static_cast<size_t>(DropReason::kNoPeer)].Add(no_peer);
  }
}

void TransmitBurst(WorkerCounters& counters, uint16_t tx_queue, BurstVerdict& verdict) {
  if (verdict.n_forward > 0) {
    const uint16_t sent = rte_eth_tx_burst(verdict.out_port, tx_queue, verdict.forward, verdict.n_forward);
    uint64_t tx_bytes = 0;
    for (uint16_t i = 0; i < sent; ++i) tx_bytes += verdict.forward[i]->pkt_len;
    auto& port = counters.ports[verdict.out_port];
    port.tx_packets.Add(sent);
    port.tx_bytes.Add(tx_bytes);
    if (sent < verdict.n_forward) [[unlikely]] {
      const uint16_t refused = verdict.n_forward - sent;
      port.tx_full.Add(refused);
      counters.drops[static_cast<size_t>(DropReason::kTxFull)].Add(refused);
      rte_pktmbuf_free_bulk(verdict.forward + sent, refused);
    }
  }
  if (verdict.n_reply > 0) {
    const uint16_t sent = rte_eth_tx_burst(verdict.in_port, tx_queue, verdict.reply, verdict.n_reply);
    auto& port = counters.ports[verdict.in_port];
    port.tx_packets.Add(sent);
    for (uint16_t i = 0; i < sent; ++i) port.tx_bytes.Add(verdict.reply[i]->pkt_len);
    if (sent < verdict.n_reply) {
      port.tx_full.Add(verdict.n_reply - sent);
      counters.drops[static_cast<size_t>(DropReason::kTxFull)].Add(verdict.n_reply - sent);
      rte_pktmbuf_free_bulk(verdict.reply + sent, verdict.n_reply - sent);
    }
  }
  if (verdict.n_drop > 0) rte_pktmbuf_free_bulk(verdict.drop, verdict.n_drop);
  verdict.n_forward = verdict.n_drop = verdict.n_reply = 0;
}

void DiscardBurst(BurstVerdict& verdict) {
  if (verdict.n_forward > 0) rte_pktmbuf_free_bulk(verdict.forward, verdict.n_forward);
  if (verdict.n_drop > 0) rte_pktmbuf_free_bulk(verdict.drop, verdict.n_drop);
  if (verdict.n_reply > 0) rte_pktmbuf_free_bulk(verdict.reply, verdict.n_reply);
  verdict.n_forward = verdict.n_drop = verdict.n_reply = 0;
}

namespace {

// One pass over the worker's queues; returns the number of frames received.
uint64_t WallClockNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);  // vDSO: no system call
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint32_t PollOnce(WorkerContext& ctx, const generation::Generation& gen, BurstVerdict& verdict) {
  rte_mbuf* pkts[kMaxBurst];
  uint32_t received = 0;
  Stages stages;
  stages.inspector = ctx.inspector;
  for (const RxQueue& q : ctx.queues) {
    const uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, ctx.burst);
    if (n == 0) continue;
    received += n;
    if (gen.rules && stages.burst_ts_ns == 0) stages.burst_ts_ns = WallClockNs();
    ProcessBurst(gen, *ctx.counters, q.port, pkts, n, verdict, &stages);
    TransmitBurst(*ctx.counters, q.queue, verdict);
  }
  return received;
}

}  // namespace

int RunWorker(void* arg) {
  auto& ctx = *static_cast<WorkerContext*>(arg);
  ctx.burst = std::clamp<uint16_t>(ctx.burst, 1, kMaxBurst);
  BurstVerdict verdict;
  ctx.store->ReaderOnline(ctx.id);

  uint32_t idle_polls = 0;
  uint32_t sleep_us = ctx.idle.min_sleep_us;
  while (!ctx.stop->load(std::memory_order_relaxed)) {
    // Read the generation once per pass and hold no reference past Quiescent().
    const uint32_t received = PollOnce(ctx, *ctx.store->Current(), verdict);
    ctx.store->Quiescent(ctx.id);
    if (received > 0) [[likely]] {
      ctx.counters->busy_polls.Add(1);
      idle_polls = 0;
      sleep_us = ctx.idle.min_sleep_us;
      continue;
    }
    ctx.counters->idle_polls.Add(1);
    // Adaptive back-off: spin a while (latency), then sleep in doubling steps up to
    // max_sleep_us so an idle appliance, or a 2-core test machine, keeps its CPU.
    if (++idle_polls <= ctx.idle.spin_polls) {
      rte_pause();
      continue;
    }
    if (sleep_us > 0) {
      rte_delay_us_sleep(sleep_us);
      ctx.counters->sleeps.Add(1);
      sleep_us = std::min(sleep_us * 2, ctx.idle.max_sleep_us);
    }
  }

  // Drain: forward what the receive queues already hold, bounded so a flood cannot
  // keep a stopping worker alive.
  for (int pass = 0; pass < 64; ++pass) {
    if (PollOnce(ctx, *ctx.store->Current(), verdict) == 0) break;
    ctx.store->Quiescent(ctx.id);
  }
  ctx.store->ReaderOffline(ctx.id);
  return 0;
}

}  // namespace wardgate::worker
