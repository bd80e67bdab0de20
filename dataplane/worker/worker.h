// The poll-mode worker: run to completion over bursts (DESIGN.md "The worker pipeline").
//
// Threads: RunWorker() runs on one worker lcore; ProcessBurst()/TransmitBurst() are
// called by that worker (or by the offline runner, tests and benchmarks, which own
// their WorkerCounters). Nothing here locks or allocates.
#pragma once

#include <rte_mbuf.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/device/device_table.h"
#include "dataplane/hygiene/fragment_guard.h"
#include "dataplane/flow/flow_table.h"
#include "dataplane/inspect/inspector.h"
#include "dataplane/stream/tcp_stream.h"
#include "dataplane/generation/generation.h"
#include "dataplane/parse/packet.h"
#include "dataplane/worker/counters.h"

namespace wardgate::worker {

inline constexpr uint16_t kMaxBurst = 64;

// The outcome of one burst received on one port: frames to send to `out_port`, and
// frames to free. Both arrays keep the receive order. Also the worker's scratch for
// the burst's parsed headers (views[i] for the i-th received frame), so later stages
// read them without parsing again. One per worker, reused for every burst.
struct BurstVerdict {
  parse::PacketView views[kMaxBurst];
  // Flow stage scratch (VPP habit: keys and hashes for the whole burst first, with
  // prefetches, then the lookups hit the cache).
  parse::ParseError errors[kMaxBurst];
  flow::FlowKey keys[kMaxBurst];
  uint64_t hashes[kMaxBurst];
  bool keyed[kMaxBurst];
  bool src_is_first[kMaxBurst];
  uint16_t in_port = generation::kNoPeer;
  uint16_t out_port = generation::kNoPeer;
  uint16_t n_forward = 0;
  uint16_t n_drop = 0;
  uint16_t n_reply = 0;
  rte_mbuf* forward[kMaxBurst];
  rte_mbuf* drop[kMaxBurst];
  rte_mbuf* reply[kMaxBurst];  // frames back out of in_port (reject: RST / ICMP to the sender)
};

// The stages after parsing, owned by one worker (or the offline runner). A null
// inspector means the bridge only forwards.
struct Stages {
  inspect::Inspector* inspector = nullptr;
  flow::FlowTable* flows = nullptr;           // null: stateless (every packet on its own)
  stream::Reassembler* streams = nullptr;     // the flows' stream pools
  device::DeviceTable* devices = nullptr;     // null: no device learning
  hygiene::FragmentGuard* fragments = nullptr;  // null: overlapping fragments not checked
  bool drop_on_limit = false;                 // stream.on_limit: drop (else bypass)
  uint64_t burst_ts_ns = 0;               // time of the burst (live)
  const uint64_t* packet_ts_ns = nullptr; // per packet time (offline captures), or null
  uint64_t pcap_cnt_base = 0;             // offline: packets read before this burst
};

// Decides every frame of a burst of n <= kMaxBurst frames received on rx_port:
// parses headers (counting malformed frames by reason; they are still forwarded),
// inspects them against the generation's rules when `stages` has an inspector, and
// bridges to the pair's other port. Counts rx on rx_port.
void ProcessBurst(const generation::Generation& gen, WorkerCounters& counters, uint16_t rx_port,
                  rte_mbuf* const* pkts, uint16_t n, BurstVerdict& verdict, Stages* stages = nullptr);

// Sends verdict.forward on (out_port, tx_queue) and verdict.reply on (in_port,
// tx_queue), counts tx, frees and counts what a tx queue refused, frees verdict.drop.
void TransmitBurst(WorkerCounters& counters, uint16_t tx_queue, BurstVerdict& verdict);

// Mirrors the flow table's and reassembler's plain counters into `counters` and
// expires up to `budget` idle flows (the worker calls it after each pass).
void FlowHousekeeping(Stages& stages, WorkerCounters& counters, uint64_t now_ns, uint32_t budget = 64);

// Frees what ProcessBurst forwarded and dropped without sending (offline, benchmarks).
void DiscardBurst(BurstVerdict& verdict);

// A receive queue a worker polls. Frames leave on the same queue index of the peer
// port: with symmetric RSS worker w owns queue w of every port; with one queue per
// port, the whole pair belongs to one worker.
struct RxQueue {
  uint16_t port;
  uint16_t queue;
};

struct WorkerContext {
  uint32_t id = 0;                        // also the RCU reader id
  std::vector<RxQueue> queues;
  uint16_t burst = 32;
  config::IdleConfig idle;
  generation::GenerationStore* store = nullptr;
  WorkerCounters* counters = nullptr;
  inspect::Inspector* inspector = nullptr;  // this worker's; null: forward only
  flow::FlowTable* flows = nullptr;         // this worker's flow table
  stream::Reassembler* streams = nullptr;
  device::DeviceTable* devices = nullptr;   // this worker's device inventory
  hygiene::FragmentGuard* fragments = nullptr;  // this worker's fragment trains toward the devices
  bool drop_on_limit = false;               // stream.on_limit
  const std::atomic<bool>* stop = nullptr;  // written by the control thread
  uint32_t idle_passes_since_expire = 0;    // worker-private
};

// lcore entry point (rte_eal_remote_launch); arg is a WorkerContext*. Polls until
// *stop, then drains its receive queues once more and goes RCU-offline.
int RunWorker(void* arg);

}  // namespace wardgate::worker
