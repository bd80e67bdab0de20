// Forwarding through PMDs: the real worker loop (RunWorker) on a worker lcore between
// two net_ring ports, each a loopback (what is sent on a port is received on it).
// Like testpmd --tx-first, a burst is injected on each port and then circulates:
// rx port0 -> tx port1 -> rx port1 -> tx port0 ... Run by bench/pmd_compare.sh.
//   pmd_forward [--seconds S] [--inject N] [--size BYTES]
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/generation/generation.h"
#include "dataplane/port/port.h"
#include "dataplane/worker/worker.h"
#include "tests/support/frames.h"
#include "tests/support/ring_ports.h"

int main(int argc, char** argv) {
  using namespace wardgate;
  double seconds = 5;
  int inject = 32;
  size_t size = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--seconds") seconds = std::stod(argv[i + 1]);
    else if (a == "--inject") inject = std::stoi(argv[i + 1]);
    else if (a == "--size") size = std::stoul(argv[i + 1]);
  }
  const std::string prefix = "wg-pmdfwd-" + std::to_string(getpid());
  const char* eal_argv[] = {"pmd_forward", "-l", "0-1", "--no-huge", "-m", "512", "--no-shconf", "--no-pci",
                            "--file-prefix", prefix.c_str(), "--vdev=net_ring0", "--vdev=net_ring1",
                            "--log-level", "lib.eal:error"};
  if (rte_eal_init(int(std::size(eal_argv)), const_cast<char**>(eal_argv)) < 0) return 1;

  auto cfg = config::LoadString(R"(
pairs: [ { name: bench, device: { vdev: net_ring0 }, network: { vdev: net_ring1 } } ]
idle: { spin_polls: 1000000 }
link: { wait_ms: 0 }
)");
  rte_mempool* pool = rte_pktmbuf_pool_create("fwd_pool", cfg.mbufs, cfg.mbuf_cache, 0,
                                              port::MbufDataRoom(cfg), SOCKET_ID_ANY);
  auto ports = port::OpenPorts(cfg, pool);

  generation::GenerationStore store(1);
  auto gen = std::make_unique<generation::Generation>();
  for (const auto& p : ports) gen->peer[p.port_id] = p.peer_id;
  gen->max_frame_len = cfg.MaxFrameLen();
  store.Publish(std::move(gen));

  // Inject: a burst on each port (the packets loop back into the port's own rx).
  const auto frame = testsupport::TcpV4(size - 4 - 54, {}, 0x10);
  for (const auto& p : ports) {
    for (int i = 0; i < inject; ++i) {
      rte_mbuf* m = testsupport::MbufFrom(pool, frame);
      if (rte_eth_tx_burst(p.port_id, 0, &m, 1) != 1) rte_pktmbuf_free(m);
    }
  }

  auto counters = std::make_unique<worker::WorkerCounters>();
  std::atomic<bool> stop{false};
  worker::WorkerContext ctx;
  ctx.queues = port::AssignQueues(ports, 1)[0];
  ctx.burst = cfg.burst;
  ctx.idle = cfg.idle;
  ctx.store = &store;
  ctx.counters = counters.get();
  ctx.stop = &stop;
  const unsigned lcore = rte_get_next_lcore(-1, 1, 0);
  rte_eal_remote_launch(worker::RunWorker, &ctx, lcore);
  auto rx = [&] {
    uint64_t n = 0;
    for (const auto& p : ports) n += counters->ports[p.port_id].rx_packets.Load();
    return n;
  };
  // Warm up one second, then measure.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const uint64_t start_rx = rx();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t end_rx = rx();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  rte_eal_wait_lcore(lcore);
  uint64_t tx_full = 0;
  for (const auto& p : ports) tx_full += counters->ports[p.port_id].tx_full.Load();
  const double mpps = double(end_rx - start_rx) / elapsed / 1e6;
  std::printf("{\"engine\":\"wardgate\",\"frame_bytes\":%zu,\"inject_per_port\":%d,\"seconds\":%.2f,"
              "\"rx_packets\":%llu,\"mpps\":%.2f,\"tx_full\":%llu}\n",
              size, inject, elapsed, static_cast<unsigned long long>(end_rx - start_rx), mpps,
              static_cast<unsigned long long>(tx_full));
  port::ClosePorts(ports);
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return 0;
}
