#include "dataplane/offline/offline.h"

#include <pcap/pcap.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>

#include "dataplane/control/status.h"
#include "dataplane/events/eve_sink.h"
#include "dataplane/flow/from_config.h"
#include "dataplane/inspect/inspector.h"
#include "dataplane/inspect/rules_loader.h"
#include "dataplane/generation/generation.h"
#include "dataplane/worker/worker.h"

namespace wardgate::offline {
namespace {

// The capture plays the device side of one pair: frames "arrive" on port 0 and are
// bridged to port 1, whose transmissions are the output capture.
constexpr uint16_t kInPort = 0;
constexpr uint16_t kOutPort = 1;

struct PcapCloser {
  void operator()(pcap_t* p) const { pcap_close(p); }
};
struct DumperCloser {
  void operator()(pcap_dumper_t* d) const { pcap_dump_close(d); }
};

}  // namespace

int RunOffline(const config::Config& cfg, const OfflineOptions& opts, const std::atomic<bool>& stop) {
  // Rules first: a rule set that does not load is the author's error to see at once.
  std::vector<std::string> rule_files = cfg.rules.files;
  rule_files.insert(rule_files.end(), opts.rules.begin(), opts.rules.end());
  inspect::RulesLoad loaded;
  if (!rule_files.empty()) {
    loaded = inspect::LoadRuleFiles(rule_files, cfg.rules);
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
    for (const auto& w : loaded.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (!loaded.compiled) {
      std::fprintf(stderr, "wardgate-dp: rule set refused (%zu error(s))\n", loaded.errors.size());
      return 1;
    }
  }
  std::unique_ptr<events::EveSink> eve;
  try {
    eve = std::make_unique<events::EveSink>(opts.eve.empty() ? cfg.eve.file : opts.eve, cfg.eve.payload,
                                            cfg.eve.packet);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wardgate-dp: %s\n", e.what());
    return 1;
  }
  events::EventRing<events::AlertRecord> ring(4096);
  inspect::Inspector inspector(0, &ring, opts.simulate_ips);
  // Captures replay time: flows expire on the capture's clock.
  auto reassembler = std::make_unique<stream::Reassembler>(flow::StreamConfigFrom(cfg));
  auto flows = std::make_unique<flow::FlowTable>(flow::TableConfigFrom(cfg, 0, 1), reassembler.get());

  char errbuf[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, PcapCloser> in(
      pcap_open_offline_with_tstamp_precision(opts.pcap_in.c_str(), PCAP_TSTAMP_PRECISION_MICRO, errbuf));
  if (!in) {
    std::fprintf(stderr, "wardgate-dp: cannot read capture %s: %s\n", opts.pcap_in.c_str(), errbuf);
    return 1;
  }
  if (pcap_datalink(in.get()) != DLT_EN10MB) {
    std::fprintf(stderr, "wardgate-dp: %s: link type %s is not Ethernet; only Ethernet captures are supported\n",
                 opts.pcap_in.c_str(), pcap_datalink_val_to_name(pcap_datalink(in.get())));
    return 1;
  }
  std::unique_ptr<pcap_t, PcapCloser> dead;
  std::unique_ptr<pcap_dumper_t, DumperCloser> out;
  if (!opts.pcap_out.empty()) {
    dead.reset(pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 262144, PCAP_TSTAMP_PRECISION_MICRO));
    out.reset(pcap_dump_open(dead.get(), opts.pcap_out.c_str()));
    if (!out) {
      std::fprintf(stderr, "wardgate-dp: cannot write capture %s: %s\n", opts.pcap_out.c_str(),
                   pcap_geterr(dead.get()));
      return 1;
    }
  }

  // One mbuf holds the largest frame a capture can carry (64 KiB data room).
  constexpr uint16_t kDataRoom = UINT16_MAX;
  rte_mempool* pool = rte_pktmbuf_pool_create("wg_offline", 1023, 0, 0, kDataRoom, SOCKET_ID_ANY);
  if (!pool) {
    std::fprintf(stderr, "wardgate-dp: cannot create the offline mempool: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  // The capture timestamp travels with the frame in DPDK's standard rx timestamp field.
  int ts_offset = -1;
  uint64_t ts_flag = 0;
  if (rte_mbuf_dyn_rx_timestamp_register(&ts_offset, &ts_flag) != 0) {
    std::fprintf(stderr, "wardgate-dp: cannot register the timestamp field\n");
    rte_mempool_free(pool);
    return 1;
  }

  generation::GenerationStore store(1);
  auto gen = std::make_unique<generation::Generation>();
  gen->peer[kInPort] = kOutPort;
  gen->peer[kOutPort] = kInPort;
  gen->max_frame_len = cfg.MaxFrameLen();
  if (loaded.compiled) inspect::AttachRules(*gen, loaded, "offline", 1);
  store.Publish(std::move(gen));
  store.ReaderOnline(0);

  worker::WorkerCounters counters;
  worker::BurstVerdict verdict;
  uint64_t truncated_in_capture = 0;  // caplen < wire length: bridged as captured
  const uint16_t burst = std::min<uint16_t>(cfg.burst, worker::kMaxBurst);
  int rc = 0;
  bool eof = false;
  uint64_t packets_read = 0;
  while (!eof && !stop.load(std::memory_order_relaxed)) {
    rte_mbuf* pkts[worker::kMaxBurst];
    uint64_t ts[worker::kMaxBurst];
    uint16_t n = 0;
    while (n < burst) {
      pcap_pkthdr* hdr = nullptr;
      const u_char* data = nullptr;
      const int r = pcap_next_ex(in.get(), &hdr, &data);
      if (r == PCAP_ERROR_BREAK) {
        eof = true;
        break;
      }
      if (r != 1) {
        std::fprintf(stderr, "wardgate-dp: %s: %s\n", opts.pcap_in.c_str(), pcap_geterr(in.get()));
        rc = 1;
        eof = true;
        break;
      }
      rte_mbuf* m = rte_pktmbuf_alloc(pool);
      if (!m) {
        std::fprintf(stderr, "wardgate-dp: offline mempool exhausted\n");
        rc = 1;
        eof = true;
        break;
      }
      const uint32_t len = std::min<uint32_t>(hdr->caplen, rte_pktmbuf_tailroom(m));
      if (hdr->caplen < hdr->len || len < hdr->caplen) ++truncated_in_capture;
      std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(len)), data, len);
      *RTE_MBUF_DYNFIELD(m, ts_offset, uint64_t*) =
          uint64_t(hdr->ts.tv_sec) * 1000000000ull + uint64_t(hdr->ts.tv_usec) * 1000ull;
      m->ol_flags |= ts_flag;
      ts[n] = *RTE_MBUF_DYNFIELD(m, ts_offset, uint64_t*);
      pkts[n++] = m;
    }
    if (n == 0) break;
    worker::Stages stages;
    stages.inspector = &inspector;
    stages.flows = flows.get();
    stages.streams = reassembler.get();
    stages.drop_on_limit = cfg.stream.on_limit == config::LimitAction::kDrop;
    stages.packet_ts_ns = ts;
    stages.pcap_cnt_base = packets_read + 1;
    packets_read += n;
    worker::ProcessBurst(*store.Current(), counters, kInPort, pkts, n, verdict, &stages);
    worker::FlowHousekeeping(stages, counters, ts[n - 1]);
    store.Quiescent(0);
    eve->Drain(ring);
    auto& out_port = counters.ports[verdict.out_port];
    for (uint16_t i = 0; i < verdict.n_forward; ++i) {
      rte_mbuf* m = verdict.forward[i];
      out_port.tx_packets.Add(1);
      out_port.tx_bytes.Add(m->pkt_len);
      if (!out) continue;
      // Frames the pipeline made (reject RSTs) carry no capture time: use the burst's.
      const uint64_t ns = (m->ol_flags & ts_flag) ? *RTE_MBUF_DYNFIELD(m, ts_offset, uint64_t*) : ts[n - 1];
      pcap_pkthdr h{};
      h.ts.tv_sec = static_cast<time_t>(ns / 1000000000ull);
      h.ts.tv_usec = static_cast<suseconds_t>((ns % 1000000000ull) / 1000);
      h.caplen = h.len = rte_pktmbuf_data_len(m);
      pcap_dump(reinterpret_cast<u_char*>(out.get()), &h, rte_pktmbuf_mtod(m, const u_char*));
    }
    worker::DiscardBurst(verdict);
  }
  store.ReaderOffline(0);
  eve->Drain(ring);
  eve->Flush();
  if (out) pcap_dump_flush(out.get());

  control::Dataplane dp;
  dp.config = cfg;
  dp.boot_id = control::NewBootId();
  dp.started = std::chrono::steady_clock::now();
  dp.query_ethdev = false;
  dp.store = &store;
  port::PortInfo pin, pout;
  pin.port_id = kInPort;
  pin.peer_id = kOutPort;
  pin.name = "pcap-in";
  pin.driver = "pcap";
  pin.pair = "offline";
  pout = pin;
  pout.port_id = kOutPort;
  pout.peer_id = kInPort;
  pout.name = "pcap-out";
  pout.role = port::Role::kNetwork;
  dp.ports = {pin, pout};
  worker::WorkerContext ctx;
  ctx.counters = &counters;
  ctx.queues = {{kInPort, 0}};
  dp.workers.push_back(ctx);
  dp.worker_lcores = {0};
  auto json = control::ToJson(control::CollectStatus(dp));
  json.erase("uptime_ms");
  json["mode"] = "offline";
  json["input"] = opts.pcap_in;
  json["frames_truncated_in_capture"] = truncated_in_capture;
  if (loaded.compiled) {
    json["rules"] = {{"loaded", loaded.rules_loaded}, {"seen", loaded.rules_seen},
                     {"skipped_by_keyword", loaded.skipped_by_keyword}};
  }
  json["events"] = {{"alerts", eve->alerts()}, {"drops", eve->drops()}, {"anomalies", eve->anomalies()},
                    {"lost", ring.lost()}};
  json["simulate_ips"] = opts.simulate_ips;

  json["mbufs_in_use_at_exit"] = rte_mempool_in_use_count(pool);
  std::cout << json.dump() << std::endl;
  if (rte_mempool_in_use_count(pool) != 0) {
    std::fprintf(stderr, "wardgate-dp: %u mbufs leaked\n", rte_mempool_in_use_count(pool));
    rc = 1;
  }
  rte_mempool_free(pool);
  return rc;
}

}  // namespace wardgate::offline
