// Ethernet ports of the appliance: resolve the configured pairs to DPDK ethdevs,
// configure them for transparent bridging, start them, stop and close them.
// Threads: main lcore only (start-up and shut-down), never workers.
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/worker/worker.h"

namespace wardgate::port {

enum class Role { kDevice, kNetwork };

struct PortInfo {
  uint16_t port_id = 0;
  uint16_t peer_id = 0;
  std::string name;    // ethdev name
  std::string driver;
  Role role = Role::kDevice;
  std::string pair;
  uint16_t queues = 1;  // rx queues == tx queues; queue w belongs to worker w
  std::string mac;
};

// Size of an mbuf data room that holds a whole frame of the configured MTU.
uint16_t MbufDataRoom(const config::Config& cfg);

// Resolves and configures every port of cfg.pairs (promiscuous, all-multicast, no
// VLAN stripping or other frame rewriting, symmetric RSS when the port can hash and
// several workers exist), starts them and waits up to cfg.link_wait_ms for link.
// Throws std::runtime_error naming the port on failure (ports already started are
// stopped and closed first).
std::vector<PortInfo> OpenPorts(const config::Config& cfg, rte_mempool* pool);

// Stops every port, then closes it (freeing the mbufs in its rings).
void ClosePorts(const std::vector<PortInfo>& ports);

std::string RoleName(Role r);

// Which receive queues each of `workers` workers polls. A pair whose ports run one
// queue each belongs wholly to one worker (round-robin over pairs), so both
// directions of every flow meet in the same worker; multi-queue pairs give queue w
// of both ports to worker w (symmetric RSS keeps a flow's directions together).
std::vector<std::vector<worker::RxQueue>> AssignQueues(const std::vector<PortInfo>& ports,
                                                       uint32_t workers);

}  // namespace wardgate::port
