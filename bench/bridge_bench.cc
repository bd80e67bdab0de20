// Bridge throughput of one worker core, in memory: the worker's burst function
// (parse, counters, bridge verdict) over preloaded mbufs, no PMD. Run:
//   build/bench/bridge_bench --benchmark_repetitions=3
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/generation/generation.h"
#include "dataplane/worker/worker.h"
#include "tests/support/frames.h"
#include "tests/support/ring_ports.h"

namespace {

using namespace wardgate;
rte_mempool* g_pool = nullptr;

// 64-byte frames: minimum-size TCP ACKs (60 bytes + FCS on the wire).
testsupport::Frame SizedFrame(size_t wire_size) {
  const size_t frame = wire_size - 4;  // without FCS
  return testsupport::TcpV4(frame - 54, {}, 0x10);
}

void BM_BridgeBurst(benchmark::State& state) {
  const size_t wire_size = static_cast<size_t>(state.range(0));
  constexpr int kFrames = 2048;  // more than L1 holds, like a real rx ring's worth
  std::vector<rte_mbuf*> mbufs;
  const auto frame = SizedFrame(wire_size);
  for (int i = 0; i < kFrames; ++i) mbufs.push_back(testsupport::MbufFrom(g_pool, frame));

  generation::GenerationStore store(1);
  auto gen = std::make_unique<generation::Generation>();
  gen->peer[0] = 1;
  gen->peer[1] = 0;
  store.Publish(std::move(gen));
  store.ReaderOnline(0);
  auto counters = std::make_unique<worker::WorkerCounters>();
  worker::BurstVerdict verdict;
  size_t next = 0;
  for (auto _ : state) {
    worker::ProcessBurst(*store.Current(), *counters, 0, &mbufs[next], 32, verdict);
    store.Quiescent(0);
    benchmark::DoNotOptimize(verdict.n_forward);
    verdict.n_forward = verdict.n_drop = 0;  // not sent: the mbufs are reused
    next = (next + 32) % kFrames;
  }
  store.ReaderOffline(0);
  state.SetItemsProcessed(int64_t(state.iterations()) * 32);
  state.SetBytesProcessed(int64_t(state.iterations()) * 32 * int64_t(frame.size()));
  state.counters["ns_per_frame"] = benchmark::Counter(double(state.iterations()) * 32,
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  rte_pktmbuf_free_bulk(mbufs.data(), kFrames);
}
BENCHMARK(BM_BridgeBurst)->Arg(64)->Arg(1518)->ArgName("wire_bytes");

}  // namespace

int main(int argc, char** argv) {
  const std::string prefix = "wg-bench-" + std::to_string(getpid());
  const char* eal_argv[] = {"bridge_bench", "-l", "0", "--no-huge", "-m", "512", "--no-shconf", "--no-pci",
                            "--file-prefix", prefix.c_str(), "--log-level", "lib.eal:error"};
  if (rte_eal_init(int(std::size(eal_argv)), const_cast<char**>(eal_argv)) < 0) return 1;
  g_pool = rte_pktmbuf_pool_create("bench_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (!g_pool) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_mempool_free(g_pool);
  rte_eal_cleanup();
  return 0;
}
