#include "dataplane/port/port.h"

#include <rte_ethdev.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace wardgate::port {
namespace {

std::string MacString(uint16_t port_id) {
  rte_ether_addr mac{};
  if (rte_eth_macaddr_get(port_id, &mac) != 0) return "";
  char buf[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(buf, sizeof(buf), &mac);
  return buf;
}

uint16_t ResolvePort(const config::PortConfig& pc, const std::string& what) {
  uint16_t id = 0;
  if (rte_eth_dev_get_port_by_name(pc.EthdevName().c_str(), &id) != 0) {
    throw std::runtime_error(what + ": no DPDK port named '" + pc.EthdevName() +
                             "' (was the vdev created / the NIC bound to vfio-pci?)");
  }
  return id;
}

// How many queues a port can run with `workers` workers: one per worker when it can
// hash symmetrically (RSS), else one (then one worker owns the whole pair).
uint16_t QueueCapacity(uint16_t port_id, uint32_t workers) {
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port_id, &info) != 0) return 1;
  if (workers <= 1 || info.flow_type_rss_offloads == 0) return 1;
  if (info.max_rx_queues < workers || info.max_tx_queues < workers) return 1;
  return static_cast<uint16_t>(workers);
}

void ConfigurePort(const config::Config& cfg, const PortInfo& p, rte_mempool* pool) {
  rte_eth_dev_info info{};
  int rc = rte_eth_dev_info_get(p.port_id, &info);
  if (rc != 0) throw std::runtime_error(p.name + ": cannot read device info: " + rte_strerror(-rc));

  rte_eth_conf conf{};
  // Transparent bridging: no offload may rewrite frames (no VLAN strip, no CRC strip
  // changes); the frame leaves as it arrived.
  conf.rxmode.mtu = cfg.mtu;
  // Symmetric Toeplitz: a key of repeated 0x6d5a hashes (a,b) and (b,a) alike, so
  // both directions of a flow reach the same queue, hence the same worker.
  static uint8_t symmetric_key[64];
  for (size_t i = 0; i < sizeof(symmetric_key); i += 2) {
    symmetric_key[i] = 0x6d;
    symmetric_key[i + 1] = 0x5a;
  }
  if (p.queues > 1) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = symmetric_key;
    conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size ? info.hash_key_size : 40;
    conf.rx_adv_conf.rss_conf.rss_hf =
        info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
  }
  if (cfg.mtu > info.max_mtu) {
    throw std::runtime_error(p.name + ": mtu " + std::to_string(cfg.mtu) +
                             " exceeds the port's maximum " + std::to_string(info.max_mtu));
  }
  if (cfg.MaxFrameLen() + RTE_PKTMBUF_HEADROOM > MbufDataRoom(cfg) &&
      (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
  }
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;

  rc = rte_eth_dev_configure(p.port_id, p.queues, p.queues, &conf);
  if (rc != 0) throw std::runtime_error(p.name + ": configure failed: " + rte_strerror(-rc));

  uint16_t rx_desc = cfg.rx_descriptors, tx_desc = cfg.tx_descriptors;
  rc = rte_eth_dev_adjust_nb_rx_tx_desc(p.port_id, &rx_desc, &tx_desc);
  if (rc != 0) throw std::runtime_error(p.name + ": descriptor counts refused: " + rte_strerror(-rc));
  const int socket = rte_eth_dev_socket_id(p.port_id);
  for (uint16_t q = 0; q < p.queues; ++q) {
    rte_eth_rxconf rxconf = info.default_rxconf;
    rxconf.offloads = conf.rxmode.offloads;
    rc = rte_eth_rx_queue_setup(p.port_id, q, rx_desc, socket, &rxconf, pool);
    if (rc != 0) throw std::runtime_error(p.name + ": rx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    rc = rte_eth_tx_queue_setup(p.port_id, q, tx_desc, socket, &txconf);
    if (rc != 0) throw std::runtime_error(p.name + ": tx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
  }
  rc = rte_eth_dev_start(p.port_id);
  if (rc != 0) throw std::runtime_error(p.name + ": start failed: " + rte_strerror(-rc));
  // A bridge must see every frame, whatever its destination MAC. Virtual ports
  // without the notion (net_ring) answer -ENOTSUP, which is fine.
  rc = rte_eth_promiscuous_enable(p.port_id);
  if (rc != 0 && rc != -ENOTSUP) {
    throw std::runtime_error(p.name + ": cannot enable promiscuous mode: " + rte_strerror(-rc));
  }
  rte_eth_allmulticast_enable(p.port_id);
}

void WaitForLink(const std::vector<PortInfo>& ports, uint32_t wait_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (const auto& p : ports) {
    rte_eth_link link{};
    while (true) {
      rte_eth_link_get_nowait(p.port_id, &link);
      if (link.link_status == RTE_ETH_LINK_UP || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (link.link_status != RTE_ETH_LINK_UP) {
      std::fprintf(stderr, "wardgate-dp: warning: %s (%s) link still down after %u ms; bridging anyway\n",
                   p.name.c_str(), p.pair.c_str(), wait_ms);
    }
  }
}

}  // namespace

std::string RoleName(Role r) { return r == Role::kDevice ? "device" : "network"; }

uint16_t MbufDataRoom(const config::Config& cfg) {
  // A whole frame in one mbuf up to the 9.6k jumbo limit keeps parsing on one segment.
  const uint32_t room = cfg.MaxFrameLen() + RTE_PKTMBUF_HEADROOM;
  return static_cast<uint16_t>(std::max<uint32_t>(room, RTE_MBUF_DEFAULT_BUF_SIZE));
}

std::vector<PortInfo> OpenPorts(const config::Config& cfg, rte_mempool* pool) {
  std::vector<PortInfo> ports;
  try {
    for (const auto& pair : cfg.pairs) {
      PortInfo dev, net;
      dev.port_id = ResolvePort(pair.device, "pair '" + pair.name + "' device port");
      net.port_id = ResolvePort(pair.network, "pair '" + pair.name + "' network port");
      const uint16_t queues = std::min(QueueCapacity(dev.port_id, cfg.workers),
                                       QueueCapacity(net.port_id, cfg.workers));
      for (auto [p, role, peer] : {std::tuple{&dev, Role::kDevice, net.port_id},
                                   std::tuple{&net, Role::kNetwork, dev.port_id}}) {
        p->peer_id = peer;
        p->role = role;
        p->pair = pair.name;
        p->queues = queues;
        p->name = (role == Role::kDevice ? pair.device : pair.network).EthdevName();
        rte_eth_dev_info info{};
        if (rte_eth_dev_info_get(p->port_id, &info) == 0 && info.driver_name) p->driver = info.driver_name;
      }
      for (PortInfo* p : {&dev, &net}) {
        ports.push_back(*p);
        ConfigurePort(cfg, *p, pool);
        ports.back().mac = MacString(p->port_id);
      }
    }
  } catch (...) {
    ClosePorts(ports);
    throw;
  }
  WaitForLink(ports, cfg.link_wait_ms);
  return ports;
}

std::vector<std::vector<worker::RxQueue>> AssignQueues(const std::vector<PortInfo>& ports,
                                                       uint32_t workers) {
  std::vector<std::vector<worker::RxQueue>> out(workers);
  uint32_t next_owner = 0;
  for (const auto& p : ports) {
    if (p.role != Role::kDevice) continue;  // visit each pair once, by its device port
    if (p.queues > 1) {
      for (uint16_t q = 0; q < p.queues && q < workers; ++q) {
        out[q].push_back({p.port_id, q});
        out[q].push_back({p.peer_id, q});
      }
    } else {
      auto& owner = out[next_owner++ % workers];
      owner.push_back({p.port_id, 0});
      owner.push_back({p.peer_id, 0});
    }
  }
  return out;
}

void ClosePorts(const std::vector<PortInfo>& ports) {
  for (const auto& p : ports) rte_eth_dev_stop(p.port_id);
  for (const auto& p : ports) rte_eth_dev_close(p.port_id);
}

}  // namespace wardgate::port
