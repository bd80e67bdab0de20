#include "dataplane/control/status.h"

#include <rte_ethdev.h>

#include <cstdio>
#include <random>

namespace wardgate::control {

ReasonCounts SumMalformed(const std::vector<const worker::WorkerCounters*>& counters) {
  ReasonCounts out;
  for (size_t e = 1; e < parse::kParseErrorCount; ++e) {
    uint64_t sum = 0;
    for (const auto* c : counters) sum += c->malformed[e].Load();
    out.emplace_back(std::string(parse::ParseErrorName(static_cast<parse::ParseError>(e))), sum);
  }
  return out;
}

ReasonCounts SumDrops(const std::vector<const worker::WorkerCounters*>& counters) {
  ReasonCounts out;
  for (size_t r = 0; r < worker::kDropReasonCount; ++r) {
    uint64_t sum = 0;
    for (const auto* c : counters) sum += c->drops[r].Load();
    out.emplace_back(std::string(worker::DropReasonName(static_cast<worker::DropReason>(r))), sum);
  }
  return out;
}

Status CollectStatus(const Dataplane& dp) {
  Status s;
  s.version = WARDGATE_VERSION;
  s.boot_id = dp.boot_id;
  s.uptime_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - dp.started)
                                          .count());
  {
    std::unique_lock<std::mutex> lock;
    if (dp.control_mu) lock = std::unique_lock(*dp.control_mu);
    if (const auto* gen = dp.store ? dp.store->Current() : nullptr) {
      s.generation_id = gen->id;
      s.rules_version = gen->rules_version;
      s.policy_version = gen->policy_version;
      s.rules_loaded = gen->rules ? static_cast<uint32_t>(gen->rules->rules().size()) : 0;
    }
  }
  for (const auto* ring : dp.rings) {
    s.alerts += ring->pushed();
    s.events_lost += ring->lost();
  }

  std::vector<const worker::WorkerCounters*> counters;
  for (const auto& w : dp.workers) counters.push_back(w.counters);

  for (const auto& info : dp.ports) {
    PortStatus ps;
    ps.info = info;
    for (const auto* c : counters) {
      const auto& pc = c->ports[info.port_id];
      ps.rx_packets += pc.rx_packets.Load();
      ps.rx_bytes += pc.rx_bytes.Load();
      ps.tx_packets += pc.tx_packets.Load();
      ps.tx_bytes += pc.tx_bytes.Load();
      ps.tx_full += pc.tx_full.Load();
    }
    if (dp.query_ethdev) {
      rte_eth_link link{};
      if (rte_eth_link_get_nowait(info.port_id, &link) == 0) {
        ps.link_up = link.link_status == RTE_ETH_LINK_UP;
        ps.link_speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
      }
      rte_eth_stats st{};
      if (rte_eth_stats_get(info.port_id, &st) == 0) {
        ps.rx_missed = st.imissed;
        ps.rx_nombuf = st.rx_nombuf;
        ps.rx_errors = st.ierrors;
        ps.tx_errors = st.oerrors;
      }
    }
    s.ports.push_back(std::move(ps));
  }

  for (size_t i = 0; i < dp.workers.size(); ++i) {
    const auto& w = dp.workers[i];
    const auto& c = *w.counters;
    WorkerStatus ws;
    ws.worker_id = w.id;
    ws.lcore = i < dp.worker_lcores.size() ? dp.worker_lcores[i] : 0;
    for (const auto& q : w.queues) {
      ws.rx_queues.push_back(std::to_string(q.port) + "/" + std::to_string(q.queue));
    }
    for (const auto& info : dp.ports) {
      ws.rx_packets += c.ports[info.port_id].rx_packets.Load();
      ws.tx_packets += c.ports[info.port_id].tx_packets.Load();
    }
    ws.busy_polls = c.busy_polls.Load();
    ws.idle_polls = c.idle_polls.Load();
    ws.sleeps = c.sleeps.Load();
    ws.tx_full = c.drops[static_cast<size_t>(worker::DropReason::kTxFull)].Load();
    for (size_t e = 1; e < parse::kParseErrorCount; ++e) ws.malformed += c.malformed[e].Load();
    s.workers.push_back(std::move(ws));
  }
  const std::pair<const char*, worker::Counter worker::WorkerCounters::*> flow_fields[] = {
      {"flows_active", &worker::WorkerCounters::flows_active},
      {"flows_created", &worker::WorkerCounters::flows_created},
      {"flow_evictions", &worker::WorkerCounters::flow_evictions},
      {"flows_expired", &worker::WorkerCounters::flows_expired},
      {"midstream_refused", &worker::WorkerCounters::midstream_refused},
      {"flowbits_exhausted", &worker::WorkerCounters::flowbits_exhausted},
      {"stream_bytes", &worker::WorkerCounters::stream_bytes},
      {"stream_retransmissions", &worker::WorkerCounters::stream_retransmissions},
      {"stream_overlaps", &worker::WorkerCounters::stream_overlaps},
      {"stream_conflicts", &worker::WorkerCounters::stream_conflicts},
      {"stream_gaps", &worker::WorkerCounters::stream_gaps},
      {"stream_out_of_order", &worker::WorkerCounters::stream_out_of_order},
      {"stream_pool_exhausted", &worker::WorkerCounters::stream_pool_exhausted},
      {"stream_depth_reached", &worker::WorkerCounters::stream_depth_reached},
      {"stream_window_overruns", &worker::WorkerCounters::stream_window_overruns}};
  // Each named counter summed over the workers.
  auto sum_into = [&counters](const auto& fields, ReasonCounts& out) {
    for (const auto& [name, field] : fields) {
      uint64_t sum = 0;
      for (const auto* c : counters) sum += (c->*field).Load();
      out.emplace_back(name, sum);
    }
  };
  sum_into(flow_fields, s.flows);
  const std::pair<const char*, worker::Counter worker::WorkerCounters::*> seg_fields[] = {
      {"policy_flows_allowed", &worker::WorkerCounters::policy_flows_allowed},
      {"policy_flows_denied", &worker::WorkerCounters::policy_flows_denied},
      {"policy_flows_alerted", &worker::WorkerCounters::policy_flows_alerted},
      {"policy_flows_monitored", &worker::WorkerCounters::policy_flows_monitored},
      {"policy_app_checked", &worker::WorkerCounters::policy_app_checked},
      {"policy_stateless_denied", &worker::WorkerCounters::policy_stateless_denied},
      {"devices_table_full", &worker::WorkerCounters::devices_table_full},
      {"fragments_untracked", &worker::WorkerCounters::fragments_untracked}};
  sum_into(seg_fields, s.segmentation);
  s.malformed = SumMalformed(counters);
  s.drops = SumDrops(counters);
  if (dp.add_segmentation) dp.add_segmentation(s);
  return s;
}

nlohmann::json ToJson(const Status& s) {
  using nlohmann::json;
  json ports = json::array();
  for (const auto& p : s.ports) {
    ports.push_back({{"port_id", p.info.port_id}, {"name", p.info.name}, {"driver", p.info.driver},
                     {"role", port::RoleName(p.info.role)}, {"pair", p.info.pair}, {"mac", p.info.mac},
                     {"queues", p.info.queues}, {"link_up", p.link_up}, {"link_speed_mbps", p.link_speed_mbps},
                     {"rx_packets", p.rx_packets}, {"rx_bytes", p.rx_bytes}, {"tx_packets", p.tx_packets},
                     {"tx_bytes", p.tx_bytes}, {"rx_missed", p.rx_missed}, {"rx_nombuf", p.rx_nombuf},
                     {"rx_errors", p.rx_errors}, {"tx_errors", p.tx_errors}, {"tx_full", p.tx_full}});
  }
  json workers = json::array();
  for (const auto& w : s.workers) {
    workers.push_back({{"worker_id", w.worker_id}, {"lcore", w.lcore}, {"rx_queues", w.rx_queues},
                       {"rx_packets", w.rx_packets}, {"tx_packets", w.tx_packets},
                       {"busy_polls", w.busy_polls}, {"idle_polls", w.idle_polls}, {"sleeps", w.sleeps},
                       {"tx_full", w.tx_full}, {"malformed", w.malformed}});
  }
  json malformed = json::object(), drops = json::object(), flows = json::object(), seg = json::object();
  for (const auto& [k, v] : s.segmentation) seg[k] = v;
  for (const auto& [k, v] : s.flows) flows[k] = v;
  for (const auto& [k, v] : s.malformed) malformed[k] = v;
  for (const auto& [k, v] : s.drops) drops[k] = v;
  return {{"version", s.version}, {"boot_id", s.boot_id}, {"uptime_ms", s.uptime_ms},
          {"generation_id", s.generation_id}, {"ports", ports}, {"workers", workers},
          {"malformed", malformed}, {"drops", drops}, {"rules_version", s.rules_version},
          {"rules_loaded", s.rules_loaded}, {"alerts", s.alerts}, {"events_lost", s.events_lost},
          {"flows", flows}, {"segmentation", seg}, {"policy_version", s.policy_version},
          {"snapshot_path", s.snapshot_path}, {"snapshot_error", s.snapshot_error}};
}

std::string NewBootId() {
  std::random_device rd;
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

}  // namespace wardgate::control
