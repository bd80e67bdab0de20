// Hot reload under load: steady traffic through the worker loop on ring ports while
// the rule set is replaced 20 times, alternately with and without a rule that matches
// marker packets. Nothing is lost, every marker sent under a generation with the rule
// alerts and none sent without it does, and memory returns to its level.
#include <gtest/gtest.h>
#include <malloc.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "dataplane/config/config.h"
#include "dataplane/control/controller.h"
#include "dataplane/events/eve_sink.h"
#include "dataplane/generation/generation.h"
#include "dataplane/inspect/inspector.h"
#include "dataplane/port/port.h"
#include "dataplane/worker/worker.h"
#include "tests/support/frames.h"
#include "tests/support/ring_ports.h"

namespace wardgate {
namespace {

using testsupport::Frame;

rte_mempool* g_pool = nullptr;
testsupport::RingPort g_dev, g_net;
std::vector<port::PortInfo> g_ports;

constexpr const char* kBase =
    "alert udp any any -> any 53 (msg:\"dns seen\"; content:\"example\"; sid:100; rev:1;)\n";
constexpr const char* kWithMarker =
    "alert udp any any -> any 53 (msg:\"dns seen\"; content:\"example\"; sid:100; rev:1;)\n"
    "alert tcp any any -> any 2575 (msg:\"marker\"; content:\"MARKER-\"; sid:200; rev:1;)\n";

Frame Marker(int i) {
  Frame f = testsupport::TcpV4(16);
  const std::string tag = "MARKER-" + std::to_string(100 + i);  // payload offset 54
  std::copy(tag.begin(), tag.end(), f.begin() + 54);
  return f;
}

size_t Collect(rte_ring* tx) {
  void* objs[64];
  size_t total = 0;
  unsigned n;
  while ((n = rte_ring_dequeue_burst(tx, objs, 64, nullptr)) > 0) {
    rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(objs), n);
    total += n;
  }
  return total;
}

size_t HeapInUse() { return mallinfo2().uordblks; }

TEST(Reload, TwentyReloadsUnderTrafficLoseNothingAndFireUnderTheRightGeneration) {
  generation::GenerationStore store(1);
  {
    auto gen = std::make_unique<generation::Generation>();
    gen->peer[g_dev.port_id] = g_net.port_id;
    gen->peer[g_net.port_id] = g_dev.port_id;
    store.Publish(std::move(gen));
  }
  events::EventRing<events::AlertRecord> ring(1 << 14);
  std::vector<nlohmann::json> alerts;
  events::EveSink sink("", false, false, [&](const std::string& line) { alerts.push_back(nlohmann::json::parse(line)); });
  control::Controller controller(store, {&ring}, sink, {}, 1);
  inspect::Inspector inspector(0, &ring, true);

  worker::WorkerCounters counters;
  std::atomic<bool> stop{false};
  worker::WorkerContext ctx;
  ctx.queues = {{g_dev.port_id, 0}, {g_net.port_id, 0}};
  ctx.idle = {16, 1, 50};
  ctx.store = &store;
  ctx.counters = &counters;
  ctx.inspector = &inspector;
  ctx.stop = &stop;
  const unsigned lcore = rte_get_next_lcore(-1, 1, 0);
  ASSERT_EQ(rte_eal_remote_launch(worker::RunWorker, &ctx, lcore), 0);

  // Background: a steady stream of DNS-like datagrams that every rule set inspects
  // (rule 100's literal is in the prefilter) but none alerts on: an alert per packet
  // would only measure how fast the ring fills.
  std::atomic<bool> feeding{true};
  std::atomic<uint64_t> fed{0};
  std::atomic<uint64_t> out{0};
  Frame dns = testsupport::UdpV4(32);
  const std::string q = "exampl_";
  std::copy(q.begin(), q.end(), dns.begin() + 42);
  // Two producers (this feeder and the marker loop below) share the single-producer
  // rx ring: both use the multi-producer enqueue, or entries are lost.
  std::thread feeder([&] {
    while (feeding) {
      if (rte_ring_count(g_dev.rx) > 1024 || rte_ring_count(g_net.tx) > 2048) {
        std::this_thread::yield();
        continue;
      }
      rte_mbuf* m = testsupport::MbufFrom(g_pool, dns);
      if (!m || rte_ring_mp_enqueue(g_dev.rx, m) != 0) {
        if (m) rte_pktmbuf_free(m);
        continue;
      }
      ++fed;
    }
  });

  auto load = [&](const char* text, const std::string& version) {
    const auto r = controller.LoadRules(text, version, version, false);
    ASSERT_TRUE(r.accepted) << (r.errors.empty() ? "" : r.errors[0]);
  };
  load(kBase, "warmup");
  controller.Drain();
  const size_t heap_before = HeapInUse();

  int markers_expected = 0;
  for (int i = 0; i < 20; ++i) {
    const bool with_marker = i % 2 == 0;
    load(with_marker ? kWithMarker : kBase, "v" + std::to_string(i));
    // Publish has returned: every packet received from now on is under this set.
    for (int k = 0; k < 5; ++k) {
      rte_mbuf* m = testsupport::MbufFrom(g_pool, Marker(i));
      while (rte_ring_mp_enqueue(g_dev.rx, m) != 0) std::this_thread::yield();
      ++fed;
    }
    if (with_marker) markers_expected += 5;
    // Wait until these markers went through before the next reload.
    // (Generous deadlines: on a loaded 2-core machine the worker may lag behind.)
    for (int t = 0; t < 25000 && rte_ring_count(g_dev.rx) > 0; ++t) {
      out += Collect(g_net.tx);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    out += Collect(g_net.tx);
    controller.Drain();
  }
  feeding = false;
  feeder.join();
  for (int t = 0; t < 50000 && rte_ring_count(g_dev.rx) > 0; ++t) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_EQ(rte_ring_count(g_dev.rx), 0u) << "the worker did not drain its queue in 10 s";
  stop = true;
  rte_eal_wait_lcore(lcore);
  out += Collect(g_net.tx);
  controller.Drain();

  std::string drops;
  for (size_t r = 0; r < worker::kDropReasonCount; ++r) drops += " " + std::to_string(counters.drops[r].Load());
  EXPECT_EQ(out.load(), fed.load()) << "packets lost across reloads; drops by reason:" << drops
                                    << "; dev rx " << counters.ports[g_dev.port_id].rx_packets.Load() << ", net tx "
                                    << counters.ports[g_net.port_id].tx_packets.Load();
  EXPECT_EQ(counters.drops[size_t(worker::DropReason::kTxFull)].Load(), 0u);
  int markers = 0;
  for (const auto& a : alerts) {
    if (a["alert"]["signature_id"] == 200) ++markers;
  }
  EXPECT_EQ(markers, markers_expected);
  EXPECT_EQ(ring.lost(), 0u);
  EXPECT_EQ(alerts.size(), size_t(markers)) << "only the marker rule fires";

  // Back to the warm-up set: the heap returns to its level (old databases freed).
  load(kBase, "final");
  controller.Drain();
  alerts.clear();
  alerts.shrink_to_fit();
  const size_t heap_after = HeapInUse();
  EXPECT_LT(heap_after, heap_before + 512 * 1024) << "before " << heap_before << " after " << heap_after;
}

}  // namespace
}  // namespace wardgate

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string prefix = "wg-reload-" + std::to_string(getpid());
  const char* eal_argv[] = {"reload_test", "-l", "0-1", "--no-huge", "-m", "512", "--no-shconf", "--no-pci",
                            "--file-prefix", prefix.c_str(), "--log-level", "lib.eal:error"};
  if (rte_eal_init(int(std::size(eal_argv)), const_cast<char**>(eal_argv)) < 0) return 1;
  using namespace wardgate;
  const auto cfg = config::LoadString(R"(
pairs: [ { name: ward, device: { vdev: net_ring_dev }, network: { vdev: net_ring_net } } ]
mempool: { mbufs: 16383, cache: 0 }
link: { wait_ms: 0 }
)");
  g_pool = rte_pktmbuf_pool_create("reload_pool", cfg.mbufs, 0, 0, port::MbufDataRoom(cfg), SOCKET_ID_ANY);
  g_dev = testsupport::MakeRingPort("dev");
  g_net = testsupport::MakeRingPort("net");
  g_ports = port::OpenPorts(cfg, g_pool);
  const int rc = RUN_ALL_TESTS();
  port::ClosePorts(g_ports);
  rte_eal_cleanup();
  return rc;
}
