#include "dataplane/worker/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <span>

#include "dataplane/parse/packet.h"

namespace wardgate::worker {

void ProcessBurst(const generation::Generation& gen, WorkerCounters& counters, uint16_t rx_port,
                  rte_mbuf* const* pkts, uint16_t n, BurstVerdict& verdict) {
  verdict.out_port = gen.peer[rx_port];
  verdict.n_forward = 0;
  verdict.n_drop = 0;
  uint64_t rx_bytes = 0;
  uint64_t too_long = 0;
  const bool has_peer = verdict.out_port != generation::kNoPeer;

  // l3fwd habit: prefetch the first frames' headers, then one ahead while working.
  constexpr uint16_t kPrefetchAhead = 3;
  for (uint16_t i = 0; i < n && i < kPrefetchAhead; ++i) {
    rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  }
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
  if (!has_peer) {
    const uint64_t no_peer = n - too_long;
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
  if (verdict.n_drop > 0) rte_pktmbuf_free_bulk(verdict.drop, verdict.n_drop);
  verdict.n_forward = verdict.n_drop = 0;
}

void DiscardBurst(BurstVerdict& verdict) {
  if (verdict.n_forward > 0) rte_pktmbuf_free_bulk(verdict.forward, verdict.n_forward);
  if (verdict.n_drop > 0) rte_pktmbuf_free_bulk(verdict.drop, verdict.n_drop);
  verdict.n_forward = verdict.n_drop = 0;
}

namespace {

// One pass over the worker's queues; returns the number of frames received.
uint32_t PollOnce(WorkerContext& ctx, const generation::Generation& gen, BurstVerdict& verdict) {
  rte_mbuf* pkts[kMaxBurst];
  uint32_t received = 0;
  for (const RxQueue& q : ctx.queues) {
    const uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, ctx.burst);
    if (n == 0) continue;
    received += n;
    ProcessBurst(gen, *ctx.counters, q.port, pkts, n, verdict);
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
