// wardgate-dp: the dataplane process. Loads the configuration (exit 2 on any error,
// before EAL or a port is touched), starts EAL, ports, workers and the control API,
// runs until SIGINT/SIGTERM, then stops in order and prints the final counters.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/control/api_server.h"
#include "dataplane/control/controller.h"
#include "dataplane/control/events.h"
#include "dataplane/control/status.h"
#include "dataplane/device/device_table.h"
#include "dataplane/segment/segmentation.h"
#include "dataplane/events/eve_sink.h"
#include "dataplane/flow/from_config.h"
#include "dataplane/inspect/inspector.h"
#include "dataplane/inspect/rules_loader.h"
#include "dataplane/generation/generation.h"
#include "dataplane/offline/offline.h"
#include "dataplane/port/port.h"
#include "dataplane/worker/counters.h"
#include "dataplane/worker/worker.h"

namespace {

using namespace wardgate;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;  // bad command line or configuration

std::atomic<bool> g_stop{false};  // written by the signal handler, read by all loops

void OnSignal(int) { g_stop.store(true, std::memory_order_relaxed); }

void Usage(FILE* to) {
  std::fprintf(to,
               "usage: wardgate-dp --config FILE [--check-config]\n"
               "       wardgate-dp --pcap IN.pcap [--pcap-out OUT.pcap] [--rules FILE]... [--eve OUT.json]\n"
               "                   [--simulate-ips] [--overrides FILE]... [--threshold-file FILE]\n"
               "                   [--cache-dir DIR] [--config FILE]\n"
               "       wardgate-dp --version\n"
               "\n"
               "  --config FILE    YAML configuration (see deploy/examples/)\n"
               "  --check-config   validate the configuration and exit (0 ok, 2 error)\n"
               "  --pcap IN        offline mode: run the pipeline over a capture\n"
               "  --pcap-out OUT   offline mode: write the forwarded frames here\n"
               "  --rules FILE     offline mode: Suricata-dialect rules to run (repeatable)\n"
               "  --eve OUT        offline mode: write EVE JSON events here\n"
               "  --simulate-ips   offline mode: drop/reject rules drop packets as inline\n"
               "  --overrides FILE offline mode: local rule overrides (YAML), after the config's\n"
               "  --threshold-file FILE  offline mode: Suricata threshold.config (replaces the config's)\n"
               "  --cache-dir DIR  offline mode: compiled-rule cache (\"\" to compile every time)\n");
}

struct Options {
  std::string config_path;
  std::string pcap_in;
  std::string pcap_out;
  std::vector<std::string> rules;
  std::string eve;
  bool simulate_ips = false;
  bool check_only = false;
  std::vector<std::string> overrides;
  std::optional<std::string> threshold_file, cache_dir;
};

// Hugepages of 2 MiB currently free, or 0 if hugetlbfs is not usable.
uint64_t FreeHugepageMb() {
  std::ifstream mounts("/proc/mounts");
  std::string line;
  bool mounted = false;
  while (std::getline(mounts, line)) mounted |= line.find(" hugetlbfs ") != std::string::npos;
  if (!mounted) return 0;
  std::ifstream f("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  uint64_t pages = 0;
  f >> pages;
  return pages * 2;
}

std::vector<std::string> EalArgs(const config::Config& cfg, bool offline) {
  std::vector<std::string> a = {"wardgate-dp", "-l", offline ? "0" : cfg.eal.lcores, "--file-prefix",
                                cfg.eal.file_prefix + "-" + std::to_string(getpid())};
  bool huge = cfg.eal.hugepages == config::Hugepages::kOn;
  if (cfg.eal.hugepages == config::Hugepages::kAuto) huge = FreeHugepageMb() >= cfg.eal.memory_mb;
  if (offline) huge = false;
  // Either way no runtime files are left behind: --in-memory for hugepages, and
  // --no-shconf without them (EAL refuses --in-memory together with --no-huge).
  if (huge) {
    a.push_back("--in-memory");
  } else {
    a.insert(a.end(), {"--no-huge", "-m", std::to_string(cfg.eal.memory_mb), "--no-shconf"});
  }
  bool any_pci = false;
  if (!offline) {
    for (const auto& pair : cfg.pairs) {
      for (const auto* p : {&pair.device, &pair.network}) {
        if (!p->vdev.empty()) a.push_back("--vdev=" + p->vdev);
        if (!p->pci.empty()) {
          a.insert(a.end(), {"-a", p->pci});
          any_pci = true;
        }
      }
    }
  }
  if (!any_pci) a.push_back("--no-pci");
  a.insert(a.end(), cfg.eal.args.begin(), cfg.eal.args.end());
  return a;
}

bool InitEal(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    std::fprintf(stderr, "wardgate-dp: EAL init failed: %s\n", rte_strerror(rte_errno));
    return false;
  }
  return true;
}

void PrintRuleErrors(const inspect::RulesLoad& loaded) {
  for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
  for (const auto& w : loaded.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
}

int RunLive(const config::Config& cfg) {
  // Rules before EAL: a rule set that does not load stops us before any port is touched.
  inspect::RulesLoad initial_rules;
  if (!cfg.rules.files.empty()) {
    initial_rules = inspect::LoadRuleFiles(cfg.rules.files, cfg.rules);
    PrintRuleErrors(initial_rules);
    if (!initial_rules.compiled) {
      std::fprintf(stderr, "wardgate-dp: rule set refused (%zu error(s))\n", initial_rules.errors.size());
      return kExitUsage;
    }
  }
  std::unique_ptr<events::EveSink> eve;
  control::EventHub events;
  try {
    eve = std::make_unique<events::EveSink>(cfg.eve.file, cfg.eve.payload, cfg.eve.packet,
                                            [&events](const std::string& line) { events.Publish(line); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wardgate-dp: %s\n", e.what());
    return kExitUsage;
  }

  if (!InitEal(EalArgs(cfg, false))) return kExitFailure;

  std::vector<unsigned> worker_lcores;
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) worker_lcores.push_back(lcore);
  if (worker_lcores.size() < cfg.workers) {
    std::fprintf(stderr, "wardgate-dp: %u workers need %u worker lcores, EAL has %zu\n", cfg.workers,
                 cfg.workers, worker_lcores.size());
    rte_eal_cleanup();
    return kExitUsage;
  }
  worker_lcores.resize(cfg.workers);

  const uint16_t data_room = port::MbufDataRoom(cfg);
  rte_mempool* pool = rte_pktmbuf_pool_create("wg_mbufs", cfg.mbufs, cfg.mbuf_cache, 0, data_room,
                                              static_cast<int>(rte_socket_id()));
  if (!pool) {
    std::fprintf(stderr, "wardgate-dp: cannot create a mempool of %u mbufs of %u bytes: %s\n", cfg.mbufs,
                 data_room, rte_strerror(rte_errno));
    rte_eal_cleanup();
    return kExitFailure;
  }

  control::Dataplane dp;
  dp.config = cfg;
  dp.boot_id = control::NewBootId();
  dp.started = std::chrono::steady_clock::now();
  try {
    dp.ports = port::OpenPorts(cfg, pool);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wardgate-dp: %s\n", e.what());
    rte_mempool_free(pool);
    rte_eal_cleanup();
    return kExitFailure;
  }

  // Segmentation: zones and policy compiled once here (the classifier lives in the
  // DPDK heap, so after EAL); a policy that does not compile stops us.
  std::vector<std::string> pair_names;
  for (const auto& p : cfg.pairs) pair_names.push_back(p.name);
  std::string seg_error;
  std::shared_ptr<const segment::Segmentation> segmentation =
      segment::Segmentation::Build(cfg.segmentation, pair_names, &seg_error);
  if (!segmentation) {
    std::fprintf(stderr, "wardgate-dp: %s\n", seg_error.c_str());
    port::ClosePorts(dp.ports);
    rte_mempool_free(pool);
    rte_eal_cleanup();
    return kExitUsage;
  }

  generation::GenerationStore store(cfg.workers);
  dp.store = &store;
  std::vector<std::unique_ptr<device::DeviceTable>> device_tables;
  std::vector<const device::DeviceTable*> device_table_ptrs;
  std::vector<std::unique_ptr<hygiene::FragmentGuard>> fragment_guards;
  for (uint32_t w = 0; w < cfg.workers; ++w) {
    // A random hash seed: bucket collisions must not be chosen from the wire.
    device_tables.push_back(std::make_unique<device::DeviceTable>(
        cfg.segmentation.device_capacity, (uint64_t(std::random_device{}()) << 32) | std::random_device{}()));
    device_table_ptrs.push_back(device_tables.back().get());
    hygiene::FragmentGuardConfig fg;
    fg.hash_seed = (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
    fragment_guards.push_back(std::make_unique<hygiene::FragmentGuard>(fg));
  }

  const auto assignment = port::AssignQueues(dp.ports, cfg.workers);
  std::vector<std::unique_ptr<worker::WorkerCounters>> counters;
  std::vector<std::unique_ptr<events::EventRing<events::AlertRecord>>> rings;
  std::vector<std::unique_ptr<inspect::Inspector>> inspectors;
  std::vector<std::unique_ptr<stream::Reassembler>> reassemblers;
  std::vector<std::unique_ptr<flow::FlowTable>> flow_tables;
  // flow_id counters start from the clock so ids stay unique across restarts.
  const uint64_t first_flow_id = (uint64_t(std::time(nullptr)) & 0xffffff) << 20;
  for (uint32_t w = 0; w < cfg.workers; ++w) {
    reassemblers.push_back(std::make_unique<stream::Reassembler>(flow::StreamConfigFrom(cfg)));
    flow_tables.push_back(std::make_unique<flow::FlowTable>(flow::TableConfigFrom(cfg, w, first_flow_id),
                                                            reassemblers.back().get()));
    counters.push_back(std::make_unique<worker::WorkerCounters>());
    rings.push_back(std::make_unique<events::EventRing<events::AlertRecord>>(4096));
    inspectors.push_back(std::make_unique<inspect::Inspector>(w, rings.back().get(), /*blocking=*/true));
    dp.rings.push_back(rings.back().get());
    worker::WorkerContext ctx;
    ctx.id = w;
    ctx.queues = assignment[w];
    ctx.burst = cfg.burst;
    ctx.idle = cfg.idle;
    ctx.store = &store;
    ctx.counters = counters.back().get();
    ctx.inspector = inspectors.back().get();
    ctx.flows = flow_tables.back().get();
    ctx.streams = reassemblers.back().get();
    ctx.devices = device_tables[w].get();
    ctx.fragments = fragment_guards[w].get();
    ctx.drop_on_limit = cfg.stream.on_limit == config::LimitAction::kDrop;
    ctx.stop = &g_stop;
    dp.workers.push_back(std::move(ctx));
    dp.worker_lcores.push_back(worker_lcores[w]);
  }
  control::Controller controller(store, dp.rings, *eve, cfg.rules, cfg.workers);
  controller.SetSegmentation(cfg.segmentation, device_table_ptrs, dp.boot_id, pair_names);
  // The quarantines of the last run hold from the first frame: a restart never
  // releases a device. An unreadable snapshot is kept aside for the incident record
  // and reported; the bridge still starts (taking the whole ward offline would hurt
  // more patients than it protects), and the control plane re-applies its state.
  {
    std::string why;
    if (!controller.Restore(&why)) {
      const std::string aside = cfg.segmentation.quarantine.snapshot + ".unreadable-" + std::to_string(std::time(nullptr));
      const bool moved = std::rename(cfg.segmentation.quarantine.snapshot.c_str(), aside.c_str()) == 0;
      std::fprintf(stderr, "wardgate-dp: ERROR: snapshot %s unreadable (%s); %s; starting without its quarantines\n",
                   cfg.segmentation.quarantine.snapshot.c_str(), why.c_str(),
                   moved ? ("kept as " + aside).c_str() : "could not be moved aside");
      controller.ReportUnreadableSnapshot(why, moved ? aside : "");
    } else if (size_t n = controller.quarantine_count()) {
      std::fprintf(stderr, "wardgate-dp: %zu quarantine(s) restored from %s\n", n,
                   cfg.segmentation.quarantine.snapshot.c_str());
    }
  }
  {
    auto gen = std::make_unique<generation::Generation>();
    for (const auto& p : dp.ports) {
      gen->peer[p.port_id] = p.peer_id;
      gen->toward_devices[p.port_id] = p.role == port::Role::kDevice;
      for (size_t i = 0; i < pair_names.size(); ++i) {
        if (pair_names[i] == p.pair) gen->pair_of_port[p.port_id] = int16_t(i);
      }
    }
    const auto& hy = cfg.segmentation.hygiene;
    gen->hygiene = (hy.ip_options ? generation::kHygieneIpOptions : 0) |
                   (hy.tunnels ? generation::kHygieneTunnels : 0) | (hy.treck_icmp ? generation::kHygieneIcmpProbes : 0) |
                   (hy.bad_tcp_options ? generation::kHygieneTcpOptions : 0) |
                   (hy.overlapping_fragments ? generation::kHygieneFragments : 0);
    gen->max_frame_len = cfg.MaxFrameLen();
    gen->segmentation = segmentation;
    gen->quarantines = controller.QuarantineSetNow();
    gen->policy_version = cfg.segmentation.policy_version;
    if (initial_rules.compiled) inspect::AttachRules(*gen, initial_rules, "config", cfg.workers);
    store.Publish(std::move(gen));
  }

  for (uint32_t w = 0; w < cfg.workers; ++w) {
    rte_eal_remote_launch(worker::RunWorker, &dp.workers[w], worker_lcores[w]);
  }

  auto load_rules = [&](const std::string& source, const std::string& source_name, const std::string& version,
                        bool lenient) {
    const auto t0 = std::chrono::steady_clock::now();
    auto result = controller.LoadRules(source, source_name, version, lenient);
    if (result.accepted) {
      std::fprintf(stderr, "wardgate-dp: rules '%s' loaded: %u rules, generation %llu (%.1f ms)\n",
                   version.c_str(), result.rules_loaded, static_cast<unsigned long long>(result.generation_id),
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return result;
  };
  dp.control_mu = &controller.mutex();
  dp.add_segmentation = [&controller, &cfg](control::Status& s) {
    s.segmentation.emplace_back("quarantines", controller.quarantine_count());
    s.snapshot_path = cfg.segmentation.quarantine.snapshot;
    s.snapshot_error = controller.snapshot_error();
  };
  control::ApiServer api([&dp] { return control::CollectStatus(dp); }, load_rules, &events, &controller);
  int rc = kExitOk;
  try {
    api.Start(cfg.control_socket);
    std::fprintf(stderr, "wardgate-dp: bridging %zu pair(s) with %u worker(s); control API on unix:%s\n",
                 cfg.pairs.size(), cfg.workers, cfg.control_socket.c_str());
    // The main lcore is the control thread: it drains the event rings (and applies
    // the quarantines rules ask for) and expires quarantines, every half millisecond
    // so a rule's quarantine holds within a millisecond of the match.
    while (!g_stop.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      controller.Drain();
      controller.Tick();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wardgate-dp: %s\n", e.what());
    rc = kExitFailure;
  }

  // Stop order: workers (they drain their queues), API, counters, ports, mempool.
  g_stop.store(true);
  rte_eal_mp_wait_lcore();
  controller.Drain();
  api.Stop();
  auto json = control::ToJson(control::CollectStatus(dp));
  port::ClosePorts(dp.ports);
  const unsigned in_use = rte_mempool_in_use_count(pool);
  json["mode"] = "live";
  json["mbufs_in_use_at_exit"] = in_use;
  std::cout << json.dump() << std::endl;
  if (in_use != 0) {
    std::fprintf(stderr, "wardgate-dp: %u mbufs leaked after the ports were closed\n", in_use);
    rc = kExitFailure;
  }
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "wardgate-dp: %s needs a value\n", name);
        std::exit(kExitUsage);
      }
      return argv[++i];
    };
    if (arg == "--config") {
      opt.config_path = value("--config");
    } else if (arg == "--pcap") {
      opt.pcap_in = value("--pcap");
    } else if (arg == "--pcap-out") {
      opt.pcap_out = value("--pcap-out");
    } else if (arg == "--rules") {
      opt.rules.push_back(value("--rules"));
    } else if (arg == "--eve") {
      opt.eve = value("--eve");
    } else if (arg == "--simulate-ips") {
      opt.simulate_ips = true;
    } else if (arg == "--overrides") {
      opt.overrides.push_back(value("--overrides"));
    } else if (arg == "--threshold-file") {
      opt.threshold_file = value("--threshold-file");
    } else if (arg == "--cache-dir") {
      opt.cache_dir = value("--cache-dir");
    } else if (arg == "--check-config") {
      opt.check_only = true;
    } else if (arg == "--version") {
      std::printf("wardgate-dp %s\n", WARDGATE_VERSION);
      return kExitOk;
    } else if (arg == "-h" || arg == "--help") {
      Usage(stdout);
      return kExitOk;
    } else {
      std::fprintf(stderr, "wardgate-dp: unknown argument '%s'\n", arg.c_str());
      Usage(stderr);
      return kExitUsage;
    }
  }
  const bool offline = !opt.pcap_in.empty();
  if (!offline && opt.config_path.empty()) {
    Usage(stderr);
    return kExitUsage;
  }
  if ((!opt.pcap_out.empty() || !opt.eve.empty() || !opt.rules.empty() || opt.simulate_ips ||
       !opt.overrides.empty() || opt.threshold_file || opt.cache_dir) &&
      !offline) {
    std::fprintf(stderr,
                 "wardgate-dp: --pcap-out, --rules, --eve, --simulate-ips, --overrides, --threshold-file and "
                 "--cache-dir need --pcap (live: use the config's rules section)\n");
    return kExitUsage;
  }

  config::Config cfg;
  try {
    cfg = opt.config_path.empty() ? config::OfflineDefaults() : config::LoadFile(opt.config_path, offline);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "wardgate-dp: config error: %s\n", e.what());
    return kExitUsage;
  }
  if (opt.check_only) {
    std::fprintf(stderr, "wardgate-dp: %s: configuration ok (%zu pair(s), %u worker(s))\n",
                 opt.config_path.c_str(), cfg.pairs.size(), cfg.workers);
    return kExitOk;
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (!offline) return RunLive(cfg);
  cfg.rules.overrides.insert(cfg.rules.overrides.end(), opt.overrides.begin(), opt.overrides.end());
  if (opt.threshold_file) cfg.rules.threshold_file = *opt.threshold_file;
  if (opt.cache_dir) cfg.rules.cache_dir = *opt.cache_dir;

  if (!InitEal(EalArgs(cfg, true))) return kExitFailure;
  const int rc = offline::RunOffline(cfg, {opt.pcap_in, opt.pcap_out, opt.rules, opt.eve, opt.simulate_ips}, g_stop);
  rte_eal_cleanup();
  return rc;
}
