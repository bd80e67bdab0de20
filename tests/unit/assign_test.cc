// Which worker polls which queue: both directions of every flow must meet in one
// worker (DESIGN.md), and no queue may be polled by two workers.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "dataplane/port/port.h"

namespace wardgate::port {
namespace {

std::vector<PortInfo> Pairs(int n, uint16_t queues) {
  std::vector<PortInfo> ports;
  for (int i = 0; i < n; ++i) {
    PortInfo dev, net;
    dev.port_id = uint16_t(2 * i);
    net.port_id = uint16_t(2 * i + 1);
    dev.peer_id = net.port_id;
    net.peer_id = dev.port_id;
    dev.role = Role::kDevice;
    net.role = Role::kNetwork;
    dev.queues = net.queues = queues;
    ports.push_back(dev);
    ports.push_back(net);
  }
  return ports;
}

// (port, queue) -> worker; fails the test if a queue is polled twice.
std::map<std::pair<uint16_t, uint16_t>, uint32_t> Owners(const std::vector<std::vector<worker::RxQueue>>& a) {
  std::map<std::pair<uint16_t, uint16_t>, uint32_t> owner;
  for (uint32_t w = 0; w < a.size(); ++w) {
    for (const auto& q : a[w]) {
      EXPECT_TRUE(owner.emplace(std::pair{q.port, q.queue}, w).second)
          << "port " << q.port << " queue " << q.queue << " polled by two workers";
    }
  }
  return owner;
}

TEST(AssignQueues, SingleQueuePairsBelongWhollyToOneWorkerRoundRobin) {
  const auto ports = Pairs(3, 1);
  const auto a = AssignQueues(ports, 2);
  ASSERT_EQ(a.size(), 2u);
  const auto owner = Owners(a);
  EXPECT_EQ(owner.size(), 6u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(owner.at({uint16_t(2 * i), 0}), owner.at({uint16_t(2 * i + 1), 0})) << "pair " << i << " split";
    EXPECT_EQ(owner.at({uint16_t(2 * i), 0}), uint32_t(i % 2));
  }
}

TEST(AssignQueues, RssPairsGiveQueueWToWorkerWOnBothPorts) {
  const auto ports = Pairs(2, 4);
  const auto a = AssignQueues(ports, 4);
  const auto owner = Owners(a);
  EXPECT_EQ(owner.size(), 16u);
  for (uint16_t q = 0; q < 4; ++q) {
    for (uint16_t p = 0; p < 4; ++p) EXPECT_EQ(owner.at({p, q}), q);
  }
}

TEST(AssignQueues, EveryQueueIsPolled) {
  for (uint32_t workers : {1u, 2u, 3u, 8u}) {
    const auto a = AssignQueues(Pairs(5, 1), workers);
    EXPECT_EQ(Owners(a).size(), 10u) << workers << " workers";
  }
}

}  // namespace
}  // namespace wardgate::port
